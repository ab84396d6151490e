"""The appliance: the whole tick-to-trade pipeline behind its AXI4-Lite register file.

    axi (AXI4-Lite slave) -> RegisterFile (hw/regmap) --config/tables--> TickToTrade
                                          <--counters/status--
    rx_a, rx_b -> TickToTrade -> o (order frames), updates (top-N rows)

This is the component a board wrapper instantiates: two feed lines in, one order stream out,
one control port. Every configuration value, table and counter of the pipeline is reached
through the register map of :mod:`tickwire.spec.regmap` (docs/registers.md), so the
host's own driver (:class:`tickwire.host.driver.Driver`) configures and reads it the same way
in simulation and on a board.

Glue rules (the register map's documentation states them from the host's side):

* CONTROL.soft_reset clears the order path (OrderPath ``clear``: trigger rows, risk state,
  egress queue and counters, latency statistics; session counters loaded) -- the feed handler
  and the book keep following the market. While the clear sweeps its tables (STATUS.busy), the
  appliance holds AXI writes (``awready``/``wready`` low), so a host may write the tables right
  after a soft reset without polling; reads go on.
* SESSION_CTRL.load loads the egress counters (TCP sequence, IPv4 id) and the OUCH user
  reference (from ORDERS_FIRST_USER_REF) together.
* A RISK_SLOTS write updates the slot's risk limits and its collar reference price in the same
  cycle; a SYMBOLS write names the slot in the book and in the egress (order ``symbol``).
* STATUS sticky bits are set when the matching counter moves (gap: ``gaps``, session_change:
  ``session_changes``, order_table_full, level_overflow, symbol_overflow, risk_reject:
  ``risk_rejects``, fcs_error: ``fcs_errors``), one cycle after it.
* Counters are the blocks' 32-bit counters (``overflow``/feed ``messages`` etc. as wide as the
  feed makes them) zero-extended into the 64-bit registers.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .book.layouts import book_update_layout
from .egress.layouts import LatencyRecord, SessionTemplate
from .feed.layouts import AxiStreamSignature
from .pipeline import OrderBeat, TickToTrade
from .regmap.axil import AXI4LiteSignature, RegisterFile
from tickwire.spec.capacity import GATEWARE as _CAP, ROW_DEPTH
from tickwire.spec.regmap import REGMAP, RISK_PARAM_FIELDS, STICKY_SOURCES
from .risk.layouts import RiskParams
from .trigger.common import check_int

__all__ = ["Appliance", "STICKY_SOURCES", "TEMPLATE_FIELDS", "unconnected_ports"]


#: Where each RiskParams field lives in the map: (register, field) (the emulator's risk
#: parameters as the map places them, and the first OUCH user reference).
PARAM_FIELDS = dict(RISK_PARAM_FIELDS, first_user_ref=("ORDERS_FIRST_USER_REF",
                                                       "first_user_ref"))

#: Where each SessionTemplate field lives in the map: (register, field).
TEMPLATE_FIELDS = {
    "dst_mac": ("SESSION_DST_MAC", "mac"), "src_mac": ("SESSION_SRC_MAC", "mac"),
    "vlan_en": ("SESSION_VLAN", "enable"), "vlan": ("SESSION_VLAN", "vid"),
    "src_ip": ("SESSION_SRC_IP", "ip"), "dst_ip": ("SESSION_DST_IP", "ip"),
    "src_port": ("SESSION_PORTS", "src_port"), "dst_port": ("SESSION_PORTS", "dst_port"),
    "seq": ("SESSION_SEQ", "seq"), "ack": ("SESSION_ACK", "ack"),
    "window": ("SESSION_WINDOW", "window"), "ttl": ("SESSION_TTL", "ttl"),
    "ip_id": ("SESSION_IP_ID", "ip_id"),
}


class _Wired:
    """The register file's ports as the appliance takes them, remembering which it took
    (:func:`unconnected_ports` lists the others)."""

    def __init__(self, rf: RegisterFile):
        self._rf, self.used = rf, set()

    def __getattr__(self, port):
        self.used.add(port)
        return getattr(self._rf, port)

    def field(self, register: str, field: str):
        return getattr(self, REGMAP.register(register).field(field).port)


def _write(m, dst, src) -> None:
    """A table write of the register file (``src``) into the pipeline (``dst``): the same
    row fields, the index zero-extended to the pipeline's slot width."""
    if data.Layout.cast(dst.row.shape()) != data.Layout.cast(src.row.shape()):
        raise ValueError(f"table rows differ: {dst.row.shape()!r} vs {src.row.shape()!r}")
    m.d.comb += [dst.we.eq(src.we), dst.index.eq(src.index), dst.row.eq(src.row)]


class Appliance(wiring.Component):
    """Members
    -------
    axi : In(AXI4LiteSignature(REGMAP.addr_width))   the control port (32-bit AXI4-Lite)
    rx_a, rx_b : In(AxiStreamSignature(64))          the two feed lines (no back-pressure)
    o : Out(stream.Signature(OrderBeat))              order frames to the MAC
    updates : Out(stream.Signature(book_update_layout(depth)))   top-N book rows (hold
        ``ready`` high when unused)
    mem : Out(AXI4Signature)   with the order table off chip (the default: more buckets than
        ``spec/capacity.py`` ONCHIP_ORDER_BUCKETS, or ``order_memory="offchip"``): the table's
        memory (hw/book/orders_offchip.py), from the address in ORDER_TABLE_BASE,
        :attr:`order_memory_bytes` of it

    Parameters are the pipeline's build parameters (``depth``, ``symbols``, ``order_buckets``,
    ``order_ways``, ``levels``, ``groups``, ``fifo_depth``, ``hist_bins``); the register file
    reports them in the CAPACITY registers; ``build_id`` (hw/board/identity.py) is read back in
    BUILD_ID.
    """

    def __init__(self, *, depth: int = ROW_DEPTH, symbols: int = _CAP["symbols"],
                 order_buckets: int = _CAP["order_buckets"], order_ways: int = _CAP["order_ways"],
                 levels: int = _CAP["levels"], groups: int = _CAP["groups"],
                 fifo_depth: int = 16, hist_bins: int = _CAP["hist_bins"], build_id: int = 0,
                 order_memory: str = "auto"):
        check_int("symbols", symbols, 1, 256)
        check_int("groups", groups, 1, 64)
        check_int("hist_bins", hist_bins, 2, 256)
        check_int("build_id", build_id, 0, (1 << 32) - 1)
        self.build_id = build_id
        self._pipe_kw = dict(depth=depth, symbols=symbols, order_buckets=order_buckets,
                             order_ways=order_ways, levels=levels, groups=groups,
                             fifo_depth=fifo_depth, hist_bins=hist_bins,
                             order_memory=order_memory)
        self._cap = dict(symbols=symbols, levels=levels, order_buckets=order_buckets,
                         order_ways=order_ways, groups=groups, hist_bins=hist_bins)
        self.depth = depth
        self.symbols = symbols
        self.wired: set[str] = set()
        self.order_memory = order_memory
        pipe = TickToTrade(**self._pipe_kw)
        pipe._MustUse__silence = True    # asked for its memory port only
        memory = {}
        if "mem" in pipe.signature.members:
            self.order_memory_bytes = pipe.order_memory_bytes
            memory = {"mem": Out(pipe.signature.members["mem"].signature)}
        super().__init__({
            "axi": In(AXI4LiteSignature(REGMAP.addr_width)),
            "rx_a": In(AxiStreamSignature(64)),
            "rx_b": In(AxiStreamSignature(64)),
            "o": Out(stream.Signature(OrderBeat)),
            "updates": Out(stream.Signature(book_update_layout(depth))),
            # per order frame, its latency stamps (hw/egress/layouts.py LatencyRecord)
            "lat": Out(stream.Signature(LatencyRecord, always_ready=True)),
            **memory,
        })

    @property
    def capacity(self) -> dict[str, int]:
        return dict(self._cap)

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = regs = RegisterFile(REGMAP, build_id=self.build_id, **self._cap)
        m.submodules.pipe = p = TickToTrade(**self._pipe_kw)
        rf = _Wired(regs)

        wiring.connect(m, wiring.flipped(self.rx_a), p.rx_a)
        wiring.connect(m, wiring.flipped(self.rx_b), p.rx_b)
        wiring.connect(m, p.o, wiring.flipped(self.o))
        wiring.connect(m, p.updates, wiring.flipped(self.updates))
        wiring.connect(m, p.lat, wiring.flipped(self.lat))
        if "mem" in self.signature.members:
            wiring.connect(m, p.mem, wiring.flipped(self.mem))
            m.d.comb += p.order_base.eq(rf.order_table_base)
        else:
            rf.used.add("order_table_base")     # no off-chip table: nothing to point at

        # ---- control port: writes wait while the order path clears its tables --------
        hold = p.status.busy
        axi = rf.axi
        wiring.connect(m, wiring.flipped(self.axi), axi)
        # ... except for the write handshakes, which the hold gates (driven below instead)
        m.d.comb += [
            axi.awvalid.eq(self.axi.awvalid & ~hold),
            axi.wvalid.eq(self.axi.wvalid & ~hold),
            self.axi.awready.eq(axi.awready & ~hold),
            self.axi.wready.eq(axi.wready & ~hold),
        ]

        # ---- configuration: register file -> pipeline ---------------------------------
        o, fc = p.orders, p.feed
        m.d.comb += [
            fc.groups.eq(rf.feed_groups),
            fc.check_ip_checksum.eq(rf.feed_config_check_ip_checksum),
            fc.track_sequence.eq(rf.feed_config_track_sequence),
            fc.ab_window.eq(rf.feed_config_ab_window),
            p.auto.eq(rf.control_auto),
            o.enable.eq(rf.control_enable), o.fast_enable.eq(rf.control_cut_through),
            o.wire.eq(rf.control_wire_triggers),
            o.clear.eq(rf.control_soft_reset),
            o.gross_value.eq(rf.risk_gross_set), o.gross_we.eq(rf.risk_load_gross),
            o.trip_clear.eq(rf.risk_trip_clear),
            o.capacity.eq(rf.orders_capacity),
            o.session_load.eq(rf.session_load), o.user_ref_load.eq(rf.session_load),
            o.lat_enable.eq(rf.lat_config_enable), o.lat_bin_shift.eq(rf.lat_config_bin_shift),
            o.lat_clear.eq(rf.lat_config_clear),
        ]
        m.d.comb += [o.params[k].eq(rf.field(*PARAM_FIELDS[k])) for k, _ in RiskParams.as_shape()]
        m.d.comb += [o.tmpl[k].eq(rf.field(*TEMPLATE_FIELDS[k])) for k, _ in SessionTemplate.as_shape()]

        # ---- tables --------------------------------------------------------------------
        wiring.connect(m, rf.symbols, p.symbols)
        _write(m, p.triggers.w, rf.triggers.w)
        # a RISK_SLOTS row: the risk limits and the collar reference, in the same cycle
        rs, lim, ref = rf.risk_slots.w, p.limits.w, p.refs.w
        m.d.comb += [
            lim.we.eq(rs.we), lim.index.eq(rs.index), lim.row.enable.eq(rs.row.enable),
            lim.row.max_long.eq(rs.row.max_long), lim.row.max_short.eq(rs.row.max_short),
            ref.we.eq(rs.we), ref.index.eq(rs.index), ref.row.eq(rs.row.ref_price),
        ]
        pos, hist = rf.positions, rf.lat_hist
        m.d.comb += [
            p.positions.w.we.eq(pos.w.we), p.positions.w.index.eq(pos.w.index),
            p.positions.w.row.eq(pos.w.row.position),
            p.positions.r.addr.eq(pos.r.addr), pos.r.data.position.eq(p.positions.r.data),
            p.lat_hist.r.addr.eq(hist.r.addr), hist.r.data.count.eq(p.lat_hist.r.data),
        ]

        # ---- status and counters: pipeline -> register file ---------------------------
        st = p.status
        m.d.comb += [
            rf.status_kill_active.eq(st.kill_active), rf.status_kill_tripped.eq(st.tripped),
            rf.status_busy.eq(st.busy), rf.risk_gross.eq(st.gross),
            rf.session_seq_next.eq(st.next_seq), rf.session_ip_id_next.eq(st.next_ip_id),
            rf.orders_next_user_ref.eq(st.user_ref),
            rf.lat_count.eq(st.lat_count), rf.lat_sum.eq(st.lat_sum),
            rf.lat_min.eq(st.lat_min), rf.lat_max.eq(st.lat_max), rf.lat_last.eq(st.lat_last),
            rf.feed_expected.eq(p.expected), rf.fast_offered.eq(p.fast_offered),
            rf.port_offered.eq(p.port_offered), rf.port_syncs.eq(p.port_syncs),
            rf.port_b_waits.eq(p.port_b_waits),
            rf.wire_stops.eq(p.wire_stops),
            rf.feed_session_lo.eq(p.session[:64]), rf.feed_session_hi.eq(p.session[64:]),
        ]
        # counters: the register of each counter is the port of the counter's name
        m.d.comb += [getattr(rf, name).eq(value) for name, value in
                     ((path[0], v) for path, _, v in p.counters.signature.flatten(p.counters))]
        for port, src in STICKY_SOURCES.items():
            cnt = getattr(p.counters, src)
            prev = Signal.like(cnt, name=f"{src}_prev")
            m.d.sync += prev.eq(cnt)
            m.d.comb += getattr(rf, port).eq(cnt != prev)
        self.wired = rf.used
        return m


def unconnected_ports() -> list[str]:
    """Register file ports the appliance leaves at their defaults (a test keeps it empty)."""
    app = Appliance()
    app._MustUse__silence = True             # elaborated for its wiring only
    m = app.elaborate(None)
    m._MustUse__silence = True
    for sub in (m.submodules.regs, m.submodules.pipe):
        sub._MustUse__silence = True
    return sorted(set(m.submodules.regs.signature.members) - app.wired)
