"""MoldUDP64 A/B arbiter and sequence tracker.

Takes buffered packets from lines A and B (:class:`~.linebuf.MoldLineBuffer`), decides each
one with the rules of docs/architecture.md (session, duplicate, gap, overlap) and either
streams it to the ITCH decoder or drains it. Decisions are made on the committed tracker state;
a packet's effects (counters, session, ``expected``) are committed when the packet is complete:
for a streamed packet when the decoder reports it walked (``done``: how many messages it
framed, overrun), for a drained one at its last beat. (Its messages do not wait for that:
the decoder hands each on at its last byte.)

Arbitration: a decision considers the packets at the heads of both lines; when both lines
have one, the lower sequence number goes first (A on equal ones). A packet that would open a
gap while the other line has no packet waiting waits up to ``ab_window`` cycles for it (0: no
waiting). A packet that changes tracker state (accepted: new session, gap, heartbeat, messages)
is decided only when no other state-changing packet is in flight; duplicates and stale-session
packets of the other line are decided and drained meanwhile when the packet in flight does not
change the session (their verdict cannot depend on its outcome).

Per decision: PICK (the head latched with its session compares and s + n) -> EV (rules) ->
ACT, 3 cycles; a duplicate of the committed state (typically the other line's copy) is
recognised from registered per-line compares and drained in 1 cycle. Sustained: one line at
100 % line rate with 1-message packets (13 cycles each); both lines carrying copies of such
packets, one packet per 14 cycles.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import (MoldBeat, PacketDone, TRACKER_COUNTERS, TrackerEvent, Verdict,
                      WIDE_COUNTERS)
from .linebuf import LineSignature

__all__ = ["MoldTracker"]

_K_DUP, _K_STALE, _K_ACC = 0, 1, 2


class _PacketInfo:
    """Registers describing a packet between its decision and its commit."""

    def __init__(self, name):
        self.kind = Signal(2, name=f"{name}_kind")
        self.line = Signal(name=f"{name}_line")
        self.session = Signal(80, name=f"{name}_session")
        self.seq = Signal(64, name=f"{name}_seq")
        self.count = Signal(16, name=f"{name}_count")
        self.skip = Signal(16, name=f"{name}_skip")
        self.new = Signal(name=f"{name}_new")
        self.gap = Signal(name=f"{name}_gap")
        self.exp = Signal(64, name=f"{name}_exp")      # expected at the decision
        self.gapd = Signal(64, name=f"{name}_gapd")    # seq - exp (messages in the gap)
        self.seqm1 = Signal(64, name=f"{name}_seqm1")  # seq - 1 (end of the gap)

    def fields(self):
        return [self.kind, self.line, self.session, self.seq, self.count, self.skip, self.new,
                self.gap, self.exp, self.gapd, self.seqm1]

    def eq(self, other):
        return [a.eq(b) for a, b in zip(self.fields(), other.fields())]


class MoldTracker(wiring.Component):
    """Members
    -------
    line_a, line_b : In(LineSignature())
        Buffered packets of lines A and B.
    o : Out(stream.Signature(MoldBeat))
        Packets with messages to deliver, to the ITCH decoder.
    done : In(stream.Signature(PacketDone))
        From the decoder, once per packet of ``o`` after its last beat (``ready`` is 1).
    track_sequence : In(1), init 1
        Off: every packet is accepted and streamed whole, no session/gap/duplicate logic.
    ab_window : In(16)
        Cycles a gap-opening packet waits for the other line.
    events : Out(stream.Signature(TrackerEvent))
        One event per packet when it takes effect (``ready`` ignored: telemetry).
    session : Out(80), expected : Out(64), have_session : Out(1)
        Tracker state; ``prev_session``/``have_prev`` the session before it.
    hold_b : In(1)
        Decide no packet of line B (its duplicates are still drained) while line A's head is
        one the port walker predicted (hw/trigger/portwalk.py: it went on line A's packets
        alone, and a line-B packet decided first could change their fate).
    idle : Out(1)
        No packet being decided, streamed, drained or committed (the state is final).
    packets, gaps, gap_messages, last_gap_first, last_gap_last, dup_packets, stale_session,
    heartbeats, end_of_session, session_changes : Out
        Counters (names of tickwire.host.moldudp64.COUNTERS); the gap ones are 64-bit.
    """

    def __init__(self, *, counter_width: int = 32):
        if not isinstance(counter_width, int) or not 8 <= counter_width <= 64:
            raise ValueError(f"counter_width must be an integer in 8..64, not "
                             f"{counter_width!r}")
        self._cw = counter_width
        members = {
            "line_a": In(LineSignature()),
            "line_b": In(LineSignature()),
            "o": Out(stream.Signature(MoldBeat)),
            "done": In(stream.Signature(PacketDone)),
            "track_sequence": In(1, init=1),
            "ab_window": In(16),
            "events": Out(stream.Signature(TrackerEvent)),
            "session": Out(80),
            "expected": Out(64),
            "have_session": Out(1),
            "prev_session": Out(80),
            "have_prev": Out(1),
            "hold_b": In(1),
            "idle": Out(1),
        }
        for name in TRACKER_COUNTERS:
            members[name] = Out(64 if name in WIDE_COUNTERS else counter_width)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        lines = [self.line_a, self.line_b]
        track = self.track_sequence

        # ------------------------------------------------------------ committed state
        cur = Signal(80)
        have_cur = Signal()
        prev = Signal(80)
        have_prev = Signal()
        expected = Signal(64)
        cnt = {k: Signal(64 if k in WIDE_COUNTERS else self._cw, name=f"c_{k}")
               for k in TRACKER_COUNTERS}
        m.d.comb += [self.session.eq(cur), self.expected.eq(expected),
                     self.have_session.eq(have_cur), self.prev_session.eq(prev),
                     self.have_prev.eq(have_prev)]
        for k, s in cnt.items():
            m.d.comb += getattr(self, k).eq(s)

        inflight = Signal()        # a state-changing packet decided, not yet committed
        inflight_same = Signal()   # ... and it does not change the session

        # ------------------------------------------------------------ readers
        IDLE, STREAM, DRAIN = 0, 1, 2
        rd = [Signal(2, name=f"rd_{n}") for n in "ab"]
        drain_info = [_PacketInfo(f"dr_{n}") for n in "ab"]
        stream_info = _PacketInfo("st")
        st_first = Signal()

        # ------------------------------------------------------------ decision FSM
        heads = [ln.desc for ln in lines]
        both_prev = Signal()
        b_lower = Signal()
        a_lower = Signal()
        # both heads present last cycle and neither popped: b_lower is about the current heads
        m.d.sync += [both_prev.eq(heads[0].valid & heads[1].valid & ~heads[0].ready
                                  & ~heads[1].ready),
                     b_lower.eq(heads[1].payload.sequence < heads[0].payload.sequence),
                     a_lower.eq(heads[0].payload.sequence < heads[1].payload.sequence)]
        e1 = _PacketInfo("e1")     # the head latched at PICK, with its compares
        e1_cur = Signal()
        e1_prev = Signal()
        e1_sn = Signal(65)         # s + n_eff
        e1_neff = Signal(16)
        e2 = _PacketInfo("e2")
        e2_stream = Signal()
        e2_change = Signal()       # state-changing (accepted)
        e2_hold = Signal()         # gap-opening candidate for the A/B window
        waiting = Signal()
        wait_cnt = Signal(16)
        # a state commit happened since PICK latched the state: the evaluation is stale
        dirty = Signal()
        state_commit = Signal()
        picked = Signal()
        m.d.sync += dirty.eq(state_commit | (dirty & ~picked))

        # Fast path for duplicates (typically the other line's copy of a packet just
        # committed): per line, a head of the current session with s + n <= expected is
        # drained at once (1 cycle instead of the 3-cycle evaluation), in any FSM state; an
        # evaluation of the same head in progress is abandoned. ``fd_eq``/``fd_sn`` depend on
        # the head (and the session), are registered, and are fresh two cycles after the
        # head appeared or the session changed; the comparison with ``expected`` is live.
        fd_eq = [Signal(name=f"fd_eq_{n}") for n in "ab"]
        fd_sn = [Signal(65, name=f"fd_sn_{n}") for n in "ab"]
        fd_age = [Signal(2, name=f"fd_age_{n}") for n in "ab"]
        session_commit = Signal()
        for li in range(2):
            hp = heads[li].payload
            n_ok = (hp.count != 0) & (hp.count != 0xFFFF)
            m.d.sync += [fd_eq[li].eq(track & have_cur & (hp.session == cur) & n_ok),
                         fd_sn[li].eq(hp.sequence + hp.count)]
            with m.If(~heads[li].valid | heads[li].ready | session_commit):
                m.d.sync += fd_age[li].eq(0)
            with m.Elif(fd_age[li] != 3):
                m.d.sync += fd_age[li].eq(fd_age[li] + 1)
        fast = [Signal(name=f"fast_{n}") for n in "ab"]
        act_new = Signal()        # the FSM is committing a session-changing decision now
        for li in range(2):
            m.d.comb += fast[li].eq(heads[li].valid & (fd_age[li] >= 2) & fd_eq[li]
                                    & (fd_sn[li] <= expected) & (rd[li] == IDLE)
                                    & (~inflight | inflight_same) & ~act_new
                                    & (~fast[0] if li == 1 else 1))
            hp = heads[li].payload
            fast_info = _PacketInfo(f"fast_{'ab'[li]}")
            m.d.comb += [fast_info.kind.eq(_K_DUP), fast_info.line.eq(li),
                         fast_info.session.eq(hp.session), fast_info.seq.eq(hp.sequence),
                         fast_info.count.eq(hp.count)]
            with m.If(fast[li]):
                m.d.comb += heads[li].ready.eq(1)
                m.d.sync += [rd[li].eq(DRAIN)]
                m.d.sync += drain_info[li].eq(fast_info)
        fast_any = fast[0] | fast[1]
        # the FSM's evaluation (of line ``e1.line``) is void when its head went the fast way
        fast_sel = Mux(e1.line, fast[1], fast[0])

        # wait_cnt < ab_window and ab_window != 0, registered with the count (LUT levels: the
        # window, a register file setting, no longer compared in front of the decision; a
        # new window applies a cycle later)
        wait_lt = Signal()
        ab_on = Signal()
        wait_next = Signal(16)
        m.d.comb += wait_next.eq(Mux(waiting, Mux(wait_cnt == 0xFFFF, wait_cnt, wait_cnt + 1), 0))
        m.d.sync += [wait_cnt.eq(wait_next), wait_lt.eq(wait_next < self.ab_window),
                     ab_on.eq(self.ab_window != 0)]

        with m.FSM(name="decide") as fsm:
            with m.State("PICK"):
                va, vb = heads[0].valid, heads[1].valid
                choose_b = Signal()
                m.d.comb += choose_b.eq(vb & ~self.hold_b & (~va | (both_prev & b_lower)))
                ready_to_pick = (va | (vb & ~self.hold_b)) & ~(va & vb & ~both_prev)
                # the chosen head is latched with its compares against the state of this
                # cycle (a commit in it or later makes the evaluation dirty)
                hp = Mux(choose_b, heads[1].payload.as_value(), heads[0].payload.as_value())
                hp_session, hp_seq, hp_count = hp[0:80], hp[80:144], hp[144:160]
                neff = Mux(hp_count == 0xFFFF, 0, hp_count)
                m.d.sync += [
                    e1.line.eq(choose_b), e1.session.eq(hp_session), e1.seq.eq(hp_seq),
                    e1.count.eq(hp_count), e1_neff.eq(neff), e1_sn.eq(hp_seq + neff),
                    e1_cur.eq(have_cur & (hp_session == cur)),
                    e1_prev.eq(have_prev & (hp_session == prev)),
                ]
                with m.If(fast_any):
                    pass
                with m.Elif(ready_to_pick & (Mux(choose_b, rd[1], rd[0]) == IDLE)):
                    m.d.comb += picked.eq(1)
                    m.next = "EV"
            with m.State("EV"):
                new = track & ~e1_cur & ~e1_prev
                stale = track & ~e1_cur & e1_prev
                exp = Mux(new, e1.seq, expected)
                dup = track & ~stale & (e1_neff != 0) & (e1_sn <= exp)
                gap = track & ~stale & ~dup & (e1.seq > exp)
                skip = Mux(track & (exp > e1.seq), (exp - e1.seq)[0:16], 0)
                acc = ~stale & ~dup
                m.d.sync += [
                    e2.kind.eq(Mux(stale, _K_STALE, Mux(dup, _K_DUP, _K_ACC))),
                    e2.line.eq(e1.line), e2.session.eq(e1.session), e2.seq.eq(e1.seq),
                    e2.count.eq(e1.count), e2.skip.eq(Mux(acc, skip, 0)), e2.new.eq(new),
                    e2.gap.eq(gap), e2.exp.eq(exp), e2.gapd.eq(e1.seq - exp),
                    e2.seqm1.eq(e1.seq - 1),
                    e2_stream.eq(acc & (e1_neff != 0)),
                    e2_change.eq(acc),
                    e2_hold.eq(gap),
                ]
                with m.If(fast_sel):
                    m.next = "PICK"
                with m.Else():
                    m.next = "ACT"
            with m.State("ACT"):
                m.d.comb += act_new.eq(e2.new)
                other_empty = ~Mux(e2.line, heads[0].valid, heads[1].valid)
                other_idle = Mux(e2.line, rd[0] == IDLE, rd[1] == IDLE)
                blocked = e2_change & inflight
                neutral_blocked = ~e2_change & inflight & ~inflight_same
                hold = (e2_hold & ab_on & ~inflight & other_empty & (~other_idle | wait_lt))
                # a lower packet appeared on the other line since PICK: it goes first
                other_valid = ~other_empty
                other_lower = Mux(e2.line, a_lower, b_lower)
                preempt = e2_hold & other_valid & (~both_prev | other_lower)
                with m.If(fast_sel):
                    m.next = "PICK"
                with m.Elif(blocked | neutral_blocked | hold | dirty | preempt):
                    m.d.sync += waiting.eq(hold)
                    m.next = "PICK"
                with m.Else():
                    m.d.sync += waiting.eq(0)
                    for li in range(2):
                        with m.If(e2.line == li):
                            m.d.comb += heads[li].ready.eq(1)
                            with m.If(e2_stream):
                                m.d.sync += [rd[li].eq(STREAM), st_first.eq(1)]
                                m.d.sync += stream_info.eq(e2)
                            with m.Else():
                                m.d.sync += rd[li].eq(DRAIN)
                                m.d.sync += drain_info[li].eq(e2)
                    with m.If(e2_change):
                        m.d.sync += [inflight.eq(1), inflight_same.eq(~e2.new)]
                    m.next = "PICK"

        # ------------------------------------------------------------ output register
        o_valid = Signal()
        o = Signal(MoldBeat)
        can_load = ~o_valid | self.o.ready
        m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.eq(o)]
        loaded = Signal()

        # ------------------------------------------------------------ commit requests
        # priority: decoder done > drain A > drain B (one commit per cycle)
        c_valid = Signal()
        c_info = _PacketInfo("c")
        c_framed = Signal(16)
        c_overrun = Signal()
        c_reach = Signal(65)      # s + framed: what the packet carried
        done = self.done
        m.d.comb += done.ready.eq(1)
        m.d.sync += c_valid.eq(0)
        with m.If(done.valid):
            m.d.sync += [c_valid.eq(1),
                         c_framed.eq(done.payload.framed), c_overrun.eq(done.payload.overrun),
                         c_reach.eq(stream_info.seq + done.payload.framed)]
            m.d.sync += c_info.eq(stream_info)
        commit_busy = [done.valid, None]
        commit_busy[1] = Signal()

        for li, (ln, st) in enumerate(zip(lines, rd)):
            data = ln.data
            with m.If(st == STREAM):
                m.d.comb += data.ready.eq(can_load)
                with m.If(data.valid & can_load):
                    m.d.comb += loaded.eq(1)
                    m.d.sync += [
                        o.data.eq(data.payload.data), o.nbytes.eq(data.payload.nbytes),
                        o.first.eq(st_first), o.last.eq(data.payload.last),
                        o.sequence.eq(stream_info.seq), o.count.eq(stream_info.count),
                        o.skip.eq(stream_info.skip), st_first.eq(0),
                    ]
                    with m.If(data.payload.last):
                        m.d.sync += st.eq(IDLE)
            with m.If(st == DRAIN):
                # the last beat waits when another commit takes this cycle
                busy = done.valid if li == 0 else (done.valid | commit_busy[1])
                can = ~(data.payload.last & busy)
                m.d.comb += data.ready.eq(can)
                with m.If(data.valid & can & data.payload.last):
                    if li == 0:
                        m.d.comb += commit_busy[1].eq(1)
                    m.d.sync += [st.eq(IDLE), c_valid.eq(1),
                                 c_framed.eq(0), c_overrun.eq(0),
                                 c_reach.eq(drain_info[li].seq)]
                    m.d.sync += c_info.eq(drain_info[li])
        with m.If(loaded):
            m.d.sync += o_valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += o_valid.eq(0)

        # ------------------------------------------------------------ commit
        c2_valid, c2, c2_framed, c2_overrun = c_valid, c_info, c_framed, c_overrun
        c2_reach = c_reach
        ok = c2_valid
        is_acc = c2.kind == _K_ACC
        with m.If(ok & (c2.kind == _K_DUP)):
            m.d.sync += cnt["dup_packets"].eq(cnt["dup_packets"] + 1)
        with m.If(ok & (c2.kind == _K_STALE)):
            m.d.sync += cnt["stale_session"].eq(cnt["stale_session"] + 1)
        with m.If(ok & is_acc):
            m.d.sync += cnt["packets"].eq(cnt["packets"] + 1)
            with m.If(c2.count == 0):
                m.d.sync += cnt["heartbeats"].eq(cnt["heartbeats"] + 1)
            with m.If(c2.count == 0xFFFF):
                m.d.sync += cnt["end_of_session"].eq(cnt["end_of_session"] + 1)
            with m.If(track):
                with m.If(c2.new):
                    m.d.sync += [cur.eq(c2.session), have_cur.eq(1)]
                    with m.If(have_cur):
                        m.d.sync += [prev.eq(cur), have_prev.eq(1),
                                     cnt["session_changes"].eq(cnt["session_changes"] + 1)]
                with m.If(c2.gap):
                    m.d.sync += [
                        cnt["gaps"].eq(cnt["gaps"] + 1),
                        cnt["gap_messages"].eq(cnt["gap_messages"] + c2.gapd),
                        cnt["last_gap_first"].eq(c2.exp),
                        cnt["last_gap_last"].eq(c2.seqm1),
                    ]
                m.d.sync += expected.eq(Mux(c2_reach > c2.exp, c2_reach, c2.exp))
        with m.If(c2_valid & is_acc):
            m.d.sync += inflight.eq(0)
        m.d.comb += [state_commit.eq(ok & is_acc), session_commit.eq(ok & is_acc & c2.new)]

        ev = Signal(TrackerEvent)
        m.d.comb += [
            ev.line.eq(c2.line),
            ev.verdict.eq(Mux(is_acc, Verdict.ACCEPTED,
                              Mux(c2.kind == _K_DUP, Verdict.DUPLICATE, Verdict.STALE_SESSION))),
            ev.new_session.eq(c2.new), ev.gap.eq(c2.gap), ev.overrun.eq(c2_overrun),
            ev.session.eq(c2.session), ev.sequence.eq(c2.seq), ev.count.eq(c2.count),
            ev.framed.eq(c2_framed), ev.skip.eq(c2.skip),
            self.events.valid.eq(c2_valid), self.events.payload.eq(ev),
            self.idle.eq(fsm.ongoing("PICK") & ~inflight & (rd[0] == IDLE) & (rd[1] == IDLE)
                         & ~c_valid & ~fast_any),
        ]
        return m
