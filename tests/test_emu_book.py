"""Book-builder semantics of docs/architecture.md, against an independent dict-based book."""

import random

import numpy as np
import pytest

from emu_helpers import Day, config, run
from reference_book import CapBook
from tickwire.host import itch
from tickwire.host.emu.core import mix_hash, order_hash


class RefBook:
    """Naive full-depth reference: orders in a dict, levels recomputed on demand."""

    def __init__(self):
        self.orders = {}

    def apply(self, kind, *a):
        if kind == "A":
            ref, side, shares, price = a
            self.orders[ref] = [side, price, shares]
        elif kind in ("E", "X"):
            ref, n = a
            o = self.orders[ref]
            o[2] -= n
            if o[2] <= 0:
                del self.orders[ref]
        elif kind == "D":
            del self.orders[a[0]]
        elif kind == "U":
            old, new, shares, price = a
            side = self.orders.pop(old)[0]
            self.orders[new] = [side, price, shares]

    def top(self, depth):
        out = np.zeros((depth, 4), np.int64)
        for col, side, rev in ((0, "S", False), (2, "B", True)):
            lv = {}
            for s, p, n in self.orders.values():
                if s == side:
                    lv[p] = lv.get(p, 0) + n
            for k, p in enumerate(sorted(lv, reverse=rev)[:depth]):
                out[k, col], out[k, col + 1] = p, lv[p]
        return out


def random_day(seed, n=3000):
    rnd = random.Random(seed)
    day = Day(("AAPL",))
    ref_book = RefBook()
    live, next_ref, expect = [], 1, []

    def draw(side):
        """(shares, price) of a new order: bids below 100.00, asks from it up."""
        off = rnd.randint(-30, -1) if side == "B" else rnd.randint(0, 29)
        return rnd.randint(1, 500), 1_000_000 + off * 100

    for _ in range(n):
        r = rnd.random()
        if r < 0.45 or not live:
            side = rnd.choice("BS")
            shares, price = draw(side)
            i = day.add("AAPL", next_ref, side, shares, price)
            ref_book.apply("A", next_ref, side, shares, price)
            live.append(next_ref)
            next_ref += 1
        else:
            ref = rnd.choice(live)
            side, price, left = ref_book.orders[ref]
            k = rnd.random()
            if k < 0.3:
                n_ = rnd.randint(1, left)
                i = day.execute("AAPL", ref, n_)
                ref_book.apply("E", ref, n_)
            elif k < 0.55:
                n_ = rnd.randint(1, left)
                i = day.cancel("AAPL", ref, n_)
                ref_book.apply("X", ref, n_)
            elif k < 0.8:
                i = day.delete("AAPL", ref)
                ref_book.apply("D", ref)
            else:
                shares, price = draw(side)
                i = day.replace("AAPL", ref, next_ref, shares, price)
                ref_book.apply("U", ref, next_ref, shares, price)
                live.append(next_ref)
                next_ref += 1
            live = [x for x in live if x in ref_book.orders]
        expect.append((i, ref_book.top(10)))
    return day, expect


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_stream_matches_reference(seed):
    day, expect = random_day(seed)
    _, res = run(day, config(("AAPL",)), depth=10)
    rows = res.rows
    state, j = np.zeros((10, 4), np.int64), 0
    for i, want in expect:
        while j < len(rows) and rows.msg[j] <= i:
            state = rows.levels[j].astype(np.int64)
            j += 1
        assert np.array_equal(state, want), f"message {i}"
    c = res.counters
    assert c["unknown_ref"] == c["level_miss"] == c["order_table_full"] == 0


def test_rows_only_on_visible_change():
    day = Day(("AAPL",))
    day.add("AAPL", 1, "B", 100, 1_000_000)
    day.add("AAPL", 2, "B", 100, 999_900)
    day.add("AAPL", 3, "B", 100, 999_800)   # level 3: invisible at depth 2
    day.cancel("AAPL", 3, 50)                # invisible
    day.cancel("AAPL", 1, 50)                # visible
    _, res = run(day, config(("AAPL",)), depth=2)
    assert res.rows.msg.tolist() == [1, 2, 5]
    assert res.rows.levels[-1, 0].tolist() == [0, 0, 1_000_000, 50]


def test_untracked_symbols_ignored_and_counters():
    day = Day(("AAPL", "MSFT"))
    day.add("MSFT", 1, "B", 100, 1_000_000)
    day.execute("MSFT", 1, 10)
    day.add("AAPL", 2, "S", 100, 1_000_000)
    day.add("AAPL", 2, "S", 100, 1_000_000)  # duplicate reference
    day.execute("AAPL", 99, 10)              # unknown reference
    day.execute("AAPL", 2, 150)              # overfill: removes the order
    _, res = run(day, config(("AAPL",)), depth=1)
    c = res.counters
    assert (c["duplicate_ref"], c["unknown_ref"], c["overfill"]) == (1, 1, 1)
    assert res.symbols == ["AAPL"]
    assert res.rows.levels[-1, 0].tolist() == [0, 0, 0, 0]


def test_auto_mode_learns_symbols_up_to_capacity():
    day = Day(("AAPL", "MSFT", "GOOG"))
    cfg = config(())
    cfg.capacity.symbols = 2
    _, res = run(day, cfg)
    assert res.symbols == ["AAPL", "MSFT"]
    assert res.counters["symbol_overflow"] == 1


def test_level_overflow_evicts_worst_and_misses_are_counted():
    day = Day(("AAPL",))
    for k in range(4):
        day.add("AAPL", k + 1, "B", 10, 1_000_000 - 100 * k)   # 100.00 .. 99.97
    day.add("AAPL", 5, "B", 10, 999_000)       # worse than all 3 stored: not stored
    day.add("AAPL", 6, "B", 10, 1_000_100)     # better: evicts the worst
    day.delete("AAPL", 5)                      # its level was never stored
    day.delete("AAPL", 3)                      # evicted level
    _, res = run(day, config(("AAPL",), levels=3), depth=3)
    c = res.counters
    assert c["level_overflow"] == 3 and c["level_miss"] == 2
    assert res.rows.levels[-1, :, 2].tolist() == [1_000_100, 1_000_000, 999_900]


def test_order_table_full_in_a_tiny_table():
    # 4 buckets x 2 ways: two banks of 2 buckets; 5 references whose fold (bank 0) and mix32
    # (bank 1) buckets are both 0: bank 0, bank 1, bank 0, bank 1, then both full
    refs = [r for r in range(1, 200) if order_hash(np.uint64(r), 1, 1) == 0
            and mix_hash(np.uint64(r), 1) == 0][:5]
    day = Day(("AAPL",))
    for r in refs:
        day.add("AAPL", r, "B", 10, 1_000_000)
    emu, res = run(day, config(("AAPL",), order_buckets=4, order_ways=2), depth=1)
    assert res.counters["order_table_full"] == 1
    assert res.rows.levels[-1, 0].tolist() == [0, 0, 1_000_000, 40]
    ot = emu.state.orders
    assert ot[[0, 1, 4, 5], 0].tolist() == refs[:4:2] + refs[1:4:2]


def test_capacity_arguments_checked():
    with pytest.raises(ValueError, match="order_buckets"):
        run(Day(), config(order_buckets=3))
    with pytest.raises(ValueError, match="levels"):
        run(Day(), config(levels=0))


@pytest.mark.parametrize("chunk_bytes", [4096, 1 << 20])
def test_streamed_binaryfile_equals_indexed(tmp_path, chunk_bytes):
    import gzip
    from tickwire.host import gen
    from tickwire.host.emu.pipeline import Emulator, load_source, run_source
    day = gen.generate_day(symbols=16, messages=40_000, seed=4)
    path = tmp_path / "d.itch"
    gen.write_capture(day, path, fmt="binaryfile")
    raw = path.read_bytes()
    # a record of unknown type and one with a wrong length in the middle
    cut = 2 + raw[1]  # after the first record
    bad = b"\x00\x03z\x00\x00" + b"\x00\x05S\x00\x00\x00\x00"
    path.write_bytes(raw[:cut] + bad + raw[cut:])
    gz = tmp_path / "d.itch.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    cfg = config(())
    ref = run_source(load_source(path), cfg, 5)
    for p, threads in ((path, 1), (path, 2), (gz, 2), (gz, 4)):
        got = Emulator(config(()), 5).run_binaryfile(p, chunk_bytes=chunk_bytes,
                                                     threads=threads)
        assert np.array_equal(got.rows.sequence, ref.rows.sequence)
        assert np.array_equal(got.rows.levels, ref.rows.levels)
        assert np.array_equal(got.rows.timestamp, ref.rows.timestamp)
        assert got.counters["unknown_type"] == 1 and got.counters["bad_length"] == 1
        assert np.array_equal(got.rows.slot, ref.rows.slot)
        assert got.symbols == ref.symbols
        assert {k: v for k, v in got.counters.items() if k in ref.counters} == \
            {k: ref.counters[k] for k in got.counters}
    trunc = tmp_path / "t.itch"
    trunc.write_bytes(raw[:-3])
    with pytest.raises(ValueError, match=r"t.itch: offset \d+: truncated"):
        Emulator(config(()), 5).run_binaryfile(trunc, chunk_bytes=chunk_bytes)


def test_parallel_replay_falls_back_when_an_order_table_fills(tmp_path):
    from tickwire.host import gen
    from tickwire.host.emu.pipeline import Emulator, load_source, run_source
    day = gen.generate_day(symbols=8, messages=20_000, seed=5)
    path = tmp_path / "d.itch"
    gen.write_capture(day, path, fmt="binaryfile")
    cfg = config((), order_buckets=16, order_ways=2)
    ref = run_source(load_source(path), cfg, 3)
    assert ref.counters["order_table_full"] > 0
    got = Emulator(config((), order_buckets=16, order_ways=2), 3).run_binaryfile(path,
                                                                                threads=2)
    assert np.array_equal(got.rows.levels, ref.rows.levels)
    assert got.counters["order_table_full"] == ref.counters["order_table_full"]


def test_parallel_replay_leaves_the_sequential_order_table(tmp_path):
    """Threads fill order tables of their own; where two put orders in one entry, folding the
    tables back would lose one, so the run starts again on one thread (on this day it does:
    the table left behind is the sequential run's, entry for entry)."""
    from tickwire.host import gen
    from tickwire.host.emu.pipeline import Emulator
    day = gen.generate_day(symbols=8, messages=20_000, seed=6)
    path = tmp_path / "d.itch"
    gen.write_capture(day, path, fmt="binaryfile")
    runs = {}
    for threads in (1, 2):
        em = Emulator(config((), order_buckets=1 << 10, order_ways=4), 3)
        res = em.run_binaryfile(path, threads=threads, replay_kernel=False)
        runs[threads] = (res, em.state.orders.copy())
    (ref, ref_orders), (got, got_orders) = runs[1], runs[2]
    assert ref.counters["order_table_full"] == 0
    assert np.array_equal(got.rows.levels, ref.rows.levels)
    assert np.array_equal(got_orders, ref_orders)


# ------------------------------------------------------------------ capacities and zero shares

def capacity_day(seed, n, names, locates):
    """A random stream aimed at the capacity and zero-share rules: a narrow price band (levels
    fill), 0-share adds and reductions, overfills, duplicate and unknown references, replaces
    that keep price and size, and stock names beyond the symbol table."""
    rnd = random.Random(seed)
    day = Day(())
    live = {}                             # ref -> (locate, name, shares, price)
    next_ref = 1
    for loc, name in locates.items():
        if rnd.random() < 0.5:            # half the locates are named by R, the rest by an add
            day.add_msg("R", stock_locate=loc, stock=name)
    for _ in range(n):
        loc = rnd.choice(list(locates))
        name = locates[loc]
        r = rnd.random()
        refs = list(live)
        if r < 0.3 or not refs:
            dup = refs and rnd.random() < 0.1                              # a duplicate
            ref = rnd.choice(refs[-4:]) if dup else next_ref
            next_ref += ref == next_ref
            side = rnd.choice("BS")
            price = 10_000 + rnd.randrange(6) * (-1 if side == "B" else 1) * 100
            shares = rnd.choice([0, 0, 1, 5, 100, 300])
            day.add_msg(rnd.choice("AAAF"), stock_locate=loc, order_reference_number=ref,
                        buy_sell_indicator=side, shares=shares, stock=name, price=price)
            live.setdefault(ref, (loc, name, shares, price, side))
            continue
        pick = rnd.random()               # mostly recent orders (likely still in the table)
        ref = rnd.choice(refs[-6:] if pick < 0.7 else refs) if pick < 0.95 else next_ref + 1000
        o = live.get(ref, (loc, name, 10, 10_000, "B"))
        k = rnd.random()
        if k < 0.35:
            typ = rnd.choice("ECX")
            n_ = rnd.choice([0, 1, o[2], o[2] + 7])                         # 0, part, all, over
            f = {"executed_shares" if typ in "EC" else "canceled_shares": n_}
            if typ != "X":
                f["match_number"] = next_ref
            day.add_msg(typ, stock_locate=o[0], order_reference_number=ref, **f)
        elif k < 0.65:
            day.add_msg("D", stock_locate=o[0], order_reference_number=ref)
            live.pop(ref, None)
        else:
            same = rnd.random() < 0.5                                       # value-neutral
            new = ref if rnd.random() < 0.1 else next_ref
            next_ref += new == next_ref
            shares, price = (o[2], o[3]) if same else (rnd.choice([0, 50, 200]),
                                                       o[3] + rnd.choice([-100, 0, 100]))
            day.add_msg("U", stock_locate=o[0], original_order_reference_number=ref,
                        new_order_reference_number=new, shares=shares, price=price)
            live.pop(ref, None)
            live[new] = (o[0], o[1], shares, price, o[4])
    return day


CAP_CASES = [  # (names, capacities, depth)
    (("AAPL", "MSFT"), dict(symbols=2, order_buckets=8, order_ways=2, levels=3), 2),
    (("AAPL", "MSFT", "IBM"), dict(symbols=3, order_buckets=4, order_ways=2, levels=2), 2),
    ((), dict(symbols=2, order_buckets=8, order_ways=2, levels=4), 3),      # auto, overflow
    ((), dict(symbols=3, order_buckets=16, order_ways=4, levels=4), 3),
]


@pytest.mark.parametrize("case", range(len(CAP_CASES)))
@pytest.mark.parametrize("seed", [11, 12])
def test_capacity_limits_and_zero_shares_match_reference(case, seed):
    """Levels full (eviction and refusal), full buckets, symbol overflow, 0-share orders and
    reductions, overfills and value-neutral replaces: every row (message, slot, top N) and
    every book counter of the emulator equals the reference's."""
    names, cap, depth = CAP_CASES[case]
    locates = {1: "AAPL", 2: "MSFT", 3: "IBM", 4: "GOOG", 5: "AAPL"}
    day = capacity_day(seed, 1500, names, locates)
    ref = CapBook(names, depth=depth, **cap)
    for i, raw in enumerate(day.msgs):
        ref.process(i, itch.decode(raw))
    cfg = config(names)
    for k, v in cap.items():
        setattr(cfg.capacity, k, v)
    _, res = run(day, cfg, depth=depth)
    got = [(int(m), int(s), lv.astype(np.int64).tolist())
           for m, s, lv in zip(res.rows.msg, res.rows.slot, res.rows.levels)]
    want = [(i, s, lv.tolist()) for i, s, lv in ref.rows]
    for g, w in zip(got, want):
        assert g == w
    assert len(got) == len(want)
    assert {k: res.counters[k] for k in ref.c} == ref.c
    # the stream reached every limit and rule it is meant to
    c = ref.c
    assert c["level_overflow"] and c["level_miss"] and c["order_table_full"]
    assert c["duplicate_ref"] and c["unknown_ref"] and c["overfill"]
    if not names:
        assert c["symbol_overflow"]
    assert all(ref.seen.values()), ref.seen
