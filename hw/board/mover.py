"""The book mover: ``m_axis_book`` rows into a ring buffer in device memory (Alveo: HBM).

:class:`BookMover` takes the kernel's book-row stream (``row_beats`` 128-bit beats a row,
``tlast`` on the last) and writes each row as one AXI4 INCR burst of ``row_beats`` beats into
the ring slot after the previous row's (:mod:`.book_ring`: slots are a power of two bytes, so
a burst never crosses a 4 KiB boundary). Its registers are :data:`.book_ring.MOVER_MAP`
through the generic AXI4-Lite register file. Why it behaves as it does:

* a row is only started when its slot is free (one slot stays empty between the write and the
  host's read offset): with the ring full the mover stops taking the stream, which the
  appliance turns into counted line-buffer drops, and counts those cycles in ``HELD_BACK``;
* ``WR_OFFSET`` moves on by a slot per OKAY write response (one AXI ID: responses come back
  in order), so the host never reads a row whose write has not landed;
* a response that is not OKAY is counted, latches ``STATUS.error`` and stops the mover: the
  rows behind it are never published (the host sees the error instead of a torn row);
* while not running (not yet started, disabled, or stopped by an error) rows are taken and
  discarded (``ROWS_DISCARDED``): the book path never waits for a host that reads no rows.

:class:`MoverTop` is module ``tickwire_book_mover``, the second user-managed RTL kernel of the
Alveo project: ``ap_clk``, ``ap_rst_n``, ``s_axi_control_*``, ``s_axis_book_*``,
``m_axi_gmem_*`` (64-bit address, 128-bit data, one ID: 0; the read channel is tied off).
"""

from __future__ import annotations

from amaranth import ClockDomain, Const, Elaboratable, Module, Mux, Shape, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..regmap.axil import AXI4LiteSignature, RegisterFile
from .book_ring import BEAT_BYTES, MOVER_KERNEL, MOVER_MAP, slot_bytes

__all__ = ["BookMover", "MoverTop", "MOVER_INTERFACES", "mover_ports", "mover_verilog",
           "GMEM_ADDR", "GMEM_DATA"]

GMEM_ADDR = 64
GMEM_DATA = BEAT_BYTES * 8
#: AXI4 write bursts a mover keeps in flight (their rows are counted as taken slots)
OUTSTANDING = 8

_CTRL = AXI4LiteSignature(MOVER_MAP.addr_width)
#: the control port's signals as the kernel has them (``*prot``: not a kernel port)
_AXIL = [(s, Shape.cast(mb.shape).width, "in" if mb.flow == Out else "out")
         for s, mb in _CTRL.members.items() if not s.endswith("prot")]
_AXIS = [("tdata", GMEM_DATA, "in"), ("tkeep", GMEM_DATA // 8, "in"), ("tlast", 1, "in"),
         ("tvalid", 1, "in"), ("tready", 1, "out")]
_ADDR = (("id", 1), ("addr", GMEM_ADDR), ("len", 8), ("size", 3), ("burst", 2),
         ("valid", 1))
_AXI4 = ([(f"aw{s}", w, "out") for s, w in _ADDR]
         + [("awready", 1, "in"), ("wdata", GMEM_DATA, "out"), ("wstrb", GMEM_DATA // 8, "out"),
            ("wlast", 1, "out"), ("wvalid", 1, "out"), ("wready", 1, "in"), ("bid", 1, "in"),
            ("bresp", 2, "in"), ("bvalid", 1, "in"), ("bready", 1, "out")]
         + [(f"ar{s}", w, "out") for s, w in _ADDR]
         + [("arready", 1, "in"), ("rid", 1, "in"), ("rdata", GMEM_DATA, "in"),
            ("rresp", 2, "in"), ("rlast", 1, "in"), ("rvalid", 1, "in"), ("rready", 1, "out")])

#: the mover kernel's bus interfaces: name -> (protocol, mode, [(signal, width, direction)])
MOVER_INTERFACES = {
    "s_axi_control": ("aximm", "slave", _AXIL),
    "s_axis_book": ("axis", "slave", _AXIS),
    "m_axi_gmem": ("aximm", "master", _AXI4),
}


def mover_ports() -> dict[str, tuple[int, str]]:
    """Every port of module ``tickwire_book_mover``: name -> (width, "in"|"out")."""
    out = {"ap_clk": (1, "in"), "ap_rst_n": (1, "in")}
    for name, (_, _, sigs) in MOVER_INTERFACES.items():
        for s, w, d in sigs:
            out[f"{name}_{s}"] = (w, d)
    return out


class BookMover(wiring.Component):
    """Rows of ``row_beats`` beats from ``s_*`` (AXI4-Stream) into the ring through ``m_*``
    (AXI4 write master), registers on ``axi`` (see the module doc)."""

    def __init__(self, row_beats: int, outstanding: int = OUTSTANDING):
        self.row_beats, self.outstanding = row_beats, outstanding
        self.slot = slot_bytes(row_beats)
        members = {"axi": In(AXI4LiteSignature(MOVER_MAP.addr_width))}
        for prefix, sigs in (("s", _AXIS), ("m", _AXI4)):
            for s, w, d in sigs:
                members[f"{prefix}_{s}"] = In(w) if d == "in" else Out(w)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        rb, slot = self.row_beats, self.slot
        slog = slot.bit_length() - 1
        m.submodules.regs = regs = RegisterFile(MOVER_MAP)
        wiring.connect(m, wiring.flipped(self.axi), regs.axi)

        running, error, bad_cfg, misframed = Signal(), Signal(), Signal(), Signal()
        armed = Signal(init=1)              # CONTROL.enable was 0 since the last start
        base, size = Signal(64), Signal(32)
        issue, wr = Signal(32), Signal(32)  # next slot to start; after the last OKAY row
        inflight = Signal(range(self.outstanding + 1))
        writing, dropping = Signal(), Signal()
        beat = Signal(range(rb))
        aw_pending, awaddr = Signal(), Signal(64)
        rows, held, discarded = Signal(64), Signal(64), Signal(64)
        errors = Signal(32)

        def after(off):
            nxt = off + slot
            return Mux(nxt == size, 0, nxt)[:32]

        issue_next = Signal(32)
        m.d.comb += issue_next.eq(after(issue))
        full = issue_next == regs.rd_offset       # the row would make the ring read empty
        idle = ~writing & ~dropping
        can_start = (running & ~full & (inflight < self.outstanding) & ~aw_pending & idle)

        # ---- the stream: a row is written, dropped, or waits ---------------------------
        tv, last_beat = self.s_tvalid, beat == rb - 1
        take = Signal()
        m.d.comb += [
            self.s_tready.eq(Mux(writing, self.m_wready, dropping)),
            take.eq(tv & self.s_tready),
            self.m_wvalid.eq(writing & tv), self.m_wdata.eq(self.s_tdata),
            self.m_wstrb.eq(Const((1 << GMEM_DATA // 8) - 1, GMEM_DATA // 8)),
            self.m_wlast.eq(last_beat),
        ]
        started = Signal()
        m.d.comb += started.eq(idle & tv & can_start)
        with m.If(started):
            m.d.sync += [writing.eq(1), beat.eq(0), aw_pending.eq(1),
                         awaddr.eq(base + issue), issue.eq(issue_next)]
        with m.Elif(idle & tv & ~running):
            m.d.sync += [dropping.eq(1), beat.eq(0)]
        with m.If(idle & tv & running & full):
            m.d.sync += held.eq(held + 1)
        with m.If(take):
            m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))
            with m.If(self.s_tlast != last_beat):
                m.d.sync += misframed.eq(1)
            with m.If(last_beat):
                m.d.sync += [writing.eq(0), dropping.eq(0)]
                with m.If(dropping):
                    m.d.sync += discarded.eq(discarded + 1)

        # ---- address channel: one burst per row ----------------------------------------
        m.d.comb += [self.m_awid.eq(0), self.m_arid.eq(0),
                     self.m_awaddr.eq(awaddr), self.m_awlen.eq(rb - 1),
                     self.m_awsize.eq((BEAT_BYTES - 1).bit_length()), self.m_awburst.eq(1),
                     self.m_awvalid.eq(aw_pending),
                     self.m_arvalid.eq(0), self.m_rready.eq(1), self.m_bready.eq(1)]
        with m.If(aw_pending & self.m_awready):
            m.d.sync += aw_pending.eq(0)

        # ---- responses: publish the row, or stop on an error ---------------------------
        resp = self.m_bvalid
        m.d.sync += inflight.eq(inflight + started - resp)
        with m.If(resp):
            with m.If(self.m_bresp != 0):
                m.d.sync += [errors.eq(errors + 1), error.eq(1)]
            with m.Elif(~error):
                m.d.sync += [wr.eq(after(wr)), rows.eq(rows + 1)]

        # ---- start / stop --------------------------------------------------------------
        ok = ((regs.ring_size[:slog] == 0) & (regs.ring_size >= 2 * slot)
              & (regs.ring_base[:slog] == 0) & (regs.rd_offset == 0))
        with m.If(~regs.control):
            m.d.sync += armed.eq(1)
        with m.If(running & (~regs.control | (resp & (self.m_bresp != 0)))):
            m.d.sync += running.eq(0)
        with m.Elif(~running & regs.control & armed & (inflight == 0) & idle & ~aw_pending):
            m.d.sync += armed.eq(0)
            with m.If(ok):
                m.d.sync += [running.eq(1), base.eq(regs.ring_base), size.eq(regs.ring_size),
                             issue.eq(0), wr.eq(0), error.eq(0), bad_cfg.eq(0)]
            with m.Else():
                m.d.sync += bad_cfg.eq(1)

        m.d.comb += [regs.geometry_row_beats.eq(rb), regs.geometry_slot_log2.eq(slog),
                     regs.status_running.eq(running), regs.status_error.eq(error),
                     regs.status_busy.eq((inflight != 0) | writing | aw_pending),
                     regs.status_full.eq(running & full), regs.status_bad_config.eq(bad_cfg),
                     regs.status_misframed.eq(misframed), regs.wr_offset.eq(wr),
                     regs.write_errors.eq(errors), regs.rows_written.eq(rows),
                     regs.held_back.eq(held), regs.rows_discarded.eq(discarded)]
        return m


class MoverTop(Elaboratable):
    """Module ``tickwire_book_mover``: :class:`BookMover` behind the kernel's port names."""

    def __init__(self, row_beats: int):
        self.row_beats = row_beats
        self.ports = {n: Signal(w, name=n) for n, (w, _) in mover_ports().items()}

    def elaborate(self, platform):
        m = Module()
        p = self.ports
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(p["ap_clk"]), cd.rst.eq(~p["ap_rst_n"])]
        m.submodules.mover = mv = BookMover(self.row_beats)
        links = [("s_axi_control", lambda s: getattr(mv.axi, s)),
                 ("s_axis_book", lambda s: getattr(mv, f"s_{s}")),
                 ("m_axi_gmem", lambda s: getattr(mv, f"m_{s}"))]
        for name, inner in links:
            for s, _, d in MOVER_INTERFACES[name][2]:
                k = p[f"{name}_{s}"]
                m.d.comb += inner(s).eq(k) if d == "in" else k.eq(inner(s))
        m.d.comb += [mv.axi.awprot.eq(0), mv.axi.arprot.eq(0)]
        return m


def mover_verilog(row_beats: int) -> str:
    """Verilog of module ``tickwire_book_mover`` (its submodules in the same file)."""
    from amaranth.hdl import _ir
    top = MoverTop(row_beats)
    ports = {n: (s, _ir.PortDirection.Input if d == "in" else _ir.PortDirection.Output)
             for (n, (_, d)), s in zip(mover_ports().items(), top.ports.values())}
    return verilog.convert(top, name=MOVER_KERNEL, emit_src=False, ports=ports)
