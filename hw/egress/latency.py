"""Cycle counter and the order-latency histogram."""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import GATEWARE

from ..trigger.common import check_int, checked_init

__all__ = ["CycleCounter", "LatencyHistogram"]


class CycleCounter(wiring.Component):
    """Free-running cycle counter (wraps); every ``stamp`` of the order path is one of its
    values, and latencies are differences modulo 2**width."""

    @checked_init
    def __init__(self, width: int = 32):
        check_int("width", width, 8, 64)
        self.width = width
        super().__init__({"now": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.now.eq(self.now + 1)
        return m


class LatencyHistogram(wiring.Component):
    """Histogram of order latencies in cycles: a sample of latency ``l`` counts in bin
    ``min(l >> bin_shift, bins - 1)`` (defaults: 33 bins of one cycle, the last one ``>= 32``),
    plus ``count``, ``sum``, ``min``, ``max``, ``last`` of the samples.

    ``sample`` (strobe, ignored while ``enable`` is low) with ``latency``; the host reads bin
    ``rd_index`` on ``rd_count`` (combinational). ``clear`` zeroes everything (``bins``
    cycles, ``busy``; samples then are lost). A sample may come every cycle; it is recorded
    three cycles later (input register, bin register, read-modify-write), off the order path.
    """

    @checked_init
    def __init__(self, *, bins: int = GATEWARE["hist_bins"], count_width: int = 32):
        check_int("bins", bins, 2, 4096)
        check_int("count_width", count_width, 1, 64)
        self.bins = bins
        self.count_width = count_width
        super().__init__({
            "sample": In(1), "latency": In(32), "enable": In(1), "bin_shift": In(5),
            "rd_index": In(range(bins)), "rd_count": Out(count_width),
            "count": Out(64), "sum": Out(64), "min": Out(32, init=0xFFFF_FFFF),
            "max": Out(32), "last": Out(32),
            "clear": In(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        B = self.bins
        m.submodules.mem = mem = memory.Memory(shape=self.count_width, depth=B, init=[])
        inc_r = mem.read_port(domain="comb")
        host_r = mem.read_port(domain="comb")
        w = mem.write_port()
        m.d.comb += [host_r.addr.eq(self.rd_index), self.rd_count.eq(host_r.data)]

        sweeping = Signal()
        sweep = Signal(range(B))
        m.d.comb += self.busy.eq(sweeping)
        with m.If(sweeping):
            m.d.sync += sweep.eq(sweep + 1)
            with m.If(sweep == B - 1):
                m.d.sync += sweeping.eq(0)
        with m.Elif(self.clear):
            m.d.sync += [sweeping.eq(1), sweep.eq(0), self.count.eq(0), self.sum.eq(0),
                         self.min.eq(self.min.init), self.max.eq(0), self.last.eq(0)]

        # stage 1: the sample; stage 2: its bin; stage 3: read-modify-write and statistics
        s1 = Signal()
        lat1 = Signal(32)
        s2 = Signal()
        lat2 = Signal(32)
        addr = Signal(range(B))
        scaled = lat1 >> self.bin_shift
        # scaled >= B - 1 as lat1 >= (B - 1) << bin_shift: the threshold is one LUT level
        # from bin_shift, and the comparison does not wait for the shifter
        saturate = lat1 >= (Const(B - 1) << self.bin_shift)
        m.d.sync += [s1.eq(self.sample & self.enable & ~self.clear), lat1.eq(self.latency),
                     s2.eq(s1 & ~self.clear), lat2.eq(lat1),
                     addr.eq(Mux(saturate, B - 1, scaled[:len(addr)]))]
        m.d.comb += inc_r.addr.eq(addr)
        with m.If(sweeping):
            m.d.comb += [w.addr.eq(sweep), w.data.eq(0), w.en.eq(1)]
        with m.Elif(s2 & ~self.clear):
            m.d.comb += [w.addr.eq(addr), w.data.eq(inc_r.data + 1), w.en.eq(1)]
            m.d.sync += [self.last.eq(lat2), self.count.eq(self.count + 1),
                         self.sum.eq(self.sum + lat2)]
            with m.If(lat2 > self.max):
                m.d.sync += self.max.eq(lat2)
            with m.If(lat2 < self.min):
                m.d.sync += self.min.eq(lat2)
        return m
