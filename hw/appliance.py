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
  ``risk_rejects``), one cycle after it.
* Counters are the blocks' 32-bit counters (``overflow``/feed ``messages`` etc. as wide as the
  feed makes them) zero-extended into the 64-bit registers.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .book.layouts import book_update_layout
from .feed.layouts import AxiStreamSignature
from .pipeline import COUNTERS, FEED_HW_PORTS, OrderBeat, TickToTrade
from .regmap.axil import AXI4LiteSignature, RegisterFile
from tickwire.spec.regmap import REGMAP, STICKY_SOURCES
from .trigger.common import check_int

__all__ = ["Appliance", "STICKY_SOURCES"]


#: Global risk parameters: RiskParams field -> register file port.
_RISK_PORTS = {
    "kill_after_rejects": "risk_kill_after_rejects", "max_order_qty": "risk_max_order_qty",
    "max_notional": "risk_max_notional", "collar_bps": "risk_collar_bps",
    "max_gross": "risk_max_gross", "symbol_burst": "risk_symbol_burst",
    "symbol_refill_ns": "risk_symbol_refill_ns", "global_burst": "risk_global_burst",
    "global_refill_ns": "risk_global_refill_ns", "dup_window_ns": "risk_dup_window_ns",
    "first_user_ref": "orders_first_user_ref",
}

#: Session template field -> register file port.
_TMPL_PORTS = {
    "dst_mac": "session_dst_mac", "src_mac": "session_src_mac",
    "vlan_en": "session_vlan_enable", "vlan": "session_vlan_vid",
    "src_ip": "session_src_ip", "dst_ip": "session_dst_ip",
    "src_port": "session_ports_src_port", "dst_port": "session_ports_dst_port",
    "seq": "session_seq", "ack": "session_ack", "window": "session_window",
    "ttl": "session_ttl", "ip_id": "session_ip_id",
}

#: Register file input <- pipeline output (same name unless given).
_STATUS_IN = {
    "status_kill_active": "kill_active", "status_kill_tripped": "tripped",
    "status_busy": "busy", "risk_gross": "gross", "session_seq_next": "next_seq",
    "session_ip_id_next": "next_ip_id", "orders_next_user_ref": "user_ref",
    "feed_expected": "expected", "lat_count": "lat_count", "lat_sum": "lat_sum",
    "lat_min": "lat_min", "lat_max": "lat_max", "lat_last": "lat_last",
    "overflow": "overflow",
}


class Appliance(wiring.Component):
    """Members
    -------
    axi : In(AXI4LiteSignature(REGMAP.addr_width))   the control port (32-bit AXI4-Lite)
    rx_a, rx_b : In(AxiStreamSignature(64))          the two feed lines (no back-pressure)
    o : Out(stream.Signature(OrderBeat))              order frames to the MAC
    updates : Out(stream.Signature(book_update_layout(depth)))   top-N book rows (hold
        ``ready`` high when unused)

    Parameters are the pipeline's build parameters (``depth``, ``symbols``, ``order_buckets``,
    ``order_ways``, ``levels``, ``groups``, ``fifo_depth``, ``hist_bins``); the register file
    reports them in the CAPACITY registers.
    """

    def __init__(self, *, depth: int = 10, symbols: int = 64, order_buckets: int = 1 << 12,
                 order_ways: int = 4, levels: int = 32, groups: int = 4,
                 fifo_depth: int = 16, hist_bins: int = 33):
        check_int("symbols", symbols, 1, 256)
        check_int("groups", groups, 1, 64)
        check_int("hist_bins", hist_bins, 2, 256)
        self._pipe_kw = dict(depth=depth, symbols=symbols, order_buckets=order_buckets,
                             order_ways=order_ways, levels=levels, groups=groups,
                             fifo_depth=fifo_depth, hist_bins=hist_bins)
        self._cap = dict(symbols=symbols, levels=levels, order_buckets=order_buckets,
                         order_ways=order_ways, groups=groups, hist_bins=hist_bins)
        self.depth = depth
        self.symbols = symbols
        super().__init__({
            "axi": In(AXI4LiteSignature(REGMAP.addr_width)),
            "rx_a": In(AxiStreamSignature(64)),
            "rx_b": In(AxiStreamSignature(64)),
            "o": Out(stream.Signature(OrderBeat)),
            "updates": Out(stream.Signature(book_update_layout(depth))),
        })

    @property
    def capacity(self) -> dict[str, int]:
        return dict(self._cap)

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = rf = RegisterFile(REGMAP, **self._cap)
        m.submodules.pipe = p = TickToTrade(**self._pipe_kw)

        wiring.connect(m, wiring.flipped(self.rx_a), p.rx_a)
        wiring.connect(m, wiring.flipped(self.rx_b), p.rx_b)
        wiring.connect(m, p.o, wiring.flipped(self.o))
        wiring.connect(m, p.updates, wiring.flipped(self.updates))

        # ---- control port: writes wait while the order path clears its tables --------
        hold = p.busy
        for name in ("awaddr", "awprot", "wdata", "wstrb", "bready", "araddr", "arprot",
                     "arvalid", "rready"):
            m.d.comb += getattr(rf.axi, name).eq(getattr(self.axi, name))
        for name in ("bresp", "bvalid", "arready", "rdata", "rresp", "rvalid"):
            m.d.comb += getattr(self.axi, name).eq(getattr(rf.axi, name))
        m.d.comb += [
            rf.axi.awvalid.eq(self.axi.awvalid & ~hold),
            rf.axi.wvalid.eq(self.axi.wvalid & ~hold),
            self.axi.awready.eq(rf.axi.awready & ~hold),
            self.axi.wready.eq(rf.axi.wready & ~hold),
        ]

        # ---- configuration: register file -> pipeline ---------------------------------
        m.d.comb += [
            p.enable.eq(rf.control_enable), p.auto.eq(rf.control_auto),
            p.fast_enable.eq(rf.control_cut_through),
            p.clear.eq(rf.control_soft_reset),
            p.check_ip_checksum.eq(rf.feed_config_check_ip_checksum),
            p.track_sequence.eq(rf.feed_config_track_sequence),
            p.ab_window.eq(rf.feed_config_ab_window),
            p.params.kill.eq(rf.control_kill),
            p.gross_value.eq(rf.risk_gross_set), p.gross_we.eq(rf.risk_load_gross),
            p.trip_clear.eq(rf.risk_trip_clear),
            p.capacity.eq(rf.orders_capacity),
            p.session_load.eq(rf.session_load), p.user_ref_load.eq(rf.session_load),
            p.lat_enable.eq(rf.lat_config_enable), p.lat_bin_shift.eq(rf.lat_config_bin_shift),
            p.lat_clear.eq(rf.lat_config_clear),
        ]
        for fld, port in _RISK_PORTS.items():
            m.d.comb += getattr(p.params, fld).eq(getattr(rf, port))
        for fld, port in _TMPL_PORTS.items():
            m.d.comb += getattr(p.tmpl, fld).eq(getattr(rf, port))
        for j in range(self._cap["groups"]):
            for fld in ("valid", "ip", "port"):
                m.d.comb += getattr(p.groups[j], fld).eq(getattr(rf.feed_groups[j], fld))

        # tables
        sym, trg, rsk, pos, hist = rf.symbols, rf.triggers, rf.risk_slots, rf.positions, \
            rf.lat_hist
        m.d.comb += [
            p.sym_we.eq(sym.we), p.sym_slot.eq(sym.index), p.sym_name.eq(sym.name),
            p.sym_valid.eq(sym.valid),
            p.sym_raddr.eq(sym.raddr), sym.r_name.eq(p.sym_rname), sym.r_valid.eq(p.sym_rvalid),
            p.tw_we.eq(trg.we), p.tw_slot.eq(trg.index),
            p.tw_row.buy_price.eq(trg.buy_price), p.tw_row.sell_price.eq(trg.sell_price),
            p.tw_row.quantity.eq(trg.quantity), p.tw_row.enable_buy.eq(trg.enable_buy),
            p.tw_row.enable_sell.eq(trg.enable_sell), p.tw_row.rearm.eq(trg.rearm),
            p.sl_we.eq(rsk.we), p.sl_slot.eq(rsk.index),
            p.sl_data.enable.eq(rsk.enable), p.sl_data.max_long.eq(rsk.max_long),
            p.sl_data.max_short.eq(rsk.max_short),
            p.ref_we.eq(rsk.we), p.ref_slot.eq(rsk.index), p.ref_price.eq(rsk.ref_price),
            p.pos_we.eq(pos.we), p.pos_slot.eq(pos.index), p.pos_value.eq(pos.position),
            p.pos_raddr.eq(pos.raddr), pos.r_position.eq(p.pos_rdata),
            p.lat_rd_index.eq(hist.raddr), hist.r_count.eq(p.lat_rd_count),
        ]

        # ---- status and counters: pipeline -> register file ---------------------------
        for port, src in _STATUS_IN.items():
            m.d.comb += getattr(rf, port).eq(getattr(p, src))
        m.d.comb += [rf.feed_session_lo.eq(p.session[:64]),
                     rf.feed_session_hi.eq(p.session[64:])]
        for name in tuple(COUNTERS) + FEED_HW_PORTS:
            if hasattr(rf, name):
                m.d.comb += getattr(rf, name).eq(getattr(p, name))
        for port, src in STICKY_SOURCES.items():
            prev = Signal.like(getattr(p, src), name=f"{src}_prev")
            m.d.sync += prev.eq(getattr(p, src))
            m.d.comb += getattr(rf, port).eq(getattr(p, src) != prev)
        return m


def unconnected_ports() -> list[str]:
    """Register file ports the appliance leaves at their defaults (a test keeps it empty)."""
    rf = RegisterFile(REGMAP)
    rf._MustUse__silence = True          # built for its signature only
    pipe_counters = set(COUNTERS) | set(FEED_HW_PORTS)
    glue = (set(_RISK_PORTS.values()) | set(_TMPL_PORTS.values()) | set(_STATUS_IN)
            | set(STICKY_SOURCES) | {
                "control_enable", "control_auto", "control_soft_reset", "control_kill",
                "control_cut_through",
                "feed_config_check_ip_checksum", "feed_config_track_sequence",
                "feed_config_ab_window", "risk_gross_set", "risk_load_gross",
                "risk_trip_clear", "orders_capacity", "session_load", "lat_config_enable",
                "lat_config_bin_shift", "lat_config_clear", "feed_session_lo",
                "feed_session_hi", "feed_groups", "symbols", "triggers", "risk_slots",
                "positions", "lat_hist", "axi"})
    return sorted(n for n in rf.signature.members
                  if n not in glue and n not in pipe_counters)
