"""The whole feed handler: two lines (A, B) of frames in, committed ITCH messages out.

    rx_a -> FrameParser -> MoldLineBuffer --\\
                                             MoldTracker -> ItchDecoder -> o (DecodedMessage)
    rx_b -> FrameParser -> MoldLineBuffer --/        ^---- done ----'   \\-> early, held

Counters carry the emulator's names (tickwire.host.moldudp64.COUNTERS); the frame reasons and
``frames`` are the sums over both lines (registered, one cycle behind the per-line ones, which
are exposed too as ``a_<name>`` / ``b_<name>``). ``overflow`` (line buffers) and
``ignored_types`` (decoder) are hardware-only.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import GATEWARE
from tickwire.spec.counters import LINE_FRAME_COUNTERS

from ..layouts import BadRange, DecodedMessage
from .decoder import EarlyLayout, ItchDecoder
from .layouts import (AxiStreamSignature, FEED_COUNTERS, FeedTap, FRAME_STATUS_PASS,
                      GroupEntry, TRACKER_COUNTERS, TrackerEvent, WIDE_COUNTERS)
from .linebuf import MoldLineBuffer
from .parser import FrameParser
from .tracker import MoldTracker

__all__ = ["FeedFrontEnd"]

_LINE_COUNTERS = LINE_FRAME_COUNTERS


class FeedFrontEnd(wiring.Component):
    """Members
    -------
    rx_a, rx_b : In(AxiStreamSignature(64))
    groups : In(ArrayLayout(GroupEntry, groups)); check_ip_checksum : In(1) init 1;
    track_sequence : In(1) init 1; ab_window : In(16)
        Host-set configuration (docs/architecture.md).
    o : Out(stream.Signature(DecodedMessage))
        Committed messages, to the book builder.
    early : Out(EarlyLayout)
        Speculative cut-through view of the message being received.
    held : Out(1)
        The decoder still holds an A F E C X D U H message not handed on ``o`` (see
        :class:`~.decoder.ItchDecoder`; for the cut-through ``quiet``).
    fcs_bad : Out(stream.Signature(BadRange, always_ready=True))
        The sequence numbers a packet announced whose frame then ended with a bad FCS (the
        parsers' ``fcs_bad``; a heartbeat or end of session announces none), from either line,
        a cycle after the parser's (line A's first when both come in one cycle, line B's one
        cycle later).
    events : Out(stream.Signature(TrackerEvent))
        Tracker decisions as they take effect (telemetry; ``ready`` ignored).
    frame_status_a, frame_status_b : Out(stream.Signature(range(11)))
        Per-frame outcome of each parser (telemetry; ``ready`` ignored).
    tap : Out(FeedTap(line_depth))
        For the port walker (hw/trigger/portwalk.py).
    <every name of FEED_COUNTERS>, overflow, ignored_types, a_<reason>, b_<reason> : Out
    """

    def __init__(self, *, groups: int = GATEWARE["groups"], counter_width: int = 32, line_depth: int = 512,
                 line_packets: int = 64, fifo_depth: int = 256):
        self._kw = dict(groups=groups, counter_width=counter_width, line_depth=line_depth,
                        line_packets=line_packets, fifo_depth=fifo_depth)
        cw = counter_width
        members = {
            "rx_a": In(AxiStreamSignature(64)),
            "rx_b": In(AxiStreamSignature(64)),
            "groups": In(data.ArrayLayout(GroupEntry, groups)),
            "check_ip_checksum": In(1, init=1),
            "track_sequence": In(1, init=1),
            "ab_window": In(16),
            "o": Out(stream.Signature(DecodedMessage)),
            "early": Out(EarlyLayout),
            "held": Out(1),
            "events": Out(stream.Signature(TrackerEvent)),
            "fcs_bad": Out(stream.Signature(BadRange, always_ready=True)),
            "frame_status_a": Out(stream.Signature(range(FRAME_STATUS_PASS + 1))),
            "frame_status_b": Out(stream.Signature(range(FRAME_STATUS_PASS + 1))),
            "session": Out(80),
            "expected": Out(64),
            "overflow": Out(cw),
            "ignored_types": Out(cw),
            "tap": Out(FeedTap(line_depth)),
        }
        for k in FEED_COUNTERS:
            members[k] = Out(64 if k in WIDE_COUNTERS else cw)
        for line in "ab":
            for k in _LINE_COUNTERS:
                members[f"{line}_{k}"] = Out(cw)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        kw = self._kw
        cw = kw["counter_width"]
        parsers, bufs = [], []
        for line, rx in (("a", self.rx_a), ("b", self.rx_b)):
            p = FrameParser(groups=kw["groups"], counter_width=cw)
            bf = MoldLineBuffer(depth=kw["line_depth"], packets=kw["line_packets"],
                                counter_width=cw)
            m.submodules[f"parser_{line}"] = p
            m.submodules[f"linebuf_{line}"] = bf
            wiring.connect(m, wiring.flipped(rx), p.rx)
            m.d.comb += [p.groups.eq(self.groups),
                         p.check_ip_checksum.eq(self.check_ip_checksum)]
            m.d.comb += [bf.i.valid.eq(p.o.valid), bf.i.payload.eq(p.o.payload)]
            st = getattr(self, f"frame_status_{line}")
            m.d.comb += [st.valid.eq(p.frame_status.valid),
                         st.payload.eq(p.frame_status.payload)]
            for k in _LINE_COUNTERS:
                m.d.comb += getattr(self, f"{line}_{k}").eq(getattr(p, k))
            parsers.append(p)
            bufs.append(bf)
        m.submodules.tracker = tr = MoldTracker(counter_width=cw)
        m.submodules.decoder = dec = ItchDecoder(fifo_depth=kw["fifo_depth"], counter_width=cw)
        wiring.connect(m, bufs[0].o, tr.line_a)
        wiring.connect(m, bufs[1].o, tr.line_b)
        wiring.connect(m, tr.o, dec.i)
        wiring.connect(m, dec.done, tr.done)
        wiring.connect(m, dec.o, wiring.flipped(self.o))
        m.d.comb += [
            tr.track_sequence.eq(self.track_sequence), tr.ab_window.eq(self.ab_window),
            self.early.eq(dec.early), self.held.eq(dec.held),
            self.events.valid.eq(tr.events.valid), self.events.payload.eq(tr.events.payload),
            tr.events.ready.eq(1),
            self.session.eq(tr.session), self.expected.eq(tr.expected),
        ]
        tap = self.tap
        m.d.comb += [
            tap.verdict_a.eq(parsers[0].verdict), tap.level_a.eq(bufs[0].level),
            tap.desc_room_a.eq(bufs[0].desc_room), tap.busy_b.eq(self.rx_b.valid),
            tap.idle.eq(tr.idle & bufs[0].empty & bufs[1].empty),
            tap.session.eq(tr.session), tap.prev_session.eq(tr.prev_session),
            tap.have_session.eq(tr.have_session), tap.have_prev.eq(tr.have_prev),
            tap.expected.eq(tr.expected), tap.track_sequence.eq(self.track_sequence),
            tap.pop_a.eq(bufs[0].o.desc.valid & bufs[0].o.desc.ready),
            tr.hold_b.eq(tap.hold_b),
        ]
        for k in _LINE_COUNTERS:
            total = Signal(cw, name=f"sum_{k}")
            m.d.sync += total.eq(getattr(parsers[0], k) + getattr(parsers[1], k))
            m.d.comb += getattr(self, k).eq(total)
        for k in TRACKER_COUNTERS:
            m.d.comb += getattr(self, k).eq(getattr(tr, k))
        for k in ("messages", "unknown_type", "bad_length", "mold_overrun", "ignored_types"):
            m.d.comb += getattr(self, k).eq(getattr(dec, k))
        (va, la, ha), (vb, lb, hb) = [(p.fcs_bad.valid, p.fcs_bad.payload.lo, p.fcs_bad.payload.hi)
                                      for p in parsers]
        # line A's first when both come in one cycle, line B's the next (a line's packets are
        # more than a cycle apart): no compare in the way
        out = self.fcs_bad
        held, held_lo, held_hi = Signal(), Signal(64), Signal(64)
        m.d.sync += [
            out.valid.eq(va | vb | held),
            out.payload.lo.eq(Mux(va, la, Mux(held, held_lo, lb))),
            out.payload.hi.eq(Mux(va, ha, Mux(held, held_hi, hb))),
            held.eq(va & vb), held_lo.eq(lb), held_hi.eq(hb),
        ]
        ov = Signal(cw)
        m.d.sync += ov.eq(bufs[0].overflow + bufs[1].overflow)
        m.d.comb += self.overflow.eq(ov)
        return m
