"""The off-chip order table (:mod:`tickwire.hw.book.orders_offchip`) against the rules of
docs/architecture.md, behind the Amaranth-simulator AXI memory (``sim/amaranth_axi.py``) at
several latencies and back-pressures: every level op in order, the counters, the memory left
behind equal to the reference table, and ops on buckets still in flight waiting rather than
reading stale lines.
"""

import random

import pytest
from amaranth.sim import Simulator
from test_hw_book import SMALL, check, fault_day
from test_hw_book_units import (ADD, NOP, full_order_ops, oadd, odel, order_ref, ored, ou,
                                random_order_ops)

from tickwire.hw.book import BookBuilder
from tickwire.hw.book.orders_offchip import OffchipOrderTable, line_geometry
from tickwire.sim.amaranth_axi import AxiMemory


def run_offchip(ops, *, buckets=8, ways=2, latency=20, backpressure=0.0, accept_prob=1.0,
                seed=0, inflight=8, data_width=128, base=0x1000):
    dut = OffchipOrderTable(symbols=4, order_buckets=buckets, order_ways=ways,
                            data_width=data_width, inflight=inflight, addr_width=32)
    memory = AxiMemory(dut.mem, size=base + dut.memory_bytes, latency=latency,
                       backpressure=backpressure, seed=seed + 1)
    full = full_order_ops(ops, buckets=buckets, ways=ways)
    got = []
    state = dict(done=False, cycles=0, waits=0)

    async def driver(ctx):
        ctx.set(dut.base, base)
        for op in full:
            ctx.set(dut.op, op)
            ctx.set(dut.op_valid, 1)
            await ctx.tick().until(dut.accept)
            ctx.set(dut.op_valid, 0)
        for _ in range(50 * latency + 200):
            if len(got) == len(full):
                break
            await ctx.tick()
        for _ in range(3 * latency + 20):      # the last writes reach the memory
            await ctx.tick()
        state["done"] = True

    async def holder(ctx):
        rng = random.Random(seed)
        while not state["done"]:
            ctx.set(dut.down_accept, rng.random() < accept_prob)
            await ctx.tick()

    async def collector(ctx):
        t = 0
        async for _, _, v, c, o, a, ov in ctx.tick().sample(dut.out_valid, dut.down_accept,
                                                           dut.out, dut.accept, dut.op_valid):
            t += 1
            if ov and not a:
                state["waits"] += 1
            if v and c:
                got.append((o.kind, o.slot, o.side, o.price, o.amount, o.removed, o.last))
                state["cycles"] = t

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.add_testbench(holder, background=True)
    sim.add_testbench(memory.serve, background=True)
    sim.add_process(collector)
    sim.run()

    want, counters = order_ref(full, buckets=buckets, ways=ways)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        if full[i]["kind"] == NOP or w[0] == NOP:
            g, w = g[:1] + g[6:], w[:1] + w[6:]     # a refused op's fields are don't-care
        assert g == w, f"op {i} {full[i]}:\n rtl {g}\n ref {w}"
    return dut, memory, counters, state


def table_in_memory(dut, memory, base):
    """The references stored per bucket (bank 0's buckets, then bank 1's), read back from the
    memory model's words through the record layout."""
    from tickwire.hw.book.layouts import order_record_layout
    rec_w = order_record_layout(dut.slot_bits).size
    wb = memory.word_bytes
    out = []
    for line in range(dut.order_buckets):
        addr = base + line * dut.line_bytes
        bits = 0
        for k in range(dut.beats):
            bits |= memory.read_word(addr + k * wb) << (8 * wb * k)
        refs = []
        for w in range(dut.order_ways):
            r = bits >> (w * rec_w)
            if r & 1:
                refs.append((r >> 1) & ((1 << 64) - 1))
        out.append(sorted(refs))
    return out


def test_line_geometry():
    # 4 ways x 136 bits (64 slots): 544 bits = 2 words of 512, a 128-byte line
    assert line_geometry(4, 6, 512) == (2, 128)
    # the host's fact (spec) is the gateware's line at the default ways and bus, any symbols
    from tickwire.spec.capacity import GATEWARE, ORDER_LINE_BYTES
    for slot_bits in (6, 7, 8):       # 64, 128, 256 symbols: kv260, zcu104, u55c
        assert line_geometry(GATEWARE["order_ways"], slot_bits, 512)[1] == ORDER_LINE_BYTES
    assert line_geometry(4, 6, 256) == (3, 128)
    assert line_geometry(2, 2, 128) == (3, 64)


def test_offchip_directed():
    ops = [oadd(8, side=1, price=7), oadd(9, slot=2), oadd(9), oadd(14), oadd(16), oadd(17),
           ored(9, 3), ored(9, 4), ored(9, 9), oadd(17, price=5), odel(14), odel(14),
           *ou(16, 8), *ou(16, 2), *ou(17, 17, price=99, amount=0), *ou(17, 22, price=98),
           dict(kind=NOP, slot=3, price=42, amount=7), ored(22, 0), ored(22, 5),
           oadd(2, price=1), ored(2, 10)]
    dut, memory, counters, st = run_offchip(ops, buckets=4, ways=2)
    assert (counters["duplicate_ref"], counters["order_table_full"], counters["unknown_ref"],
            counters["overfill"]) == (2, 1, 2, 1)
    # back to back on 4 buckets: most ops wait for the op before them (same bucket)
    assert st["waits"] > len(ops)
    # two bucket reads per live op; a write per op that stored or changed an order
    assert memory.stats["reads"] == 2 * sum(o.get("kind", NOP) != NOP for o in ops)
    # (the 18 ops of tests/test_hw_book_units.py's by-hand list that are not refused)
    assert memory.stats["writes"] == 18


@pytest.mark.parametrize("latency,backpressure,accept_prob,seed", [
    (1, 0.0, 1.0, 0), (20, 0.0, 1.0, 1), (20, 0.3, 0.6, 2), (60, 0.1, 1.0, 3),
    (5, 0.5, 0.5, 4)])
def test_offchip_random(latency, backpressure, accept_prob, seed):
    ops = random_order_ops(random.Random(seed), 250, small_keys=(60, 40), wide_keys=8)
    dut, memory, counters, st = run_offchip(
        ops, buckets=16, ways=2 if seed % 2 else 4, latency=latency,
        backpressure=backpressure, accept_prob=accept_prob, seed=seed,
        data_width=128 if seed % 2 else 256)
    assert memory.stats["reads"] == 2 * sum(o.get("kind", NOP) != NOP for o in ops)


def test_offchip_memory_holds_the_table():
    # what is left in memory is the reference's table, bucket by bucket
    from reference_book import CapBook
    rng = random.Random(7)
    keys = rng.sample(range(1 << 40), 40)
    ops = [oadd(k, price=100 + i) for i, k in enumerate(keys)] + [odel(k) for k in keys[::3]]
    base = 0x4000
    dut, memory, counters, _ = run_offchip(ops, buckets=16, ways=4, latency=10, base=base)
    ref = CapBook(symbols=4, order_buckets=16, order_ways=4)
    for op in ops:
        if op["kind"] == ADD:
            ref.store(op["key"], 0, 0, op["price"], op["amount"])
        else:
            ref.take(op["key"], 0, whole=True)
    want = [sorted(o[0] for o in ref.table[b] if o is not None) for b in range(16)]
    assert table_in_memory(dut, memory, base) == want


def test_offchip_hides_latency():
    """Distinct buckets: with 16 ops in flight a 40-cycle round trip costs little beyond the
    read bandwidth (128-bit bus: 10 beats an op); with 2 in flight every op pays it."""
    ops = [oadd(k) for k in range(0, 4 * 48, 4)]
    _, _, _, fast = run_offchip(ops, buckets=256, ways=4, latency=40, inflight=16)
    _, _, _, slow = run_offchip(ops, buckets=256, ways=4, latency=40, inflight=2)
    assert fast["cycles"] < 13 * len(ops) and slow["cycles"] > 3 * fast["cycles"]


def test_offchip_consecutive_references_do_not_wait():
    """References 0, 1, 2, ... share bank-0 buckets four at a time (fold) and NASDAQ numbers
    orders so: each add finds the line its predecessor wrote in the ring, so the run is bound
    by the read bandwidth, not by a round trip per add (100 cycles at latency 40)."""
    ops = [oadd(k, price=100 + k % 7) for k in range(64)] + [ored(k, 3) for k in range(64)]
    _, memory, _, st = run_offchip(ops, buckets=256, ways=4, latency=40, inflight=32,
                                   data_width=256)
    assert st["cycles"] < 8 * len(ops)
    assert memory.stats["writes"] == len(ops)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_offchip_forwarding_while_the_rule_stage_waits(seed):
    """Consecutive references (a shared bank-0 bucket) answered at once by the memory while
    the level engine takes one op in four: an op's lines are ready while the op before it,
    on one of its buckets, still waits in R1. It must take that op's line from the ring once
    it has left, not an older op's."""
    keys = list(range(40))
    ops = ([oadd(k, price=100 + k % 7) for k in keys] + [ored(k, 3) for k in keys]
           + [odel(k) for k in keys[::3]] + [oadd(k, price=90) for k in keys[::3]])
    run_offchip(ops, buckets=16, ways=4, latency=1, accept_prob=0.25, seed=seed,
                data_width=256)


def test_offchip_parameter_errors():
    with pytest.raises(ValueError, match="inflight=12: must be a power of two"):
        OffchipOrderTable(inflight=12)
    with pytest.raises(ValueError, match="addr_width=20: must be in 27..64"):
        OffchipOrderTable(order_buckets=1 << 20, addr_width=20)


# ----------------------------------------------------------------------------- in the builder

OFF = dict(order_memory="offchip", mem_data_width=256, mem_addr_width=32, mem_inflight=16)


@pytest.mark.parametrize("seed,latency,backpressure", [(0, 30, 0.0), (1, 8, 0.3)])
def test_builder_offchip_equals_emulator(seed, latency, backpressure):
    """The whole builder with its table off chip: rows, events, counters and slot states
    equal to the emulator's at the same capacities, full buckets and refusals included."""
    raw, names = fault_day(200 + seed, 500, 8, duplicate_ref=0.05)
    check(raw, names=names[:4], params=dict(SMALL, order_buckets=16, order_ways=4, **OFF),
          ready_prob=0.5 if seed else 1.0, seed=seed, state_slots=range(4),
          mem_latency=latency, mem_backpressure=backpressure)


def test_builder_offchip_parameter_errors():
    with pytest.raises(ValueError, match="order_memory='dram': must be one of 'chip', 'offchip', 'auto'"):
        BookBuilder(order_memory="dram")
    with pytest.raises(ValueError, match="addr_width=16: must be in 27..64"):
        BookBuilder(order_memory="offchip", order_buckets=1 << 20, mem_addr_width=16)
