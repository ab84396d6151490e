"""The kernel top: the appliance behind the port names Vivado and Vitis infer interfaces from.

Module ``tickwire`` (the kernel and IP name) instantiates module ``tickwire_appliance`` (the
appliance, :class:`tickwire.hw.appliance.Appliance`, converted on its own so its Verilog keeps
the appliance's own port names, as the RTL harness has them) and adapts its ports:

=====================  ===========================================================
``ap_clk``             the fabric clock (every port is synchronous to it)
``ap_rst_n``           active-low reset, synchronous to ``ap_clk``
``s_axi_control_*``    AXI4-Lite slave (32-bit data, :data:`ADDR_WIDTH`-bit byte address):
                       the register map; ``*prot`` is not a kernel port (tied to 0)
``s_axis_feed_a_*``    AXI4-Stream (64-bit, ``tkeep``, ``tlast``): feed line A, one Ethernet
``s_axis_feed_b_*``    frame per packet, no FCS; ``tready`` is always 1 (the appliance takes
                       a beat every cycle); ``first`` is derived from the packet boundaries
``m_axis_orders_*``    AXI4-Stream (64-bit): order frames, one per packet, with back-pressure
``m_axis_book_*``      AXI4-Stream (:data:`BOOK_BEAT` bits): one top-N book row per packet,
                       the row's bits (``book_update_layout``) from bit 0 of the first beat,
                       zero-padded to whole beats (:func:`book_beats`); for the DMA to the
                       host
=====================  ===========================================================

The book is on chip (no off-chip memory master).
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

__all__ = ["ADDR_WIDTH", "FEED_BEAT", "BOOK_BEAT", "KERNEL", "APPLIANCE", "INTERFACES",
           "KernelTop", "RowSerializer", "appliance_ports", "appliance_verilog", "kernel_verilog",
           "kernel_ports", "book_beats"]

ADDR_WIDTH = REGMAP.addr_width
FEED_BEAT = 64
APPLIANCE = "tickwire_appliance"

_AXIL = [("awaddr", ADDR_WIDTH, "in"), ("awvalid", 1, "in"), ("awready", 1, "out"),
         ("wdata", 32, "in"), ("wstrb", 4, "in"), ("wvalid", 1, "in"), ("wready", 1, "out"),
         ("bresp", 2, "out"), ("bvalid", 1, "out"), ("bready", 1, "in"),
         ("araddr", ADDR_WIDTH, "in"), ("arvalid", 1, "in"), ("arready", 1, "out"),
         ("rdata", 32, "out"), ("rresp", 2, "out"), ("rvalid", 1, "out"), ("rready", 1, "in")]


def _axis(width: int, slave: bool):
    d_in, d_out = ("in", "out") if slave else ("out", "in")
    return [("tdata", width, d_in), ("tkeep", width // 8, d_in), ("tlast", 1, d_in),
            ("tvalid", 1, d_in), ("tready", 1, d_out)]


#: The kernel's bus interfaces: name -> (protocol, mode, [(signal, width, direction)]);
#: the Tcl's interface inference and the tests check the Verilog against this.
INTERFACES = {
    "s_axi_control": ("aximm", "slave", _AXIL),
    "s_axis_feed_a": ("axis", "slave", _axis(FEED_BEAT, True)),
    "s_axis_feed_b": ("axis", "slave", _axis(FEED_BEAT, True)),
    "m_axis_orders": ("axis", "master", _axis(FEED_BEAT, False)),
    "m_axis_book": ("axis", "master", _axis(BOOK_BEAT, False)),
}


def kernel_ports() -> dict[str, tuple[int, str]]:
    """Every port of module ``tickwire``: name -> (width, "in"|"out")."""
    out = {"ap_clk": (1, "in"), "ap_rst_n": (1, "in")}
    for name, (_, _, sigs) in INTERFACES.items():
        for s, w, d in sigs:
            out[f"{name}_{s}"] = (w, d)
    return out




def _appliance(depth: int, capacity: dict, build_id: int):
    from ..appliance import Appliance
    return Appliance(depth=depth, build_id=build_id, **capacity)


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
        self.ports = {n: Signal(w, name=n) for n, (w, _) in kernel_ports().items()}
        self.inner = appliance_ports(depth, capacity, build_id)

    def elaborate(self, platform):
        m = Module()
        p = self.ports
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(p["ap_clk"]), cd.rst.eq(~p["ap_rst_n"])]
        sig = {n: Signal(w, name=f"app_{n}") for n, (w, _) in self.inner.items()
               if n not in ("clk", "rst")}
        driven = ({f"axi__{s}" for s, _, d in _AXIL if d == "in"} | {"axi__awprot", "axi__arprot"}
                  | {f"rx_{line}__{f}" for line in "ab"
                     for f in ("data", "keep", "first", "last", "valid")}
                  | {"o__ready", "updates__ready"})
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
                     p[k + "tlast"].eq(ob.last), p[k + "tvalid"].eq(sig["o__valid"]),
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
        return m


def kernel_verilog(top: KernelTop) -> str:
    """Verilog of module ``tickwire`` (instantiating ``tickwire_appliance``)."""
    from amaranth.hdl import _ir
    ports = {n: (s, _ir.PortDirection.Input if kernel_ports()[n][1] == "in"
                 else _ir.PortDirection.Output) for n, s in top.ports.items()}
    return verilog.convert(top, name=KERNEL, emit_src=False, ports=ports)
