"""The book-only kernel (core.replay) of a pure replay against the general kernel (core.process):
the same rows, counters and tables, capacity limits included."""

import gzip

import numpy as np
import pytest

from emu_helpers import Day, config
from tickwire.host import gen
from tickwire.host.config import Config
from tickwire.host.emu.pipeline import Emulator, load_source, messages_buffer

TABLES = ("names", "n_names", "auto", "locate_slot", "orders", "lv", "lv_n", "trading_state",
          "last_trade", "counters", "trig", "armed", "risk_slot", "position")


def assert_same(a, b):
    """Two (Emulator, RunResult) pairs agree on rows, counters, symbols and every table."""
    (ea, ra), (eb, rb) = a, b
    assert ra.counters == rb.counters
    assert ra.symbols == rb.symbols
    if rb.rows is None:
        assert ra.rows is None
    else:
        for f in ("sequence", "timestamp", "slot", "msg", "levels"):
            x, y = getattr(ra.rows, f), getattr(rb.rows, f)
            assert x.dtype == y.dtype and x.shape == y.shape, f
            assert np.array_equal(x, y), f
    assert len(ra.orders) == len(rb.orders) == 0
    for t in TABLES:
        assert np.array_equal(getattr(ea.state, t), getattr(eb.state, t)), t


def day_file(tmp_path, symbols=24, messages=60_000, seed=8):
    path = tmp_path / "day.itch"
    gen.write_capture(gen.generate_day(symbols=symbols, messages=messages, seed=seed), path,
                      fmt="binaryfile")
    return path


def cfg_of(names=(), **capacity):
    cfg = Config(symbols=list(names))
    cfg.strategy.kind = "none"
    for k, v in capacity.items():
        setattr(cfg.capacity, k, v)
    return cfg


# (symbols, capacity, depth, keep_rows, the counter the case is about)
CASES = {
    "auto": ((), dict(symbols=256), 1, True, "book_updates"),
    "depth5": ((), dict(symbols=256), 5, True, "book_updates"),
    "depth0": ((), dict(symbols=256), 0, True, "book_messages"),
    "no_rows": ((), dict(symbols=256), 3, False, "book_updates"),
    "symbol_overflow": ((), dict(symbols=8), 2, True, "symbol_overflow"),
    "level_overflow": ((), dict(symbols=64, levels=3), 3, True, "level_overflow"),
    "table_full": ((), dict(symbols=64, order_buckets=16, order_ways=2), 2, True,
                   "order_table_full"),
    "named_subset": (("AAPL", "MSFT", "SPY"), dict(symbols=8), 2, True, "book_updates"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_replay_kernel_equals_general_kernel(tmp_path, case):
    symbols, capacity, depth, keep, counter = CASES[case]
    path = day_file(tmp_path)
    # a record of unknown type and one of a wrong length, and a gzip copy
    raw = path.read_bytes()
    cut = 2 + raw[1]
    path.write_bytes(raw[:cut] + b"\x00\x03z\x00\x00" + b"\x00\x05S\x00\x00\x00\x00" + raw[cut:])
    gz = tmp_path / "day.itch.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))

    def emu():
        return Emulator(cfg_of(symbols, **capacity), depth)

    e = emu()
    assert e.pure_replay()
    ref = (e, e.run_binaryfile(path, keep_rows=keep, replay_kernel=False))
    assert ref[1].counters[counter] > 0  # the case exercises what it is about
    for p, kw in ((path, {}), (path, dict(read_ahead=False)), (path, dict(chunk_bytes=4096)),
                  (gz, dict(chunk_bytes=1 << 16))):
        e = emu()
        assert_same((e, e.run_binaryfile(p, keep_rows=keep, **kw)), ref)
    # indexed source: Emulator.run, book-only kernel vs general kernel (small chunks)
    src = load_source(path)
    a, b = emu(), emu()
    assert_same((a, a.run(src.data, src.offsets, src.sequences, src.counters, keep_rows=keep,
                          chunk=5000)),
                 (b, b.run(src.data, src.offsets, src.sequences, src.counters, keep_rows=keep,
                           chunk=5000, replay_kernel=False)))
    c = emu()
    res = c.run(src.data, src.offsets, src.sequences, src.counters, keep_rows=keep)
    assert {k: res.counters[k] for k in ref[1].counters} == ref[1].counters
    if ref[1].rows is not None:
        assert np.array_equal(res.rows.levels, ref[1].rows.levels)


def edge_day():
    """Duplicate and unknown references, overfills, replaces that leave the top as it was,
    trades, a cross, halts, an untracked symbol and a locate seen before its directory."""
    day = Day(("AAPL", "MSFT", "IBM"))
    day.add("AAPL", 1, "B", 100, 1_000_000)
    day.add("AAPL", 1, "S", 100, 1_000_100)       # duplicate reference
    day.add("AAPL", 2, "S", 50, 1_000_200)
    day.execute("AAPL", 2, 80)                    # overfill
    day.delete("MSFT", 99)                        # unknown reference
    day.add("MSFT", 3, "B", 10, 500_000)
    day.add("MSFT", 4, "B", 10, 499_900)
    day.replace("MSFT", 4, 5, 10, 499_900)         # below the top: rows unchanged at depth 1
    day.replace("MSFT", 3, 6, 10, 500_000)         # same price and size at the top
    day.replace("MSFT", 6, 3, 20, 500_100)         # reuses a freed reference
    day.replace("MSFT", 77, 78, 5, 1)              # unknown original
    day.cancel("MSFT", 3, 0)                       # zero-share cancel
    day.add_msg("C", stock_locate=2, order_reference_number=3, executed_shares=5,
                match_number=9, printable="Y", execution_price=500_000)
    day.add_msg("F", stock_locate=1, order_reference_number=40, buy_sell_indicator="S",
                shares=9, stock="AAPL", price=1_000_100, attribution="MPID")
    day.add_msg("P", stock_locate=1, order_reference_number=0, buy_sell_indicator="B",
                shares=7, stock="AAPL", price=1_000_050, match_number=1)
    day.add_msg("Q", stock_locate=2, cross_shares=1_000, stock="MSFT", cross_price=500_000,
                match_number=2, cross_type="O")
    day.halt("IBM")
    day.add("IBM", 7, "S", 1, 1_500_000)
    day.halt("IBM", "T")
    day.add_msg("A", stock_locate=9, order_reference_number=8, buy_sell_indicator="B",
                shares=1, stock="ZZZZ", price=100)   # a locate with no directory entry
    day.add_msg("D", stock_locate=9, order_reference_number=8)
    day.add_msg("P", stock_locate=11, order_reference_number=0, buy_sell_indicator="S",
                shares=3, stock="QQQ", price=1, match_number=3)
    for r in range(10, 40):
        day.add("AAPL", r, "BS"[r % 2], r, 1_000_000 + (r % 7 - 3) * 100)
    for r in range(10, 40, 3):
        day.execute("AAPL", r, 5)
        day.delete("AAPL", r + 1)
    return day


@pytest.mark.parametrize("symbols,capacity", [((), dict(symbols=2)), ((), {}),
                                               (("MSFT", "AAPL"), {}),
                                               ((), dict(levels=3, order_buckets=4,
                                                         order_ways=1))])
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_replay_kernel_edge_cases(symbols, capacity, depth):
    data, offs, seqs = messages_buffer(edge_day().msgs)
    a = Emulator(cfg_of(symbols, **capacity), depth)
    b = Emulator(cfg_of(symbols, **capacity), depth)
    assert_same((a, a.run(data, offs, seqs)), (b, b.run(data, offs, seqs, replay_kernel=False)))


def test_host_writes_use_the_general_kernel():
    """A trigger write (or any strategy) is not a pure replay: orders are still sent."""
    day = Day(("AAPL",))
    day.add("AAPL", 1, "S", 100, 1_000_000)
    emu = Emulator(config(("AAPL",)), 1)
    emu.write_trigger(0, 0, 1_000_000, 0, 10, enable_sell=False)
    assert not emu.pure_replay()
    res = emu.run(*messages_buffer(day.msgs))
    assert len(res.orders) == 1
    cfg = config(("AAPL",))
    cfg.strategy.kind = "band"
    assert not Emulator(cfg, 1).pure_replay()
