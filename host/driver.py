"""Host driver of the tickwire register file, generated from the register map description.

The accessors are built at import time from :data:`tickwire.spec.regmap.REGMAP`
(the same description the gateware's register file and docs/registers.md come from)::

    drv = Driver(bus)                    # bus: read32(addr) -> int, write32(addr, value)
    drv.check_identity()                 # ID / VERSION / MAP_HASH must match this host's map
    apply_config(drv, load_config("day.toml"))
    drv.counters()                       # {"frames": ..., "book_messages": ..., ...}
    drv.write_trigger(3, buy_price=1500000, sell_price=1510000, quantity=100,
                      enable_buy=1, enable_sell=1, rearm=1)
    drv.read("CONTROL").kill; drv.write("CONTROL", kill=1); drv.control.enable

Buses: anything with ``read32(addr)``/``write32(addr, value)`` (byte addresses), e.g.
:class:`MMIOBus` around a PYNQ ``MMIO`` (or an XRT ``xrt.ip`` via ``read_register``/
``write_register``), :class:`FakeBus` (an exact Python model of the register file, for tests),
or a simulator bus. A bus reports an SLVERR response by raising :class:`BusError`.

:class:`AsyncDriver` has the same methods as coroutines, for buses whose ``read32``/
``write32`` are coroutines (the cocotb bench drives the generated Verilog through it). Both
run one implementation: each operation is a generator that yields bus requests.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, is_dataclass
from typing import Any, Iterable

from tickwire.spec.values import ip_to_int as _ip, mac_to_int as _mac, pack_symbol, unpack_symbol
from tickwire.spec.regmap import (COUNTER_NAMES, COUNTER_REGISTERS, FEED_COUNTERS,
                                            FEED_HW_COUNTERS, ORDER_HW_COUNTERS, REGMAP,
                                            RISK_PARAM_FIELDS, RISK_PARAMS, Field, Register,
                                            RegisterMap, Table)

__all__ = ["Driver", "AsyncDriver", "FakeBus", "MMIOBus", "BusError", "IdentityError",
           "RegValue", "apply_config", "pack_symbol", "unpack_symbol"]


class BusError(IOError):
    """The register file answered SLVERR (an unmapped address, a read-only word, a table
    entry beyond the build's capacity)."""

    def __init__(self, op: str, addr: int, resp: int = 2):
        self.op, self.addr, self.resp = op, addr, resp
        super().__init__(f"{op} of 0x{addr:04x}: bus error (resp {resp})")


class IdentityError(RuntimeError):
    """The bitstream's register map is not the one this host was built with."""


class RegValue(int):
    """A register's raw value (an int) whose fields read as attributes or items:
    ``v.kill``, ``v["kill"]``, ``v.fields()``."""

    def __new__(cls, value: int, reg: Register):
        obj = super().__new__(cls, value)
        obj._reg = reg
        return obj

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._reg.field(name).extract(int(self))
        except KeyError as e:
            raise AttributeError(str(e)) from None

    def __getitem__(self, name: str) -> int:
        return self._reg.field(name).extract(int(self))

    def fields(self) -> dict[str, int]:
        return {f.name: f.extract(int(self)) for f in self._reg.fields}

    def __repr__(self):
        inner = ", ".join(f"{k}={v:#x}" if v > 9 else f"{k}={v}"
                          for k, v in self.fields().items())
        return f"<{self._reg.name} {int(self):#x}: {inner}>"


def _split(value: int, words: int) -> list[int]:
    return [(value >> (32 * k)) & 0xFFFFFFFF for k in range(words)]


# ------------------------------------------------------------------------------------------
# Operations, written once as generators that yield ("r", addr) / ("w", addr, value)
# ------------------------------------------------------------------------------------------

_OPS: list[str] = []


def _op(fn):
    _OPS.append(fn.__name__)
    return fn


class _Ops:
    """Every driver operation as a generator (the sync and async drivers run them)."""

    def __init__(self, regmap: RegisterMap = REGMAP):
        self.regmap = regmap
        self._cap: dict[str, int] | None = None

    # ---------------------------------------------------------------- bus level
    @_op
    def read32(self, addr: int):
        return (yield ("r", addr))

    @_op
    def write32(self, addr: int, value: int):
        yield ("w", addr, value & 0xFFFFFFFF)

    def _reg(self, name: str) -> Register:
        return self.regmap.register(name)

    def _table(self, name: str) -> Table:
        return self.regmap.table(name)

    @_op
    def read_raw(self, name: str):
        """Raw value of register ``name`` (a 64-bit one low word first)."""
        r = self._reg(name)
        v = 0
        for k in range(r.words):
            v |= (yield ("r", r.offset + 4 * k)) << (32 * k)
        return v

    @_op
    def write_raw(self, name: str, value: int):
        """Write the raw value of ``name`` (a 64-bit one low word first: committed at once)."""
        r = self._reg(name)
        for k, w in enumerate(_split(value, r.words)):
            yield ("w", r.offset + 4 * k, w)

    @_op
    def read(self, name: str, field: str | None = None):
        """Register ``name`` as a :class:`RegValue` (or one field's value)."""
        r = self._reg(name)
        v = RegValue((yield from self._g_read_raw(name)), r)
        return v if field is None else v[field]

    @_op
    def write(self, name: str, value: int | None = None, **fields):
        """Write register ``name``: a raw ``value``, or the given fields. Fields not given
        keep their value (rw; the register is read first when needed), ``w1c`` bits not
        given are not cleared and ``wo`` fields not given are 0."""
        r = self._reg(name)
        if value is not None:
            if fields:
                raise TypeError("write(): a raw value or fields, not both")
            yield from self._g_write_raw(name, value)
            return
        for k in fields:
            f = r.field(k)
            if f.access == "ro":
                raise ValueError(f"{name}.{k} is read-only")
        need_read = any(f.access == "rw" and f.name not in fields for f in r.fields)
        cur = (yield from self._g_read_raw(name)) if need_read else 0
        v = 0
        for f in r.fields:
            if f.name in fields:
                raw = f.encode(fields[f.name])
            elif f.access == "rw":
                raw = (cur >> f.offset) & ((1 << f.width) - 1)
            else:
                raw = 0
            v |= raw << f.offset
        yield from self._g_write_raw(name, v)

    # ---------------------------------------------------------------- tables
    @_op
    def read_entry(self, table: str, index: int):
        """Entry ``index`` of ``table`` as ``{field: value}``."""
        t = self._table(table)
        self._check_index(t, index)
        row = 0
        for k in range(t.words):
            row |= (yield ("r", t.address(index, k))) << (32 * k)
        return {f.name: f.extract(row) for f in t.fields}

    @_op
    def write_entry(self, table: str, index: int, **fields):
        """Write entry ``index`` of ``table`` (every word, committed at once). Fields not given
        keep their value (the entry is read first when needed)."""
        t = self._table(table)
        self._check_index(t, index)
        for k in fields:
            if t.field(k).access != "rw":
                raise ValueError(f"{table}.{k} is read-only")
        cur = None
        if any(f.access == "rw" and f.name not in fields for f in t.fields):
            cur = yield from self._g_read_entry(table, index)
        row = 0
        for f in t.fields:
            if f.access != "rw":
                continue
            v = fields[f.name] if f.name in fields else cur[f.name]
            row |= f.encode(v) << f.offset
        for k, w in enumerate(_split(row, t.words)):
            yield ("w", t.address(index, k), w)

    def _check_index(self, t: Table, index: int) -> None:
        n = self._cap[t.size] if self._cap else t.entries
        if not 0 <= index < n:
            raise IndexError(f"{t.name}[{index}]: entries 0..{n - 1}")

    # ---------------------------------------------------------------- identity
    @_op
    def identity(self):
        """``{"id", "version": (major, minor), "hash"}`` read from the bitstream."""
        ident = yield from self._g_read_raw("ID")
        ver = yield from self._g_read("VERSION")
        h = yield from self._g_read_raw("MAP_HASH")
        return {"id": ident, "version": (ver.major, ver.minor), "hash": h}

    @_op
    def check_identity(self):
        """Raise :class:`IdentityError` unless the bitstream's ID, VERSION and MAP_HASH equal
        this host's description; then read the build capacities. Returns the identity."""
        rm = self.regmap
        got = yield from self._g_identity()
        if got["id"] != rm.map_id:
            raise IdentityError(
                f"no tickwire register file here: ID reads 0x{got['id']:08x}, expected "
                f"0x{rm.map_id:08x} ({rm.map_id.to_bytes(4, 'big').decode()!r})")
        if got["version"] != tuple(rm.version) or got["hash"] != rm.hash:
            raise IdentityError(
                f"register map mismatch: the bitstream has map v{got['version'][0]}."
                f"{got['version'][1]} hash 0x{got['hash']:08x}, this host expects "
                f"v{rm.version[0]}.{rm.version[1]} hash 0x{rm.hash:08x}; rebuild the "
                "bitstream or use the host software that matches it")
        yield from self._g_capacity()
        return got

    @_op
    def capacity(self):
        """Build capacities (``symbols``, ``levels``, ``order_buckets``, ``order_ways``,
        ``groups``, ``hist_bins``), read once from the CAPACITY registers."""
        if self._cap is None:
            c0 = yield from self._g_read("CAPACITY0")
            c1 = yield from self._g_read("CAPACITY1")
            c2 = yield from self._g_read("CAPACITY2")
            self._cap = {"symbols": c0.symbols, "levels": c0.levels,
                         "order_buckets": 1 << c1.order_buckets_log2,
                         "order_ways": c1.order_ways, "groups": c1.groups,
                         "hist_bins": c2.hist_bins}
        return dict(self._cap)

    # ---------------------------------------------------------------- counters
    def _counter_dict(self, names: Iterable[str]):
        out = {}
        for n in names:
            out[n] = yield from self._g_read_raw(COUNTER_REGISTERS[n])
        return out

    @_op
    def counters(self, hardware: bool = False):
        """Every counter of the emulator, feed then book/trigger/risk, by the emulator's names
        (the dict ``RunResult.counters`` holds); ``hardware`` adds the hardware-only ones
        (line-buffer overflows, ignored types, per-line frame counters ``a_*``/``b_*``, the
        order path's cut-through and egress counters)."""
        names = tuple(FEED_COUNTERS) + tuple(COUNTER_NAMES)
        if hardware:
            names += tuple(FEED_HW_COUNTERS) + tuple(ORDER_HW_COUNTERS)
        return (yield from self._counter_dict(names))

    @_op
    def feed_counters(self):
        return (yield from self._counter_dict(FEED_COUNTERS))

    @_op
    def book_counters(self):
        return (yield from self._counter_dict(COUNTER_NAMES))

    # ---------------------------------------------------------------- control
    @_op
    def set_enable(self, on: bool = True):
        yield from self._g_write("CONTROL", enable=int(bool(on)))

    @_op
    def set_kill(self, on: bool = True):
        yield from self._g_write("CONTROL", kill=int(bool(on)))

    @_op
    def soft_reset(self):
        yield from self._g_write("CONTROL", soft_reset=1)

    @_op
    def clear_status(self):
        """Clear every sticky STATUS bit; returns the STATUS value before."""
        r = self._reg("STATUS")
        v = yield from self._g_read("STATUS")
        yield from self._g_write_raw("STATUS", sum(f.mask for f in r.fields if f.access == "w1c"))
        return v

    # ---------------------------------------------------------------- symbols, groups
    @_op
    def set_symbols(self, names: Iterable[str]):
        """Slot i := names[i]; the remaining slots are cleared. Auto mode is set when
        ``names`` is empty, cleared otherwise."""
        names = list(names)
        cap = yield from self._g_capacity()
        if len(names) > cap["symbols"]:
            raise ValueError(f"{len(names)} symbols exceed the bitstream's {cap['symbols']} "
                             "slots")
        packed = [pack_symbol(n) for n in names]
        yield from self._g_write("CONTROL", auto=0 if names else 1)
        for i in range(cap["symbols"]):
            if i < len(packed):
                yield from self._g_write_entry("SYMBOLS", i, name=packed[i], valid=1)
            else:
                yield from self._g_write_entry("SYMBOLS", i, name=0, valid=0)

    @_op
    def symbols(self):
        """Names of the slots in use, in slot order (slot i is ``symbols()[i]`` while the
        table is filled from slot 0, as the book does)."""
        cap = yield from self._g_capacity()
        out = []
        for i in range(cap["symbols"]):
            e = yield from self._g_read_entry("SYMBOLS", i)
            if not e["valid"]:
                break
            out.append(unpack_symbol(e["name"]))
        return out

    @_op
    def set_groups(self, groups: Iterable):
        """Feed group filter: ``"a.b.c.d:port"`` strings or ``(ip, port)`` pairs; the
        remaining entries are cleared (no entry: every group accepted)."""
        pairs = []
        for g in groups:
            if isinstance(g, str):
                ip, port = g.rsplit(":", 1)
                pairs.append((_ip(ip), int(port)))
            else:
                pairs.append((_ip(g[0]), int(g[1])))
        cap = yield from self._g_capacity()
        if len(pairs) > cap["groups"]:
            raise ValueError(f"{len(pairs)} feed groups exceed the bitstream's "
                             f"{cap['groups']} entries")
        for i in range(cap["groups"]):
            ip, port = pairs[i] if i < len(pairs) else (0, 0)
            yield from self._g_write_entry("FEED_GROUPS", i, ip=ip, port=port,
                                        valid=int(i < len(pairs)))

    # ---------------------------------------------------------------- triggers, risk
    @_op
    def set_trigger(self, slot: int, buy_price: int, sell_price: int, quantity: int,
                    enable_buy: bool = True, enable_sell: bool = True, rearm: int = 1,
                    ref_price: int = -1):
        """A trigger row as the emulator's ``Emulator.write_trigger`` takes it (writing the row
        re-arms both sides); ``ref_price`` >= 0 also sets the slot's collar reference."""
        yield from self._g_write_entry("TRIGGERS", slot, buy_price=buy_price,
                                    sell_price=sell_price, quantity=quantity,
                                    enable_buy=int(bool(enable_buy)),
                                    enable_sell=int(bool(enable_sell)), rearm=rearm)
        if ref_price >= 0:
            yield from self._g_write_entry("RISK_SLOTS", slot, ref_price=ref_price)

    @_op
    def set_risk(self, **params):
        """Global risk parameters by their emulator names (``core.RISK_PARAMS``)."""
        for p, v in params.items():
            if p not in RISK_PARAM_FIELDS:
                raise KeyError(f"unknown risk parameter {p!r} (known: {', '.join(RISK_PARAMS)})")
            reg, field = RISK_PARAM_FIELDS[p]
            yield from self._g_write(reg, **{field: int(v)})

    @_op
    def risk(self):
        """Global risk parameters, by their emulator names."""
        out = {}
        for p in RISK_PARAMS:
            reg, field = RISK_PARAM_FIELDS[p]
            out[p] = yield from self._g_read(reg, field)
        return out

    @_op
    def position(self, slot: int):
        return (yield from self._g_read_entry("POSITIONS", slot))["position"]

    @_op
    def set_position(self, slot: int, shares: int):
        yield from self._g_write_entry("POSITIONS", slot, position=shares)

    @_op
    def gross(self):
        """Gross exposure booked by the risk stage."""
        return (yield from self._g_read_raw("RISK_GROSS"))

    @_op
    def set_gross(self, value: int):
        """Load a reconciled gross exposure into the risk stage."""
        yield from self._g_write("RISK_GROSS_SET", gross=value)
        yield from self._g_write("RISK_CTRL", load_gross=1)

    @_op
    def clear_trip(self):
        """Re-arm the kill switch after a kill_after_rejects trip."""
        yield from self._g_write("RISK_CTRL", trip_clear=1)

    @_op
    def positions(self):
        cap = yield from self._g_capacity()
        out = []
        for i in range(cap["symbols"]):
            out.append((yield from self._g_position(i)))
        return out

    # ---------------------------------------------------------------- session, latency
    @_op
    def set_session(self, session: Any, orders: Any = None, load: bool = True):
        """The order session template from a :class:`tickwire.host.config.Session` (or a dict
        of its keys) and optionally :class:`~tickwire.host.config.Orders`; ``load`` pulses
        SESSION_CTRL.load so the egress takes seq, ip_id and first_user_ref."""
        s = asdict(session) if is_dataclass(session) else dict(session)
        w = self._g_write
        if "src_mac" in s:
            yield from w("SESSION_SRC_MAC", mac=_mac(s["src_mac"]))
        if "dst_mac" in s:
            yield from w("SESSION_DST_MAC", mac=_mac(s["dst_mac"]))
        if "src_ip" in s:
            yield from w("SESSION_SRC_IP", ip=_ip(s["src_ip"]))
        if "dst_ip" in s:
            yield from w("SESSION_DST_IP", ip=_ip(s["dst_ip"]))
        ports = {k: s[k] for k in ("src_port", "dst_port") if k in s}
        if ports:
            yield from w("SESSION_PORTS", **ports)
        if "seq" in s:
            yield from w("SESSION_SEQ", seq=s["seq"] & 0xFFFFFFFF)
        if "ack" in s:
            yield from w("SESSION_ACK", ack=s["ack"] & 0xFFFFFFFF)
        if "window" in s:
            yield from w("SESSION_WINDOW", window=s["window"])
        if "vlan" in s:
            vlan = s["vlan"]
            yield from w("SESSION_VLAN", vid=max(vlan, 0) if vlan is not None else 0,
                         enable=int(vlan is not None and vlan >= 0))
        if "ttl" in s:
            yield from w("SESSION_TTL", ttl=s["ttl"])
        if "ip_id" in s:
            yield from w("SESSION_IP_ID", ip_id=s["ip_id"] & 0xFFFF)
        if orders is not None:
            o = asdict(orders) if is_dataclass(orders) else dict(orders)
            if "first_user_ref" in o:
                yield from w("ORDERS_FIRST_USER_REF", first_user_ref=o["first_user_ref"])
            if "capacity" in o:
                yield from w("ORDERS_CAPACITY", capacity=ord(o["capacity"]))
        if load:
            yield from w("SESSION_CTRL", load=1)

    @_op
    def session(self):
        """The session template as :class:`~tickwire.host.config.Session` keys (plus the
        egress' next seq / ip_id / user_ref)."""
        from tickwire.host.framing import int_to_ip
        rd = self._g_read
        vlan = yield from rd("SESSION_VLAN")
        ports = yield from rd("SESSION_PORTS")
        mac = lambda v: ":".join(f"{b:02x}" for b in v.to_bytes(6, "big"))  # noqa: E731
        return {
            "src_mac": mac((yield from rd("SESSION_SRC_MAC", "mac"))),
            "dst_mac": mac((yield from rd("SESSION_DST_MAC", "mac"))),
            "src_ip": int_to_ip((yield from rd("SESSION_SRC_IP", "ip"))),
            "dst_ip": int_to_ip((yield from rd("SESSION_DST_IP", "ip"))),
            "src_port": ports.src_port, "dst_port": ports.dst_port,
            "seq": (yield from rd("SESSION_SEQ", "seq")),
            "ack": (yield from rd("SESSION_ACK", "ack")),
            "window": (yield from rd("SESSION_WINDOW", "window")),
            "vlan": vlan.vid if vlan.enable else -1,
            "ttl": (yield from rd("SESSION_TTL", "ttl")),
            "ip_id": (yield from rd("SESSION_IP_ID", "ip_id")),
            "first_user_ref": (yield from rd("ORDERS_FIRST_USER_REF", "first_user_ref")),
            "capacity": chr((yield from rd("ORDERS_CAPACITY", "capacity"))),
            "seq_next": (yield from rd("SESSION_SEQ_NEXT", "seq")),
            "ip_id_next": (yield from rd("SESSION_IP_ID_NEXT", "ip_id")),
            "next_user_ref": (yield from rd("ORDERS_NEXT_USER_REF", "user_ref")),
        }

    @_op
    def latency(self):
        """``{"count", "sum", "min", "max", "last", "bin_shift", "bins": [...]}``."""
        cap = yield from self._g_capacity()
        cfg = yield from self._g_read("LAT_CONFIG")
        out = {"count": (yield from self._g_read_raw("LAT_COUNT")),
               "sum": (yield from self._g_read_raw("LAT_SUM")),
               "min": (yield from self._g_read_raw("LAT_MIN")),
               "max": (yield from self._g_read_raw("LAT_MAX")),
               "last": (yield from self._g_read_raw("LAT_LAST")),
               "bin_shift": cfg.bin_shift, "bins": []}
        for i in range(cap["hist_bins"]):
            out["bins"].append((yield from self._g_read_entry("LAT_HIST", i))["count"])
        return out

    # ---------------------------------------------------------------- configuration
    @_op
    def apply_config(self, cfg, *, check: bool = True, enable: bool = True,
                     reset: bool = True, reset_positions: bool = True,
                     check_ip_checksum: bool = True, track_sequence: bool = True):
        """Map a :class:`tickwire.host.config.Config` onto the registers.

        The identity is checked (``check``) and the config must fit the bitstream's
        capacities. The order path is disabled (CONTROL.enable = 0) while the feed
        configuration and groups, the symbols (or auto mode when none are configured), the
        kill switch and global risk parameters, a soft reset of the order path (``reset``),
        every slot's risk row (enable clear for
        ``risk.disabled`` names, limits, reference price of static triggers), the positions
        (zeroed, ``reset_positions``), the triggers (the ``static`` strategy's rows for
        configured symbols; every other row disabled -- the host loop writes band/model
        triggers) and the session template (then SESSION_CTRL.load) are written; then it is
        enabled (``enable``). In auto mode the slots' names are learned by the book, so
        ``risk.disabled`` and static triggers are the host loop's to apply once it sees them.
        """
        cfg.validate()
        if check:
            yield from self._g_check_identity()
        cap = yield from self._g_capacity()
        if len(cfg.symbols) > cap["symbols"]:
            raise ValueError(f"config has {len(cfg.symbols)} symbols, the bitstream "
                             f"{cap['symbols']} slots")
        if len(cfg.feed.groups) > cap["groups"]:
            raise ValueError(f"config has {len(cfg.feed.groups)} feed groups, the bitstream "
                             f"{cap['groups']} entries")
        r = cfg.risk
        yield from self._g_write("CONTROL", enable=0, kill=int(r.kill),
                              auto=0 if cfg.symbols else 1,
                              wire_triggers=int(cfg.strategy.source == "wire"))
        yield from self._g_write("FEED_CONFIG", check_ip_checksum=int(check_ip_checksum),
                              track_sequence=int(track_sequence))
        yield from self._g_set_groups(cfg.feed.groups)
        yield from self._g_set_symbols(cfg.symbols)
        yield from self._g_set_risk(**{p: int(getattr(r, p)) for p in RISK_PARAMS})
        if reset:
            # a fresh order path: buckets refilled to the burst just written, no trip, no
            # duplicate records, queue and latency statistics empty (the gateware holds the
            # following writes until its clear sweep is done)
            yield from self._g_write("CONTROL", soft_reset=1)
        disabled = set(r.disabled)
        s = cfg.strategy
        for i in range(cap["symbols"]):
            name = cfg.symbols[i] if i < len(cfg.symbols) else None
            trig = s.triggers.get(name) if (s.kind == "static" and name) else None
            ref = int(trig.get("ref_price", -1)) if trig else -1
            yield from self._g_write_entry("RISK_SLOTS", i, enable=int(name not in disabled),
                                        ref_price=max(ref, 0), max_long=r.max_long,
                                        max_short=r.max_short)
            if reset_positions:
                yield from self._g_write_entry("POSITIONS", i, position=0)
            if trig is not None:
                yield from self._g_write_entry(
                    "TRIGGERS", i, buy_price=int(trig.get("buy", 0)),
                    sell_price=int(trig.get("sell", 0)),
                    quantity=int(trig.get("quantity", s.quantity)),
                    enable_buy=int("buy" in trig), enable_sell=int("sell" in trig),
                    rearm=int(trig.get("rearm", s.rearm)))
            else:
                yield from self._g_write_entry("TRIGGERS", i, buy_price=0, sell_price=0,
                                            quantity=0, enable_buy=0, enable_sell=0,
                                            rearm=s.rearm)
        yield from self._g_set_session(cfg.session, cfg.orders, load=True)
        if enable:
            yield from self._g_write("CONTROL", enable=1)


# generated per-table accessors: read_<entry>(i), write_<entry>(i, **fields)
def _table_ops(t: Table):
    def rd(self, index: int):
        return (yield from self._g_read_entry(t.name, index))

    def wr(self, index: int, **fields):
        yield from self._g_write_entry(t.name, index, **fields)

    fl = ", ".join(f.name for f in t.fields)
    rd.__name__, wr.__name__ = f"read_{t.entry}", f"write_{t.entry}"
    rd.__doc__ = f"Entry ``index`` of {t.name} as a dict ({fl})."
    wr.__doc__ = (f"Write entry ``index`` of {t.name} ({fl}); fields not given keep their "
                  "value.")
    return rd, wr


for _t in REGMAP.tables.values():
    for _fn in _table_ops(_t):
        if _fn.__name__ in _OPS:
            raise RuntimeError(f"generated accessor {_fn.__name__} clashes")
        setattr(_Ops, _fn.__name__, _fn)
        _OPS.append(_fn.__name__)

# the generator of operation X is _Ops._g_X (operations call each other through those);
# the drivers' X runs it against their bus
for _name in _OPS:
    setattr(_Ops, "_g_" + _name, getattr(_Ops, _name))
    delattr(_Ops, _name)


# ------------------------------------------------------------------------------------------
# Sync and async drivers
# ------------------------------------------------------------------------------------------

def _run_sync(bus, gen):
    try:
        req = next(gen)
        while True:
            if req[0] == "r":
                res = int(bus.read32(req[1]))
            else:
                bus.write32(req[1], req[2])
                res = None
            req = gen.send(res)
    except StopIteration as stop:
        return stop.value


async def _run_async(bus, gen):
    try:
        req = next(gen)
        while True:
            if req[0] == "r":
                res = int(await bus.read32(req[1]))
            else:
                await bus.write32(req[1], req[2])
                res = None
            req = gen.send(res)
    except StopIteration as stop:
        return stop.value


class Driver(_Ops):
    """Synchronous driver: ``bus.read32(addr)`` / ``bus.write32(addr, value)``.

    Every register also reads as an attribute named after it in lower case (``drv.control``,
    ``drv.cnt_frames``), returning a :class:`RegValue`; assigning an int writes it raw,
    assigning a dict writes those fields.
    """

    def __init__(self, bus, regmap: RegisterMap = REGMAP):
        super().__init__(regmap)
        self.bus = bus


class AsyncDriver(_Ops):
    """The same operations as coroutines, over a bus whose ``read32``/``write32`` are
    coroutines (``await drv.counters()``)."""

    def __init__(self, bus, regmap: RegisterMap = REGMAP):
        super().__init__(regmap)
        self.bus = bus


def _wrap_sync(name):
    gen_fn = getattr(_Ops, "_g_" + name)

    @functools.wraps(gen_fn)
    def method(self, *args, **kwargs):
        return _run_sync(self.bus, gen_fn(self, *args, **kwargs))
    return method


def _wrap_async(name):
    gen_fn = getattr(_Ops, "_g_" + name)

    @functools.wraps(gen_fn)
    async def method(self, *args, **kwargs):
        return await _run_async(self.bus, gen_fn(self, *args, **kwargs))
    return method


for _name in _OPS:
    setattr(Driver, _name, _wrap_sync(_name))
    setattr(AsyncDriver, _name, _wrap_async(_name))


def _reg_property(reg: Register):
    def get(self):
        return self.read(reg.name)

    def set_(self, value):
        if isinstance(value, dict):
            self.write(reg.name, **value)
        else:
            self.write(reg.name, int(value))
    return property(get, set_, doc=reg.doc)


for _r in REGMAP.registers.values():
    _attr = _r.name.lower()
    if hasattr(Driver, _attr):
        raise RuntimeError(f"register attribute {_attr} clashes with a Driver method")
    setattr(Driver, _attr, _reg_property(_r))


def apply_config(drv, cfg, **kwargs):
    """Map ``cfg`` (:class:`tickwire.host.config.Config`) onto the registers through ``drv``
    (see :meth:`Driver.apply_config`; with an :class:`AsyncDriver` this returns a
    coroutine)."""
    return drv.apply_config(cfg, **kwargs)


# ------------------------------------------------------------------------------------------
# Buses
# ------------------------------------------------------------------------------------------

class MMIOBus:
    """Adapter for a PYNQ ``MMIO`` (``read(offset)``/``write(offset, value)``) or, with
    ``xrt=True``, an XRT ``xrt.ip`` (``read_register``/``write_register``)."""

    def __init__(self, mmio, xrt: bool = False):
        self.mmio = mmio
        self.xrt = xrt

    def read32(self, addr: int) -> int:
        return int(self.mmio.read_register(addr) if self.xrt else self.mmio.read(addr))

    def write32(self, addr: int, value: int) -> None:
        if self.xrt:
            self.mmio.write_register(addr, value)
        else:
            self.mmio.write(addr, value)


class FakeBus:
    """An exact Python model of the register file (the bus rules of
    :mod:`tickwire.spec.regmap`), with the hardware side exposed for tests:

    * ``inputs[port]``: values of the ``ro`` input ports (counters, status, ...);
      :meth:`fire` sets ``w1c`` sticky bits as the hardware's set pulses would;
    * :meth:`outputs`: current values of the ``rw`` output ports;
    * ``pulses``: ``(port, value)`` of every ``wo`` pulse; ``table_writes``:
      ``(table, index, {field: value})`` of every committed row of a memory/port table;
    * ``entries[table][i]``: the rows of ``array`` tables, the shadow rows of ``memory`` tables
      and, for ``port`` tables, the consumer's rows (committed writes land there; tests set the
      read-only ones, e.g. histogram bins), as raw row integers.

    ``write32(addr, value, strobe=0xF)`` honours byte strobes like the gateware.
    """

    def __init__(self, regmap: RegisterMap = REGMAP, **capacity):
        self.regmap = rm = regmap
        self.cap = rm.capacity(**capacity)
        self.mask = (1 << rm.addr_width) - 1
        self.values: dict[tuple[str, str], int] = {}
        self.inputs: dict[str, int] = {}
        self.sticky: dict[tuple[str, str], int] = {}
        for r in rm.registers.values():
            for f in r.fields:
                if f.access == "rw":
                    self.values[(r.name, f.name)] = f.encode(f.reset)
                elif f.access == "w1c":
                    self.sticky[(r.name, f.name)] = 0
                elif f.access == "ro" and f.hw == "port":
                    self.inputs[f.port] = 0
        self.stage64: dict[str, int | None] = {r.name: None for r in rm.registers.values()
                                               if r.words == 2}
        self.stage: dict[str, int] = {t.name: t.reset & ((1 << t.row_bits) - 1)
                                      for t in rm.tables.values()}
        self.entries: dict[str, list[int]] = {
            t.name: [t.reset if t.kind == "memory" else 0] * self.cap[t.size]
            for t in rm.tables.values()}
        self.latch: tuple[int, int] | None = None     # (base word, captured value)
        self.cycles = 0
        self.build_id = 0          # BUILD_ID: what the modelled register file was built with
        self.pulses: list[tuple[str, int]] = []
        self.table_writes: list[tuple[str, int, dict]] = []

    # ---------------------------------------------------------------- hardware side
    def fire(self, port: str, value: int = 1) -> None:
        """Set pulse on a ``w1c`` field's input port."""
        r, f = self.regmap.field_of_port(port)
        self.sticky[(r.name, f.name)] |= value & ((1 << f.width) - 1)

    def outputs(self) -> dict[str, int]:
        out = {}
        for r in self.regmap.registers.values():
            for f in r.fields:
                if f.access == "rw" and f.hw == "port":
                    out[f.port] = f.decode(self.values[(r.name, f.name)])
        return out

    def entry(self, table: str, index: int) -> dict[str, int]:
        t = self.regmap.table(table)
        return {f.name: f.extract(self.entries[table][index]) for f in t.fields}

    def set_entry(self, table: str, index: int, **fields) -> None:
        t = self.regmap.table(table)
        row = self.entries[table][index]
        for k, v in fields.items():
            f = t.field(k)
            row = (row & ~f.mask) | (f.encode(v) << f.offset)
        self.entries[table][index] = row

    # ---------------------------------------------------------------- register values
    def _field_raw(self, r: Register, f: Field) -> int:
        if f.access == "rw":
            return self.values[(r.name, f.name)]
        if f.access == "w1c":
            return self.sticky[(r.name, f.name)]
        if f.access == "wo":
            return 0
        if f.hw == "port":
            return f.encode(self.inputs.get(f.port, 0)) if f.signed else \
                int(self.inputs.get(f.port, 0)) & ((1 << f.width) - 1)
        if f.hw == "cycles":
            return self.cycles & ((1 << f.width) - 1)
        return self.regmap.const_value(f, self.cap, self.build_id)

    def reg_value(self, r: Register) -> int:
        v = 0
        for f in r.fields:
            v |= self._field_raw(r, f) << f.offset
        return v

    def _set_rw(self, r: Register, value: int) -> None:
        for f in r.fields:
            if f.access == "rw":
                self.values[(r.name, f.name)] = (value >> f.offset) & ((1 << f.width) - 1)

    def _table_hit(self, hit):
        _, t, index, word = hit
        if index >= self.cap[t.size] or word >= t.words:
            return None
        return t, index, word

    # ---------------------------------------------------------------- bus
    def read32(self, addr: int) -> int:
        self.cycles += 4
        a = addr & self.mask & ~3
        hit = self.regmap.decode(a)
        word_addr = a // 4
        if hit is None:
            raise BusError("read", addr)
        if hit[0] == "reg":
            _, r, k = hit
            val = self.reg_value(r)
            live = (val >> (32 * k)) & r.word_mask(k, ("rw", "ro", "w1c"))
            if r.words == 1:
                return live
            if k == 0:
                self.latch = (word_addr, val >> 32)
                return live
            if self.latch is not None and self.latch[0] + k == word_addr:
                return (self.latch[1] >> (32 * (k - 1))) & 0xFFFFFFFF
            return live
        th = self._table_hit(hit)
        if th is None:
            raise BusError("read", addr)
        t, index, word = th
        row = self.entries[t.name][index]
        live = (row >> (32 * word)) & 0xFFFFFFFF
        if t.words == 1:
            return live
        if word == 0:
            self.latch = (word_addr, row >> 32)
            return live
        if self.latch is not None and self.latch[0] + word == word_addr:
            return (self.latch[1] >> (32 * (word - 1))) & 0xFFFFFFFF
        return live

    def write32(self, addr: int, value: int, strobe: int = 0xF) -> None:
        self.cycles += 4
        self.latch = None
        a = addr & self.mask & ~3
        value &= 0xFFFFFFFF
        wmask = sum(0xFF << (8 * i) for i in range(4) if strobe >> i & 1)
        hit = self.regmap.decode(a)
        if hit is None:
            raise BusError("write", addr)
        if hit[0] == "reg":
            _, r, k = hit
            if not r.word_mask(k, ("rw", "w1c", "wo")):
                raise BusError("write", addr)
            rwm = r.word_mask(k, ("rw",)) & wmask
            cur = self.reg_value(r)
            cur_k = (cur >> (32 * k)) & 0xFFFFFFFF
            if r.words == 1:
                self._set_rw(r, (cur_k & ~rwm) | (value & rwm))
                for f in r.fields:
                    bits = ((value & wmask) >> f.offset) & ((1 << f.width) - 1)
                    if f.access == "w1c":
                        self.sticky[(r.name, f.name)] &= ~bits
                    elif f.access == "wo" and bits:
                        self.pulses.append((f.port, bits))
            elif k == 0:
                st = self.stage64[r.name]
                base = st if st is not None else cur_k
                self.stage64[r.name] = (base & ~rwm) | (value & rwm)
            else:
                st = self.stage64[r.name]
                lo = st if st is not None else cur & 0xFFFFFFFF
                self.stage64[r.name] = None
                self._set_rw(r, ((((cur_k & ~rwm) | (value & rwm))) << 32) | lo)
            return
        th = self._table_hit(hit)
        if th is None or not th[0].writable:
            raise BusError("write", addr)
        t, index, word = th
        st = self.stage[t.name]
        old = (st >> (32 * word)) & 0xFFFFFFFF
        new = (old & ~wmask) | (value & wmask)
        st = (st & ~(0xFFFFFFFF << (32 * word))) | (new << (32 * word))
        self.stage[t.name] = st
        if word != t.words - 1:
            return
        rw = sum(f.mask for f in t.fields if f.access == "rw")
        row = st & rw
        if t.kind == "port":
            self.entries[t.name][index] = (self.entries[t.name][index] & ~rw) | row
        else:
            self.entries[t.name][index] = row
        if t.kind != "array":
            self.table_writes.append((t.name, index, {f.name: f.extract(row) for f in t.fields
                                                      if f.access == "rw"}))
