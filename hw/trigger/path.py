"""The order path: trigger engine -> pre-trade risk -> order egress, with the cycle counter.

One component for integration and for the cocotb bench (sim/trigger_risk). Every
configuration port of the three blocks is a port here under the same name; the candidate,
decision and accepted-order streams are exposed as monitoring taps.

Latency (cycle 0 = the BookEvent is accepted on ``ev``, or the cut-through strobe on
``fast`` is taken; the first frame byte is valid on ``o`` in cycle 3 when the egress is idle):

    cycle 0   trigger evaluation (async table reads, compares)      -> candidate register
    cycle 1   risk stage A: notional, collar products              -> registers
    cycle 2   risk stage B: ten checks, state update                -> accepted-order register
    cycle 3   egress beat 0 (template MACs) valid, order registered  -> beats 1..12 follow
"""

from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..egress.builder import COUNTERS as EGRESS_COUNTERS
from ..egress.builder import OrderEgress
from ..egress.latency import CycleCounter
from ..egress.layouts import OrderStreamSignature, SessionTemplate
from ..risk.check import COUNTERS as RISK_COUNTERS
from ..risk.check import PreTradeRisk
from ..risk.layouts import AcceptedOrder, Decision, RiskParams, SlotLimits
from .common import MAX_SLOTS, SLOT_BITS, check_int, checked_init
from .engine import COUNTERS as TRIGGER_COUNTERS
from .engine import TriggerEngine
from .layouts import BookEvent, Candidate, FastAdd, TriggerRow

__all__ = ["OrderPath", "COUNTERS"]

COUNTERS = TRIGGER_COUNTERS + RISK_COUNTERS + EGRESS_COUNTERS


class OrderPath(wiring.Component):
    """Trigger + risk + egress (see the blocks for the port semantics).

    Parameters: ``symbols`` (1..256, default 64), ``fifo_depth`` (egress, default 16),
    ``hist_bins`` (default 33), ``counter_width`` (default 32), ``limits_init`` (risk).
    """

    LATENCY = 3

    @checked_init
    def __init__(self, *, symbols: int = 64, fifo_depth: int = 16, hist_bins: int = 33,
                 counter_width: int = 32, limits_init: dict | None = None):
        check_int("symbols", symbols, 1, MAX_SLOTS)
        self.limits_init = limits_init
        self.symbols = symbols
        self.fifo_depth = fifo_depth
        self.hist_bins = hist_bins
        self.counter_width = counter_width
        ports = {
            "ev": In(stream.Signature(BookEvent)),
            "fast": In(stream.Signature(FastAdd, always_ready=True)),
            "quiet": In(1), "enable": In(1), "fast_enable": In(1),
            "tw_we": In(1), "tw_slot": In(SLOT_BITS), "tw_row": In(TriggerRow),
            "ref_we": In(1), "ref_slot": In(SLOT_BITS), "ref_price": In(32),
            "params": In(RiskParams),
            "sl_we": In(1), "sl_slot": In(SLOT_BITS), "sl_data": In(SlotLimits),
            "pos_we": In(1), "pos_slot": In(SLOT_BITS), "pos_value": In(signed(64)),
            "pos_raddr": In(SLOT_BITS), "pos_rdata": Out(signed(64)),
            "gross_we": In(1), "gross_value": In(64),
            "trip_clear": In(1), "user_ref_load": In(1),
            "tmpl": In(SessionTemplate), "capacity": In(8), "session_load": In(1),
            "name_we": In(1), "name_slot": In(SLOT_BITS), "name_data": In(64),
            "lat_enable": In(1), "lat_bin_shift": In(5), "lat_rd_index": In(range(hist_bins)),
            "lat_rd_count": Out(counter_width), "lat_count": Out(64), "lat_sum": Out(64),
            "lat_min": Out(32), "lat_max": Out(32), "lat_last": Out(32),
            "clear": In(1), "lat_clear": In(1), "busy": Out(1),
            "o": Out(OrderStreamSignature()),
            "cand": Out(stream.Signature(Candidate, always_ready=True)),
            "dec": Out(stream.Signature(Decision, always_ready=True)),
            "acc": Out(stream.Signature(AcceptedOrder, always_ready=True)),
            "now": Out(32), "kill_active": Out(1), "tripped": Out(1), "gross": Out(64),
            "user_ref": Out(32),
            "next_seq": Out(32), "next_ip_id": Out(16),
        }
        for name in COUNTERS:
            ports[name] = Out(counter_width)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.submodules.clock = clk = CycleCounter(32)
        m.submodules.trigger = trig = TriggerEngine(symbols=self.symbols,
                                                    counter_width=self.counter_width)
        m.submodules.risk = risk = PreTradeRisk(symbols=self.symbols,
                                                counter_width=self.counter_width,
                                                limits_init=self.limits_init)
        m.submodules.egress = egr = OrderEgress(symbols=self.symbols, fifo_depth=self.fifo_depth,
                                                hist_bins=self.hist_bins,
                                                counter_width=self.counter_width)
        wiring.connect(m, wiring.flipped(self.ev), trig.ev)
        wiring.connect(m, wiring.flipped(self.fast), trig.fast)
        wiring.connect(m, trig.o, risk.i)
        wiring.connect(m, risk.o, egr.i)
        wiring.connect(m, wiring.flipped(self.o), egr.o)
        m.d.comb += [
            self.now.eq(clk.now), trig.now.eq(clk.now), egr.now.eq(clk.now),
            self.cand.valid.eq(trig.o.valid), self.cand.payload.eq(trig.o.payload),
            self.dec.valid.eq(risk.d.valid), self.dec.payload.eq(risk.d.payload),
            self.acc.valid.eq(risk.o.valid), self.acc.payload.eq(risk.o.payload),
            trig.clear.eq(self.clear), risk.clear.eq(self.clear), egr.clear.eq(self.clear),
            self.busy.eq(trig.busy | risk.busy | egr.busy),
        ]
        for name in ("quiet", "enable", "fast_enable", "tw_we", "tw_slot", "tw_row", "ref_we",
                     "ref_slot", "ref_price"):
            m.d.comb += getattr(trig, name).eq(getattr(self, name))
        for name in ("params", "sl_we", "sl_slot", "sl_data", "pos_we", "pos_slot", "pos_value",
                     "pos_raddr", "gross_we", "gross_value", "trip_clear", "user_ref_load"):
            m.d.comb += getattr(risk, name).eq(getattr(self, name))
        for name in ("tmpl", "capacity", "session_load", "name_we", "name_slot", "name_data",
                     "lat_enable", "lat_bin_shift", "lat_rd_index", "lat_clear"):
            m.d.comb += getattr(egr, name).eq(getattr(self, name))
        m.d.comb += [self.pos_rdata.eq(risk.pos_rdata), self.tripped.eq(risk.tripped),
                     self.kill_active.eq(risk.kill_active),
                     self.gross.eq(risk.gross), self.user_ref.eq(risk.user_ref),
                     self.next_seq.eq(egr.next_seq), self.next_ip_id.eq(egr.next_ip_id)]
        for name in ("lat_rd_count", "lat_count", "lat_sum", "lat_min", "lat_max", "lat_last"):
            m.d.comb += getattr(self, name).eq(getattr(egr, name))
        for name in TRIGGER_COUNTERS:
            m.d.comb += getattr(self, name).eq(getattr(trig, name))
        for name in RISK_COUNTERS:
            m.d.comb += getattr(self, name).eq(getattr(risk, name))
        for name in EGRESS_COUNTERS:
            m.d.comb += getattr(self, name).eq(getattr(egr, name))
        return m
