"""cocotb/Verilator bench of the book builder: every top-N row and BookEvent identical to the
emulator's.

Two builds: the gateware defaults (LOBSTER samples — the AAPL one and the AMZN whole day —,
many-symbol random streams in host and auto mode, with back-pressure, books deeper than the
level engine's 32-level cache), and a tiny one (32 buckets × 4 ways, 6 levels of which 4 in
the cache and 2 deep, depth 3) where hash collisions, full buckets, evictions, refills and level
misses are common. An off-chip order table (the defaults' 2^20 × 4) is served by cocotbext-axi's
AxiRam with ideal timing here (latency and back-pressure: test_book_offchip.py).
The emulator (tickwire.host.emu) runs here; the simulation process only compares.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from tickwire.hw.book.levels import CACHE_LEVELS
from tickwire.sim.book_builder.gen import emulator_case, fault_day, to_decoded
from tickwire.sim.runner import DEFAULT_LINT_WAIVERS, build, run
from tickwire.spec.capacity import BOOK_FIELDS, GATEWARE, ROW_DEPTH

pytestmark = pytest.mark.rtl

LOBSTER_MSG = "lobster/AAPL_2012-06-21_34200000_57600000_message_10.csv"
LOBSTER_BOOK = "lobster/AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
AMZN_MSG = "lobster/AMZN_2012-06-21_34200000_57600000_message_1.csv.gz"
AMZN_BOOK = "lobster/AMZN_2012-06-21_34200000_57600000_orderbook_1.csv.gz"

BIG = dict({k: GATEWARE[k] for k in BOOK_FIELDS}, depth=ROW_DEPTH)   # the defaults
TINY = dict(symbols=8, order_buckets=32, order_ways=4, levels=6, depth=3, cache_levels=4)


def table_axi(params: dict, *, base: int = 0, latency: int = 0, backpressure: float = 0.0,
              seed: int = 0) -> dict | None:
    """The bench's memory for a build of ``params`` (BookBuilder keywords): None when its
    order table is on chip; off chip (``mem``), cocotbext-axi's AxiRam with the table at
    ``base``, ``latency`` cycles and ``backpressure`` (sim/book_builder/axi_mem.py)."""
    from tickwire.hw.book import BookBuilder
    builder = BookBuilder(events=True, **params)
    builder._MustUse__silence = True      # asked for its table's place only
    if builder.order_memory != "offchip":
        return None
    return dict(base=base, size=builder.order_memory_bytes, latency=latency,
                backpressure=backpressure, seed=seed)


def make_case(path: Path, name: str, raw: list[bytes], params: dict, *, names=None,
              ready_prob=1.0, idle_prob=0.0, seed=0, state_slots=None, axi=None) -> dict:
    """Run the emulator on ``raw`` and pickle the case; ``axi``: the memory of an off-chip
    order table (default :func:`table_axi`'s: at 0, no latency or back-pressure)."""
    if axi is None:
        axi = table_axi(params)
    rows, counters, events, emu = emulator_case(
        raw, symbols=names, depth=params["depth"], symbols_capacity=params["symbols"],
        order_buckets=params["order_buckets"], order_ways=params["order_ways"],
        levels=params["levels"])
    st = emu.state
    top = st.top(1)
    if state_slots is None:
        state_slots = range(min(params["symbols"], 16))
    states = {s: (int(top[s, 0, 2]), int(top[s, 0, 3]), int(top[s, 0, 0]), int(top[s, 0, 1]),
                  int(st.trading_state[s]), int(st.last_trade[s, 0]),
                  int(st.last_trade[s, 1]) & 0xFFFF_FFFF) for s in state_slots}
    msgs = [to_decoded(m, i + 1) for i, m in enumerate(raw)]
    case = dict(name=name, depth=params["depth"], names=list(names or []), auto=names is None,
                msgs=msgs, rows=rows, events=events, counters=counters, states=states,
                ready_prob=ready_prob, idle_prob=idle_prob, seed=seed, axi=axi)
    f = path / f"{name}.pkl"
    with open(f, "wb") as fh:
        pickle.dump(case, fh)
    return case


def run_case(design, case_file: Path):
    """Run the cocotb bench on one case; returns its stats (accepted messages, cycle span,
    min and max row latency)."""
    run(design, "tickwire.sim.book_builder.cocotb_book", env={"BOOK_CASE": str(case_file)},
        tag=f"{case_file.stem}-{case_file.parent.name}")
    stats = Path(str(case_file) + ".stats").read_text().split()
    return [int(x) for x in stats]


def _build(name: str, params: dict):
    from tickwire.hw.book import BookBuilder
    waivers = dict(DEFAULT_LINT_WAIVERS,
                   SYMRSVDWORD="the port `auto` is a C++ keyword: Verilator escapes it in C++")
    return build(BookBuilder(events=True, **params), name, waivers=waivers)


@pytest.fixture(scope="module")
def big_build():
    return _build("book_builder", BIG)


@pytest.fixture(scope="module")
def tiny_build():
    return _build("book_builder_tiny", TINY)


def test_lobster_sample(big_build, shared_data, tmp_path):
    """The LOBSTER AAPL sample as ITCH: RTL rows == emulator rows, and the book they imply
    after every LOBSTER event is LOBSTER's 10-level book."""
    from tickwire.host import lobster
    sample = lobster.load(shared_data / LOBSTER_MSG, shared_data / LOBSTER_BOOK)
    raw, event_index, _ = lobster.to_itch(sample)
    case = make_case(tmp_path, "lobster", raw, BIG, names=["AAPL"], state_slots=[0])
    assert case["counters"]["order_table_full"] == 0 and case["counters"]["level_miss"] == 0
    accepted, span, lat_min, lat_max = run_case(big_build, tmp_path / "lobster.pkl")
    assert accepted == len(raw)
    # the RTL matched the emulator row for row; the rows reproduce LOBSTER's book
    rows = case["rows"]
    want = sample.book_rows()
    cur = np.zeros((10, 4), np.int64)
    j = 0
    for e, m in enumerate(event_index):
        while j < len(rows) and rows[j][0] <= m + 1:
            cur = np.array(rows[j][3], np.int64)
            j += 1
        assert np.array_equal(cur, want[e]), f"LOBSTER event {e}"


def test_amzn_day(big_build, shared_data, tmp_path):
    """The AMZN whole day (LOBSTER level 1 as ITCH, 57,515 events, up to 286 ask levels):
    every RTL row and event the emulator's at the gateware's capacities; the cycles it takes
    with the deep levels serving every op past the 32nd level."""
    from tickwire.host import lobster
    sample = lobster.load(shared_data / AMZN_MSG, shared_data / AMZN_BOOK)
    raw, _, stats = lobster.to_itch(sample, "AMZN")
    assert max(stats["peak_bid_levels"], stats["peak_ask_levels"]) > CACHE_LEVELS
    case = make_case(tmp_path, "amzn", raw, BIG, names=["AMZN"], state_slots=[0])
    accepted, span, lat_min, lat_max = run_case(big_build, tmp_path / "amzn.pkl")
    assert accepted == len(raw)
    print(f"\nAMZN day on the book builder: {len(raw):,} messages in {span:,} cycles "
          f"({span / len(raw):.2f} per message), row latency {lat_min}-{lat_max} cycles; "
          f"level_overflow {case['counters']['level_overflow']}")


def test_deep_worst_case_burst(big_build, tmp_path):
    """The deep levels' worst case: one symbol's bids 288 levels deep, then a burst of deletes
    at the middle of its deep levels (each moves half of them) and adds back there; rows as the
    emulator's, and the cycles per message of each phase (back-pressure, not loss)."""
    from tickwire.host import itch
    t = [34_200_000_000_000]

    def msg(type_, **f):
        t[0] += 1000
        return itch.encode(type_, timestamp=t[0], **f)

    levels = BIG["levels"]
    raw = [msg("R", stock_locate=1, stock="AAPL")]
    raw += [msg("A", stock_locate=1, order_reference_number=k + 1, buy_sell_indicator="B",
                shares=100, price=2_000_000 - 100 * k, stock="AAPL") for k in range(levels)]
    mid = CACHE_LEVELS + (levels - CACHE_LEVELS) // 2
    burst = [msg("D", stock_locate=1, order_reference_number=k + 1) for k in range(mid, mid + 64)]
    burst += [msg("A", stock_locate=1, order_reference_number=1000 + k, buy_sell_indicator="B",
                  shares=100, price=2_000_000 - 100 * k, stock="AAPL")
              for k in range(mid, mid + 64)]
    case = make_case(tmp_path, "deep_burst_fill", raw, BIG, names=["AAPL"], state_slots=[0])
    assert case["counters"]["level_overflow"] == 0
    _, fill, _, _ = run_case(big_build, tmp_path / "deep_burst_fill.pkl")
    make_case(tmp_path, "deep_burst", raw + burst, BIG, names=["AAPL"], state_slots=[0])
    _, whole, _, _ = run_case(big_build, tmp_path / "deep_burst.pkl")
    print(f"\ndeep worst case: filling {levels} levels {fill / len(raw):.2f} cycles per "
          f"message; deletes and adds at the middle of the deep levels "
          f"{(whole - fill) / len(burst):.1f} per message")


@pytest.mark.parametrize("mode", ["host", "auto"])
def test_random_many_symbols(big_build, tmp_path, mode):
    """90 locates for 64 slots (48 named in host mode); an order left up to 64 ticks behind
    every add and half the adds moved as far (> 32 levels: evictions, level misses);
    back-pressure on both ends in auto mode."""
    raw, names = fault_day(11 if mode == "host" else 12, 2500, 90, deep_book=1.0,
                           far_price=0.5)
    kw = dict(names=names[:48]) if mode == "host" else dict(names=None, ready_prob=0.5,
                                                             idle_prob=0.3, seed=5)
    case = make_case(tmp_path, f"random_{mode}", raw, BIG, **kw)
    c = case["counters"]
    assert c["book_updates"] > 500
    # the books reach past the level engine's cache: its 32 levels alone would lose levels
    # (evictions, then misses) that the deep levels keep
    shallow = emulator_case(raw, symbols=kw["names"], depth=BIG["depth"],
                            symbols_capacity=BIG["symbols"], order_buckets=BIG["order_buckets"],
                            order_ways=BIG["order_ways"], levels=CACHE_LEVELS)[1]
    assert shallow["level_overflow"] > 20 and shallow["level_miss"] > 10
    assert c["level_overflow"] < shallow["level_overflow"]
    assert c["level_miss"] < shallow["level_miss"]
    if mode == "auto":
        assert c["symbol_overflow"] > 0
    run_case(big_build, tmp_path / f"random_{mode}.pkl")


@pytest.mark.parametrize("seed", [1, 2])
def test_random_collisions(tiny_build, tmp_path, seed):
    """32 buckets × 4 ways and 6 levels: full buckets, duplicate references, evictions and level
    misses on every few messages; replaces often land in the bucket they leave."""
    raw, names = fault_day(seed, 2500, 10, **({} if seed == 1 else dict(duplicate_ref=0.1)))
    case = make_case(tmp_path, f"collide_{seed}", raw, TINY, names=names[:6] if seed == 1
                     else None, ready_prob=0.7 if seed == 2 else 1.0, seed=seed)
    c = case["counters"]
    assert c["order_table_full"] > 100 and c["level_miss"] > 10 and c["level_overflow"] > 10
    assert c["duplicate_ref"] > 0 and c["unknown_ref"] > 0 and c["overfill"] > 0
    run_case(tiny_build, tmp_path / f"collide_{seed}.pkl")
