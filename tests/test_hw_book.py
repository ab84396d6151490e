"""Amaranth-simulator tests of the book builder gateware (hw/book) against the emulator.

Every builder-level test runs ITCH messages through the numba emulator (the semantics) and,
decoded into ``DecodedMessage`` fields, through :class:`BookBuilder` in the Amaranth
simulator, and requires the identical sequence of top-N rows, the same book counters and the
same per-slot state. The cocotb bench in sim/book_builder/ repeats this on Verilator with the
LOBSTER sample and longer random streams; tests/test_hw_book_units.py tests the level array
and the order table on their own.
"""

import random

import pytest
from amaranth.sim import Simulator

from tickwire.host import itch
from tickwire.hw.book import BookBuilder, COUNTERS
from tickwire.sim.amaranth_axi import AxiMemory
from tickwire.sim.book_builder.gen import emulator_case, fault_day, to_decoded
from tickwire.spec.capacity import BOARD_ORDER_BUCKETS, BOOK_FIELDS, GATEWARE, ROW_DEPTH
from tickwire.spec.values import pack_symbol


def _row_tuple(row, depth):
    h = row.header
    lv = tuple((row.levels[k].ask_price, row.levels[k].ask_size, row.levels[k].bid_price,
                row.levels[k].bid_size) for k in range(depth))
    return (h.sequence, h.timestamp, h.slot, lv)


def _event_tuple(e):
    return (e.sequence, e.timestamp, e.slot, e.evaluate, e.trading_state,
            (e.best_ask.price, e.best_ask.valid), (e.best_bid.price, e.best_bid.valid),
            (e.add.valid, e.add.side, e.add.price))


def run_builder(msgs, *, names=(), auto=False, ready_prob=1.0, gap_prob=0.0, seed=0,
                state_slots=(), cycles=None, mem_latency=20, mem_backpressure=0.0, **params):
    """Drive decoded ``msgs`` through a BookBuilder in the Amaranth simulator.

    Returns (rows, counters read after the drain, {slot: state tuple}, stats) where stats has
    the cycle count from first accept to last input accept and the BookEvents ("events").
    With ``order_memory="offchip"`` the table's memory is the simulator's AXI memory
    (``mem_latency`` cycles, ``mem_backpressure``)."""
    dut = BookBuilder(events=True, **params)
    memory = None
    if dut.order_memory == "offchip":
        memory = AxiMemory(dut.mem, size=dut.order_memory_bytes, latency=mem_latency,
                           backpressure=mem_backpressure, seed=seed + 2)
    depth = dut.depth
    rows, states, counters, stats = [], {}, {}, {}
    events = stats["events"] = []
    done = [False]
    rng = random.Random(seed)

    async def driver(ctx):
        ctx.set(dut.auto, auto)
        for i, n in enumerate(names):
            ctx.set(dut.sym_we, 1)
            ctx.set(dut.sym_slot, i)
            ctx.set(dut.sym_name, pack_symbol(n))
            ctx.set(dut.sym_valid, 1)
            await ctx.tick()
        ctx.set(dut.sym_we, 0)
        n_cycles = 0
        for msg in msgs:
            while gap_prob and rng.random() < gap_prob:
                await ctx.tick()
                n_cycles += 1
            ctx.set(dut.i.payload, msg)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            n_cycles += 1
            ctx.set(dut.i.valid, 0)
        stats["input_cycles"] = n_cycles
        idle = 0
        while idle < 40 + (4 * mem_latency if memory else 0):
            await ctx.tick()
            idle = 0 if (ctx.get(dut.o.valid) or ctx.get(dut.ev.valid)) else idle + 1
        done[0] = True
        for name in COUNTERS:
            counters[name] = ctx.get(getattr(dut, name))
        for s in state_slots:
            ctx.set(dut.state_addr, s)
            await ctx.tick()
            st = ctx.get(dut.state)
            states[s] = (st.best_bid_price, st.best_bid_size, st.best_ask_price,
                         st.best_ask_size, st.trading_state, st.last_price, st.last_shares)

    async def sink(ctx):
        rrng = random.Random(seed + 1)
        while not done[0]:
            ctx.set(dut.o.ready, 1 if (ready_prob >= 1 or rrng.random() < ready_prob) else 0)
            ctx.set(dut.ev.ready, 1 if (ready_prob >= 1 or rrng.random() < ready_prob) else 0)
            await ctx.tick()
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.ev.ready, 1)

    async def collector(ctx):
        async for _, _, valid, ready, payload in ctx.tick().sample(dut.o.valid, dut.o.ready,
                                                                    dut.o.payload):
            if valid and ready:
                rows.append(_row_tuple(payload, depth))

    async def ev_collector(ctx):
        async for _, _, valid, ready, payload in ctx.tick().sample(dut.ev.valid, dut.ev.ready,
                                                                    dut.ev.payload):
            if valid and ready:
                events.append(_event_tuple(payload))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.add_testbench(sink, background=True)
    if memory is not None:
        sim.add_testbench(memory.serve, background=True)
    sim.add_process(collector)
    sim.add_process(ev_collector)
    sim.run()
    return rows, counters, states, stats


def emu_state(emu, s):
    st = emu.state
    top = st.top(1)[s, 0]
    return (int(top[2]), int(top[3]), int(top[0]), int(top[1]), int(st.trading_state[s]),
            int(st.last_trade[s, 0]), int(st.last_trade[s, 1]) & 0xFFFF_FFFF)


def check(raw, *, names=None, params, ready_prob=1.0, gap_prob=0.0, seed=0, state_slots=None,
          **memory):
    """RTL == emulator on ``raw`` ITCH messages (names None: auto mode); ``memory``: the
    off-chip table's memory model (run_builder's ``mem_*``)."""
    p = dict({k: GATEWARE[k] for k in BOOK_FIELDS}, depth=ROW_DEPTH)
    p.update(params)
    want, want_c, want_events, emu = emulator_case(
        raw, symbols=names, depth=p["depth"], symbols_capacity=p["symbols"],
        order_buckets=p["order_buckets"], order_ways=p["order_ways"], levels=p["levels"])
    msgs = [to_decoded(m, i + 1) for i, m in enumerate(raw)]
    if state_slots is None:
        state_slots = range(min(p["symbols"], 8))
    rows, counters, states, stats = run_builder(
        msgs, names=names or (), auto=names is None, ready_prob=ready_prob, gap_prob=gap_prob,
        seed=seed, state_slots=state_slots, **memory, **params)
    for i, (a, b) in enumerate(zip(rows, want)):
        assert a == b, f"row {i}:\n rtl {a}\n emu {b}"
    assert len(rows) == len(want), f"{len(rows)} rows, emulator {len(want)}"
    assert counters == want_c
    for s in state_slots:
        assert states[s] == emu_state(emu, s), f"slot {s} state"
    # BookEvents for the trigger engine: the emulator's, stepped one message at a time
    for i, (a, b) in enumerate(zip(stats["events"], want_events)):
        assert a == b, f"event {i}:\n rtl {a}\n emu {b}"
    assert len(stats["events"]) == len(want_events)
    return rows, want_c, stats


class Day:
    """ITCH messages with increasing timestamps (sequence = position + 1)."""

    def __init__(self):
        self.msgs, self.t = [], 34_200_000_000_000

    def __call__(self, type_, **f):
        self.t += 1000
        f.setdefault("timestamp", self.t)
        self.msgs.append(itch.encode(type_, **f))
        return self

    def add(self, loc, ref, side, shares, price, stock="AAPL"):
        return self("A", stock_locate=loc, order_reference_number=ref, buy_sell_indicator=side,
                    shares=shares, price=price, stock=stock)


SMALL = dict(symbols=4, order_buckets=8, order_ways=2, levels=4, depth=2)
T0 = Day().t   # message k (1-based) of a Day has timestamp T0 + 1000 k


def row(seq, slot, *levels):
    """A top-2 row written by hand: levels as (ask price, ask size, bid price, bid size),
    missing ones empty."""
    lv = tuple(levels) + ((0, 0, 0, 0),) * (2 - len(levels))
    return (seq, T0 + 1000 * seq, slot, lv)


# ------------------------------------------------------------------------- parameters

@pytest.mark.parametrize("kw, exc, text", [
    (dict(symbols=0), ValueError, "symbols=0: must be in 1..256"),
    (dict(symbols=300), ValueError, "symbols=300: must be in 1..256"),
    (dict(order_buckets=1000), ValueError, "order_buckets=1000: must be a power of two"),
    (dict(order_ways=0), ValueError, "order_ways=0: must be in 1..16"),
    (dict(order_ways=3), ValueError, "order_ways=3: must be a power of two"),
    (dict(levels=4, depth=5), ValueError, "depth (5) must not exceed levels (4)"),
    (dict(depth=0), ValueError, "depth=0: must be >= 1"),
    (dict(locates=100), ValueError, "locates=100: must be a power of two"),
    (dict(levels=3.0), TypeError, "levels must be an integer, not 3.0"),
])
def test_parameter_errors(kw, exc, text):
    with pytest.raises(exc) as e:
        BookBuilder(**kw)
    assert text in str(e.value)


def test_signature():
    b = BookBuilder()
    b._MustUse__silence = True      # only the signature is looked at
    assert (b.depth, b.levels, b.cache_levels, b.order_buckets) == (10, 1056, 32, 1 << 12)
    assert b.order_memory == "chip" and "mem" not in b.signature.members
    # the boards' 2^20 buckets are more than the chip holds: the table is off chip, 128 MiB
    big = BookBuilder(order_buckets=BOARD_ORDER_BUCKETS)
    big._MustUse__silence = True
    assert big.order_memory == "offchip" and big.order_memory_bytes == 128 << 20
    assert "mem" in big.signature.members and "mem_base" in big.signature.members
    members = b.signature.members
    for name in ("i", "o", "sym_we", "sym_slot", "sym_name", "sym_valid", "auto",
                 "state_addr", "state", *COUNTERS):
        assert name in members
    assert b.o.payload.shape().size == 64 + 48 + 8 + 10 * 128


# ------------------------------------------------------------------------- directed

def test_add_delete_and_other_slot():
    d = Day()
    d("R", stock_locate=3, stock="AAPL")
    d.add(3, 10, "B", 100, 5000)
    d.add(3, 11, "S", 50, 5100)
    d.add(7, 12, "S", 50, 5100, stock="IBM")     # untracked name: ignored, locate untracked
    d.add(7, 13, "S", 50, 5100, stock="MSFT")    # same locate, tracked name: still ignored
    d.add(8, 14, "S", 70, 900, stock="MSFT")     # mid-day first add maps locate 8
    d("D", stock_locate=3, order_reference_number=10)
    rows, c, _ = check(d.msgs, names=["MSFT", "AAPL"], params=SMALL)
    # by hand: AAPL is slot 1 (locate 3), MSFT slot 0 (locate 8, from its first add)
    assert rows == [row(2, 1, (0, 0, 5000, 100)), row(3, 1, (5100, 50, 5000, 100)),
                    row(6, 0, (900, 70, 0, 0)), row(7, 1, (5100, 50, 0, 0))]
    assert c["book_messages"] == 4 and c["book_updates"] == 4


def test_levels_overflow_eviction_and_miss():
    d = Day()
    for i, p in enumerate([100, 101, 102, 103, 99, 104, 98]):
        d.add(1, 100 + i, "B", 10 + i, p)
    # 99 and 98: worse than a full side, not stored; 104 evicts 100
    d("X", stock_locate=1, order_reference_number=104, canceled_shares=3)   # 99: level_miss
    d("D", stock_locate=1, order_reference_number=100)                      # 100: level_miss
    d("D", stock_locate=1, order_reference_number=103)                      # 103: removed
    d.add(1, 107, "B", 1, 99)                                               # room again
    for i, p in enumerate([200, 199, 198, 197, 196]):
        d.add(1, 200 + i, "S", 5, p)                                        # 196 evicts 200
    d("E", stock_locate=1, order_reference_number=204, executed_shares=5,
      match_number=1)   # best ask removed: the others move up
    rows, c, _ = check(d.msgs, names=["AAPL"], params=dict(SMALL, order_buckets=64, order_ways=4))
    assert c["order_table_full"] == 0
    assert c["level_overflow"] == 4 and c["level_miss"] == 2
    # by hand: refused/missed/level-4 changes (messages 5, 7, 8, 9, 11) emit no row
    b = [(101, 11), (102, 12), (103, 13), (104, 15)]
    assert rows == [row(1, 0, (0, 0, 100, 10)), row(2, 0, (0, 0, *b[0]), (0, 0, 100, 10)),
                    row(3, 0, (0, 0, *b[1]), (0, 0, *b[0])),
                    row(4, 0, (0, 0, *b[2]), (0, 0, *b[1])),
                    row(6, 0, (0, 0, *b[3]), (0, 0, *b[2])),
                    row(10, 0, (0, 0, *b[3]), (0, 0, *b[1])),
                    row(12, 0, (200, 5, *b[3]), (0, 0, *b[1])),
                    row(13, 0, (199, 5, *b[3]), (200, 5, *b[1])),
                    row(14, 0, (198, 5, *b[3]), (199, 5, *b[1])),
                    row(15, 0, (197, 5, *b[3]), (198, 5, *b[1])),
                    row(16, 0, (196, 5, *b[3]), (197, 5, *b[1])),
                    row(17, 0, (197, 5, *b[3]), (198, 5, *b[1]))]


def test_order_table_rules():
    # 4 orders in all: two banks of one 2-way bucket; adds alternate bank 0, bank 1 (the
    # emptier, bank 0 on a tie): 1 3 -> bank 0, 2 4 -> bank 1, 5 6 refused
    p = dict(SMALL, order_buckets=2, order_ways=2)
    d = Day()
    for ref in (1, 2, 3, 4, 5, 6):
        d.add(1, ref, "B", 100, 1000 + ref)
    d.add(1, 2, "S", 100, 2000)                                  # duplicate_ref
    d("X", stock_locate=1, order_reference_number=99, canceled_shares=1)     # unknown_ref
    d("E", stock_locate=1, order_reference_number=1, executed_shares=150,
      match_number=1)                                            # overfill
    d.add(1, 7, "B", 100, 1007)                                  # takes the freed way
    d("D", stock_locate=1, order_reference_number=5)             # dropped earlier: unknown
    d("U", stock_locate=1, original_order_reference_number=3, new_order_reference_number=4,
      shares=10, price=1003)                                     # new ref duplicate
    d("U", stock_locate=1, original_order_reference_number=77, new_order_reference_number=78,
      shares=10, price=1003)                                     # unknown old
    rows, c, _ = check(d.msgs, names=["AAPL"], params=p)
    assert c["duplicate_ref"] == 2 and c["order_table_full"] == 2 and c["overfill"] == 1
    assert c["unknown_ref"] == 3


def test_zero_shares_and_replace_value_rule():
    d = Day()
    d.add(1, 1, "B", 100, 1000)
    d.add(1, 2, "B", 0, 1001)                                    # a 0-share level
    d.add(1, 3, "S", 0, 1100)
    d("X", stock_locate=1, order_reference_number=1, canceled_shares=0)     # no change
    d("E", stock_locate=1, order_reference_number=2, executed_shares=0,
      match_number=9)                                            # 0 == remaining: removed
    d("U", stock_locate=1, original_order_reference_number=1, new_order_reference_number=5,
      shares=100, price=1000)                                    # same price and size: silent
    d("U", stock_locate=1, original_order_reference_number=5, new_order_reference_number=5,
      shares=60, price=1000)                                     # same ref reused
    d("U", stock_locate=1, original_order_reference_number=5, new_order_reference_number=6,
      shares=0, price=990)
    d("D", stock_locate=1, order_reference_number=3)
    rows, c, _ = check(d.msgs, names=["AAPL"], params=SMALL)
    # by hand: the 0-share X (4) and the value-neutral U (6) emit nothing; a 0-share level
    # is a level (2, 3, 8) and goes when its order does (5, 9)
    assert rows == [row(1, 0, (0, 0, 1000, 100)),
                    row(2, 0, (0, 0, 1001, 0), (0, 0, 1000, 100)),
                    row(3, 0, (1100, 0, 1001, 0), (0, 0, 1000, 100)),
                    row(5, 0, (1100, 0, 1000, 100)), row(7, 0, (1100, 0, 1000, 60)),
                    row(8, 0, (1100, 0, 990, 0)), row(9, 0, (0, 0, 990, 0))]
    assert c["book_messages"] == 9 and c["overfill"] == c["unknown_ref"] == 0


def test_count_removes_level():
    """A level goes when its order count reaches 0, even with shares left (after an overfill
    elsewhere made the level's shares and its orders disagree)."""
    d = Day()
    d.add(1, 1, "B", 100, 1000)
    d.add(1, 2, "B", 100, 1000)
    d("X", stock_locate=1, order_reference_number=1, canceled_shares=40)
    d("D", stock_locate=1, order_reference_number=1)
    d("D", stock_locate=1, order_reference_number=2)
    check(d.msgs, names=["AAPL"], params=SMALL)


def test_halt_right_after_a_new_best():
    """An H straight after an add that made a new best bid, on the same slot: its BookEvent
    carries the new best (the pass-through op waits for the add's write, as a book op
    would)."""
    d = Day()
    d("R", stock_locate=1, stock="AAPL")
    d.add(1, 1, "B", 100, 1000)
    d.add(1, 2, "B", 100, 1001)
    d("H", stock_locate=1, stock="AAPL", trading_state="H")
    _, _, stats = check(d.msgs, names=["AAPL"], params=SMALL)
    # by hand: (sequence, timestamp, slot, evaluate, state, best ask, best bid, add)
    assert stats["events"][-1] == (4, T0 + 4000, 0, 0, ord("H"), (0, 0), (1001, 1), (0, 0, 0))


def test_symbols_auto_mode_and_state():
    d = Day()
    d("P", stock_locate=5, order_reference_number=0, buy_sell_indicator="B", shares=7,
      stock="ZZZ", price=42, match_number=1)                    # auto: P never allocates
    for i, name in enumerate(["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]):
        d("R", stock_locate=10 + i, stock=name)                 # EEE, FFF: symbol_overflow
    d.add(20, 1, "B", 5, 100, stock="BBB")                      # a second locate for BBB
    d.add(10, 2, "S", 5, 100, stock="AAA")
    d.add(14, 3, "S", 5, 100, stock="EEE")                      # untracked now
    d("P", stock_locate=5, order_reference_number=0, buy_sell_indicator="B", shares=7,
      stock="CCC", price=42, match_number=1)                    # maps locate 5 to CCC
    d("Q", stock_locate=5, cross_shares=(1 << 33) + 9, stock="CCC", cross_price=43,
      match_number=1, cross_type="O")
    d("H", stock_locate=11, stock="BBB", trading_state="H")
    d("H", stock_locate=20, stock="BBB", trading_state="P")
    rows, c, _ = check(d.msgs, names=None, params=SMALL)
    assert c["symbol_overflow"] == 2


def test_same_slot_back_to_back_and_hazards():
    """Long runs on one slot and one bucket, with replaces into the same bucket."""
    d = Day()
    for i in range(30):
        d.add(1, 16 * i + 1, "BS"[i % 2], 10 + i, 1000 + (i % 5) * (1 if i % 2 else -1))
    for i in range(0, 30, 3):
        d("U", stock_locate=1, original_order_reference_number=16 * i + 1,
          new_order_reference_number=16 * i + 1 + 8 * 16, shares=5, price=1000)
        d("X", stock_locate=1, order_reference_number=16 * i + 1 + 8 * 16, canceled_shares=1)
    for i in range(1, 30, 3):
        d("D", stock_locate=1, order_reference_number=16 * i + 1)
    _, _, stats = check(d.msgs, names=["AAPL"], params=dict(SMALL, order_buckets=16,
                                                            order_ways=4, levels=8, depth=4))


# ------------------------------------------------------------------------- random

@pytest.mark.parametrize("seed", range(3))
def test_random_host_names_small_tables(seed):
    raw, names = fault_day(seed, 700, 8)
    check(raw, names=names[:4], params=dict(SMALL, order_buckets=16, order_ways=4),
          state_slots=range(4))


@pytest.mark.parametrize("seed", range(2))
def test_random_auto_backpressure(seed):
    raw, names = fault_day(100 + seed, 600, 7, duplicate_ref=0.1)
    check(raw, names=None, params=dict(SMALL, order_buckets=16, order_ways=2),
          ready_prob=0.4, gap_prob=0.2, seed=seed, state_slots=range(4))


def test_random_default_parameters():
    raw, names = fault_day(7, 400, 20)
    check(raw, names=names[:12], params={}, state_slots=range(12))


def test_throughput_one_slot():
    """Back-to-back adds on one symbol: 2 cycles each; on alternating symbols: 1 cycle."""
    d = Day()
    d("R", stock_locate=1, stock="AAPL")
    d("R", stock_locate=2, stock="MSFT")
    for i in range(40):
        d.add(1, i + 1, "B", 100, 1000 + i)
    _, _, stats1 = check(d.msgs, names=["AAPL", "MSFT"], params=dict(levels=8, depth=4),
                         state_slots=())
    d = Day()
    d("R", stock_locate=1, stock="AAPL")
    d("R", stock_locate=2, stock="MSFT")
    for i in range(40):
        d.add(1 + i % 2, i + 1, "B", 100, 1000 + i, stock=("AAPL", "MSFT")[i % 2])
    _, _, stats2 = check(d.msgs, names=["AAPL", "MSFT"], params=dict(levels=8, depth=4),
                         state_slots=())
    assert stats1["input_cycles"] <= 2 * 40 + 2 + 6
    assert stats2["input_cycles"] <= 40 + 2 + 6


def test_book_event_layout_matches_trigger_engine():
    """hw/book's BookEvent is field for field the trigger engine's input layout."""
    from amaranth.lib import data

    from tickwire.hw.trigger.layouts import BookEvent as TriggerBookEvent

    from tickwire.hw.book.layouts import BookEvent

    def flat(layout, prefix=""):
        out = {}
        for name, f in data.Layout.cast(layout):
            try:
                sub = data.Layout.cast(f.shape)
            except TypeError:
                sub = None
            if isinstance(sub, data.StructLayout):
                out.update({k: (f.offset + o, w) for k, (o, w) in flat(sub, "").items()
                            for k in [f"{name}.{k}"]})
            else:
                out[name] = (f.offset, f.width)
        return out

    assert flat(BookEvent) == flat(TriggerBookEvent)


def test_events_off():
    b = BookBuilder()
    b._MustUse__silence = True      # only the signature is looked at
    assert "ev" not in b.signature.members and "now" not in b.signature.members
    with pytest.raises(TypeError, match="events must be True or False, not 1"):
        BookBuilder(events=1)


def test_event_stamp_option():
    """With ``stamp=True`` each BookEvent carries ``now`` of the cycle its message was
    accepted on ``i``."""
    d = Day()
    d("R", stock_locate=1, stock="AAPL")
    for i in range(6):
        d.add(1, i + 1, "BS"[i % 2], 10, 100 + i)
    d("H", stock_locate=1, stock="AAPL", trading_state="H")
    msgs = [to_decoded(m, i + 1) for i, m in enumerate(d.msgs)]
    dut = BookBuilder(symbols=4, levels=4, depth=2, order_buckets=16, events=True, stamp=True)
    accepted, events = {}, []
    done = [False]

    async def driver(ctx):
        ctx.set(dut.sym_we, 1)
        ctx.set(dut.sym_name, pack_symbol("AAPL"))
        ctx.set(dut.sym_valid, 1)
        await ctx.tick()
        ctx.set(dut.sym_we, 0)
        ctx.set(dut.ev.ready, 1)
        ctx.set(dut.o.ready, 1)
        for m in msgs:
            ctx.set(dut.i.payload, m)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            accepted[m["sequence"]] = ctx.get(dut.now) - 1   # now was sampled at that edge
            ctx.set(dut.i.valid, 0)
            await ctx.tick()
        await ctx.tick().repeat(30)
        done[0] = True

    async def clock_counter(ctx):
        n = 0
        async for _ in ctx.tick():
            n += 1
            ctx.set(dut.now, n)

    async def collect(ctx):
        async for _, _, v, r, p in ctx.tick().sample(dut.ev.valid, dut.ev.ready, dut.ev.payload):
            if v and r:
                events.append((p.sequence, p.stamp, p.stamp_valid))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.add_process(clock_counter)
    sim.add_process(collect)
    sim.run_until(2e-6)
    assert [e[0] for e in events] == [2, 3, 4, 5, 6, 7, 8]
    for seq, stamp, valid in events:
        assert valid == 1 and stamp == accepted[seq], (seq, stamp, accepted[seq])
