"""The AXI4-Lite register file, generated from the register map description.

:class:`RegisterFile` is a real register file built from
:data:`tickwire.spec.regmap.REGMAP` (or any :class:`RegisterMap`): every ``rw``
field is a register driving an output port, every ``ro`` field reads an input port (or a
constant, a build parameter, the map hash, the cycle counter), ``w1c`` fields are sticky bits
set by input pulses, ``wo`` fields are one-cycle output pulses, and the tables are staged,
committed row by row and presented on write ports (with a shadow memory, an array port or a
read port for read-back, by table kind). It follows :data:`~.description.BUS_RULES`.

Bus: AXI4-Lite slave, 32-bit data, ``addr_width`` byte address bits, byte strobes honoured,
OKAY/SLVERR, one transaction at a time (write before read when both arrive together).
Timing: a write takes the address and data together (AWREADY = WREADY = AWVALID & WVALID in
the idle state), executes in the next cycle, BVALID the cycle after (two cycles after the
handshake); a read's RVALID comes four cycles after its AR handshake (one cycle to decode
the address, which is also the memories' and read ports' read cycle, one to sample the data
into partial results, one to combine them: the read multiplexer is pipelined so that no stage
is deeper than a few LUT levels). Outputs change (and table/pulse strobes
fire) in the cycle after the write executes, i.e. together with BVALID.

Ports (see :meth:`RegisterFile.port_names` and docs/registers.md):

* ``axi``: ``In(AXI4LiteSignature(addr_width))`` -- Verilog ``axi__awaddr`` ...
* one port per field with ``hw="port"``, named ``Field.port``: ``rw`` -> Out (the register,
  reset value as init), ``wo`` -> Out (pulse), ``ro`` -> In, ``w1c`` -> In (set pulse);
* ``array`` tables: ``Out(ArrayLayout(StructLayout(fields), entries))`` named ``Table.port``;
* ``memory``/``port`` tables: ``Out(TablePort)`` (:mod:`tickwire.hw.ports`) named
  ``Table.port``: ``w.we``, ``w.index``, ``w.row`` (a struct of the ``rw`` fields, registered,
  valid while ``we``), and for ``port`` tables ``r.addr`` (Out) and ``r.data`` (In, a struct
  of every field): the entry at ``r.addr``, combinationally or one cycle later (``r.addr``
  is held for two cycles and ``r.data`` sampled at the end of the second).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.regmap import REGMAP, Field, Register, RegisterMap, Table

from ..ports import TablePort

__all__ = ["AXI4LiteSignature", "RegisterFile", "OKAY", "SLVERR"]

OKAY = 0b00
SLVERR = 0b10
#: Terms per partial OR of the pipelined read and write response (a few LUT levels each)
_GROUP = 16


class AXI4LiteSignature(wiring.Signature):
    """AXI4-Lite, from the master's side (a slave uses ``In(AXI4LiteSignature(...))``)."""

    def __init__(self, addr_width: int, data_width: int = 32):
        if data_width != 32:
            raise ValueError("only 32-bit AXI4-Lite is supported")
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return (isinstance(other, AXI4LiteSignature) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"AXI4LiteSignature({self.addr_width}, {self.data_width})"


def _shape(f: Field):
    return signed(f.width) if f.signed else unsigned(f.width)


def _index_width(n: int) -> int:
    return max(1, (n - 1).bit_length())


def table_row(t: Table, kinds=("rw", "ro")) -> data.StructLayout:
    """A row of ``t`` as a struct of its fields of the given access kinds, in declared order
    (packed, not at the register offsets)."""
    return data.StructLayout({f.name: _shape(f) for f in t.fields if f.access in kinds})


def table_signature(t: Table, entries: int) -> TablePort:
    """Port of a ``memory``/``port`` table (from the register file's side)."""
    return TablePort(_index_width(entries), table_row(t, ("rw",)), write=t.writable,
                     read=t.kind == "port", read_row=table_row(t))


def array_layout(t: Table, entries: int) -> data.ArrayLayout:
    return data.ArrayLayout(table_row(t), entries)


def _or(*values):
    """Balanced OR of ``values``."""
    vals = list(values) or [Const(0, 32)]
    while len(vals) > 1:
        vals = [vals[i] | vals[i + 1] if i + 1 < len(vals) else vals[i]
                for i in range(0, len(vals), 2)]
    return vals[0]


def _merge(old, new, mask):
    return (old & ~mask) | (new & mask)


class RegisterFile(wiring.Component):
    """AXI4-Lite register file of ``regmap`` (default: the tickwire map).

    Keyword arguments are the build parameters (:data:`~.description.CAPACITY_DEFAULTS`:
    ``symbols``, ``levels``, ``order_buckets``, ``order_ways``, ``groups``, ``hist_bins``);
    they size the tables and are read back in the CAPACITY registers. ``build_id`` is read
    back in BUILD_ID.
    """

    def __init__(self, regmap: RegisterMap = REGMAP, *, build_id: int = 0, **capacity):
        if not isinstance(build_id, int) or not 0 <= build_id < 1 << 32:
            raise ValueError(f"build_id={build_id!r}: must be a 32-bit unsigned integer")
        self._map = regmap
        self._build_id = build_id
        self._cap = regmap.capacity(**capacity)
        members = {"axi": In(AXI4LiteSignature(regmap.addr_width))}
        for r in regmap.registers.values():
            for f in r.fields:
                if f.hw != "port":
                    continue
                if f.access == "rw":
                    members[f.port] = Out(_shape(f), init=f.reset)
                elif f.access == "wo":
                    members[f.port] = Out(_shape(f))
                else:
                    members[f.port] = In(_shape(f))
        for t in regmap.tables.values():
            n = self._cap[t.size]
            if t.kind == "array":
                members[t.port] = Out(array_layout(t, n))
            else:
                members[t.port] = Out(table_signature(t, n))
        for name in members:
            if hasattr(type(self), name):
                raise ValueError(f"port {name!r} clashes with a RegisterFile attribute")
        super().__init__(members)

    @property
    def regmap(self) -> RegisterMap:
        return self._map

    @property
    def capacity(self) -> dict[str, int]:
        return dict(self._cap)

    def port_names(self) -> dict[str, str]:
        """``{port: "in"|"out"}`` of the non-bus ports (flattened names, ``.`` for groups)."""
        out = {}
        for path, member, _ in self.signature.flatten(self):
            if path[0] == "axi":
                continue
            out[".".join(map(str, path))] = "in" if member.flow == In else "out"
        return out

    # ------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        rm, cap = self._map, self._cap
        axi = self.axi
        aw = rm.addr_width

        # ---- field storage / sources -------------------------------------------------
        cycles = Signal(64)
        m.d.sync += cycles.eq(cycles + 1)
        storage: dict[tuple[str, str], object] = {}   # (reg, field) -> Value
        sticky_clr = {}
        for r in rm.registers.values():
            for f in r.fields:
                key = (r.name, f.name)
                if f.hw == "port":
                    sig = getattr(self, f.port)
                    if f.access == "w1c":
                        st = Signal(f.width, name=f"{f.port}_sticky")
                        clr = Signal(f.width, name=f"{f.port}_clr")
                        m.d.sync += st.eq((st & ~clr) | sig)
                        storage[key] = st
                        sticky_clr[key] = clr
                    elif f.access == "wo":
                        m.d.sync += sig.eq(0)       # pulse: overridden by a write below
                        storage[key] = Const(0, f.width)
                    else:
                        storage[key] = sig
                elif f.hw == "none":
                    storage[key] = Signal(_shape(f), init=f.reset,
                                          name=f"{r.name.lower()}_{f.name}")
                elif f.hw == "cycles":
                    storage[key] = cycles[:f.width]
                else:
                    storage[key] = Const(rm.const_value(f, cap, self._build_id), f.width)

        def reg_value(r: Register):
            parts, pos = [], 0
            for f in sorted(r.fields, key=lambda f: f.offset):
                if f.offset > pos:
                    parts.append(Const(0, f.offset - pos))
                v = storage[(r.name, f.name)]
                parts.append(v.as_unsigned())
                pos = f.offset + f.width
            if pos < r.width:
                parts.append(Const(0, r.width - pos))
            return Cat(*parts)

        # ---- bus state -----------------------------------------------------------------
        aw_addr = Signal(aw)
        w_data = Signal(32)
        w_strb = Signal(4)
        ar_addr = Signal(aw)
        rdata = Signal(32)
        rresp = Signal(2)
        bresp = Signal(2)
        m.d.comb += [axi.rdata.eq(rdata), axi.rresp.eq(rresp), axi.bresp.eq(bresp)]

        aw_word = aw_addr[2:]
        ar_word = ar_addr[2:]
        wmask = Cat(*(w_strb[i].replicate(8) for i in range(4)))

        latch_bits = 32 * max([1] + [r.words - 1 for r in rm.registers.values()]
                              + [t.words - 1 for t in rm.tables.values()])
        latch = Signal(latch_bits)
        latch_base = Signal(aw - 2)
        latch_valid = Signal()

        do_write = Signal()     # WRITE state: execute the latched write
        do_decode = Signal()    # READ1 state: register the address decode
        do_read = Signal()      # READ2 state: sample read data (partial results)
        do_combine = Signal()   # READ3 state: combine the partial results

        # ---- tables: decode, storage, ports ------------------------------------------
        tinfo = {}
        for t in rm.tables.values():
            n = cap[t.size]
            sb = (t.stride.bit_length() - 1)
            tb = (t.size_bytes.bit_length() - 1)
            info = {"n": n, "sb": sb, "tb": tb}
            info["stage"] = Signal(t.row_bits, name=f"{t.port}_stage",
                                   init=t.reset & ((1 << t.row_bits) - 1))
            port = getattr(self, t.port)
            if t.kind == "memory":
                mem = memory.Memory(shape=unsigned(t.row_bits), depth=n,
                                    init=[t.reset] * n)
                m.submodules[f"{t.port}_shadow"] = mem
                info["wp"] = mem.write_port()
                info["rp"] = mem.read_port(transparent_for=())
            if t.kind != "array" and t.writable:
                m.d.sync += port.w.we.eq(0)
            info["port"] = port
            tinfo[t.name] = info

        def row_live(t: Table, slot):
            """Row value of entry ``slot`` for reads (row_bits wide)."""
            info = tinfo[t.name]
            if t.kind == "memory":
                return info["rp"].data
            parts, pos = [], 0
            if t.kind == "array":
                arr = info["port"]
                src = {}
                for f in t.fields:
                    sel = Signal(_shape(f), name=f"{t.port}_rd_{f.name}")
                    with m.Switch(slot):
                        for i in range(info["n"]):
                            with m.Case(i):
                                m.d.comb += sel.eq(arr[i][f.name])
                    src[f.name] = sel
            else:
                src = {f.name: info["port"].r.data[f.name] for f in t.fields}
            for f in sorted(t.fields, key=lambda f: f.offset):
                if f.offset > pos:
                    parts.append(Const(0, f.offset - pos))
                parts.append(src[f.name].as_unsigned())
                pos = f.offset + f.width
            if pos < t.row_bits:
                parts.append(Const(0, t.row_bits - pos))
            return Cat(*parts)

        # ---- FSM -----------------------------------------------------------------------
        with m.FSM():
            with m.State("IDLE"):
                with m.If(axi.awvalid & axi.wvalid):
                    m.d.comb += [axi.awready.eq(1), axi.wready.eq(1)]
                    m.d.sync += [aw_addr.eq(axi.awaddr), w_data.eq(axi.wdata),
                                 w_strb.eq(axi.wstrb)]
                    m.next = "WRITE"
                with m.Elif(axi.arvalid):
                    m.d.comb += axi.arready.eq(1)
                    m.d.sync += ar_addr.eq(axi.araddr)
                    m.next = "READ1"
            with m.State("WRITE"):
                m.d.comb += do_write.eq(1)
                m.d.sync += latch_valid.eq(0)
                m.next = "WRESP"
            with m.State("WRESP"):
                m.d.comb += axi.bvalid.eq(1)
                with m.If(axi.bready):
                    m.next = "IDLE"
            with m.State("READ1"):
                m.d.comb += do_decode.eq(1)
                m.next = "READ2"
            with m.State("READ2"):
                m.d.comb += do_read.eq(1)
                m.next = "READ3"
            with m.State("READ3"):
                m.d.comb += do_combine.eq(1)
                m.next = "RRESP"
            with m.State("RRESP"):
                m.d.comb += axi.rvalid.eq(1)
                with m.If(axi.rready):
                    m.next = "IDLE"

        # ---- writes --------------------------------------------------------------------
        # One comparator per register word (AND-OR structure: no wide case statements).
        stages = {}
        for r in rm.registers.values():
            if r.words == 2 and r.word_mask(0, ("rw",)):
                stages[r.name] = (Signal(32, name=f"{r.name.lower()}_stage"),
                                  Signal(name=f"{r.name.lower()}_staged"))

        def assign_rw(r: Register, value):
            """Set every rw field of ``r`` from the whole-register ``value``."""
            for f in r.fields:
                if f.access == "rw":
                    dst = storage[(r.name, f.name)]
                    m.d.sync += dst.eq(value[f.offset:f.offset + f.width])

        w_ok = []           # a write hits something writable
        for r in rm.registers.values():
            cur = reg_value(r)
            for k in range(r.words):
                if not r.word_mask(k, ("rw", "w1c", "wo")):
                    continue
                hit = do_write & (aw_word == r.offset // 4 + k)
                w_ok.append(hit)
                rwm = r.word_mask(k, ("rw",))
                mask = wmask & rwm
                with m.If(hit):
                    if r.words == 1:
                        if rwm:
                            assign_rw(r, _merge(cur[:32], w_data, mask))
                        for f in r.fields:
                            sl = slice(f.offset, f.offset + f.width)
                            if f.access == "w1c":
                                m.d.comb += sticky_clr[(r.name, f.name)].eq(
                                    w_data[sl] & wmask[sl])
                            elif f.access == "wo" and f.hw == "port":
                                m.d.sync += getattr(self, f.port).eq(w_data[sl] & wmask[sl])
                    elif k == 0:
                        stage, staged = stages[r.name]
                        m.d.sync += [stage.eq(_merge(Mux(staged, stage, cur[:32]), w_data,
                                                     mask)),
                                     staged.eq(1)]
                    else:
                        lo = cur[:32]
                        if r.name in stages:
                            stage, staged = stages[r.name]
                            lo = Mux(staged, stage, cur[:32])
                            m.d.sync += staged.eq(0)
                        assign_rw(r, Cat(lo, _merge(cur[32:64], w_data, mask)))

        for t in rm.tables.values():
            if not t.writable:
                continue
            info = tinfo[t.name]
            sb, tb = info["sb"], info["tb"]
            slot = aw_addr[sb:tb]
            word = aw_addr[2:sb] if sb > 2 else Const(0, 1)
            hit = Signal(name=f"w_{t.port}")
            m.d.comb += hit.eq(do_write & (aw_addr[tb:] == (t.base >> tb))
                               & (slot < info["n"]) & (word < t.words))
            w_ok.append(hit)
            with m.If(hit):
                self._table_write(m, t, info, slot, word, w_data, wmask)
        # the write's response: its hits ORed in groups as it executes, the groups in WRESP
        w_parts = []
        for g in range(0, len(w_ok), _GROUP):
            part = Signal(name=f"w_ok_{g // _GROUP}")
            with m.If(do_write):
                m.d.sync += part.eq(Cat(*w_ok[g:g + _GROUP]).any())
            w_parts.append(part)
        m.d.comb += bresp.eq(Mux(Cat(*w_parts).any(), OKAY, SLVERR))

        # ---- reads ---------------------------------------------------------------------
        # Pipelined: READ1 registers the address decode (one flag per source of a word:
        # ``sel``), READ2 samples every source ANDed with its flag into partial ORs of
        # _GROUP terms (the value and the capture of multi-word values come from this one
        # cycle), READ3 ORs the partial results into RDATA and the latch.
        terms = []          # (flag, value) of everything readable
        latch_set = []      # (flag, value to capture)
        hits = []           # every address hit (no hit: SLVERR)

        def sel(cond, name):
            """``cond`` registered in READ1."""
            s_ = Signal(name=name)
            with m.If(do_decode):
                m.d.sync += s_.eq(cond)
            return s_

        for r in rm.registers.values():
            val = reg_value(r)
            for k in range(r.words):
                nm = f"rd_{r.name.lower()}_{k}"
                hit = ar_word == r.offset // 4 + k
                live = val[32 * k:32 * k + 32] & r.word_mask(k, ("rw", "ro", "w1c"))
                if k == 0:
                    h = sel(hit, nm)
                    hits.append(h)
                    terms.append((h, live))
                    if r.words > 1:
                        latch_set.append((h, val[32:]))
                else:
                    # with the hit, the capture is this register's iff latch_base is word 0
                    cap_ok = latch_valid & (latch_base == r.offset // 4)
                    hl = sel(hit & cap_ok, nm + "_latched")
                    hv = sel(hit & ~cap_ok, nm)
                    hits += [hl, hv]
                    terms += [(hl, latch.word_select(k - 1, 32)), (hv, live)]

        for t in rm.tables.values():
            info = tinfo[t.name]
            sb, tb = info["sb"], info["tb"]
            slot = ar_addr[sb:tb]
            word = ar_addr[2:sb] if sb > 2 else Const(0, 1)
            if t.kind == "memory":
                m.d.comb += info["rp"].addr.eq(slot)
            elif t.kind == "port":
                m.d.comb += info["port"].r.addr.eq(slot)
            hit = ((ar_addr[tb:] == (t.base >> tb)) & (slot < info["n"]) & (word < t.words))
            row = Signal(t.row_bits, name=f"{t.port}_row")
            m.d.comb += row.eq(row_live(t, slot))
            live = row.word_select(word, 32)
            nm = f"r_{t.port}"
            if t.words == 1:
                h = sel(hit, nm)
                hits.append(h)
                terms.append((h, live))
                continue
            # the entry's word 0 address: ar_word with the word bits cleared
            entry = Cat(Const(0, sb - 2), ar_word[sb - 2:])
            cap_ok = latch_valid & (latch_base == entry) & (word != 0)
            h0 = sel(hit & (word == 0), nm + "_w0")
            hl = sel(hit & cap_ok, nm + "_latched")
            hv = sel(hit & ~cap_ok, nm)
            hits += [hl, hv]
            latch_set.append((h0, row[32:]))
            terms += [(hl, latch.word_select((word - 1).as_unsigned(), 32)), (hv, live)]

        def sampled(pairs, width, name):
            """READ2: the pairs' values ANDed with their flags, ORed in groups."""
            out = []
            for g in range(0, len(pairs), _GROUP):
                part = Signal(width, name=f"{name}_{g // _GROUP}")
                with m.If(do_read):
                    m.d.sync += part.eq(_or(*(Mux(f, v, 0) for f, v in pairs[g:g + _GROUP])))
                out.append(part)
            return out

        rd_parts = sampled(terms, 32, "rd_part")
        latch_parts = sampled(latch_set, latch_bits, "latch_part")
        r_any = Signal()
        l_any = Signal()
        with m.If(do_read):
            m.d.sync += [r_any.eq(Cat(*hits).any()),
                         l_any.eq(Cat(*(f for f, _ in latch_set)).any())]
        with m.If(do_combine):
            m.d.sync += [rdata.eq(Mux(r_any, _or(*rd_parts), 0)),
                         rresp.eq(Mux(r_any, OKAY, SLVERR))]
            with m.If(l_any):
                m.d.sync += [latch.eq(_or(*latch_parts)), latch_base.eq(ar_word),
                             latch_valid.eq(1)]
        return m

    def _table_write(self, m, t: Table, info, slot, word, w_data, wmask):
        """Stage word ``word`` of ``t``; commit the row to ``slot`` on its last word."""
        stage = info["stage"]
        rowmask = 0
        for f in t.fields:
            rowmask |= f.mask if f.access == "rw" else 0
        for k in range(t.words):
            with m.If(word == k):
                wk = _merge(stage.word_select(k, 32), w_data, wmask)
                m.d.sync += stage.word_select(k, 32).eq(wk)
                if k != t.words - 1:
                    continue
                row = Signal(t.row_bits, name=f"{t.port}_commit")
                m.d.comb += row.eq(Cat(stage[:32 * k], wk) & rowmask)
                port = info["port"]
                if t.kind == "array":
                    for i in range(info["n"]):
                        with m.If(slot == i):
                            for f in t.fields:
                                m.d.sync += port[i][f.name].eq(
                                    row[f.offset:f.offset + f.width])
                    continue
                if t.kind == "memory":
                    wp = info["wp"]
                    m.d.comb += [wp.addr.eq(slot), wp.data.eq(row), wp.en.eq(1)]
                m.d.sync += [port.w.we.eq(1), port.w.index.eq(slot)]
                for f in t.fields:
                    if f.access == "rw":
                        m.d.sync += port.w.row[f.name].eq(row[f.offset:f.offset + f.width])
