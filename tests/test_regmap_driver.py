"""The host driver (host/driver.py) against its bus model FakeBus: accessors generated from
the description, identity check, configuration mapping, the async variant."""

import asyncio

import pytest

from tickwire.host.config import Config
from tickwire.host.driver import (AsyncDriver, BusError, Driver, FakeBus, IdentityError,
                                  MMIOBus, RegValue, apply_config, pack_symbol)
from tickwire.spec.regmap import (COUNTER_NAMES, FEED_COUNTERS, REGMAP, Block,
                                            Field, Register, RegisterMap)


def _variant():
    extra = Block("Extra", 0x0080, [Register("EXTRA", 0x0080, [Field("x", 32, "rw")])])
    return RegisterMap("tickwire", REGMAP.blocks + [extra], addr_width=REGMAP.addr_width)


def test_identity_check():
    bus = FakeBus(symbols=16)
    drv = Driver(bus)
    got = drv.check_identity()
    assert got == {"id": 0x54574952, "version": REGMAP.version, "hash": REGMAP.hash}
    assert drv.capacity()["symbols"] == 16
    # a bitstream built from another map
    v = REGMAP.version
    with pytest.raises(IdentityError, match=f"expects v{v[0]}.{v[1]} hash 0x{REGMAP.hash:08x}"):
        Driver(FakeBus(_variant())).check_identity()
    with pytest.raises(IdentityError, match="map mismatch"):
        Driver(bus, _variant()).check_identity()
    # not a tickwire register file at all
    with pytest.raises(IdentityError, match="no tickwire register file"):
        Driver(MMIOBus(type("M", (), {"read": lambda s, a: 0, "write": lambda s, a, v: 0})())
               ).check_identity()


def test_register_accessors():
    bus = FakeBus()
    drv = Driver(bus)
    v = drv.read("CONTROL")
    assert isinstance(v, RegValue) and v.auto == 1 and v["kill"] == 0 and int(v) == 12
    assert v.cut_through == 1
    drv.write("CONTROL", kill=1)                         # read-modify-write keeps auto
    assert drv.control.fields() == {"enable": 0, "kill": 1, "auto": 1, "cut_through": 1,
                                    "wire_triggers": 0, "soft_reset": 0}
    drv.control = {"enable": 1}
    assert bus.outputs()["control_enable"] == 1 and bus.outputs()["control_kill"] == 1
    drv.scratch = 0xDEADBEEF
    assert drv.scratch == 0xDEADBEEF
    drv.write("RISK_MAX_GROSS", max_gross=(1 << 40) + 5)
    assert drv.read("RISK_MAX_GROSS", "max_gross") == (1 << 40) + 5
    assert bus.outputs()["risk_max_gross"] == (1 << 40) + 5
    with pytest.raises(ValueError, match="read-only"):
        drv.write("STATUS", kill_active=1)
    with pytest.raises(ValueError, match="does not fit"):
        drv.write("SESSION_TTL", ttl=256)
    with pytest.raises(KeyError):
        drv.read("NOPE")
    with pytest.raises(BusError):
        drv.write32(REGMAP.register("ID").offset, 1)
    # w1c: a write of other fields does not clear sticky bits
    bus.fire("status_gap")
    drv.write("STATUS", risk_reject=1)
    assert drv.status.gap == 1
    assert drv.clear_status().gap == 1 and drv.status.gap == 0
    drv.soft_reset()
    assert bus.pulses[-1] == ("control_soft_reset", 1)


def test_counters_by_emulator_name():
    bus = FakeBus()
    drv = Driver(bus)
    for i, n in enumerate(FEED_COUNTERS + COUNTER_NAMES):
        bus.inputs[n] = (i << 33) + i
    c = drv.counters()
    assert list(c) == list(FEED_COUNTERS) + list(COUNTER_NAMES)
    assert all(c[n] == (i << 33) + i for i, n in enumerate(c))
    assert drv.feed_counters() == {n: c[n] for n in FEED_COUNTERS}
    assert drv.book_counters() == {n: c[n] for n in COUNTER_NAMES}
    assert drv.cnt_frames == c["frames"]


def test_tables():
    bus = FakeBus(symbols=8)
    drv = Driver(bus)
    drv.check_identity()
    drv.set_symbols(["AAPL", "MSFT"])
    assert drv.symbols() == ["AAPL", "MSFT"] and drv.control.auto == 0
    assert bus.entry("SYMBOLS", 1) == {"name": pack_symbol("MSFT"), "valid": 1}
    drv.set_trigger(1, 100, 200, 5, enable_sell=False, rearm=0, ref_price=150)
    assert drv.read_trigger(1) == {"buy_price": 100, "sell_price": 200, "quantity": 5,
                                   "enable_buy": 1, "enable_sell": 0, "rearm": 0}
    assert drv.read_risk_slot(1)["ref_price"] == 150
    assert bus.table_writes[-2][:2] == ("TRIGGERS", 1)
    drv.set_position(4, -77)
    assert drv.position(4) == -77 and drv.positions()[4] == -77
    bus.set_entry("POSITIONS", 4, position=12)             # the fabric moves it
    assert drv.position(4) == 12
    bus.set_entry("LAT_HIST", 2, count=9)
    assert drv.latency()["bins"][:3] == [0, 0, 9]
    drv.set_groups(["233.54.12.111:26477", ("10.0.0.1", 5)])
    assert drv.read_feed_group(1) == {"valid": 1, "ip": 0x0A000001, "port": 5}
    assert drv.read_feed_group(2)["valid"] == 0
    with pytest.raises(IndexError):
        drv.read_trigger(8)
    with pytest.raises(ValueError, match="exceed"):
        drv.set_symbols([f"S{i}" for i in range(9)])


def test_apply_config():
    bus = FakeBus(symbols=8)
    drv = Driver(bus)
    cfg = Config()
    cfg.symbols = ["AAPL", "MSFT", "QQQ"]
    cfg.feed.groups = ["233.54.12.111:26477"]
    cfg.strategy.kind = "static"
    cfg.strategy.triggers = {"QQQ": {"sell": 4_000_000, "quantity": 3}}
    cfg.risk.disabled = ["MSFT"]
    cfg.risk.kill_after_rejects = 5
    cfg.session.vlan = 7
    cfg.session.dst_ip = "192.168.1.2"
    cfg.orders.first_user_ref = 1000
    apply_config(drv, cfg)
    out = bus.outputs()
    assert out["control_enable"] == 1 and out["control_auto"] == 0
    assert out["risk_kill_after_rejects"] == 5 and out["risk_max_order_qty"] == 1000
    assert out["session_vlan_vid"] == 7 and out["session_vlan_enable"] == 1
    assert out["session_dst_ip"] == 0xC0A80102 and out["orders_first_user_ref"] == 1000
    assert ("session_load", 1) in bus.pulses
    assert drv.symbols() == cfg.symbols
    assert [drv.read_risk_slot(i)["enable"] for i in range(4)] == [1, 0, 1, 1]
    assert drv.read_trigger(2) == {"buy_price": 0, "sell_price": 4_000_000, "quantity": 3,
                                   "enable_buy": 0, "enable_sell": 1, "rearm": 1}
    assert drv.read_trigger(0)["enable_sell"] == 0
    assert drv.risk()["kill_after_rejects"] == 5
    s = drv.session()
    assert {k: s[k] for k in ("vlan", "dst_ip", "first_user_ref")} == {
        "vlan": 7, "dst_ip": "192.168.1.2", "first_user_ref": 1000}
    # auto mode, a config too big for the bitstream, a mismatching bitstream
    auto = Config()
    apply_config(drv, auto)
    assert drv.control.auto == 1 and drv.symbols() == []
    big = Config()
    big.symbols = [f"S{i}" for i in range(9)]
    with pytest.raises(ValueError, match="8 slots"):
        apply_config(drv, big)
    with pytest.raises(IdentityError):
        apply_config(Driver(FakeBus(_variant())), auto)


def test_async_driver_runs_the_same_operations():
    class AsyncFake:
        def __init__(self):
            self.bus = FakeBus(symbols=4)
            self.n = 0

        async def read32(self, a):
            self.n += 1
            await asyncio.sleep(0)
            return self.bus.read32(a)

        async def write32(self, a, v):
            self.n += 1
            self.bus.write32(a, v)

    async def main():
        b = AsyncFake()
        drv = AsyncDriver(b)
        await drv.check_identity()
        cfg = Config()
        cfg.symbols = ["IBM"]
        await apply_config(drv, cfg)
        assert await drv.symbols() == ["IBM"]
        assert (await drv.read("CONTROL")).enable == 1
        await drv.write_trigger(0, buy_price=5, sell_price=6, quantity=1, enable_buy=1,
                                enable_sell=1, rearm=1)
        assert (await drv.read_trigger(0))["sell_price"] == 6
        return b.n

    assert asyncio.run(main()) > 50
