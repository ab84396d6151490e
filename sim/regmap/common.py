"""Simulator-independent checks of the register file against its Python model.

:class:`tickwire.host.driver.FakeBus` is the executable statement of the bus rules; these
helpers run the same operations on the gateware (through a *harness*: the Amaranth simulator
in tests/test_regmap_axil.py, Verilator/cocotb in :mod:`.regfile_tb`) and on the model and
require identical responses, read data, output ports, pulses and table writes.

A harness provides (all coroutines but ``outputs`` names)::

    await h.read(addr) -> (data, resp)
    await h.write(addr, data, strobe) -> resp
    await h.set(port, value)         # an input port (dotted name: "frames", "positions.r.data")
    await h.pulse(port)              # one-cycle pulse on a w1c set input
    await h.get(port) -> int         # an output port, raw bits (unsigned)
    h.events() -> list               # ("pulse", port, value) / ("table", port, index, fields)
                                     # seen since the last call
"""

from __future__ import annotations

import random

from tickwire.host.driver import BusError, FakeBus
from tickwire.spec.regmap import REGMAP, RegisterMap

__all__ = ["ModelChecker", "BusAdapter", "OKAY", "SLVERR", "pack_row"]

OKAY, SLVERR = 0, 2


def pack_row(t, values: dict) -> int:
    """A port table's ``r.data`` value: its fields packed in declared order (the struct of
    :func:`tickwire.hw.regmap.axil.table_row`)."""
    x, pos = 0, 0
    for f in t.fields:
        x |= _raw(values.get(f.name, 0), f.width) << pos
        pos += f.width
    return x


def _raw(v: int, width: int) -> int:
    return int(v) & ((1 << width) - 1)


class ModelChecker:
    """Runs operations on a harness and on a :class:`FakeBus` and compares them."""

    def __init__(self, h, regmap: RegisterMap = REGMAP, rng: random.Random | None = None,
                 **capacity):
        self.h = h
        self.rm = regmap
        self.model = FakeBus(regmap, **capacity)
        self.cap = self.model.cap
        self.rng = rng or random.Random(1)
        self.n_reads = self.n_writes = 0
        self.strobes = tuple(range(16))      # a harness may only do some (cocotbext-axi)
        cyc = [r for r in regmap.registers.values()
               if any(f.hw == "cycles" for f in r.fields)]
        self.skip_data = {cyc[0].offset} if cyc else set()
        self.inputs = [(r, f) for r in regmap.registers.values() for f in r.fields
                       if f.hw == "port" and f.access == "ro"]
        self.w1c = [(r, f) for r in regmap.registers.values() for f in r.fields
                    if f.access == "w1c"]

    # ------------------------------------------------------------------ primitives
    async def set_input(self, port: str, value: int) -> None:
        _, f = self.rm.field_of_port(port)
        self.model.inputs[port] = f.decode(_raw(value, f.width))
        await self.h.set(port, _raw(value, f.width))

    async def pulse(self, port: str) -> None:
        self.model.fire(port)
        await self.h.pulse(port)

    async def _present_port_row(self, addr: int) -> None:
        """Drive the ``r.data`` input of a port table from the model's row of ``addr``."""
        hit = self.rm.decode(addr & ~3)
        if hit is None or hit[0] != "table" or hit[1].kind != "port":
            return
        _, t, index, _ = hit
        if index >= self.cap[t.size]:
            return
        row = self.model.entries[t.name][index]
        await self.h.set(f"{t.port}.r.data", pack_row(t, {
            f.name: (row >> f.offset) & ((1 << f.width) - 1) for f in t.fields}))

    async def read(self, addr: int) -> int:
        await self._present_port_row(addr)
        try:
            exp, exp_resp = self.model.read32(addr), OKAY
        except BusError:
            exp, exp_resp = 0, SLVERR
        data, resp = await self.h.read(addr)
        self.n_reads += 1
        assert resp == exp_resp, f"read 0x{addr:04x}: resp {resp}, model {exp_resp}"
        if addr & ~3 not in self.skip_data:
            assert data == exp, f"read 0x{addr:04x}: 0x{data:08x}, model 0x{exp:08x}"
        return data

    async def write(self, addr: int, value: int, strobe: int = 0xF) -> int:
        n_p, n_t = len(self.model.pulses), len(self.model.table_writes)
        try:
            self.model.write32(addr, value, strobe)
            exp_resp = OKAY
        except BusError:
            exp_resp = SLVERR
        resp = await self.h.write(addr, value, strobe)
        self.n_writes += 1
        assert resp == exp_resp, f"write 0x{addr:04x}: resp {resp}, model {exp_resp}"
        exp_ev = [("pulse", p, v) for p, v in self.model.pulses[n_p:]]
        for tname, idx, fields in self.model.table_writes[n_t:]:
            t = self.rm.table(tname)
            exp_ev.append(("table", t.port, idx,
                           {k: _raw(v, t.field(k).width) for k, v in fields.items()}))
        got = self.h.events()
        assert got == exp_ev, f"write 0x{addr:04x}=0x{value:08x}/{strobe:x}: events {got}, " \
                              f"model {exp_ev}"
        return resp

    async def check_outputs(self) -> None:
        """Every rw output port and every array table equals the model."""
        for port, v in self.model.outputs().items():
            _, f = self.rm.field_of_port(port)
            got = await self.h.get(port)
            exp = _raw(v, f.width)
            assert got == exp, f"output {port}: 0x{got:x}, model 0x{exp:x}"
        for t in self.rm.tables.values():
            if t.kind != "array":
                continue
            for i in range(self.cap[t.size]):
                exp = self.model.entry(t.name, i)
                for f in t.fields:
                    got = await self.h.get(f"{t.port}[{i}].{f.name}")
                    assert got == _raw(exp[f.name], f.width), \
                        f"{t.port}[{i}].{f.name}: 0x{got:x}, model 0x{exp[f.name]:x}"

    # ------------------------------------------------------------------ random traffic
    def random_address(self) -> int:
        rng, rm = self.rng, self.rm
        k = rng.random()
        if k < 0.55:
            r = rng.choice(list(rm.registers.values()))
            return r.offset + 4 * rng.randrange(r.words)
        if k < 0.9:
            t = rng.choice(list(rm.tables.values()))
            n = self.cap[t.size]
            idx = rng.randrange(n) if rng.random() < 0.85 else rng.randrange(n, t.entries)
            word = rng.randrange(t.words) if rng.random() < 0.9 else \
                rng.randrange(t.stride // 4)
            return t.base + idx * t.stride + 4 * word
        return rng.randrange(0, 1 << rm.addr_width) & ~3

    def random_value(self) -> int:
        rng = self.rng
        return rng.choice([0, 0xFFFFFFFF, 1, 1 << 31, rng.getrandbits(32), rng.getrandbits(8)])

    async def random_ops(self, n: int, check_every: int = 25) -> None:
        rng, rm = self.rng, self.rm
        for i in range(n):
            k = rng.random()
            if k < 0.1:
                r, f = rng.choice(self.inputs)
                await self.set_input(f.port, rng.getrandbits(f.width))
            elif k < 0.14:
                r, f = rng.choice(self.w1c)
                await self.pulse(f.port)
            elif k < 0.5:
                await self.read(self.random_address())
            elif k < 0.6:
                # a multi-word read, maybe with the live value changing in between
                r = rng.choice([r for r in rm.registers.values() if r.words == 2])
                await self.read(r.offset)
                if rng.random() < 0.5:
                    ins = [f for f in r.fields if f.hw == "port" and f.access == "ro"]
                    if ins:
                        await self.set_input(ins[0].port, rng.getrandbits(ins[0].width))
                await self.read(r.offset + 4)
            elif k < 0.7:
                # a whole table row, low word first
                t = rng.choice([t for t in rm.tables.values() if t.writable])
                idx = rng.randrange(self.cap[t.size])
                for w in range(t.words):
                    await self.write(t.address(idx, w), self.random_value())
                for w in range(t.words):
                    await self.read(t.address(idx, w))
            else:
                strobe = 0xF if rng.random() < 0.7 else rng.choice(self.strobes)
                await self.write(self.random_address(), self.random_value(), strobe)
            if check_every and i % check_every == check_every - 1:
                await self.check_outputs()
        await self.check_outputs()


class BusAdapter:
    """A ``read32``/``write32`` coroutine bus over a harness (raises BusError on SLVERR), so
    :class:`tickwire.host.driver.AsyncDriver` can drive the gateware."""

    def __init__(self, h):
        self.h = h

    async def read32(self, addr: int) -> int:
        data, resp = await self.h.read(addr)
        if resp != OKAY:
            raise BusError("read", addr, resp)
        return data

    async def write32(self, addr: int, value: int) -> None:
        resp = await self.h.write(addr, value, 0xF)
        if resp != OKAY:
            raise BusError("write", addr, resp)
