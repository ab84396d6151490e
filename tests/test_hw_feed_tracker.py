"""Amaranth-simulator unit tests of the feed gateware's A/B tracker and constructor checks
(fast; the full benches are the cocotb ones in sim/feed_*)."""

import pytest
from amaranth.sim import Simulator

from tickwire.host import itch
from tickwire.hw.feed import (FIELD_MAP, FeedFrontEnd, FrameParser, ItchDecoder,
                              MoldLineBuffer, MoldTracker)
from tickwire.hw.feed.layouts import AxiStreamSignature, Verdict

SESS = int.from_bytes(b"TWSESS0001", "little")


def run_tracker(sched, window=0, cycles=400, done_delay=3):
    """Drive a MoldTracker with packets ``(arrival cycle, line, seq, count)`` (each with
    ``1 + count`` data words) and a decoder model that reports every streamed packet walked
    ``done_delay`` cycles after its last beat. Returns the events as
    ``(line, verdict, seq, count, gap, skip)``."""
    dut = MoldTracker()
    events = []

    async def bench(ctx):
        ctx.set(dut.ab_window, window)
        lines = [dut.line_a, dut.line_b]
        qd, qw, pending = [[], []], [[], []], []
        for cyc in range(cycles):
            for (t, ln, seq, cnt) in sched:
                if t == cyc:
                    qd[ln].append({"session": SESS, "sequence": seq, "count": cnt})
                    n = 1 + (cnt if cnt != 0xFFFF else 0)
                    qw[ln] += [{"data": 0, "nbytes": 8, "last": w == n - 1}
                               for w in range(n)]
            for ln in range(2):
                ctx.set(lines[ln].desc.valid, bool(qd[ln]))
                if qd[ln]:
                    ctx.set(lines[ln].desc.payload, qd[ln][0])
                ctx.set(lines[ln].data.valid, bool(qw[ln]))
                if qw[ln]:
                    ctx.set(lines[ln].data.payload, qw[ln][0])
            ctx.set(dut.o.ready, 1)
            if pending and pending[0][0] == cyc:
                _, cnt = pending.pop(0)
                ctx.set(dut.done.valid, 1)
                ctx.set(dut.done.payload, {"framed": cnt, "overrun": 0})
            else:
                ctx.set(dut.done.valid, 0)
            await ctx.delay(1e-9)
            pops = [(k, ln) for ln in range(2) for k, st in (("d", lines[ln].desc),
                                                             ("w", lines[ln].data))
                    if ctx.get(st.valid) and ctx.get(st.ready)]
            if ctx.get(dut.o.valid) and ctx.get(dut.o.payload).last:
                pending.append((cyc + done_delay, ctx.get(dut.o.payload).count))
            if ctx.get(dut.events.valid):
                e = ctx.get(dut.events.payload)
                events.append(("ab"[e.line], Verdict.NAMES[e.verdict], e.sequence, e.count,
                               e.gap, e.skip))
            await ctx.tick()
            for k, ln in pops:
                (qd if k == "d" else qw)[ln].pop(0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return events


def test_lower_sequence_of_the_other_line_goes_first():
    # A lost 140..141; B's copy of 140 arrives while A's 142 waits in the A/B window: it
    # goes first (no gap), and A's 142 then follows
    ev = run_tracker([(0, 0, 136, 2), (5, 1, 136, 2), (20, 0, 138, 2), (25, 1, 138, 2),
                      (40, 0, 142, 1), (45, 1, 140, 2), (60, 1, 142, 1)], window=100)
    acc = [(l, s) for l, v, s, n, g, k in ev if v == "accepted"]
    assert acc == [("a", 136), ("a", 138), ("b", 140), ("a", 142)]
    assert not any(g for *_, g, k in ev)
    assert sorted((l, s) for l, v, s, n, g, k in ev if v == "duplicate") == \
        [("b", 136), ("b", 138), ("b", 142)]


@pytest.mark.parametrize("window,gaps", [(0, 1), (200, 0)])
def test_ab_window(window, gaps):
    # A lost 140; B is 60 cycles behind: only the window saves the message
    ev = run_tracker([(0, 0, 138, 2), (60, 1, 138, 2), (20, 0, 142, 1), (80, 1, 140, 2),
                      (100, 1, 142, 1)], window=window, cycles=500)
    assert sum(g for *_, g, k in ev) == gaps
    delivered = [s for l, v, s, n, g, k in ev if v == "accepted"]
    assert (140 in delivered) == (gaps == 0)


def test_heartbeat_and_overlap():
    ev = run_tracker([(0, 0, 10, 3), (10, 1, 11, 4), (30, 0, 15, 0), (40, 1, 15, 0xFFFF)])
    assert ev[0][:3] == ("a", "accepted", 10)
    assert ev[1] == ("b", "accepted", 11, 4, 0, 2)          # 11, 12 skipped
    assert [v for _, v, *_ in ev[2:]] == ["accepted", "accepted"]


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_constructor_checks():
    with pytest.raises(ValueError, match="width=64"):
        FrameParser(width=32)
    with pytest.raises(ValueError, match="groups"):
        FrameParser(groups=0)
    with pytest.raises(ValueError, match="depth"):
        MoldLineBuffer(depth=4)
    with pytest.raises(ValueError, match="fifo_depth"):
        ItchDecoder(fifo_depth=100)
    with pytest.raises(ValueError, match="counter_width"):
        MoldTracker(counter_width=4)
    with pytest.raises(TypeError, match="multiple of 8"):
        AxiStreamSignature(12)
    fe = FeedFrontEnd()
    fe._MustUse__silence = True        # built for its signature only
    assert "o" in fe.signature.members


def test_field_map_matches_itch_table():
    for fname, per_type in FIELD_MAP.items():
        for t, (off, size) in per_type.items():
            spec = itch.MESSAGES[t]
            assert off + size <= spec.length
            assert any(f.offset <= off and off + size <= f.offset + f.size
                       for f in spec.fields), (fname, t)
