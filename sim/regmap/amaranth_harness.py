"""Harness of :mod:`.common` for the Amaranth simulator (tests/test_regmap_axil.py)."""

from __future__ import annotations

import re

from amaranth.hdl import Value
from amaranth.sim import Simulator

from tickwire.hw.regmap.axil import RegisterFile

__all__ = ["AmaranthHarness", "simulate"]


class AmaranthHarness:
    """Drives a :class:`RegisterFile` in an Amaranth testbench (``ctx``) as an AXI4-Lite
    master; every clock goes through :meth:`tick`, which records output pulses."""

    def __init__(self, dut: RegisterFile, ctx):
        self.dut, self.ctx = dut, ctx
        rm = dut.regmap
        self._events: list = []
        self._wo = [f.port for r in rm.registers.values() for f in r.fields
                    if f.access == "wo" and f.hw == "port"]
        self._tables = [t for t in rm.tables.values() if t.kind != "array" and t.writable]
        self.cycles = 0

    def sig(self, path: str):
        obj = self.dut
        for part in path.split("."):
            m = re.fullmatch(r"(\w+)\[(\d+)\]", part)
            if m:
                obj = getattr(obj, m.group(1))[int(m.group(2))]
            else:
                obj = getattr(obj, part)
        return obj

    async def tick(self, n: int = 1) -> None:
        ctx = self.ctx
        for _ in range(n):
            await ctx.tick()
            self.cycles += 1
            for p in self._wo:
                v = ctx.get(getattr(self.dut, p))
                if v:
                    self._events.append(("pulse", p, v))
            for t in self._tables:
                port = getattr(self.dut, t.port)
                if ctx.get(port.w.we):
                    row = ctx.get(port.w.row.as_value())
                    fields = {n: (row >> f.offset) & ((1 << f.width) - 1)
                              for n, f in port.w.row.shape()}
                    self._events.append(("table", t.port, ctx.get(port.w.index), fields))

    def events(self) -> list:
        ev, self._events = self._events, []
        return ev

    async def set(self, port: str, value: int) -> None:
        self.ctx.set(Value.cast(self.sig(port)), value)     # a struct port: its raw bits

    async def pulse(self, port: str) -> None:
        s = self.sig(port)
        self.ctx.set(s, 1)
        await self.tick()
        self.ctx.set(s, 0)

    async def get(self, port: str) -> int:
        s = self.sig(port)
        v = self.ctx.get(s)
        return int(v) & ((1 << len(s.as_value())) - 1) if hasattr(s, "as_value") else int(v)

    async def write(self, addr: int, data: int, strobe: int = 0xF) -> int:
        c, a = self.ctx, self.dut.axi
        c.set(a.awaddr, addr)
        c.set(a.wdata, data)
        c.set(a.wstrb, strobe)
        c.set(a.awvalid, 1)
        c.set(a.wvalid, 1)
        c.set(a.bready, 1)
        while not c.get(a.awready):
            await self.tick()
        await self.tick()
        c.set(a.awvalid, 0)
        c.set(a.wvalid, 0)
        while not c.get(a.bvalid):
            await self.tick()
        resp = c.get(a.bresp)
        await self.tick()
        c.set(a.bready, 0)
        return resp

    async def read(self, addr: int) -> tuple[int, int]:
        c, a = self.ctx, self.dut.axi
        c.set(a.araddr, addr)
        c.set(a.arvalid, 1)
        c.set(a.rready, 1)
        while not c.get(a.arready):
            await self.tick()
        await self.tick()
        c.set(a.arvalid, 0)
        while not c.get(a.rvalid):
            await self.tick()
        data, resp = c.get(a.rdata), c.get(a.rresp)
        await self.tick()
        c.set(a.rready, 0)
        return data, resp


def simulate(body, vcd: str | None = None, **capacity) -> RegisterFile:
    """Run ``await body(harness)`` against a fresh ``RegisterFile(**capacity)``."""
    dut = RegisterFile(**capacity)
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def tb(ctx):
        await body(AmaranthHarness(dut, ctx))

    sim.add_testbench(tb)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return dut
