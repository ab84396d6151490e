"""cocotbext-axi's ``AxiRam`` on an Amaranth AXI4 master port, with latency and back-pressure.

Amaranth names the port's signals ``mem__ar__addr``, ``mem__r__data`` ...
(:class:`tickwire.hw.axi.AXI4Signature`); cocotbext-axi's channel buses expect
``<prefix>_araddr``. :func:`axi_bus` builds each channel's bus from an explicit name map
(cocotb-bus ``Bus`` takes ``{attribute: port}``), so the gateware keeps its names.

What :class:`TableRam` models, on top of the RAM itself (reads are zeros until written;
writes are applied as their beats arrive, before the B response is sent):

* latency: every R beat and every B response is held in a delay line for ``latency`` cycles
  after the RAM model produced it (it does so the cycle its AR was taken, or its last W beat),
  so the first beat of a read burst leaves at least ``latency`` cycles after its AR handshake
  and a write's B at least ``latency`` cycles after its last W beat (the RAM's channel
  registers add 2 or 3 cycles: ``latency`` 40 is seen as 42 at the least). The delay is
  pipelined: any number of reads and writes may be outstanding, answered in order (one ID);
* back-pressure: each of the five channels has its own seeded pause generator
  (``set_pause_generator``), true in a ``backpressure`` fraction of cycles: AR/AW/W ready low,
  R/B valid withheld.

A passive monitor counts the bursts, measures the latencies actually seen on the port and
records every access outside ``[base, base + size)`` or off a bus-word boundary (the RAM
itself would wrap such an address silently); :meth:`TableRam.check` raises on any.
"""

from __future__ import annotations

import random
from collections import deque

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["axi_bus", "TableRam", "has_axi_port"]


def has_axi_port(dut, prefix: str = "mem") -> bool:
    return hasattr(dut, f"{prefix}__ar__valid")


def _channel(cls, dut, prefix: str, ch: str):
    """A cocotbext-axi channel bus ``cls`` (``AxiARBus`` ...) on ``{prefix}__{ch}__*``:
    its signal ``araddr`` is the port ``mem__ar__addr``."""
    from cocotb_bus.bus import Bus

    def names(sigs):
        return {s: f"{prefix}__{ch}__{s[len(ch):]}" for s in sigs}

    bus = cls.__new__(cls)
    Bus.__init__(bus, dut, None, names(cls._signals),
                 optional_signals=names(cls._optional_signals))
    bus._name = prefix          # only names the model's logger
    return bus


def axi_bus(dut, prefix: str = "mem"):
    """cocotbext-axi ``AxiBus`` over an Amaranth AXI4 master port named ``prefix``."""
    from cocotbext.axi import AxiBus
    from cocotbext.axi.axi_channels import AxiARBus, AxiAWBus, AxiBBus, AxiRBus, AxiWBus
    return AxiBus.from_channels(*(_channel(cls, dut, prefix, ch) for cls, ch in (
        (AxiAWBus, "aw"), (AxiWBus, "w"), (AxiBBus, "b"), (AxiARBus, "ar"), (AxiRBus, "r"))))


class _Delayed:
    """Stands in for a channel source of the RAM model: what the model sends goes to the real
    source ``latency`` cycles later, in order; everything else is the source's."""

    def __init__(self, source, clock, clock_of, latency: int):
        self._source = source
        self._clock = clock
        self._now = clock_of
        self._latency = latency
        self._q: deque = deque()
        cocotb.start_soon(self._run())

    def __getattr__(self, name):
        return getattr(self._source, name)

    async def send(self, obj):
        self._q.append((self._now() + self._latency, obj))

    async def _run(self):
        edge = RisingEdge(self._clock)
        while True:
            await edge
            while self._q and self._q[0][0] <= self._now():
                await self._source.send(self._q.popleft()[1])


def _pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


class TableRam:
    """``AxiRam`` of ``base + size`` bytes on ``dut``'s port ``prefix`` (see the module's
    docstring for what is modelled); ``stats`` after the run."""

    def __init__(self, dut, clock, reset, *, prefix: str = "mem", base: int, size: int,
                 latency: int = 0, backpressure: float = 0.0, seed: int = 0,
                 bus=None, reset_active_level: bool = True):
        from cocotbext.axi import AxiRam
        self.dut = dut
        self.clock = clock
        self.prefix = prefix
        self.base = base
        self.size = size
        self.latency = latency
        self.cycle = 0
        # ``bus``: a port with AXI's own names (a kernel's m_axi_*), else Amaranth's
        self.ram = AxiRam(bus or axi_bus(dut, prefix), clock, reset, size=base + size,
                          reset_active_level=reset_active_level)
        for log in (self.ram.write_if.log, self.ram.read_if.log):
            log.setLevel("WARNING")     # its INFO banner and configuration, per interface
        self.word_bytes = self.ram.read_if.byte_lanes
        rd, wr = self.ram.read_if, self.ram.write_if
        if latency:
            rd.r_channel = _Delayed(rd.r_channel, clock, lambda: self.cycle, latency)
            wr.b_channel = _Delayed(wr.b_channel, clock, lambda: self.cycle, latency)
        if backpressure:
            for k, ch in enumerate((rd.ar_channel, rd.r_channel, wr.aw_channel,
                                    wr.w_channel, wr.b_channel)):
                ch.set_pause_generator(_pauses(random.Random(seed * 8 + k), backpressure))
        self.errors: list[str] = []
        self.stats = dict(reads=0, writes=0, max_reads_outstanding=0,
                          read_latency=[None, None], write_latency=[None, None])
        cocotb.start_soon(self._monitor())

    def _access(self, what: str, addr: int, beats: int):
        if (addr % self.word_bytes or addr < self.base
                or addr + beats * self.word_bytes > self.base + self.size):
            self.errors.append(f"{what} of {beats} beats at {addr:#x}: outside "
                               f"[{self.base:#x}, {self.base + self.size:#x}) or not aligned")

    @staticmethod
    def _span(rng, v):
        rng[0] = v if rng[0] is None else min(rng[0], v)
        rng[1] = v if rng[1] is None else max(rng[1], v)

    async def _monitor(self):
        d, p = self.dut, self.prefix
        ar_v, ar_r, ar_a, ar_l = (getattr(d, f"{p}__ar__{n}") for n in
                                  ("valid", "ready", "addr", "len"))
        aw_v, aw_r, aw_a, aw_l = (getattr(d, f"{p}__aw__{n}") for n in
                                  ("valid", "ready", "addr", "len"))
        r_v, r_r, r_l = (getattr(d, f"{p}__r__{n}") for n in ("valid", "ready", "last"))
        w_v, w_r, w_l = (getattr(d, f"{p}__w__{n}") for n in ("valid", "ready", "last"))
        b_v, b_r = getattr(d, f"{p}__b__valid"), getattr(d, f"{p}__b__ready")
        ar_at: deque = deque()      # handshake cycles of reads not yet answered
        w_at: deque = deque()       # cycles of last W beats not yet acknowledged
        first = True                # the next R beat starts a burst
        edge, ro = RisingEdge(self.clock), ReadOnly()
        st = self.stats
        while True:
            await ro
            t = self.cycle
            if int(ar_v.value) and int(ar_r.value):
                self._access("read", int(ar_a.value), int(ar_l.value) + 1)
                ar_at.append(t)
                st["reads"] += 1
                st["max_reads_outstanding"] = max(st["max_reads_outstanding"], len(ar_at))
            if int(aw_v.value) and int(aw_r.value):
                self._access("write", int(aw_a.value), int(aw_l.value) + 1)
                st["writes"] += 1
            if int(w_v.value) and int(w_r.value) and int(w_l.value):
                w_at.append(t)
            if int(r_v.value) and int(r_r.value):
                if first:
                    self._span(st["read_latency"], t - ar_at[0])
                first = bool(int(r_l.value))
                if first:
                    ar_at.popleft()
            if int(b_v.value) and int(b_r.value):
                self._span(st["write_latency"], t - w_at.popleft())
            await edge
            self.cycle += 1

    def check(self):
        """Raise on any access outside the table or a latency below the one modelled."""
        if self.errors:
            raise AssertionError(f"{len(self.errors)} bad AXI accesses, first: {self.errors[0]}")
        for k in ("read_latency", "write_latency"):
            lo = self.stats[k][0]
            if lo is not None and lo < self.latency:
                raise AssertionError(f"{k} {lo} cycles < the modelled {self.latency}")
