"""The fast harness's AXI4 memory (``fastsim.AxiPort``): a small AXI4 master (commands in, read
data and write responses out) run through the generated harness against a Python reference
memory: data written reads back (multi-beat bursts, strobes), many reads outstanding, the same
results under every latency and back-pressure, consistent statistics, exact latency, and a
clear error for an out-of-range burst or a misplaced WLAST."""

import random

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tickwire.hw.axi import BURST_INCR, AXI4Signature
from tickwire.sim import fastsim

pytestmark = pytest.mark.rtl

AW, DW, IW = 28, 128, 2
NB = DW // 8
MEM = 128 << 20            # half the address space: the top half is out of range
PAGE = 4096

Cmd = data.StructLayout({"write": 1, "addr": AW, "len": 8, "id": IW})
WBeat = data.StructLayout({"data": DW, "strb": NB, "last": 1})
RBeat = data.StructLayout({"data": DW, "id": IW, "resp": 2, "last": 1})
BResp = data.StructLayout({"id": IW, "resp": 2})


class Exerciser(wiring.Component):
    """AXI4 master for the test: each ``c`` command issues one AR or AW burst; ``wd`` beats go
    to W as they come (possibly ahead of their AW); R beats and B responses leave on ``rd``
    and ``b``. A read waits until no write awaits its B and a write until no read has beats
    left, so every read sees exactly the writes commanded before it."""

    def __init__(self):
        self.bus = AXI4Signature(addr_width=AW, data_width=DW, id_width=IW)
        super().__init__({"c": In(stream.Signature(Cmd)), "wd": In(stream.Signature(WBeat)),
                          "rd": Out(stream.Signature(RBeat)), "b": Out(stream.Signature(BResp)),
                          "mem": Out(self.bus)})

    def elaborate(self, platform):
        m = Module()
        mem, c = self.mem, self.c
        reads, writes = Signal(16), Signal(16)  # bursts outstanding
        m.d.sync += [
            reads.eq(reads + (mem.ar.valid & mem.ar.ready)
                     - (mem.r.valid & mem.r.ready & mem.r.last)),
            writes.eq(writes + (mem.aw.valid & mem.aw.ready) - (mem.b.valid & mem.b.ready))]
        for ch in (mem.ar, mem.aw):
            m.d.comb += [ch.addr.eq(c.payload.addr), ch.len.eq(c.payload.len),
                         ch.id.eq(c.payload.id), ch.size.eq(self.bus.size),
                         ch.burst.eq(BURST_INCR)]
        go_r = ~c.payload.write & (writes == 0)
        go_w = c.payload.write & (reads == 0)
        m.d.comb += [mem.ar.valid.eq(c.valid & go_r), mem.aw.valid.eq(c.valid & go_w),
                     c.ready.eq((go_r & mem.ar.ready) | (go_w & mem.aw.ready))]
        wd = self.wd
        m.d.comb += [mem.w.valid.eq(wd.valid), mem.w.data.eq(wd.payload.data),
                     mem.w.strb.eq(wd.payload.strb), mem.w.last.eq(wd.payload.last),
                     wd.ready.eq(mem.w.ready)]
        m.d.comb += [self.rd.valid.eq(mem.r.valid), self.rd.payload.data.eq(mem.r.data),
                     self.rd.payload.id.eq(mem.r.id), self.rd.payload.resp.eq(mem.r.resp),
                     self.rd.payload.last.eq(mem.r.last), mem.r.ready.eq(self.rd.ready)]
        m.d.comb += [self.b.valid.eq(mem.b.valid), self.b.payload.id.eq(mem.b.id),
                     self.b.payload.resp.eq(mem.b.resp), mem.b.ready.eq(self.b.ready)]
        return m


def _verilog():
    from tickwire.sim.runner import to_verilog
    return to_verilog(Exerciser(), "axi_exerciser")


def harness(with_memory: bool = True) -> fastsim.Harness:
    size = lambda layout: data.Layout.cast(layout).size  # noqa: E731
    return fastsim.Harness(
        "axi_exerciser", _verilog,
        inputs=[fastsim.StreamPort("c", size(Cmd)), fastsim.StreamPort("wd", size(WBeat))],
        outputs=[fastsim.StreamPort("rd", size(RBeat)), fastsim.StreamPort("b", size(BResp))],
        axi=[fastsim.AxiPort("mem", AW, DW, IW, MEM)] if with_memory else [],
        key=fastsim.source_key("axi_exerciser", with_memory,
                               sources=("hw/axi.py", "tests/test_fastsim_axi.py")))


@pytest.fixture(scope="module")
def h():
    hh = harness()
    fastsim.build(hh)
    return hh


# ---- stimulus and reference -------------------------------------------------------------------

def write(addr, ident, beats):
    """A write command: ``beats`` of (data, strobe)."""
    return ("w", addr, ident, beats)


def read(addr, ident, n):
    return ("r", addr, ident, n)


def stimulus(ops, bad_last: bool = False) -> list[bytes]:
    cmds, beats = [], []
    for kind, addr, ident, arg in ops:
        n = len(arg) if kind == "w" else arg
        cmds.append(fastsim.pack_bits([(kind == "w", 1), (addr, AW), (n - 1, 8), (ident, IW)]))
        if kind == "w":
            for k, (d, s) in enumerate(arg):
                last = (k == 0) if bad_last else (k == n - 1)
                beats.append(fastsim.pack_bits([(d, DW), (s, NB), (last, 1)]))
    return [fastsim.pack_records([v.to_bytes(5, "little") for v in cmds], 5),
            fastsim.pack_records([v.to_bytes(19, "little") for v in beats], 19)]


def reference(ops):
    """Expected R beats (data, id, resp, last) and B responses (id, resp), in order."""
    mem: dict[int, int] = {}   # byte address -> value (absent: 0)
    rd, b = [], []
    for kind, addr, ident, arg in ops:
        if kind == "w":
            for k, (d, s) in enumerate(arg):
                for j in range(NB):
                    if s >> j & 1:
                        mem[addr + k * NB + j] = d >> (8 * j) & 0xFF
            b.append((ident, 0))
        else:
            for k in range(arg):
                word = sum(mem.get(addr + k * NB + j, 0) << (8 * j) for j in range(NB))
                rd.append((word, ident, 0, int(k == arg - 1)))
    return rd, b


def random_ops(seed: int, groups: int = 40):
    """Groups of writes then runs of reads (up to 48 in a row) over a few pages at both ends
    of the memory; bursts of 1..16 beats, half of the beats with random strobes."""
    rnd = random.Random(seed)
    pages = [0, 1, 2, 7, MEM // PAGE - 1]
    written, ops = [], []

    def burst():
        n = rnd.randint(1, 16)
        return rnd.choice(pages) * PAGE + rnd.randrange(PAGE // NB - n + 1) * NB, n

    for _ in range(groups):
        for _ in range(rnd.randint(1, 6)):
            addr, n = burst()
            beats = [(rnd.getrandbits(DW),
                      (1 << NB) - 1 if rnd.random() < 0.5 else rnd.getrandbits(NB))
                     for _ in range(n)]
            ops.append(write(addr, rnd.getrandbits(IW), beats))
            written.append((addr, n))
        for _ in range(rnd.choice([1, 3, 8, 48])):
            addr, n = rnd.choice(written) if rnd.random() < 0.8 else burst()
            ops.append(read(addr, rnd.getrandbits(IW), n))
    return ops


def fields(recs, layout):
    out = []
    for rec in recs["payload"]:
        v = fastsim.payload_int(rec)
        row = []
        for name, f in data.Layout.cast(layout):
            row.append(v >> f.offset & ((1 << f.width) - 1))
        out.append(tuple(row))
    return out


def run(h, ops, timing, **kw):
    (rd, b, stats), cycles = fastsim.run(h, stimulus(ops), axi_timing=timing, **kw)
    return fields(rd, RBeat), fields(b, BResp), stats["mem"], rd, b


# ---- tests ------------------------------------------------------------------------------------

OPS = random_ops(seed=11)


@pytest.mark.parametrize("latency", [1, 40, 200])
@pytest.mark.parametrize("backpressure", [0.0, 0.3])
def test_read_back_under_timing(h, latency, backpressure):
    """Every R beat and B equals the reference's, whatever the latency and back-pressure
    (the master's ready on R/B random too under back-pressure); statistics add up."""
    exp_rd, exp_b = reference(OPS)
    timing = fastsim.AxiTiming(latency=latency, backpressure=backpressure, seed=latency)
    got_rd, got_b, st, _, _ = run(h, OPS, timing, random_ready=backpressure > 0)
    assert got_rd == exp_rd
    assert got_b == exp_b
    reads = [op for op in OPS if op[0] == "r"]
    writes = [op for op in OPS if op[0] == "w"]
    assert st["reads"] == len(reads) and st["writes"] == len(writes)
    assert st["read_beats"] == sum(op[3] for op in reads) == len(exp_rd)
    assert st["write_beats"] == sum(len(op[3]) for op in writes)
    stalls = [st[k] for k in ("ar_stalls", "aw_stalls", "w_stalls")]
    if backpressure:
        assert all(s > 0 for s in stalls) and st["r_stalls"] > 0
    else:
        # (W may still stall: this master sends W far ahead of AW, and the memory buffers at
        # most one longest burst of W beats ahead of their AW)
        assert stalls[:2] == [0, 0] and st["r_stalls"] == 0
    assert 1 <= st["max_reads_outstanding"] <= len(reads)
    if latency == 200 and not backpressure:
        # a run of 48 reads is accepted one per cycle, well within the latency
        assert st["max_reads_outstanding"] >= 48


def test_strobes_and_multi_beat(h):
    """Partial strobes change only their bytes; a 16-beat burst returns its beats in order,
    one per cycle, ``last`` on the final one."""
    full = (1 << NB) - 1
    base = 3 * PAGE
    rnd = random.Random(5)
    first = [(rnd.getrandbits(DW), full) for _ in range(16)]
    ops = [write(base, 1, first),
           write(base + NB, 2, [(-1 & ((1 << DW) - 1), 0x8001), (0, 0), (0xAB << 8, 0x0002)]),
           read(base, 3, 16)]
    exp_rd, exp_b = reference(ops)
    got_rd, got_b, st, rd, _ = run(h, ops, fastsim.AxiTiming(latency=7))
    assert got_rd == exp_rd and got_b == exp_b == [(1, 0), (2, 0)]
    word1 = exp_rd[1][0]
    assert word1 & 0xFF == 0xFF and word1 >> 120 == 0xFF
    assert (word1 >> 8) & ((1 << 112) - 1) == (first[1][0] >> 8) & ((1 << 112) - 1)
    assert exp_rd[3][0] & 0xFF00 == 0xAB00
    assert [r[3] for r in got_rd] == [0] * 15 + [1]
    assert np.all(np.diff(rd["cycle"].astype(np.int64)) == 1)


@pytest.mark.parametrize("latency", [1, 40, 200])
def test_latency_is_exact(h, latency):
    """AR handshake to first R beat, and last W beat to B, take ``latency`` cycles."""
    ops = [write(PAGE, 0, [(5, (1 << NB) - 1)] * 2), read(PAGE, 1, 2)]
    taken = []
    (rd, b, st), _ = fastsim.run(h, stimulus(ops), axi_timing=fastsim.AxiTiming(latency),
                                 taken=taken)
    cmd_taken, w_taken = taken
    # the AW is taken with its command, the W beats as they come (here before the AW's B)
    assert int(b["cycle"][0]) == max(int(cmd_taken[0]), int(w_taken[-1])) + latency
    assert int(rd["cycle"][0]) == int(cmd_taken[1]) + latency
    assert fields(rd, RBeat)[1][0] == 5


def test_out_of_range_is_an_error(h):
    with pytest.raises(RuntimeError, match=r"AXI memory port 'mem': read burst at 0x8000000 "
                                           r"of 1 beats .* out of range"):
        fastsim.run(h, stimulus([read(MEM, 0, 1)]))
    # a burst that starts inside and ends past the end
    with pytest.raises(RuntimeError, match=r"write burst at 0x7fffff0 of 2 beats .* out of "
                                           r"range: the memory has 134217728 bytes"):
        fastsim.run(h, stimulus([write(MEM - NB, 0, [(1, 1), (2, 1)])]))


def test_misplaced_wlast_is_an_error(h):
    with pytest.raises(RuntimeError, match=r"W beat 1 of the 2-beat write burst at 0x40 has "
                                           r"WLAST=1"):
        fastsim.run(h, stimulus([write(0x40, 0, [(1, 1), (2, 1)])], bad_last=True))


def test_server_keeps_memory(h):
    """A Server's memory outlives a run; timing and statistics are per run."""
    ops_w = [write(2 * PAGE + 64, 3, [(0xC0FFEE, (1 << NB) - 1)])]
    ops_r = [read(2 * PAGE + 64, 2, 1)]
    with fastsim.Server(h) as srv:
        (rd, b, st1), _ = srv.run(stimulus(ops_w), axi_timing=fastsim.AxiTiming(latency=3))
        (rd, b2, st2), _ = srv.run(stimulus(ops_r), axi_timing={"mem": fastsim.AxiTiming(90)})
    assert fields(b, BResp) == [(3, 0)] and len(b2) == 0
    assert fields(rd, RBeat) == [(0xC0FFEE, 2, 0, 1)]
    st1, st2 = st1["mem"], st2["mem"]
    assert (st1["writes"], st1["reads"], st2["writes"], st2["reads"]) == (1, 0, 0, 1)


def test_timing_checked():
    with pytest.raises(ValueError, match="latency"):
        fastsim.AxiTiming(latency=0)
    with pytest.raises(ValueError, match="backpressure"):
        fastsim.AxiTiming(backpressure=1.5)
    with pytest.raises(ValueError, match="unknown AXI ports"):
        fastsim._axi_timing(harness(), {"ddr": fastsim.AxiTiming()}, "mem")
    with pytest.raises(ValueError, match="size_bytes"):
        fastsim.AxiPort("mem", 12, 64, 1, 1 << 13)
