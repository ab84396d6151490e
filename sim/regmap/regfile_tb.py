"""cocotb bench of the generated register file (tickwire.hw.regmap.axil.RegisterFile).

The Verilog from ``sim/runner.build`` runs on Verilator; cocotbext-axi's ``AxiLiteMaster``
is the bus. Two kinds of test:

* ``model_random``: random traffic (every register, table windows, holes, strobes, 64-bit
  captures, w1c pulses, input changes) on the gateware and on the Python model
  (:class:`tickwire.host.driver.FakeBus`) through :class:`..common.ModelChecker`;
* ``driver_*``: the host's own :class:`tickwire.host.driver.AsyncDriver` over the AXI bus:
  identity check (and its refusal of a map with another hash), ``apply_config``, counters
  with the 64-bit capture, tables read back through a consumer model.

The pytest entry is tests/test_regmap_cocotb.py.
"""

from __future__ import annotations

import os
import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from tickwire.host.config import Config
from tickwire.host.driver import AsyncDriver, IdentityError, apply_config, pack_symbol
from tickwire.spec.regmap import (COUNTER_NAMES, FEED_COUNTERS, REGMAP, Block, Field,
                                            Register, RegisterMap)
from tickwire.sim.runner import TB

from .common import BusAdapter, ModelChecker, pack_row

CONTIGUOUS_STROBES = (0x1, 0x2, 0x4, 0x8, 0x3, 0x6, 0xC, 0x7, 0xE, 0xF, 0xF, 0xF)


def _capacity() -> dict:
    return {k[len("TW_CAP_"):].lower(): int(v) for k, v in os.environ.items()
            if k.startswith("TW_CAP_")}


class CocotbHarness:
    """:mod:`..common` harness over cocotbext-axi and the runner's port map."""

    def __init__(self, tb: TB):
        from cocotbext.axi import AxiLiteBus, AxiLiteMaster
        self.tb = tb
        dut = tb.dut
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "axi_"), dut.clk, dut.rst,
                                    reset_active_level=True)
        self.strobes = CONTIGUOUS_STROBES
        rm = REGMAP
        self._wo = [f.port for r in rm.registers.values() for f in r.fields
                    if f.access == "wo" and f.hw == "port"]
        self._tables = [t for t in rm.tables.values() if t.kind != "array" and t.writable]
        self._events: list = []
        self.consumer: dict[str, dict[int, dict]] = {}   # port tables: rows the bench keeps
        self.serve_port_tables = False
        cocotb.start_soon(self._monitor())

    def _port(self, path: str):
        """(Port, field name or None) of a dotted path such as ``feed_groups[1].ip``."""
        if "[" in path:
            name, rest = path.split("[", 1)
            idx, field = rest.split("].", 1)
            return self.tb[name], f"{idx}.{field}"
        return self.tb[path], None

    async def _monitor(self):
        clk = self.tb.dut.clk
        while True:
            await RisingEdge(clk)
            await ReadOnly()
            for p in self._wo:
                v = self.tb[p].value
                if v:
                    self._events.append(("pulse", p, v))
            for t in self._tables:
                if self.tb[f"{t.port}.w.we"].value:
                    idx = self.tb[f"{t.port}.w.index"].value
                    fields = self.tb[f"{t.port}.w.row"].get()
                    self._events.append(("table", t.port, idx, fields))
                    if t.kind == "port":
                        self.consumer.setdefault(t.port, {}).setdefault(idx, {}).update(fields)

    async def serve(self):
        """Consumer model of the port tables: answer ``r.addr`` from the rows written (and
        from ``consumer`` entries the test sets)."""
        clk = self.tb.dut.clk
        tables = [t for t in REGMAP.tables.values() if t.kind == "port"]
        addr = {t.port: 0 for t in tables}
        while True:
            await RisingEdge(clk)
            for t in tables:            # the entry addressed in the cycle before
                row = self.consumer.get(t.port, {}).get(addr[t.port], {})
                self.tb[f"{t.port}.r.data"].set(pack_row(t, row))
            await ReadOnly()
            for t in tables:
                addr[t.port] = self.tb[f"{t.port}.r.addr"].value

    def events(self) -> list:
        ev, self._events = self._events, []
        return ev

    async def set(self, port: str, value: int) -> None:
        self.tb[port].set(value)

    async def pulse(self, port: str) -> None:
        self.tb[port].set(1)
        await RisingEdge(self.tb.dut.clk)
        self.tb[port].set(0)

    async def get(self, port: str) -> int:
        await RisingEdge(self.tb.dut.clk)
        await ReadOnly()
        p, field = self._port(port)
        v = p.get([field])[field] if field else p.value
        await RisingEdge(self.tb.dut.clk)
        return v & ((1 << p.width) - 1)

    async def read(self, addr: int) -> tuple[int, int]:
        r = await self.master.read(addr, 4)
        return int.from_bytes(bytes(r.data), "little"), int(r.resp)

    async def write(self, addr: int, data: int, strobe: int = 0xF) -> int:
        lanes = [i for i in range(4) if strobe >> i & 1]
        lo, hi = lanes[0], lanes[-1]
        assert lanes == list(range(lo, hi + 1)), f"strobe {strobe:#x} is not contiguous"
        b = data.to_bytes(4, "little")[lo:hi + 1]
        r = await self.master.write(addr + lo, b)
        await RisingEdge(self.tb.dut.clk)
        return int(r.resp)


async def _setup(dut, seed: int = 0):
    tb = TB(dut)
    h = CocotbHarness(tb)
    await tb.reset()
    return tb, h


def _variant_map() -> RegisterMap:
    """The tickwire map plus one register: another MAP_HASH."""
    extra = Block("Extra", 0x0080, [Register("EXTRA", 0x0080, [Field("x", 32, "rw")])])
    return RegisterMap("tickwire", REGMAP.blocks + [extra], addr_width=REGMAP.addr_width)


@cocotb.test()
async def model_random(dut):
    """Random traffic on the gateware and on the model: identical responses and effects."""
    tb, h = await _setup(dut)
    seed = int(os.environ.get("TW_SEED", "1"))
    mc = ModelChecker(h, rng=random.Random(seed), **_capacity())
    mc.strobes = h.strobes
    await mc.check_outputs()
    await mc.random_ops(int(os.environ.get("TW_OPS", "1500")), check_every=100)
    tb.log.info("model_random: %d reads, %d writes, %d table commits", mc.n_reads,
                mc.n_writes, len(mc.model.table_writes))


@cocotb.test()
async def driver_identity(dut):
    """The host driver accepts this bitstream and refuses one whose map hash differs."""
    tb, h = await _setup(dut)
    drv = AsyncDriver(BusAdapter(h))
    ident = await drv.check_identity()
    assert ident["hash"] == REGMAP.hash and ident["id"] == REGMAP.map_id, ident
    cap = await drv.capacity()
    assert cap == {k: REGMAP.capacity(**_capacity())[k] for k in cap}, cap
    other = _variant_map()
    assert other.hash != REGMAP.hash
    try:
        await AsyncDriver(BusAdapter(h), other).check_identity()
    except IdentityError as e:
        assert f"0x{REGMAP.hash:08x}" in str(e) and f"0x{other.hash:08x}" in str(e), str(e)
    else:
        raise AssertionError("check_identity accepted a map with another hash")


@cocotb.test()
async def driver_config(dut):
    """apply_config through the driver: every output port and table row as configured."""
    tb, h = await _setup(dut)
    cocotb.start_soon(h.serve())
    cfg = Config()
    cfg.symbols = ["AAPL", "MSFT", "QQQ"]
    cfg.feed.groups = ["233.54.12.111:26477", "233.49.196.111:18000"]
    cfg.strategy.kind = "static"
    cfg.strategy.triggers = {"MSFT": {"buy": 3_000_000, "sell": 3_100_000, "quantity": 7,
                                      "ref_price": 3_050_000}}
    cfg.risk.disabled = ["QQQ"]
    cfg.risk.max_notional = 123_456_789_012
    cfg.risk.kill_after_rejects = 9
    cfg.session.vlan = 42
    cfg.session.seq = 0xFEDCBA98
    cfg.orders.capacity = "A"
    drv = AsyncDriver(BusAdapter(h))
    await apply_config(drv, cfg)
    h.events()
    ports = {p: await h.get(p) for p in ("control_enable", "control_kill", "control_auto",
                                         "risk_max_notional", "risk_kill_after_rejects",
                                         "session_vlan_vid", "session_vlan_enable",
                                         "session_seq", "orders_capacity", "session_src_mac")}
    assert ports == {"control_enable": 1, "control_kill": 0, "control_auto": 0,
                     "risk_max_notional": 123_456_789_012, "risk_kill_after_rejects": 9,
                     "session_vlan_vid": 42, "session_vlan_enable": 1,
                     "session_seq": 0xFEDCBA98, "orders_capacity": ord("A"),
                     "session_src_mac": 0x020000000010}, ports
    assert await drv.symbols() == cfg.symbols
    assert h.consumer["symbols"][1] == {"name": pack_symbol("MSFT"), "valid": 1}
    t = await drv.read_trigger(1)
    assert t == {"buy_price": 3_000_000, "sell_price": 3_100_000, "quantity": 7,
                 "enable_buy": 1, "enable_sell": 1, "rearm": 1}, t
    assert (await drv.read_trigger(0))["enable_buy"] == 0
    assert (await drv.read_risk_slot(1))["ref_price"] == 3_050_000
    assert (await drv.read_risk_slot(2))["enable"] == 0
    assert (await drv.read_risk_slot(3))["enable"] == 1
    assert await drv.risk() == {p: int(getattr(cfg.risk, p)) for p in await drv.risk()}
    s = await drv.session()
    assert s["vlan"] == 42 and s["seq"] == 0xFEDCBA98 and s["capacity"] == "A", s
    g = [await h.get(f"feed_groups[{i}].valid") for i in range(2)]
    assert g == [1, 1] and await h.get("feed_groups[1].port") == 18000
    # positions: host reconciliation writes, the fabric's value reads back
    await drv.set_position(2, -300)
    assert await drv.position(2) == -300
    h.consumer["positions"][2]["position"] = 12345          # the fabric moved it
    assert await drv.position(2) == 12345


@cocotb.test()
async def driver_counters(dut):
    """counters(): every feed and book counter by name, 64-bit, captured low word first."""
    tb, h = await _setup(dut)
    rng = random.Random(3)
    drv = AsyncDriver(BusAdapter(h))
    exp = {}
    for n in tuple(FEED_COUNTERS) + tuple(COUNTER_NAMES):
        exp[n] = rng.getrandbits(64)
        tb[n].set(exp[n])
    await RisingEdge(dut.clk)
    assert await drv.counters() == exp
    # the high word is captured when the low word is read
    r = REGMAP.register("CNT_FRAMES")
    tb["frames"].set(0x00000001_FFFFFFFF)
    await RisingEdge(dut.clk)
    lo = await drv.read32(r.offset)
    tb["frames"].set(0x00000002_00000000)
    await RisingEdge(dut.clk)
    hi = await drv.read32(r.offset + 4)
    assert (hi << 32 | lo) == 0x00000001_FFFFFFFF, hex(hi << 32 | lo)
    assert await drv.read_raw("CNT_FRAMES") == 0x00000002_00000000
    # sticky status bits
    await h.pulse("status_gap")
    st = await drv.read("STATUS")
    assert st.gap == 1 and st.risk_reject == 0, st
    await drv.clear_status()
    assert (await drv.read("STATUS")).gap == 0
