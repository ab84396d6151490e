"""The order path: trigger engine -> pre-trade risk -> order egress, with the cycle counter.

One component for integration and for the cocotb bench (sim/trigger_risk). The host tables
are the blocks' own :class:`~tickwire.hw.ports.TablePort` members, connected through; the
scalar configuration is one :class:`OrderConfig` group, the status one :class:`OrderStatus`
group, the counters one :class:`~tickwire.hw.ports.CounterGroup`; the candidate, decision and
accepted-order streams are exposed as monitoring taps.

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

from tickwire.spec.capacity import GATEWARE

from ..layouts import BadRange
from ..egress.builder import COUNTERS as EGRESS_COUNTERS
from ..egress.builder import OrderEgress
from ..egress.latency import CycleCounter
from ..egress.layouts import LatencyRecord, OrderStreamSignature, SessionTemplate
from ..ports import CounterGroup, TablePort
from ..risk.check import COUNTERS as RISK_COUNTERS
from ..risk.check import PreTradeRisk
from ..risk.layouts import AcceptedOrder, Decision, RiskParams, SlotLimits
from .common import MAX_SLOTS, SLOT_BITS, check_int, checked_init
from .engine import COUNTERS as TRIGGER_COUNTERS
from .engine import TriggerEngine
from .layouts import BookEvent, Candidate, CutThroughLink, FastAdd, TriggerRow

__all__ = ["OrderPath", "OrderConfig", "OrderStatus", "COUNTERS", "tables", "forward"]

COUNTERS = TRIGGER_COUNTERS + RISK_COUNTERS + EGRESS_COUNTERS


class OrderConfig(wiring.Signature):
    """Host configuration of the order path (from the host's side; see the blocks):

    enable, fast_enable, wire    trigger engine enables and trigger source (``wire``: an
                                 add crossing fires, the book's best price does not)
    params, trip_clear, user_ref_load, gross_we/gross_value   pre-trade risk
    tmpl, capacity, session_load, lat_enable, lat_bin_shift, lat_clear   order egress
    clear                        strobe: clear all three blocks"""

    def __init__(self):
        super().__init__({
            "enable": Out(1), "fast_enable": Out(1), "wire": Out(1), "params": Out(RiskParams),
            "trip_clear": Out(1), "user_ref_load": Out(1),
            "gross_we": Out(1), "gross_value": Out(64),
            "tmpl": Out(SessionTemplate), "capacity": Out(8), "session_load": Out(1),
            "lat_enable": Out(1), "lat_bin_shift": Out(5), "lat_clear": Out(1),
            "clear": Out(1),
        })

    def __eq__(self, other):
        return isinstance(other, OrderConfig)


class OrderStatus(wiring.Signature):
    """Status of the order path (from its side): the cycle counter ``now``, ``busy`` (a
    clear sweeps), the risk state, the egress's next sequence/IP id and latency summary."""

    def __init__(self):
        super().__init__({
            "now": Out(32), "busy": Out(1), "kill_active": Out(1), "tripped": Out(1),
            "gross": Out(64), "user_ref": Out(32), "next_seq": Out(32), "next_ip_id": Out(16),
            "lat_count": Out(64), "lat_sum": Out(64), "lat_min": Out(32), "lat_max": Out(32),
            "lat_last": Out(32),
        })

    def __eq__(self, other):
        return isinstance(other, OrderStatus)


def tables(hist_bins: int = GATEWARE["hist_bins"], counter_width: int = 32) -> dict:
    """The host tables of the order path, as ``In`` members: ``triggers``, ``refs`` (trigger
    engine), ``limits``, ``positions`` (risk), ``names``, ``lat_hist`` (egress)."""
    return {
        "triggers": In(TablePort(SLOT_BITS, TriggerRow)),
        "refs": In(TablePort(SLOT_BITS, 32)),
        "limits": In(TablePort(SLOT_BITS, SlotLimits)),
        "positions": In(TablePort(SLOT_BITS, signed(64), read=True)),
        "names": In(TablePort(SLOT_BITS, 64)),
        "lat_hist": In(TablePort(range(hist_bins), counter_width, write=False, read=True)),
    }


def forward(m, dst, src, names) -> None:
    """``dst.<name> := src.<name>`` for each of ``names`` (a block's counters into a group)."""
    for name in names:
        m.d.comb += getattr(dst, name).eq(getattr(src, name))


class OrderPath(wiring.Component):
    """Trigger + risk + egress (see the blocks for the port semantics).

    Members: ``ev``, ``fast``, ``quiet``, ``link`` (the trigger engine's inputs and its
    :class:`~.layouts.CutThroughLink` to the cut-through producer), ``fcs_bad`` (the feed's
    bad-FCS message ranges, to the egress), ``config`` (In(OrderConfig)),
    the tables ``triggers``, ``refs`` (trigger engine), ``limits``, ``positions`` (risk),
    ``names``, ``lat_hist`` (egress), ``o`` (order frames), ``lat`` (a latency record
    per order frame: :class:`~tickwire.hw.egress.layouts.LatencyRecord`), the taps ``cand``, ``dec``,
    ``acc``, ``status`` (Out(OrderStatus)), ``counters`` (Out(CounterGroup(COUNTERS))).

    Parameters: ``symbols`` (1..256, default 64), ``fifo_depth`` (egress, default 16),
    ``hist_bins`` (default 33), ``counter_width`` (default 32), ``limits_init`` (risk).
    """

    LATENCY = 3

    @checked_init
    def __init__(self, *, symbols: int = GATEWARE["symbols"], fifo_depth: int = 16,
                 hist_bins: int = GATEWARE["hist_bins"],
                 counter_width: int = 32, limits_init: dict | None = None):
        check_int("symbols", symbols, 1, MAX_SLOTS)
        self.limits_init = limits_init
        self.symbols = symbols
        self.fifo_depth = fifo_depth
        self.hist_bins = hist_bins
        self.counter_width = counter_width
        super().__init__({
            "ev": In(stream.Signature(BookEvent)),
            "fast": In(stream.Signature(FastAdd, always_ready=True)),
            "quiet": In(1),
            "link": In(CutThroughLink()),
            "fcs_bad": In(stream.Signature(BadRange, always_ready=True)),
            "config": In(OrderConfig()),
            **tables(hist_bins, counter_width),
            "o": Out(OrderStreamSignature()),
            "lat": Out(stream.Signature(LatencyRecord, always_ready=True)),
            "cand": Out(stream.Signature(Candidate, always_ready=True)),
            "dec": Out(stream.Signature(Decision, always_ready=True)),
            "acc": Out(stream.Signature(AcceptedOrder, always_ready=True)),
            "status": Out(OrderStatus()),
            "counters": Out(CounterGroup(COUNTERS, counter_width)),
        })

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
                                                counter_width=self.counter_width,
                                                # an event's last order (a sell after a buy) is on
                                                # the egress's input LATENCY + 1 cycles after it
                                                ev_lag=self.LATENCY + 2)
        wiring.connect(m, wiring.flipped(self.ev), trig.ev)
        wiring.connect(m, wiring.flipped(self.fast), trig.fast)
        wiring.connect(m, wiring.flipped(self.link), trig.link)
        wiring.connect(m, trig.o, risk.i)
        wiring.connect(m, risk.o, egr.i)
        wiring.connect(m, wiring.flipped(self.o), egr.o)
        wiring.connect(m, egr.rec, wiring.flipped(self.lat))
        wiring.connect(m, wiring.flipped(self.fcs_bad), egr.fcs_bad)
        for blk, tables in ((trig, ("triggers", "refs")), (risk, ("limits", "positions")),
                            (egr, ("names", "lat_hist"))):
            for t in tables:
                wiring.connect(m, wiring.flipped(getattr(self, t)), getattr(blk, t))
        cfg, st = self.config, self.status
        m.d.comb += [
            trig.now.eq(clk.now), egr.now.eq(clk.now),
            self.cand.valid.eq(trig.o.valid), self.cand.payload.eq(trig.o.payload),
            self.dec.valid.eq(risk.d.valid), self.dec.payload.eq(risk.d.payload),
            self.acc.valid.eq(risk.o.valid), self.acc.payload.eq(risk.o.payload),
            # configuration
            trig.quiet.eq(self.quiet), trig.enable.eq(cfg.enable),
            trig.fast_enable.eq(cfg.fast_enable), trig.wire.eq(cfg.wire),
            risk.params.eq(cfg.params), risk.trip_clear.eq(cfg.trip_clear),
            risk.user_ref_load.eq(cfg.user_ref_load), risk.gross_we.eq(cfg.gross_we),
            risk.gross_value.eq(cfg.gross_value),
            egr.tmpl.eq(cfg.tmpl), egr.capacity.eq(cfg.capacity),
            egr.session_load.eq(cfg.session_load), egr.lat_enable.eq(cfg.lat_enable),
            egr.lat_bin_shift.eq(cfg.lat_bin_shift), egr.lat_clear.eq(cfg.lat_clear),
            trig.clear.eq(cfg.clear), risk.clear.eq(cfg.clear), egr.clear.eq(cfg.clear),
            # the engine's progress, for the egress's bad-FCS ranges
            egr.ev_taken.eq(self.ev.valid & self.ev.ready), egr.ev_seq.eq(self.ev.payload.sequence),
            # status
            st.now.eq(clk.now), st.busy.eq(trig.busy | risk.busy | egr.busy),
            st.kill_active.eq(risk.kill_active), st.tripped.eq(risk.tripped),
            st.gross.eq(risk.gross), st.user_ref.eq(risk.user_ref),
            st.next_seq.eq(egr.next_seq), st.next_ip_id.eq(egr.next_ip_id),
            st.lat_count.eq(egr.lat_count), st.lat_sum.eq(egr.lat_sum),
            st.lat_min.eq(egr.lat_min), st.lat_max.eq(egr.lat_max),
            st.lat_last.eq(egr.lat_last),
        ]
        forward(m, self.counters, trig.counters, TRIGGER_COUNTERS)
        forward(m, self.counters, risk.counters, RISK_COUNTERS)
        forward(m, self.counters, egr.counters, EGRESS_COUNTERS)
        return m
