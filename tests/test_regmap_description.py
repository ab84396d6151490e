"""The register map description (spec/regmap.py): one source of truth."""

import pytest

from tickwire.host import config
from tickwire.host.emu.core import COUNTER_NAMES, RISK_PARAMS
from tickwire.host.moldudp64 import COUNTERS
from tickwire.spec.regmap import (COUNTER_REGISTERS, FEED_HW_COUNTERS,
                                            ORDER_HW_COUNTERS, REGMAP, RISK_PARAM_FIELDS,
                                            Block, Field, Register, RegisterMap, Table,
                                            build_regmap)


def test_every_counter_and_risk_parameter_has_a_register():
    assert set(COUNTER_REGISTERS) == (set(COUNTERS) | set(COUNTER_NAMES) | set(FEED_HW_COUNTERS)
                                      | set(ORDER_HW_COUNTERS))
    for name, reg in COUNTER_REGISTERS.items():
        r = REGMAP.register(reg)
        assert r.width == 64 and r.fields[0].name == name and r.fields[0].port == name
        assert r.fields[0].access == "ro"
    assert set(RISK_PARAM_FIELDS) == set(RISK_PARAMS)
    d = config.Risk()
    for p, (reg, field) in RISK_PARAM_FIELDS.items():
        f = REGMAP.register(reg).field(field)
        assert f.access == "rw" and f.reset == int(getattr(d, p)), p


def test_layout_is_sound():
    words = {}
    for r in REGMAP.registers.values():
        assert r.offset % r.size == 0
        for k in range(r.words):
            assert r.offset // 4 + k not in words
            words[r.offset // 4 + k] = r.name
            assert REGMAP.decode(r.offset + 4 * k) == ("reg", r, k)
    for t in REGMAP.tables.values():
        assert REGMAP.decode(t.address(1, t.words - 1)) == ("table", t, 1, t.words - 1)
        assert t.base % t.size_bytes == 0 and t.base + t.size_bytes <= 1 << REGMAP.addr_width
        for f in t.fields:
            assert f.width > 32 or f.offset // 32 == (f.offset + f.width - 1) // 32
    assert REGMAP.decode(0x0002) is None and REGMAP.decode(0x7FFC) is None
    assert REGMAP.size <= 1 << REGMAP.addr_width
    ports = [f.port for r in REGMAP.registers.values() for f in r.fields if f.hw == "port"]
    assert len(ports) == len(set(ports))


def test_hash_is_computed_from_the_layout():
    again = build_regmap()
    assert again.hash == REGMAP.hash and again.canonical() == REGMAP.canonical()
    # documentation and reset values do not change it ...
    regs = [Register("A", 0, [Field("x", 8, "rw", reset=1, doc="one")], doc="a")]
    base = RegisterMap("m", [Block("b", 0, regs)], addr_width=8)
    docs = RegisterMap("m", [Block("b", 0, [Register("A", 0, [Field("x", 8, "rw", reset=3,
                                                                     doc="two")])])],
                       addr_width=8)
    assert base.hash == docs.hash
    # ... the layout does
    for variant in ([Field("x", 8, "ro")], [Field("x", 9, "rw")], [Field("y", 8, "rw")],
                    [Field("x", 8, "rw", offset=1)], [Field("x", 8, "rw", signed=True)]):
        m = RegisterMap("m", [Block("b", 0, [Register("A", 0, variant)])], addr_width=8)
        assert m.hash != base.hash, variant
    moved = RegisterMap("m", [Block("b", 0, [Register("A", 4, [Field("x", 8, "rw")])])],
                        addr_width=8)
    assert moved.hash != base.hash


def test_description_errors():
    with pytest.raises(ValueError, match="access"):
        Field("x", 1, "rx")
    with pytest.raises(ValueError, match="reset"):
        Field("x", 4, "rw", reset=16)
    with pytest.raises(ValueError, match="overlaps"):
        Register("A", 0, [Field("x", 8, "rw"), Field("y", 8, "rw", offset=4)])
    with pytest.raises(ValueError, match="straddles"):
        Register("A", 0, [Field("x", 8, "rw", offset=28)])
    with pytest.raises(ValueError, match="rw/ro fields only"):
        Register("A", 0, [Field("x", 40, "rw"), Field("p", 1, "wo")])
    with pytest.raises(ValueError, match="overlap"):
        RegisterMap("m", [Block("b", 0, [Register("A", 0, [Field("x", 64, "ro")]),
                                         Register("B", 4, [Field("x", 8, "ro")])])],
                    addr_width=8)
    with pytest.raises(ValueError, match="stride"):
        Table("T", 0, 4, 4, [Field("x", 64, "rw")])
    with pytest.raises(ValueError, match="kind='port'"):
        Table("T", 0, 4, 8, [Field("x", 8, "ro")], kind="memory")
    with pytest.raises(ValueError, match="power of two"):
        REGMAP.capacity(order_buckets=1000)
    with pytest.raises(ValueError, match="at most 256"):
        REGMAP.capacity(symbols=512)
    with pytest.raises(TypeError, match="unknown build parameters"):
        REGMAP.capacity(sym=4)


def test_field_codecs():
    f = REGMAP.table("POSITIONS").field("position")
    assert f.decode(f.encode(-5)) == -5 and f.encode(-1) == (1 << 64) - 1
    with pytest.raises(ValueError):
        f.encode(1 << 63)
    c = REGMAP.register("CONTROL")
    assert c.field("soft_reset").offset == 31 and c.field("auto").reset == 1
    assert c.reset == c.field("auto").mask | c.field("cut_through").mask  # wo: no value
    s = config.Session()
    assert REGMAP.register("SESSION_PORTS").field("dst_port").reset == s.dst_port


def _gateware_counters(module: str) -> tuple:
    import importlib
    return tuple(importlib.import_module(module).COUNTERS)


@pytest.mark.parametrize("module", ["tickwire.hw.book", "tickwire.hw.trigger.engine",
                                    "tickwire.hw.risk.check", "tickwire.hw.egress.builder"])
def test_gateware_counters_are_in_the_map(module):
    """Every counter port of the pipeline blocks has a register (same name as the port)."""
    missing = set(_gateware_counters(module)) - set(COUNTER_REGISTERS)
    assert not missing, f"{module} counters without a register: {sorted(missing)}"


def test_feed_front_end_counters_are_in_the_map():
    from tickwire.hw.feed import frontend as fe
    from amaranth.hdl import Shape
    from amaranth.lib import wiring
    comp = fe.FeedFrontEnd()
    comp._MustUse__silence = True
    outs = {n for n, m in comp.signature.members.items()
            if m.is_port and m.flow == wiring.Out and isinstance(m.shape, Shape)
            and m.shape.width in (32, 64) and n not in ("session", "expected")}
    missing = outs - set(COUNTER_REGISTERS)
    assert not missing, f"feed counters without a register: {sorted(missing)}"
