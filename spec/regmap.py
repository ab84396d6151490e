"""The tickwire register map, described once.

Everything the host can see or set over the AXI4-Lite control port is declared here, in plain
Python (no Amaranth import, so the host driver can use it on a board without the toolchain):
names, addresses, fields, access, reset values and documentation. From this one description

* :class:`tickwire.hw.regmap.axil.RegisterFile` builds the AXI4-Lite register file,
* :mod:`tickwire.host.driver` builds the host driver's accessors (and its bus model),
* :mod:`tickwire.hw.regmap.generate` writes ``docs/registers.md`` and ``docs/tickwire_regs.h``,

and :attr:`RegisterMap.hash` (the ``MAP_HASH`` register) is computed from its canonical form,
so a host refuses a bitstream built from a different map.

Names come from :mod:`tickwire.spec.counters` (feed counters, book/trigger/risk counters,
global risk parameters), capacities from :mod:`tickwire.spec.capacity`, reset values from
the defaults of :mod:`tickwire.host.config`.

The bus rules every part follows are :data:`BUS_RULES` (the register file implements them,
:class:`tickwire.host.driver.FakeBus` models them, docs/registers.md states them).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

from tickwire.host import config as _config

from .capacity import GATEWARE as CAPACITY_DEFAULTS
from .counters import (BOOK_COUNTERS, COUNTER_NAMES, FEED_COUNTERS, LINE_FRAME_COUNTERS,
                       RISK_PARAMS)
from .values import ip_to_int as _ip, mac_to_int as _mac

__all__ = [
    "BUS_RULES", "ACCESS", "HW_KINDS", "TABLE_KINDS", "Field", "Register", "Table", "Block",
    "RegisterMap", "REGMAP", "MAP_ID", "MAP_VERSION", "CAPACITY_DEFAULTS", "FEED_COUNTERS",
    "BOOK_COUNTERS", "COUNTER_NAMES", "LINE_COUNTERS", "FEED_HW_COUNTERS",
    "ORDER_HW_COUNTERS", "RISK_PARAMS", "RISK_PARAM_FIELDS", "COUNTER_REGISTERS",
    "build_regmap", "STICKY_SOURCES",
]

#: The bus rules (Markdown; docs/registers.md quotes them).
BUS_RULES = """\
* AXI4-Lite, 32-bit data, byte addresses, word aligned (address bits 1:0 are ignored);
  byte strobes are honoured on every write; one transaction at a time.
* An access to an address that maps to nothing returns SLVERR (reads return 0); so does a
  write to a word without a writable bit and an access to a table entry at or above the
  build's capacity (or to a word past the entry's row).
* Multi-word values (64-bit registers, table rows) are read and written low word first.
  *Read*: reading word 0 captures the value's other words; reading them afterwards returns
  the captured copy, so a 64-bit counter reads without tearing. The capture lasts until
  word 0 of another multi-word value is read or any write is made; a higher word read
  without a capture reads the live value.
  *Write* (64-bit registers): a write of the low word is staged; the write of the high
  word commits both halves at once (the staged low word if there is one, else the
  current one).
  *Write* (tables): each table has one staging row; a write to a word of an entry updates
  that word of the staging row, and the write of the entry's *last* word commits the whole
  staging row to that entry (one write pulse on the table's port). Write every word of a
  row, in ascending order.
* Field access: `rw` read/write; `ro` read only (a write to a word holding only read-only
  bits is SLVERR); `w1c` sticky bit set by the hardware, cleared by writing 1 (a set in
  the same cycle wins); `wo` write only: a one-cycle pulse of the written value, reads 0.
  Bits that belong to no field read 0 and ignore writes.
"""

#: Field access kinds.
ACCESS = ("rw", "ro", "w1c", "wo")
#: How a field meets the hardware: ``port`` a port of the register file (rw/wo: an output,
#: ro/w1c: an input); ``const`` a constant (the reset value); ``param`` a build parameter of
#: the register file (see :data:`CAPACITY_DEFAULTS`); ``hash`` the map hash; ``cycles`` the
#: register file's free-running cycle counter; ``build`` the build id (a build parameter of the
#: register file: a digest of the sources and build parameters, 0 when not given); ``none`` a
#: plain storage register (no port).
HW_KINDS = ("port", "const", "param", "hash", "cycles", "build", "none")
#: Table storage kinds, see :class:`Table`.
TABLE_KINDS = ("array", "memory", "port")

#: ID register value: "TWIR" (most significant byte first).
MAP_ID = int.from_bytes(b"TWIR", "big")
#: Map version (major, minor), typed by hand: bump minor for additions, major for changes.
#: MAP_HASH catches whatever a forgotten bump would miss.
MAP_VERSION = (2, 5)



# ------------------------------------------------------------------------------------ classes

def _ident(name: str, what: str, upper: bool) -> None:
    ok = name.replace("_", "").isalnum() and name.isascii() and not name[0].isdigit()
    if not ok or (name != name.upper() if upper else name != name.lower()):
        raise ValueError(f"{what} name {name!r}: must be {'UPPER' if upper else 'lower'}_snake")


@dataclass(frozen=True)
class Field:
    """A bit field of a register or a table row.

    ``offset`` is the bit offset in the register (or row); ``None`` packs the field right after
    the previous one. ``signed`` fields are two's complement (ports are signed). ``hw``: see
    :data:`HW_KINDS`. ``port`` overrides the register file's port name (default
    ``<register>_<field>``, or ``<register>`` for a register with one field, all lower case).
    """
    name: str
    width: int
    access: str
    reset: int = 0
    doc: str = ""
    offset: int | None = None
    signed: bool = False
    hw: str = "port"
    port: str | None = None

    def __post_init__(self):
        _ident(self.name, "field", upper=False)
        if self.access not in ACCESS:
            raise ValueError(f"field {self.name}: access {self.access!r} not in {ACCESS}")
        if self.hw not in HW_KINDS:
            raise ValueError(f"field {self.name}: hw {self.hw!r} not in {HW_KINDS}")
        if not 1 <= self.width <= 64:
            raise ValueError(f"field {self.name}: width {self.width} not in 1..64")
        lo, hi = (-(1 << self.width - 1), (1 << self.width - 1) - 1) if self.signed \
            else (0, (1 << self.width) - 1)
        if not lo <= self.reset <= hi:
            raise ValueError(f"field {self.name}: reset {self.reset} does not fit {self.width} "
                             f"{'signed ' if self.signed else ''}bits")
        if self.hw in ("const", "param", "hash", "cycles", "build") and self.access != "ro":
            raise ValueError(f"field {self.name}: hw={self.hw} needs access ro")
        if self.hw == "none" and self.access != "rw":
            raise ValueError(f"field {self.name}: hw=none needs access rw")

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.offset

    @property
    def readable(self) -> bool:
        return self.access != "wo"

    @property
    def writable(self) -> bool:
        return self.access in ("rw", "w1c", "wo")

    def encode(self, value: int) -> int:
        """``value`` (range-checked) as the field's raw bits, not shifted."""
        v = int(value)
        lo, hi = (-(1 << self.width - 1), (1 << self.width - 1) - 1) if self.signed \
            else (0, (1 << self.width) - 1)
        if not lo <= v <= hi:
            raise ValueError(f"field {self.name}: {value} does not fit {self.width} "
                             f"{'signed ' if self.signed else 'unsigned '}bits")
        return v & ((1 << self.width) - 1)

    def decode(self, raw: int) -> int:
        """The field's value from its raw (unshifted) bits."""
        v = int(raw) & ((1 << self.width) - 1)
        if self.signed and v >> (self.width - 1):
            v -= 1 << self.width
        return v

    def extract(self, value: int) -> int:
        """The field's value out of a whole register/row value."""
        return self.decode(int(value) >> self.offset)


def _place(fields: Sequence[Field], what: str) -> tuple[Field, ...]:
    out, pos, used, names = [], 0, 0, set()
    for f in fields:
        if f.name in names:
            raise ValueError(f"{what}: field {f.name} twice")
        names.add(f.name)
        off = pos if f.offset is None else f.offset
        f = dataclasses.replace(f, offset=off)
        if used & f.mask:
            raise ValueError(f"{what}: field {f.name} overlaps another field")
        if (off // 32) != ((off + f.width - 1) // 32) and f.width <= 32 and off % 32:
            raise ValueError(f"{what}: field {f.name} ({f.width} bits at {off}) straddles a "
                             "word boundary")
        used |= f.mask
        pos = off + f.width
        out.append(f)
    return tuple(out)


class _Fields:
    """Field lookup shared by registers and table rows."""

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{type(self).__name__.lower()} {self.name} has no field {name!r} "
                       f"(fields: {', '.join(f.name for f in self.fields)})")


def _word_mask(fields, k: int, kinds) -> int:
    m = 0
    for f in fields:
        if f.access in kinds:
            m |= f.mask
    return (m >> (32 * k)) & 0xFFFFFFFF


def _reset(fields, kinds) -> int:
    v = 0
    for f in fields:
        if f.access in kinds:
            v |= (f.reset & ((1 << f.width) - 1)) << f.offset
    return v


class Register(_Fields):
    """A 32- or 64-bit register at byte ``offset`` (None: allocated by its :class:`Block`).

    A register whose fields reach past bit 31 is 64 bits wide and takes two words (low word
    first, see the bus rules in the module documentation); 64-bit registers hold ``rw`` or
    ``ro`` fields only.
    """

    def __init__(self, name: str, offset: int | None, fields: Iterable[Field], doc: str = "",
                 *, width: int | None = None):
        _ident(name, "register", upper=True)
        self.name = name
        self.offset = offset
        self.doc = doc
        self.fields = _place(list(fields), f"register {name}")
        if not self.fields:
            raise ValueError(f"register {name}: no fields")
        top = max(f.offset + f.width for f in self.fields)
        self.width = width or (32 if top <= 32 else 64)
        if self.width not in (32, 64) or top > self.width:
            raise ValueError(f"register {name}: fields reach bit {top}, width {self.width}")
        if self.width == 64 and any(f.access in ("w1c", "wo") for f in self.fields):
            raise ValueError(f"register {name}: 64-bit registers hold rw/ro fields only")
        for f in self.fields:
            if f.port is None:
                port = name.lower() if len(self.fields) == 1 else f"{name.lower()}_{f.name}"
                object.__setattr__(f, "port", port)

    words = property(lambda self: self.width // 32)
    size = property(lambda self: self.width // 8)

    @property
    def access(self) -> str:
        kinds = {f.access for f in self.fields}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    def word_mask(self, k: int, kinds: Iterable[str] = ACCESS) -> int:
        """Bits of word ``k`` held by fields of the given access kinds (word-relative)."""
        return _word_mask(self.fields, k, kinds)

    @property
    def reset(self) -> int:
        return _reset(self.fields, ("rw", "ro"))

    def __repr__(self):
        return f"Register({self.name}, 0x{self.offset:04x}, {self.width} bits)"


class Table(_Fields):
    """Per-entry rows (per slot, per group, per bin) in an address window.

    Entry ``i`` occupies ``stride`` bytes at ``base + i * stride``; its row (the fields, bit
    offsets relative to the row) takes the first ``words`` words. ``entries`` is the size of the
    window; the build parameter named by ``size`` gives the entries that exist (accesses beyond
    are SLVERR). Writes go through the table's staging row and commit on the row's last word.

    ``kind`` says where the table lives:

    * ``array``: in flip-flops of the register file, all entries presented at once on one
      array port (small tables, e.g. the feed group filter).
    * ``memory``: the consumer keeps the table; committed rows reach it through a write port
      (``we``, ``index`` and one member per field) and the register file keeps a shadow copy
      in a memory for read-back.
    * ``port``: the consumer keeps the table and answers reads: the register file drives
      ``raddr`` and reads the members ``r_<field>`` one cycle later (tables the fabric
      updates, e.g. positions; ``rw`` fields still have the write port).

    ``entry`` names one row for the driver (``drv.write_<entry>(i, ...)``).
    """

    def __init__(self, name: str, base: int | None, entries: int, stride: int,
                 fields: Iterable[Field], doc: str = "", *, kind: str = "memory",
                 size: str = "symbols", entry: str | None = None, port: str | None = None):
        _ident(name, "table", upper=True)
        self.name = name
        self.base = base
        self.entries = entries
        self.stride = stride
        self.doc = doc
        self.kind = kind
        self.size = size
        self.entry = entry or name.lower()
        self.port = port or name.lower()
        if kind not in TABLE_KINDS:
            raise ValueError(f"table {name}: kind {kind!r} not in {TABLE_KINDS}")
        if size not in CAPACITY_DEFAULTS:
            raise ValueError(f"table {name}: size {size!r} is not a build parameter")
        self.fields = _place(list(fields), f"table {name}")
        for f in self.fields:
            if f.access not in ("rw", "ro") or f.hw != "port":
                raise ValueError(f"table {name}: field {f.name} must be rw/ro with hw=port")
            if kind != "port" and f.access == "ro":
                raise ValueError(f"table {name}: ro field {f.name} needs kind='port'")
        top = max(f.offset + f.width for f in self.fields)
        self.words = (top + 31) // 32
        if stride & (stride - 1) or stride < 4 * self.words:
            raise ValueError(f"table {name}: stride {stride} must be a power of two >= "
                             f"{4 * self.words}")
        if entries & (entries - 1) or entries < 1:
            raise ValueError(f"table {name}: entries {entries} must be a power of two")

    size_bytes = property(lambda self: self.entries * self.stride)
    row_bits = property(lambda self: 32 * self.words)

    @property
    def writable(self) -> bool:
        return any(f.access == "rw" for f in self.fields)

    def word_mask(self, k: int, kinds: Iterable[str] = ("rw", "ro")) -> int:
        return _word_mask(self.fields, k, kinds)

    @property
    def reset(self) -> int:
        return _reset(self.fields, ACCESS)

    def address(self, index: int, word: int = 0) -> int:
        return self.base + index * self.stride + 4 * word

    def __repr__(self):
        return (f"Table({self.name}, 0x{self.base:04x}, {self.entries} x {self.stride} bytes, "
                f"{self.kind})")


class Block:
    """A group of registers (and tables) for the documentation, starting at ``base``.
    Registers without an offset are placed one after the other (64-bit ones 8-byte aligned)."""

    def __init__(self, name: str, base: int, items: Iterable[Register | Table], doc: str = ""):
        self.name = name
        self.base = base
        self.doc = doc
        self.items = list(items)
        pos = base
        for it in self.items:
            if isinstance(it, Register):
                if it.offset is None:
                    pos = (pos + it.size - 1) // it.size * it.size
                    it.offset = pos
                pos = it.offset + it.size
            else:
                if it.base is None:
                    al = it.size_bytes
                    it.base = (pos + al - 1) // al * al
                pos = it.base + it.size_bytes


class RegisterMap:
    """The whole map: blocks of registers and tables in an ``addr_width``-bit byte space."""

    def __init__(self, name: str, blocks: Iterable[Block], *, addr_width: int,
                 version: tuple[int, int] = MAP_VERSION, map_id: int = MAP_ID):
        self.name = name
        self.blocks = list(blocks)
        self.addr_width = addr_width
        self.version = version
        self.map_id = map_id
        self.registers: dict[str, Register] = {}
        self.tables: dict[str, Table] = {}
        for b in self.blocks:
            for it in b.items:
                d = self.registers if isinstance(it, Register) else self.tables
                if it.name in self.registers or it.name in self.tables:
                    raise ValueError(f"{it.name} defined twice")
                d[it.name] = it
        self._check()
        self._words: dict[int, tuple[Register, int]] = {}
        for r in self.registers.values():
            for k in range(r.words):
                self._words[r.offset // 4 + k] = (r, k)
        self.hash = int.from_bytes(hashlib.sha256(self.canonical().encode()).digest()[:4], "big")

    # -------------------------------------------------------------------- checks
    def _check(self) -> None:
        spans = []
        for r in self.registers.values():
            if r.offset % r.size:
                raise ValueError(f"{r.name}: offset 0x{r.offset:x} not {r.size}-byte aligned")
            spans.append((r.offset, r.offset + r.size, r.name))
        for t in self.tables.values():
            if t.base % t.size_bytes:
                raise ValueError(f"{t.name}: base 0x{t.base:x} not aligned to its size")
            spans.append((t.base, t.base + t.size_bytes, t.name))
        spans.sort()
        for (a0, a1, n0), (b0, b1, n1) in zip(spans, spans[1:]):
            if b0 < a1:
                raise ValueError(f"{n0} and {n1} overlap")
        if spans and spans[-1][1] > 1 << self.addr_width:
            raise ValueError(f"{spans[-1][2]} lies beyond the {self.addr_width}-bit space")
        ports = {}
        for r in self.registers.values():
            for f in r.fields:
                if f.hw == "port":
                    if f.port in ports:
                        raise ValueError(f"port {f.port} of {r.name}.{f.name} also used by "
                                         f"{ports[f.port]}")
                    ports[f.port] = f"{r.name}.{f.name}"
        for t in self.tables.values():
            if t.port in ports:
                raise ValueError(f"port {t.port} of table {t.name} also used by {ports[t.port]}")
            ports[t.port] = t.name
        for kind in ("hash", "cycles", "build"):
            if sum(f.hw == kind for r in self.registers.values() for f in r.fields) > 1:
                raise ValueError(f"more than one hw={kind} field")

    # -------------------------------------------------------------------- lookups
    def register(self, name: str) -> Register:
        try:
            return self.registers[name]
        except KeyError:
            raise KeyError(f"no register {name!r}") from None

    def table(self, name: str) -> Table:
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"no table {name!r}") from None

    def table_by_entry(self, entry: str) -> Table:
        for t in self.tables.values():
            if t.entry == entry:
                return t
        raise KeyError(f"no table with entries named {entry!r}")

    def field_of_port(self, port: str) -> tuple[Register, Field]:
        for r in self.registers.values():
            for f in r.fields:
                if f.port == port:
                    return r, f
        raise KeyError(f"no field with port {port!r}")

    def decode(self, addr: int):
        """What a byte address maps to: ``("reg", Register, word)``, ``("table", Table, index,
        word)`` (index/word may be out of range: callers check against the capacity) or
        ``None``."""
        if addr % 4 or not 0 <= addr < 1 << self.addr_width:
            return None
        hit = self._words.get(addr // 4)
        if hit is not None:
            return ("reg", hit[0], hit[1])
        for t in self.tables.values():
            if t.base <= addr < t.base + t.size_bytes:
                rel = addr - t.base
                return ("table", t, rel // t.stride, (rel % t.stride) // 4)
        return None

    @property
    def size(self) -> int:
        ends = [r.offset + r.size for r in self.registers.values()]
        ends += [t.base + t.size_bytes for t in self.tables.values()]
        return max(ends)

    # -------------------------------------------------------------------- identity
    def canonical(self) -> str:
        """The map's layout as text: names, addresses, widths, bit offsets, access,
        signedness, hardware kind and table geometry -- everything a driver depends on, and
        nothing else (no documentation, no reset values). MAP_HASH is its SHA-256, truncated
        to 32 bits."""
        out = [f"map {self.name} id=0x{self.map_id:08x} addr_width={self.addr_width}"]
        for r in sorted(self.registers.values(), key=lambda r: r.offset):
            out.append(f"reg {r.name} 0x{r.offset:04x} {r.width}")
            for f in r.fields:
                out.append(f"  {f.name} {f.offset} {f.width} {f.access} "
                           f"{'s' if f.signed else 'u'} {f.hw}")
        for t in sorted(self.tables.values(), key=lambda t: t.base):
            out.append(f"table {t.name} 0x{t.base:04x} {t.entries} {t.stride} {t.kind} "
                       f"{t.size} {t.entry}")
            for f in t.fields:
                out.append(f"  {f.name} {f.offset} {f.width} {f.access} "
                           f"{'s' if f.signed else 'u'} {f.hw}")
        return "\n".join(out) + "\n"

    # -------------------------------------------------------------------- parameters
    def capacity(self, **params) -> dict[str, int]:
        """Build parameters (defaults: :data:`CAPACITY_DEFAULTS`), checked, plus the derived
        ``*_log2`` values the CAPACITY registers hold."""
        unknown = set(params) - set(CAPACITY_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown build parameters {sorted(unknown)} "
                            f"(known: {', '.join(CAPACITY_DEFAULTS)})")
        p = dict(CAPACITY_DEFAULTS, **params)
        for k, v in p.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{k}={v!r}: must be a positive integer")
        for k in ("order_buckets", "order_ways"):
            if p[k] & (p[k] - 1):
                raise ValueError(f"{k}={p[k]}: must be a power of two")
        for t in self.tables.values():
            if p[t.size] > t.entries:
                raise ValueError(f"{t.size}={p[t.size]}: table {t.name} holds at most "
                                 f"{t.entries}")
        p["order_buckets_log2"] = p["order_buckets"].bit_length() - 1
        for r in self.registers.values():
            for f in r.fields:
                if f.hw == "param":
                    if f.name not in p:
                        raise ValueError(f"{r.name}.{f.name}: no build parameter of that name")
                    if p[f.name] >> f.width:
                        raise ValueError(f"{f.name}={p[f.name]} does not fit {r.name}.{f.name}")
        return p

    def const_value(self, f: Field, capacity: dict[str, int] | None = None,
                    build_id: int = 0) -> int:
        """Value of a ``const``/``param``/``hash``/``build`` field."""
        if f.hw == "build":
            return build_id & ((1 << f.width) - 1)
        if f.hw == "const":
            return f.reset
        if f.hw == "hash":
            return self.hash
        if f.hw == "param":
            return (capacity or self.capacity())[f.name]
        raise ValueError(f"{f.name}: hw={f.hw} is not a constant")

    def __repr__(self):
        return (f"RegisterMap({self.name}, v{self.version[0]}.{self.version[1]}, "
                f"{len(self.registers)} registers, {len(self.tables)} tables, "
                f"hash 0x{self.hash:08x})")


# ------------------------------------------------------------------------------------ content

#: STATUS sticky bit (register file port) -> the counter whose movement sets it.
STICKY_SOURCES = {
    "status_gap": "gaps", "status_session_change": "session_changes",
    "status_order_table_full": "order_table_full", "status_level_overflow": "level_overflow",
    "status_symbol_overflow": "symbol_overflow", "status_risk_reject": "risk_rejects",
    "status_fcs_error": "fcs_errors",
}

#: Counter register of each counter name (feed, then book/trigger/risk, then hardware-only).
COUNTER_REGISTERS: dict[str, str] = {}
#: Per-line copies of the frame counters (the feed front end's ``a_<name>``/``b_<name>``).
#: (``fcs_errors`` came later: its two registers follow the others, which keep their addresses)
LINE_COUNTERS = tuple(f"{line}_{n}" for line in "ab" for n in LINE_FRAME_COUNTERS
                      if n != "fcs_errors") + ("a_fcs_errors", "b_fcs_errors")
#: Feed counters the emulator does not have: line-buffer overflows, ITCH messages of types
#: the book does not use (hw/feed/frontend.py), and the per-line frame counters.
FEED_HW_COUNTERS = ("overflow", "ignored_types") + LINE_COUNTERS
#: Order-path counters the emulator does not have (the COUNTERS of hw/trigger/engine.py and
#: hw/egress/builder.py beyond the emulator's names; tests/test_regmap_description.py checks).
#: The first of them fill the book counters' block; the rest have a block of their own.
_ORDER_HW_IN_BOOK_BLOCK = ("fast_offered", "fast_taken", "fast_mismatch", "frames_sent", "drops",
                           "fast_orders", "port_offered", "port_syncs", "port_b_waits",
                           "wire_stops")
ORDER_HW_COUNTERS = _ORDER_HW_IN_BOOK_BLOCK + ("fcs_aborts", "fcs_late")

_FEED_COUNTER_DOC = {
    "frames": "frames received (both lines)",
    "packets": "MoldUDP64 packets accepted",
    "messages": "ITCH messages delivered to the book",
    "gaps": "sequence gaps",
    "gap_messages": "messages missed in gaps",
    "last_gap_first": "first sequence number of the last gap (0 before the first gap)",
    "last_gap_last": "last sequence number of the last gap (0 before the first gap)",
    "dup_packets": "duplicate/late packets dropped (the other line won)",
    "stale_session": "packets of the previous session dropped",
    "heartbeats": "heartbeats accepted",
    "end_of_session": "end-of-session packets accepted",
    "session_changes": "MoldUDP64 session changes",
    "overflow": "packets dropped: a line buffer was full (hardware only)",
    "ignored_types": "known ITCH messages the book does not use, not forwarded (hardware "
                     "only)",
    "unknown_type": "messages skipped: unknown type byte",
    "bad_length": "messages skipped: length differs from the type's length",
    "mold_overrun": "packets whose message walk ran past the UDP payload",
    "fcs_errors": "frames the MAC flagged with a bad FCS on their last beat (their messages "
                  "were taken: the book may be wrong)",
}
_BOOK_COUNTER_DOC = {
    "book_messages": "messages of tracked slots processed by the book",
    "book_updates": "top-N rows emitted",
    "duplicate_ref": "adds of a reference already in the order table (ignored)",
    "unknown_ref": "reductions/deletes of a reference not in the order table",
    "overfill": "reductions larger than the order's remaining shares",
    "order_table_full": "adds dropped: order-table bucket full",
    "level_overflow": "level arrays full (worst level evicted or new level not stored)",
    "level_miss": "reductions at a price not in the level array",
    "symbol_overflow": "auto mode: new stock names refused, symbol table full",
    "triggers_fired": "candidate orders from the trigger engine",
    "orders_sent": "orders that passed pre-trade risk and left",
    "risk_rejects": "candidate orders rejected by pre-trade risk (all reasons)",
    "fast_offered": "cut-through strobes presented to the trigger engine, taken or not "
                    "(hardware only)",
    "fast_taken": "cut-through trigger evaluations taken (hardware only)",
    "fast_mismatch": "cut-through evaluations the committed message contradicted "
                     "(hardware only)",
    "frames_sent": "order frames sent, aborted ones included (hardware only)",
    "fcs_aborts": "order frames ended with a bad FCS: fired by a message whose feed frame had "
                  "a bad FCS (hardware only)",
    "fcs_late": "order frames sent whole before their message's feed frame showed a bad FCS "
                "(hardware only)",
    "drops": "accepted orders dropped by the egress (hardware only)",
    "fast_orders": "orders sent from a cut-through trigger (hardware only)",
    "port_offered": "of the cut-through strobes, those the port walker presented from line "
                    "A's port (hardware only)",
    "port_syncs": "times the port walker loaded the MoldUDP64 tracker's state and began to "
                  "follow line A (hardware only; it stops at a gap, an overlap, a line B "
                  "packet it cannot clear, and resumes when the feed is idle)",
    "port_b_waits": "line A packets the port walker did not follow because a line B packet "
                    "it had not cleared could reach the tracker first: line B ahead of line "
                    "A (hardware only; each also stops the walker until the feed is idle)",
    "wire_stops": "times the wire triggers' in-flight accounting stopped the cut-through "
                  "path until reset (a queue overflow, or a port walker entry whose sequence "
                  "differed from its message's): expected 0 (hardware only)",
}


def _counter_doc(name: str) -> str:
    if name in _FEED_COUNTER_DOC:
        return _FEED_COUNTER_DOC[name]
    if name in _BOOK_COUNTER_DOC:
        return _BOOK_COUNTER_DOC[name]
    if name.startswith("reject_"):
        return f"orders rejected by the `{name[7:]}` risk check"
    if name[:2] in ("a_", "b_"):
        return f"line {name[0].upper()}: {_counter_doc(name[2:])}"
    return f"frames dropped: `{name}` (docs/architecture.md, frame checks)"


def _counters(names: Sequence[str]) -> list[Register]:
    regs = []
    for n in names:
        rname = "CNT_" + n.upper()
        COUNTER_REGISTERS[n] = rname
        regs.append(Register(rname, None, [
            Field(n, 64, "ro", doc=_counter_doc(n), port=n)],
            doc=f"Counter `{n}` (64-bit, wraps): {_counter_doc(n)}."))
    return regs


#: Where each of core.RISK_PARAMS lives: (register, field).
RISK_PARAM_FIELDS: dict[str, tuple[str, str]] = {}

_RISK_DOC = {
    "kill_after_rejects": "trip the kill switch when total rejects reach this (0: never)",
    "max_order_qty": "largest order quantity (shares)",
    "max_notional": "largest order notional, quantity x price (1/10000 USD)",
    "collar_bps": "price collar around the slot's reference price, in basis points",
    "max_gross": "gross exposure limit: booked notional plus the order's (1/10000 USD)",
    "symbol_burst": "per-slot token bucket capacity (orders)",
    "symbol_refill_ns": "per-slot token bucket: one token per this many ITCH nanoseconds",
    "global_burst": "global token bucket capacity (orders)",
    "global_refill_ns": "global token bucket: one token per this many ITCH nanoseconds",
    "dup_window_ns": "duplicate guard window (ITCH nanoseconds)",
}
#: Width of each global risk parameter: the gateware's (hw/risk/layouts.py RiskParams); 48-bit
#: time spans hold 78 hours of ITCH nanoseconds.
_RISK_WIDTH = {"max_notional": 64, "max_gross": 64, "symbol_refill_ns": 48,
               "global_refill_ns": 48, "dup_window_ns": 48, "symbol_burst": 16,
               "global_burst": 16}


def _risk_params() -> list[Register]:
    d = _config.Risk()
    regs = []
    for p in RISK_PARAMS:
        if p == "kill":                       # the kill switch is a CONTROL bit
            RISK_PARAM_FIELDS[p] = ("CONTROL", "kill")
            continue
        rname = "RISK_" + p.upper()
        RISK_PARAM_FIELDS[p] = (rname, p)
        w = _RISK_WIDTH.get(p, 32)
        regs.append(Register(rname, None, [
            Field(p, w, "rw", reset=int(getattr(d, p)), doc=_RISK_DOC[p])],
            doc=f"Risk parameter `{p}`: {_RISK_DOC[p]}."))
    return regs


def build_regmap() -> RegisterMap:
    """Build the tickwire map (a fresh object; :data:`REGMAP` is the shared one)."""
    COUNTER_REGISTERS.clear()
    RISK_PARAM_FIELDS.clear()
    sess, orders, risk = _config.Session(), _config.Orders(), _config.Risk()

    ident = Block("Identity", 0x0000, [
        Register("ID", None, [Field("id", 32, "ro", reset=MAP_ID, hw="const",
                                    doc="0x54574952, \"TWIR\"")],
                 doc="Identifies a tickwire register file."),
        Register("VERSION", None, [
            Field("minor", 16, "ro", reset=MAP_VERSION[1], hw="const", doc="minor version"),
            Field("major", 16, "ro", reset=MAP_VERSION[0], hw="const", doc="major version")],
            doc="Register map version."),
        Register("MAP_HASH", None, [Field("hash", 32, "ro", hw="hash",
                                          doc="SHA-256 of the canonical map, first 4 bytes")],
                 doc="Hash of the register map description; the host driver refuses a "
                     "bitstream whose hash differs from its own."),
        Register("SCRATCH", None, [Field("scratch", 32, "rw", hw="none",
                                         doc="free for bus tests")],
                 doc="Scratch register (no effect)."),
        Register("CAPACITY0", None, [
            Field("symbols", 16, "ro", reset=CAPACITY_DEFAULTS["symbols"], hw="param",
                  doc="tracked symbol slots"),
            Field("levels", 16, "ro", reset=CAPACITY_DEFAULTS["levels"], hw="param",
                  doc="price levels per slot and side")],
            doc="Build capacities of the book."),
        Register("CAPACITY1", None, [
            Field("order_buckets_log2", 8, "ro",
                  reset=CAPACITY_DEFAULTS["order_buckets"].bit_length() - 1, hw="param",
                  doc="log2 of the order-table buckets"),
            Field("order_ways", 8, "ro", reset=CAPACITY_DEFAULTS["order_ways"], hw="param",
                  doc="order-table ways per bucket"),
            Field("groups", 8, "ro", reset=CAPACITY_DEFAULTS["groups"], hw="param",
                  doc="feed group table entries")],
            doc="Build capacities of the tables."),
        Register("CAPACITY2", None, [
            Field("hist_bins", 16, "ro", reset=CAPACITY_DEFAULTS["hist_bins"], hw="param",
                  doc="latency histogram bins")],
            doc="Build capacity of the latency histogram."),
        Register("BUILD_ID", None, [Field("build_id", 32, "ro", hw="build",
                                          doc="digest of the gateware sources and build "
                                              "parameters (0: not given)")],
                 doc="Which build this is: bitstreams with the same register map differ "
                     "here (the board manifest's BUILD_ID)."),
        Register("CYCLES", None, [Field("cycles", 64, "ro", hw="cycles",
                                          doc="clock cycles since reset")],
                 doc="Free-running cycle counter of the control clock."),
    ], doc="What the bitstream is: the host checks ID, VERSION and MAP_HASH before anything "
           "else (`Driver.check_identity`).")

    control = Block("Control", 0x0040, [
        Register("CONTROL", None, [
            Field("enable", 1, "rw", reset=0,
                  doc="order path enable: while clear the trigger engine fires nothing "
                      "(the book still builds)"),
            Field("kill", 1, "rw", reset=int(risk.kill),
                  doc="kill switch (risk check 1): every candidate order is rejected"),
            Field("auto", 1, "rw", reset=1,
                  doc="auto symbol mode: learn names into free slots (set when no names "
                      "are configured)"),
            Field("cut_through", 1, "rw", reset=1,
                  doc="evaluate crossing adds on the cut-through path as their price field "
                      "arrives (the same orders either way, sooner)"),
            Field("wire_triggers", 1, "rw", reset=0,
                  doc="wire triggers: a side fires only on an add that crosses it, never on "
                      "the book's best price, so almost every add is evaluated as its price "
                      "arrives (docs/architecture.md \"Trigger engine\": trigger sources)"),
            Field("soft_reset", 1, "wo", offset=31,
                  doc="pulse: clear the order path -- trigger rows, risk state (positions, "
                      "gross, buckets refilled to the burst, duplicate records, trip), egress "
                      "queue and counters, latency statistics -- and load the session "
                      "counters; the feed handler and the book keep following the market. "
                      "Register writes wait (AWREADY low) until the clear is done")],
            doc="Pipeline control."),
        Register("STATUS", None, [
            Field("kill_active", 1, "ro",
                  doc="the kill switch is in effect (set by CONTROL.kill or tripped)"),
            Field("kill_tripped", 1, "ro",
                  doc="the kill switch tripped on kill_after_rejects (RISK_CTRL.trip_clear "
                      "re-arms it)"),
            Field("busy", 1, "ro",
                  doc="the pipeline is clearing its tables (after soft_reset or "
                      "LAT_CONFIG.clear)"),
            Field("gap", 1, "w1c", offset=8, doc="a MoldUDP64 sequence gap was seen"),
            Field("session_change", 1, "w1c", doc="the MoldUDP64 session changed"),
            Field("order_table_full", 1, "w1c", doc="an add was dropped: bucket full"),
            Field("level_overflow", 1, "w1c", doc="a level array overflowed"),
            Field("symbol_overflow", 1, "w1c", doc="auto mode: the symbol table is full"),
            Field("risk_reject", 1, "w1c", doc="pre-trade risk rejected an order"),
            Field("fcs_error", 1, "w1c",
                  doc="a feed frame came with a bad FCS after its messages were taken "
                      "(the book may be wrong: resync)")],
            doc="Status: live bits and sticky event bits (write 1 to clear)."),
        Register("FEED_CONFIG", None, [
            Field("check_ip_checksum", 1, "rw", reset=1,
                  doc="verify IPv4 header checksums (`ip_checksum` drops)"),
            Field("track_sequence", 1, "rw", reset=1,
                  doc="MoldUDP64 session/sequence tracking (off for anonymised captures)"),
            Field("ab_window", 16, "rw", offset=16,
                  doc="cycles a packet that would open a gap waits for the other line "
                      "(0: no waiting)")],
            doc="Feed handler configuration."),
        Register("ORDER_TABLE_BASE", None, [
            Field("base", 64, "rw",
                  doc="byte address of the order table in the memory behind the book's AXI4 "
                      "master (DDR/HBM), ORDER_LINE_BYTES-aligned: the host allocates "
                      "2^CAPACITY1.order_buckets_log2 lines of ORDER_LINE_BYTES there, "
                      "zeroes them and writes this before the feed starts (ignored by a "
                      "build whose table is on chip)")],
            doc="Where the book's order table lives."),
    ], doc="Enables, kill switch, sticky status, feed configuration, the order table's "
           "address.")

    feed = Block("Feed counters", 0x0100, _counters(FEED_COUNTERS),
                 doc="Every counter of the feed path (docs/architecture.md, \"Feed: frames "
                     "and MoldUDP64\"), named as `tickwire.host.moldudp64.COUNTERS`. 64 bits: "
                     "read the low word first (it captures the high word).")
    book = Block("Book, trigger and risk counters", 0x0200,
                 _counters(COUNTER_NAMES) + _counters(_ORDER_HW_IN_BOOK_BLOCK),
                 doc="Counters of the book builder, trigger engine and pre-trade risk, named "
                     "as `tickwire.host.emu.core.COUNTER_NAMES`, then the order path's "
                     "hardware-only counters.")
    riskb = Block("Pre-trade risk", 0x0300, _risk_params() + [
        Register("RISK_GROSS", None, [Field("gross", 64, "ro",
                                            doc="gross notional booked so far")],
                 doc="Gross exposure booked by the risk stage (accepted orders count as "
                     "filled)."),
        Register("RISK_GROSS_SET", None, [Field("gross", 64, "rw",
                                                doc="gross notional to load")],
                 doc="Gross exposure the host reconciled; loaded by RISK_CTRL.load_gross."),
        Register("RISK_CTRL", None, [
            Field("trip_clear", 1, "wo", port="risk_trip_clear",
                  doc="pulse: clear a kill_after_rejects trip and its reject count"),
            Field("load_gross", 1, "wo", port="risk_load_gross",
                  doc="pulse: gross exposure := RISK_GROSS_SET")],
            doc="Risk stage commands."),
    ], doc="Global risk parameters (`tickwire.spec.counters.RISK_PARAMS`; `kill` is "
           "CONTROL.kill). Per-slot limits are in the RISK_SLOTS and POSITIONS tables.")

    feed_hw = Block("Feed state and hardware counters", 0x0600, [
        Register("FEED_SESSION", None, [
            Field("session", 64, "ro", port="feed_session_lo",
                  doc="bytes 0..7 of the current MoldUDP64 session, byte 0 in bits 7:0")],
            doc="Current MoldUDP64 session, bytes 0..7."),
        Register("FEED_SESSION_HI", None, [
            Field("session", 16, "ro", port="feed_session_hi",
                  doc="bytes 8..9 of the session, byte 8 in bits 7:0")],
            doc="Current MoldUDP64 session, bytes 8..9."),
        Register("FEED_EXPECTED", None, [
            Field("expected", 64, "ro", port="feed_expected",
                  doc="next expected MoldUDP64 sequence number")],
            doc="Sequence tracker: next expected sequence number."),
    ] + _counters(FEED_HW_COUNTERS),
        doc="What the feed front end knows beyond the emulator's counters: the session, the "
            "expected sequence number, hardware-only counters and the per-line frame "
            "counters (the emulator's frame counters are the sums of both lines).")

    session = Block("Order session", 0x0400, [
        Register("SESSION_SRC_MAC", None, [Field("mac", 48, "rw", reset=_mac(sess.src_mac),
                                                 doc="source MAC")],
                 doc="Order frames: Ethernet source address."),
        Register("SESSION_DST_MAC", None, [Field("mac", 48, "rw", reset=_mac(sess.dst_mac),
                                                 doc="destination MAC")],
                 doc="Order frames: Ethernet destination address."),
        Register("SESSION_SRC_IP", None, [Field("ip", 32, "rw", reset=_ip(sess.src_ip),
                                                doc="source IPv4 address")],
                 doc="Order frames: IPv4 source."),
        Register("SESSION_DST_IP", None, [Field("ip", 32, "rw", reset=_ip(sess.dst_ip),
                                                doc="destination IPv4 address")],
                 doc="Order frames: IPv4 destination."),
        Register("SESSION_PORTS", None, [
            Field("src_port", 16, "rw", reset=sess.src_port, doc="TCP source port"),
            Field("dst_port", 16, "rw", reset=sess.dst_port, doc="TCP destination port")],
            doc="Order frames: TCP ports."),
        Register("SESSION_SEQ", None, [Field("seq", 32, "rw", reset=sess.seq,
                                             doc="TCP sequence number of the next order "
                                                 "frame (loaded by SESSION_CTRL.load)")],
                 doc="TCP sequence number to load."),
        Register("SESSION_ACK", None, [Field("ack", 32, "rw", reset=sess.ack,
                                             doc="TCP acknowledgement number")],
                 doc="TCP acknowledgement number of every order frame."),
        Register("SESSION_WINDOW", None, [Field("window", 16, "rw", reset=sess.window,
                                                doc="TCP window")],
                 doc="TCP window of every order frame."),
        Register("SESSION_VLAN", None, [
            Field("vid", 12, "rw", reset=max(sess.vlan, 0), doc="802.1Q VLAN id"),
            Field("enable", 1, "rw", reset=int(sess.vlan >= 0), offset=15,
                  doc="tag order frames with VLAN `vid` (PCP 0)")],
            doc="Optional 802.1Q tag of order frames."),
        Register("SESSION_TTL", None, [Field("ttl", 8, "rw", reset=sess.ttl, doc="IPv4 TTL")],
                 doc="IPv4 time to live of order frames."),
        Register("SESSION_IP_ID", None, [Field("ip_id", 16, "rw", reset=sess.ip_id,
                                               doc="IPv4 identification of the next order "
                                                   "frame (loaded by SESSION_CTRL.load)")],
                 doc="IPv4 identification to load."),
        Register("ORDERS_FIRST_USER_REF", None, [
            Field("first_user_ref", 32, "rw", reset=orders.first_user_ref,
                  doc="OUCH user_ref_num of the next order (loaded by SESSION_CTRL.load)")],
            doc="OUCH user reference number to load."),
        Register("ORDERS_CAPACITY", None, [
            Field("capacity", 8, "rw", reset=ord(orders.capacity),
                  doc="OUCH capacity character (ASCII)")],
            doc="OUCH Enter Order capacity."),
        Register("SESSION_CTRL", None, [
            Field("load", 1, "wo", port="session_load",
                  doc="pulse: load SESSION_SEQ, SESSION_IP_ID and ORDERS_FIRST_USER_REF into "
                      "the egress counters")],
            doc="Session template commands."),
        Register("SESSION_SEQ_NEXT", None, [Field("seq", 32, "ro",
                                                  doc="TCP sequence of the next frame")],
                 doc="Egress state: next TCP sequence number."),
        Register("SESSION_IP_ID_NEXT", None, [Field("ip_id", 16, "ro",
                                                    doc="IPv4 id of the next frame")],
                 doc="Egress state: next IPv4 identification."),
        Register("ORDERS_NEXT_USER_REF", None, [Field("user_ref", 32, "ro",
                                                      doc="user_ref_num of the next order")],
                 doc="Egress state: next OUCH user reference number."),
    ], doc="Order-entry session template (`[session]` and `[orders]` of the config; "
           "docs/architecture.md \"Order egress\"). The fabric advances the TCP sequence, the "
           "IPv4 id and the user reference from the values loaded by SESSION_CTRL.load.")

    latency = Block("Latency histogram", 0x0500, [
        Register("LAT_CONFIG", None, [
            Field("enable", 1, "rw", reset=1, doc="record latencies"),
            Field("bin_shift", 5, "rw", reset=0, offset=8,
                  doc="bin width is 2**bin_shift cycles"),
            Field("clear", 1, "wo", offset=31, doc="pulse: clear the bins and statistics")],
            doc="Tick-to-trade latency histogram: cycles from the first beat of the frame "
                "that fired to the first beat of the order frame; bin "
                "min(latency >> bin_shift, bins - 1)."),
        Register("LAT_COUNT", None, [Field("count", 64, "ro", doc="latencies recorded")],
                 doc="Latencies recorded."),
        Register("LAT_SUM", None, [Field("sum", 64, "ro", doc="sum of recorded latencies")],
                 doc="Sum of the recorded latencies (cycles)."),
        Register("LAT_MIN", None, [Field("min", 32, "ro", doc="smallest latency (cycles)")],
                 doc="Smallest recorded latency."),
        Register("LAT_MAX", None, [Field("max", 32, "ro", doc="largest latency (cycles)")],
                 doc="Largest recorded latency."),
        Register("LAT_LAST", None, [Field("last", 32, "ro", doc="latest latency (cycles)")],
                 doc="Latest recorded latency."),
    ], doc="Tick-to-trade latency, measured in the fabric.")

    tables = Block("Tables", 0x1000, [
        Table("FEED_GROUPS", 0x1000, 64, 8, [
            Field("valid", 1, "rw", offset=48, doc="entry in use"),
            Field("ip", 32, "rw", offset=0, doc="destination IPv4 address"),
            Field("port", 16, "rw", offset=32, doc="destination UDP port")],
            doc="Feed group filter: accepted (destination IPv4, UDP port) pairs; no valid "
                "entry accepts every group.",
            kind="array", size="groups", entry="feed_group"),
        Table("SYMBOLS", 0x2000, 256, 16, [
            Field("name", 64, "rw", doc="8 ASCII bytes, space padded, first character in "
                                        "the most significant byte"),
            Field("valid", 1, "rw", doc="slot holds a name")],
            doc="Symbol table, one entry per slot. Read back live from the book "
                "builder, so names learned in auto mode show.", kind="port",
            entry="symbol"),
        Table("TRIGGERS", 0x3000, 256, 16, [
            Field("buy_price", 32, "rw", doc="buy when best ask <= this (1/10000 USD)"),
            Field("sell_price", 32, "rw", doc="sell when best bid >= this"),
            Field("quantity", 32, "rw", doc="order quantity"),
            Field("enable_buy", 1, "rw", doc="buy side enabled"),
            Field("enable_sell", 1, "rw", doc="sell side enabled"),
            Field("rearm", 1, "rw", doc="0 one-shot, 1 re-arm when the condition goes "
                                        "false")],
            doc="Trigger table, one entry per slot. Writing an entry re-arms "
                "both sides.", kind="memory", entry="trigger"),
        Table("RISK_SLOTS", 0x4000, 256, 16, [
            Field("enable", 1, "rw", reset=1, doc="risk enable (check 2)"),
            Field("ref_price", 32, "rw", offset=32, doc="collar reference price (0: no collar)"),
            Field("max_long", 32, "rw", reset=risk.max_long, doc="position limit, long"),
            Field("max_short", 32, "rw", reset=risk.max_short, doc="position limit, short")],
            doc="Per-slot risk limits.", kind="memory", entry="risk_slot"),
        Table("POSITIONS", 0x5000, 256, 8, [
            Field("position", 64, "rw", signed=True,
                  doc="signed shares, positive long; accepted orders count as filled")],
            doc="Per-slot position, kept by the risk stage; the host writes the "
                "reconciled position from OUCH executions.", kind="port", entry="position"),
        Table("LAT_HIST", 0x6000, 256, 4, [
            Field("count", 32, "ro", doc="latencies in this bin")],
            doc="Latency histogram bins.", kind="port",
            size="hist_bins", entry="lat_bin"),
    ], doc="Per-entry tables. Each entry is written word by word into the table's staging row "
           "and committed by the write of its last word.")

    order_hw = Block("Order path hardware counters", 0x0700,
                     _counters(ORDER_HW_COUNTERS[len(_ORDER_HW_IN_BOOK_BLOCK):]),
                     doc="The order path's hardware-only counters that follow those of the "
                         "book counters' block (the egress's bad-FCS aborts).")
    m = RegisterMap("tickwire", [ident, control, feed, book, riskb, session, latency, feed_hw,
                                 order_hw, tables],
                    addr_width=15)
    missing = set(RISK_PARAMS) - set(RISK_PARAM_FIELDS)
    assert not missing, missing
    assert set(COUNTER_REGISTERS) == set(FEED_COUNTERS) | set(COUNTER_NAMES) | set(
        FEED_HW_COUNTERS) | set(ORDER_HW_COUNTERS)
    return m


#: The register map.
REGMAP = build_regmap()
