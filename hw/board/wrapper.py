"""The kernel top: the appliance behind the port names Vivado and Vitis infer interfaces from.

Module ``tickwire`` (the kernel and IP name) instantiates module ``tickwire_appliance`` (the
appliance, :class:`tickwire.hw.appliance.Appliance`, converted on its own so its Verilog keeps
the appliance's own port names, as the RTL harness has them) and adapts its ports:

=====================  ===========================================================
``ap_clk``             the fabric clock (every port is synchronous to it)
``ap_rst_n``           active-low reset, synchronous to ``ap_clk``
``s_axi_control_*``    AXI4-Lite slave (32-bit data, :data:`ADDR_WIDTH`-bit byte address):
                       the register map; ``*prot`` is not a kernel port (tied to 0)
``s_axis_feed_a_*``    AXI4-Stream (64-bit, ``tkeep``, ``tlast``, ``tuser``): feed line A, one
``s_axis_feed_b_*``    Ethernet frame per packet, no FCS; ``tuser`` with ``tlast``: the MAC
                       found the FCS wrong (a cut-through MAC's error flag); ``tready`` is
                       always 1 (the appliance takes a beat every cycle); ``first`` is
                       derived from the packet boundaries
``m_axis_orders_*``    AXI4-Stream (64-bit): order frames, one per packet, with back-pressure;
                       ``tuser`` with ``tlast``: abort, the MAC ends the frame with a bad FCS
``m_axis_book_*``      AXI4-Stream (:data:`BOOK_BEAT` bits): one top-N book row per packet,
                       the row's bits (``book_update_layout``) from bit 0 of the first beat,
                       zero-padded to whole beats (:func:`book_beats`); for the DMA to the
                       host
``m_axi_book_*``       AXI4 master (the appliance's ``mem``: :data:`MEM_ADDR`-bit address,
                       :data:`MEM_DATA`-bit data, one ID): the book's order table in the
                       board's DDR/HBM, present when the build's ``order_buckets`` exceed
                       ``ONCHIP_ORDER_BUCKETS`` (:func:`.targets.order_table_bytes`); the
                       table is at ORDER_TABLE_BASE (the host allocates and zeroes it);
                       ``*cache`` is ``0011`` (normal, non-cacheable, bufferable: an
                       interconnect may resize the bursts for a narrower port), ``*prot`` 0
=====================  ===========================================================

A build with at most ``ONCHIP_ORDER_BUCKETS`` buckets keeps the order table in block RAM and
has no ``m_axi_book``. (``m_axi_book`` is the table's memory master; ``m_axis_book`` the
stream of book rows.)
"""

from __future__ import annotations

from amaranth import ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, ResetSignal
from amaranth import Signal
from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import data, wiring

from tickwire.spec.regmap import REGMAP
from tickwire.spec.streams import BOOK_BEAT, book_beats

from .identity import KERNEL
from .targets import order_table_bytes

__all__ = ["ADDR_WIDTH", "FEED_BEAT", "BOOK_BEAT", "KERNEL", "APPLIANCE", "INTERFACES",
           "MEM_INTERFACE", "MEM_CACHE", "KernelTop", "RowSerializer", "appliance_ports",
           "appliance_verilog", "kernel_verilog", "kernel_ports", "kernel_interfaces",
           "axi4_master", "order_memory", "appliance_mem", "book_beats"]

ADDR_WIDTH = REGMAP.addr_width
FEED_BEAT = 64
APPLIANCE = "tickwire_appliance"

_AXIL = [("awaddr", ADDR_WIDTH, "in"), ("awvalid", 1, "in"), ("awready", 1, "out"),
         ("wdata", 32, "in"), ("wstrb", 4, "in"), ("wvalid", 1, "in"), ("wready", 1, "out"),
         ("bresp", 2, "out"), ("bvalid", 1, "out"), ("bready", 1, "in"),
         ("araddr", ADDR_WIDTH, "in"), ("arvalid", 1, "in"), ("arready", 1, "out"),
         ("rdata", 32, "out"), ("rresp", 2, "out"), ("rvalid", 1, "out"), ("rready", 1, "in")]


def _axis(width: int, slave: bool, user: bool = False):
    d_in, d_out = ("in", "out") if slave else ("out", "in")
    return [("tdata", width, d_in), ("tkeep", width // 8, d_in), ("tlast", 1, d_in)] + (
        [("tuser", 1, d_in)] if user else []) + [("tvalid", 1, d_in), ("tready", 1, d_out)]


#: The kernel's bus interfaces: name -> (protocol, mode, [(signal, width, direction)]);
#: the Tcl's interface inference and the tests check the Verilog against this.
INTERFACES = {
    "s_axi_control": ("aximm", "slave", _AXIL),
    "s_axis_feed_a": ("axis", "slave", _axis(FEED_BEAT, True, user=True)),
    "s_axis_feed_b": ("axis", "slave", _axis(FEED_BEAT, True, user=True)),
    "m_axis_orders": ("axis", "master", _axis(FEED_BEAT, False, user=True)),
    "m_axis_book": ("axis", "master", _axis(BOOK_BEAT, False)),
}


#: the kernel's AXI4 master of the order table (the appliance's ``mem``)
MEM_INTERFACE = "m_axi_book"
#: AxCACHE of its transactions: normal non-cacheable bufferable (modifiable, so that a
#: SmartConnect may split/resize the 512-bit bursts for a 128-bit PS port); AxPROT is 0
MEM_CACHE = 0b0011
#: the appliance's AXI4 channels -> the signals of each beat, in AXI's naming
_MEM_CHANNELS = {"aw": ("valid", "ready", "id", "addr", "len", "size", "burst"),
                 "w": ("valid", "ready", "data", "strb", "last"),
                 "b": ("valid", "ready", "id", "resp"),
                 "ar": ("valid", "ready", "id", "addr", "len", "size", "burst"),
                 "r": ("valid", "ready", "id", "data", "resp", "last")}
_MEM_TIED = [("awcache", 4, "out"), ("awprot", 3, "out"), ("arcache", 4, "out"),
             ("arprot", 3, "out")]


def axi4_master(addr_width: int, data_width: int, id_width: int) -> list[tuple[str, int, str]]:
    """The ``m_axi_*`` signals of an AXI4 master of these widths, as (signal, width, dir):
    the appliance's ``mem`` members (``mem__ar__addr`` -> ``araddr``) and the tied-off
    ``*cache``/``*prot``."""
    widths = {"id": id_width, "addr": addr_width, "len": 8, "size": 3, "burst": 2,
              "data": data_width, "strb": data_width // 8, "resp": 2}
    out = []
    for ch, sigs in _MEM_CHANNELS.items():
        master_drives = ch in ("aw", "w", "ar")
        for s in sigs:
            d = "in" if (s == "ready") == master_drives else "out"
            out.append((ch + s, widths.get(s, 1), d))
    return out + _MEM_TIED


def kernel_interfaces(mem: tuple[int, int, int] | None = None) -> dict:
    """The kernel's bus interfaces: :data:`INTERFACES`, and :data:`MEM_INTERFACE` where the
    build's order table is off chip (``mem``: its (address, data, ID) widths)."""
    out = dict(INTERFACES)
    if mem is not None:
        out[MEM_INTERFACE] = ("aximm", "master", axi4_master(*mem))
    return out


def kernel_ports(mem: tuple[int, int, int] | None = None) -> dict[str, tuple[int, str]]:
    """Every port of module ``tickwire``: name -> (width, "in"|"out") (``mem``: see
    :func:`kernel_interfaces`)."""
    out = {"ap_clk": (1, "in"), "ap_rst_n": (1, "in")}
    for name, (_, _, sigs) in kernel_interfaces(mem).items():
        for s, w, d in sigs:
            out[f"{name}_{s}"] = (w, d)
    return out


def order_memory(capacity: dict) -> str:
    """Where a board build keeps the order table: ``"offchip"`` above
    ``ONCHIP_ORDER_BUCKETS`` buckets, else ``"chip"``. Named to the appliance rather than
    left to its ``"auto"``, so the kernel's ports follow the manifest's capacities."""
    from tickwire.spec.capacity import GATEWARE
    n = capacity.get("order_buckets", GATEWARE["order_buckets"])
    return "offchip" if order_table_bytes(n) else "chip"


def _appliance(depth: int, capacity: dict, build_id: int):
    from ..appliance import Appliance
    return Appliance(depth=depth, build_id=build_id, order_memory=order_memory(capacity),
                     **capacity)


def appliance_mem(depth: int, capacity: dict) -> tuple[int, int, int] | None:
    """(address, data, ID) widths of the appliance's order-table master, None where the
    table is on chip."""
    if order_memory(capacity) != "offchip":
        return None
    app = _appliance(depth, capacity, 0)
    app._MustUse__silence = True
    if "mem" not in app.signature.members:
        raise ValueError(f"capacities {capacity} put the order table off chip, but the "
                         "appliance has no mem port")
    sig = app.signature.members["mem"].signature
    return sig.addr_width, sig.data_width, sig.id_width


def appliance_ports(depth: int, capacity: dict, build_id: int = 0) -> dict[str, tuple[int, str]]:
    """Ports of module ``tickwire_appliance``: name -> (width, "in"|"out") (``clk``, ``rst``
    and the flattened members, ``__`` between levels, as Amaranth names them)."""
    from ..report import component_ports
    app = _appliance(depth, capacity, build_id)
    app._MustUse__silence = True
    kept = {id(s) for s in component_ports(app)}
    out = {"clk": (1, "in"), "rst": (1, "in")}
    for path, member, v in app.signature.flatten(app):
        v = Value.cast(v)
        if id(v) in kept:
            out["__".join(map(str, path))] = (len(v), "in" if member.flow == wiring.In
                                              else "out")
    return out


def appliance_verilog(depth: int, capacity: dict, build_id: int) -> str:
    """Verilog of module ``tickwire_appliance``."""
    from ..report import component_ports
    app = _appliance(depth, capacity, build_id)
    return verilog.convert(app, name=APPLIANCE, emit_src=False, ports=component_ports(app))


class RowSerializer(wiring.Component):
    """A wide row (``row``, a stream) out as ``-(-width // beat)`` beats of ``beat`` bits,
    bits 0.. first, zero-padded, ``tlast`` on the last; the next row is taken in the cycle
    the last beat goes, so rows follow back to back."""

    def __init__(self, width: int, beat: int):
        from amaranth.lib import stream
        self.width, self.beat, self.n = width, beat, -(-width // beat)
        super().__init__({"row": wiring.In(stream.Signature(width)),
                          "tdata": wiring.Out(beat), "tlast": wiring.Out(1),
                          "tvalid": wiring.Out(1), "tready": wiring.In(1)})

    def elaborate(self, platform):
        m = Module()
        buf = Signal(self.n * self.beat)
        count = Signal(range(self.n))
        busy = Signal()
        last = count == self.n - 1
        took = busy & self.tready
        free = ~busy | (took & last)
        m.d.comb += [self.tdata.eq(buf[:self.beat]), self.tlast.eq(last),
                     self.tvalid.eq(busy), self.row.ready.eq(free)]
        with m.If(self.row.valid & free):
            m.d.sync += [buf.eq(self.row.payload), count.eq(0), busy.eq(1)]
        with m.Elif(took & last):
            m.d.sync += busy.eq(0)
        with m.Elif(took):
            m.d.sync += [buf.eq(buf >> self.beat), count.eq(count + 1)]
        return m


class KernelTop(Elaboratable):
    """Module ``tickwire`` (see the module doc); ``ports`` its signals by port name."""

    def __init__(self, depth: int, capacity: dict, build_id: int = 0):
        self.depth, self.capacity, self.build_id = depth, dict(capacity), build_id
        self.inner = appliance_ports(depth, capacity, build_id)
        #: (address, data, ID) widths of the order table's master, None for an on-chip table
        self.mem = ((self.inner["mem__ar__addr"][0], self.inner["mem__r__data"][0],
                     self.inner["mem__ar__id"][0]) if "mem__ar__addr" in self.inner else None)
        if (self.mem is None) != (order_memory(capacity) != "offchip"):
            raise ValueError(f"the appliance's ports {'lack' if self.mem is None else 'have'} "
                             f"the order-table master, capacities {capacity} say otherwise")
        self.ports = {n: Signal(w, name=n) for n, (w, _) in kernel_ports(self.mem).items()}

    def elaborate(self, platform):
        m = Module()
        p = self.ports
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(p["ap_clk"]), cd.rst.eq(~p["ap_rst_n"])]
        sig = {n: Signal(w, name=f"app_{n}") for n, (w, _) in self.inner.items()
               if n not in ("clk", "rst")}
        driven = ({f"axi__{s}" for s, _, d in _AXIL if d == "in"} | {"axi__awprot", "axi__arprot"}
                  | {f"rx_{line}__{f}" for line in "ab"
                     for f in ("data", "keep", "first", "last", "user", "valid")}
                  | {"o__ready", "updates__ready"}
                  | {f"mem__{ch}__{s}" for ch, sigs in _MEM_CHANNELS.items() for s in sigs})
        undriven = [n for n in sig if self.inner[n][1] == "in" and n not in driven]
        if undriven:        # an appliance input this top does not know would float at 0
            raise ValueError(f"appliance inputs without a driver in the kernel top: {undriven}")
        args = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
        for n, s in sig.items():
            args[("i_" if self.inner[n][1] == "in" else "o_") + n] = s
        m.submodules.appliance = Instance(APPLIANCE, **args)

        # control port (prot: not a kernel port)
        for s, _, d in _AXIL:
            a, k = sig[f"axi__{s}"], p[f"s_axi_control_{s}"]
            m.d.comb += (a.eq(k) if d == "in" else k.eq(a))
        m.d.comb += [sig["axi__awprot"].eq(0), sig["axi__arprot"].eq(0)]

        # feeds: AXI4-Stream packets -> beats with ``first``
        for line in "ab":
            k = f"s_axis_feed_{line}_"
            in_frame = Signal(name=f"feed_{line}_in_frame")
            beat = p[k + "tvalid"]
            m.d.comb += [sig[f"rx_{line}__data"].eq(p[k + "tdata"]),
                         sig[f"rx_{line}__keep"].eq(p[k + "tkeep"]),
                         sig[f"rx_{line}__last"].eq(p[k + "tlast"]),
                         sig[f"rx_{line}__user"].eq(p[k + "tuser"]),
                         sig[f"rx_{line}__first"].eq(~in_frame),
                         sig[f"rx_{line}__valid"].eq(beat),
                         p[k + "tready"].eq(1)]
            with m.If(beat):
                m.d.sync += in_frame.eq(~p[k + "tlast"])

        # orders: OrderBeat {data, keep, first, last} -> AXI4-Stream (first is implied)
        from ..pipeline import OrderBeat
        ob = data.View(OrderBeat, sig["o__payload"])
        k = "m_axis_orders_"
        m.d.comb += [p[k + "tdata"].eq(ob.data), p[k + "tkeep"].eq(ob.keep),
                     p[k + "tlast"].eq(ob.last), p[k + "tuser"].eq(ob.user),
                     p[k + "tvalid"].eq(sig["o__valid"]),
                     sig["o__ready"].eq(p[k + "tready"])]

        # book rows: one wide row -> book_beats() beats of BOOK_BEAT bits, tlast on the last
        m.submodules.book = ser = RowSerializer(len(sig["updates__payload"]), BOOK_BEAT)
        k = "m_axis_book_"
        m.d.comb += [ser.row.payload.eq(sig["updates__payload"]),
                     ser.row.valid.eq(sig["updates__valid"]),
                     sig["updates__ready"].eq(ser.row.ready),
                     p[k + "tdata"].eq(ser.tdata), p[k + "tlast"].eq(ser.tlast),
                     p[k + "tvalid"].eq(ser.tvalid), ser.tready.eq(p[k + "tready"]),
                     p[k + "tkeep"].eq(Const((1 << BOOK_BEAT // 8) - 1, BOOK_BEAT // 8))]

        # the order table's AXI4 master: the appliance's mem members one to one
        if self.mem is not None:
            k = f"{MEM_INTERFACE}_"
            for ch, sigs in _MEM_CHANNELS.items():
                for s in sigs:
                    a, kp = sig[f"mem__{ch}__{s}"], p[k + ch + s]
                    m.d.comb += (a.eq(kp) if self.inner[f"mem__{ch}__{s}"][1] == "in"
                                 else kp.eq(a))
            m.d.comb += [p[k + "awcache"].eq(MEM_CACHE), p[k + "arcache"].eq(MEM_CACHE),
                         p[k + "awprot"].eq(0), p[k + "arprot"].eq(0)]
        return m


def kernel_verilog(top: KernelTop) -> str:
    """Verilog of module ``tickwire`` (instantiating ``tickwire_appliance``)."""
    from amaranth.hdl import _ir
    dirs = kernel_ports(top.mem)
    ports = {n: (s, _ir.PortDirection.Input if dirs[n][1] == "in"
                 else _ir.PortDirection.Output) for n, s in top.ports.items()}
    return verilog.convert(top, name=KERNEL, emit_src=False, ports=ports)
