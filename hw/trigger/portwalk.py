"""Port walker: wire triggers from line A's port, the cycle after an add's last byte arrives.

The cut-through producer (:class:`~.cutthrough.CutThrough`) strobes an add when the ITCH
decoder completes it, 16-17 cycles after its last byte was on the feed port (the parser's
stages, the line buffer, the MoldUDP64 tracker, the decoder). This block walks line A's beats
*at the port*, alongside the parser, and presents every add of a packet the tracker is
certain to deliver (and every replace whose original it knows) to the trigger engine's
``fast`` input in the cycle after the beat holding its last byte: with wire triggers
(docs/architecture.md "Trigger sources") an add's evaluation needs only the message and the
order of the engine's state changes, so an order leaves 4 cycles after that byte (engine 1,
risk 2, egress 0).

Certain, never speculative (docs/architecture.md "Trigger from the port"):

* **The MoldUDP64 decision.** The walker keeps a replica of the tracker's state (session,
  previous session, ``expected``), loaded from the tracker while the whole feed is idle
  (``tap.idle``, no beat on either line for 16 cycles), and applies the tracker's rules to
  every packet of line A at its header (new session, stale session, duplicate, next in
  sequence) and ``expected := max(expected, s + m)`` at its end, with ``m`` the messages it
  framed exactly as the decoder frames them. Anything it does not follow -- a gap, an
  overlap, sequence tracking off, a message shorter than 12 bytes, a packet the line buffer
  might refuse (``tap.level_a``), a packet on line B it cannot clear -- makes it *unsynced*:
  no packet is followed from then on until the feed is idle again (the one being walked is
  finished). The frame's header verdict is the parser's own (``tap.verdict_a``,
  sampled 3 cycles after the beat with the MoldUDP64 count, when it is final).
* **A/B.** The tracker decides the lower sequence first when both lines have a packet
  waiting; while a packet the walker predicted waits in line A's buffer it decides no packet
  of line B (``tap.hold_b``; B's duplicates still drain), so that nothing arriving on B after
  the prediction can change that packet's fate. The walker reads the MoldUDP64 header of each
  of line B's packets: one of the current session with ``s + n <= expected`` (B's copy of
  what A delivered) is a duplicate the tracker drains, and the walker stays synced; line A's
  packets counted while a B header is not yet cleared are not followed; any other B packet
  (ahead of A, another session, a torn or short frame) unsyncs it.
* **Order.** Per message of a walked packet that the book turns into an event
  (``A F E C X D U H`` with its ITCH length) an entry goes on ``entries``: whether the engine
  took the walker's strobe, whether the message is a *hazard* (an ``A``, ``F`` or ``U`` not
  taken, an ``H``, unless the locate map says untracked: the cut-through producer's rule), and
  the low 16 bits of its sequence number. The producer takes one entry with each such
  message the decoder completes (the messages arrive in the same order), skips its own strobe
  for a taken one and marks its event for the engine to skip. A strobe is ``quiet`` when no
  hazard is in flight on either side of the decoder. A strobe the engine did not take is
  *held*: presented again while no older hazard is left, for up to ``HOLD`` cycles, its entry
  marked ``held``; the entry says whether it was taken by the time the producer takes it over.

* **Replaces.** A ``U`` adds an order on its original's side and slot, which only the book's
  order table knows. The walker keeps its own table of the orders it saw stored (direct-mapped
  by reference: side, slot, shares, the sequence of the storing message), reduced and removed
  by every later ``E C X D U`` naming them, and presents a ``U`` from it like an add once the
  storing message has left the book (its event taken: stored, or refused, which wipes the
  table). It holds less than the book, never more; it is wiped after reset and whenever it
  stops following the book, and follows again from a moment when the feed and the book are
  empty.

Field positions come from the ITCH table (:data:`~tickwire.hw.feed.decoder.FIELD_MAP`); the
price is selected from the last two beats by its lane, the rest is captured one beat after
its last byte. The slot is looked up in the book's locate map (``loc``, a third read port)
one beat after the locate, at least two beats before the add completes.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tickwire.host import itch
from tickwire.spec.capacity import GATEWARE

from ..book.layouts import LocateLookup
from ..feed.decoder import EVENT_TYPES, FIELD_MAP
from ..feed.layouts import AxiStreamSignature, FeedTap, lane_byte
from .common import SLOT_BITS, check_int
from .layouts import BOOK_ASK, BOOK_BID, FastAdd, InFlightEntry

__all__ = ["PortWalker"]

#: the shortest message the walker follows: one length prefix per beat at most
_MIN_LEN = 12
#: cycles without a beat on either line before the feed counts as idle (the parser's stages)
_QUIET = 16



def _bytes(v, first, size):
    """Bytes ``first .. first+size-1`` of ``v``, the first one lowest."""
    return v[8 * first:8 * (first + size)]


def _be(v, first, size):
    """Big-endian field of ``size`` bytes starting at byte ``first`` of ``v``."""
    return Cat(*[lane_byte(v, first + size - 1 - j) for j in range(size)])


class PortWalker(wiring.Component):
    """Members
    -------
    rx : In(AxiStreamSignature(64))   line A's beats (a tap: the parser takes them too)
    rx_b : In(AxiStreamSignature(64)) line B's beats (a tap: only their MoldUDP64 headers)
    tap : In(FeedTap(line_depth))     <- FeedFrontEnd.tap
    enable : In(1)                    wire triggers and the cut-through path on
    loc : Out(LocateLookup(slot_bits)) -> BookBuilder.port_loc
    fast : Out(stream.Signature(FastAdd, always_ready=True)), quiet : Out(1)
                                      the strobe (from registers), for the trigger engine;
                                      it has the engine before the producer's
    took : In(1)                      the engine took the strobe presented last cycle
    downstream_quiet : In(1)          no hazard from the decoder on (CutThrough.quiet)
    entries : Out(stream.Signature(InFlightEntry))   -> CutThrough.port
    holding : Out(1)                  a strobe is held (CutThrough checks none is taken over
                                      while held)
    ev_take : In(1), ev_seq : In(64)  the engine took the book's event of message ``ev_seq``
    refused : In(1)                   the book refused to store an add (duplicate_ref,
                                      order_table_full counted this cycle)
    book_idle : In(1)                 no message in the decoder or the book (~held,
                                      ~ev_pending)
    synced : Out(1)                   following line A's packets (status)
    offered : Out(counter_width)      strobes presented (taken or not)
    syncs : Out(counter_width)        times it loaded the tracker's state
    b_waits : Out(counter_width)      line A packets not followed for a line B packet not
                                      yet cleared
    """

    #: cycles from the beat holding an add's last byte on ``rx`` to its strobe on ``fast``
    LATENCY = 1
    #: cycles a strobe not taken is held for another presentation. The decoder completes a
    #: message (``early``, where the producer decides on it and then takes its entry over)
    #: 13 cycles after the beat holding its last byte at the earliest; the held presentations
    #: are in cycles 3 .. HOLD + 2 after that beat and the answer to the last one is in
    #: the entry 2 cycles later, so HOLD <= 9 (CutThrough stops the wire path should a
    #: held entry ever be taken over while ``holding``, or a cycle after).
    HOLD = 8

    def __init__(self, *, symbols: int = GATEWARE["symbols"], slot_bits: int = 6,
                 line_depth: int = 512, in_flight: int = 512, orders: int = 4096,
                 counter_width: int = 32):
        check_int("slot_bits", slot_bits, 1, SLOT_BITS)
        check_int("symbols", symbols, 1, 1 << slot_bits)
        check_int("in_flight", in_flight, 64)
        check_int("orders", orders, 16, 1 << 20, pow2=True)
        self.symbols = symbols
        self.slot_bits = slot_bits
        self.orders = orders
        self.line_depth = line_depth
        self.in_flight = in_flight
        super().__init__({
            "rx": In(AxiStreamSignature(64)),
            "rx_b": In(AxiStreamSignature(64)),
            "tap": In(FeedTap(line_depth)),
            "enable": In(1),
            "loc": Out(LocateLookup(slot_bits)),
            "fast": Out(stream.Signature(FastAdd, always_ready=True)),
            "quiet": Out(1),
            "took": In(1),
            "downstream_quiet": In(1),
            "entries": Out(stream.Signature(InFlightEntry)),
            "holding": Out(1),
            "ev_take": In(1),
            "ev_seq": In(64),
            "refused": In(1),
            "book_idle": In(1),
            "synced": Out(1),
            "offered": Out(counter_width),
            "syncs": Out(counter_width),
            "b_waits": Out(counter_width),
        })

    def elaborate(self, platform):
        m = Module()
        rx, tap = self.rx, self.tap

        # ------------------------------------------------------------ beats
        # (from registers: a frame starts after a last beat; a ``first`` anywhere else is a
        # torn frame, which stops the walk and unsyncs)
        at_start = Signal(init=1)
        cnt = Signal(12)
        bi = Signal(12)             # index of the beat on rx in its frame
        m.d.comb += bi.eq(Mux(at_start, 0, cnt))
        p1 = Signal(64)             # the previous beat of the frame
        p2 = Signal(64)             # the one before it
        nb = Signal(4)              # bytes present in this beat
        for k in range(8):
            with m.If(rx.keep[k]):
                m.d.comb += nb.eq(k + 1)
        d = rx.data
        w2 = Cat(p1, d)             # bytes 8(bi-1) .. 8bi+7 of the frame
        w_late = Cat(p2, p1)        # bytes 8(bi-2) .. 8bi-1
        beat = rx.valid
        start = beat & at_start
        torn = beat & rx.first & ~at_start
        with m.If(beat):
            m.d.sync += [p2.eq(p1), p1.eq(d), at_start.eq(rx.last),
                         cnt.eq(Mux(bi == 0xFFF, bi, bi + 1))]
        # the index of the next beat, for flags registered a beat ahead
        cnt_next = Signal(12)
        m.d.comb += cnt_next.eq(Mux(beat, Mux(bi == 0xFFF, bi, bi + 1), cnt))

        def present(off):
            """frame byte ``off`` (in this beat) is in the frame"""
            return ~rx.last | (off[0:3] < nb)

        def at(off, late=False):
            """``off`` is in this beat (late: in the previous one)"""
            return bi == (off[3:] + (1 if late else 0))

        def lane_field(win, off, size, late=False, order=_be):
            """the ``size``-byte field ending at frame byte ``off``, from a window whose
            bytes 8..15 are the beat holding ``off`` (big-endian, or as ``order``)"""
            out = Signal(8 * size)
            with m.Switch(off[0:3]):
                for e in range(8):
                    if 8 + e - (size - 1) >= 0:    # (other lanes never hold such a field)
                        with m.Case(e):
                            m.d.comb += out.eq(order(win, 8 + e - (size - 1), size))
            return out

        # ------------------------------------------------------------ headers
        vlan = Signal()
        ihl = Signal(4)
        pstart = Signal(8)          # frame offset of UDP payload byte 0
        with m.If(beat & (bi == 1)):
            m.d.sync += [vlan.eq(_be(d, 4, 2) == 0x8100), ihl.eq(lane_byte(d, 6)[0:4])]
        with m.If(beat & (bi == 2) & vlan):
            m.d.sync += ihl.eq(lane_byte(d, 2)[0:4])
        pstart_d = 22 + Mux(vlan, 4, 0) + (ihl << 2)     # (from beat 3 on: vlan, ihl are in)
        m.d.sync += pstart.eq(pstart_d)
        # payload offsets are 2 or 6 mod 8: the header fields end in one of two lanes
        ulen_end = Signal(16)
        sess_end = Signal(16)
        seq_end = Signal(16)
        cnt_end = Signal(16)
        m.d.comb += [ulen_end.eq(pstart - 3), sess_end.eq(pstart + 9),
                     seq_end.eq(pstart + 17), cnt_end.eq(pstart + 19)]
        ulen = Signal(16)
        session = Signal(80)
        seq = Signal(64)
        count = Signal(16)
        got_ulen = Signal()
        hdr_now = Signal()          # the count arrives in this beat
        hdr_cnt = Signal(16)
        with m.If(start):
            m.d.sync += got_ulen.eq(0)
        # (from beat 4 on pstart is the frame's: ihl is captured in beats 1-2)
        with m.If(beat & ~start & (bi >= 4)):
            with m.If(at(ulen_end) & present(ulen_end)):
                m.d.sync += [ulen.eq(lane_field(w2, ulen_end, 2)), got_ulen.eq(1)]
            with m.If(at(sess_end)):
                # (in the line buffer's order, as the tracker keeps it: byte 0 lowest)
                m.d.sync += session.eq(lane_field(w2, sess_end, 10, order=_bytes))
            with m.If(at(seq_end)):
                m.d.sync += seq.eq(lane_field(w2, seq_end, 8))
        # the count's beat, flagged a beat ahead (from beat 4 on: ihl is captured in beats 1-2)
        cnt_here = Signal()
        # (the count's beat registered with pstart, and compared with registers only)
        ce_beat, ce_prev = Signal(9), Signal(9)
        ce = pstart_d + 19
        m.d.sync += [ce_beat.eq(ce >> 3), ce_prev.eq((ce >> 3) - 1)]
        m.d.sync += [cnt_here.eq(Mux(beat, ~at_start & (cnt >= 3) & (cnt == ce_prev),
                                     (cnt >= 4) & (cnt == ce_beat)))]
        # (the payload starts at lane 2 or 6: the count ends at lane 5 or 1 of its beat, and
        # the first length prefix at lane 7 or 3; a two-way choice on pstart[2], not a lane
        # multiplexer)
        p6 = pstart[2]
        m.d.comb += hdr_cnt.eq(Mux(p6, _be(d, 0, 2), _be(d, 4, 2)))
        with m.If(beat & ~start & cnt_here & (~rx.last | Mux(p6, rx.keep[1], rx.keep[5]))
                  & got_ulen):
            m.d.comb += hdr_now.eq(1)
            # (the count as the tracker uses it: an end of session carries no message)
            m.d.sync += count.eq(Mux(hdr_cnt == 0xFFFF, 0, hdr_cnt))
        n_eff = count

        # ------------------------------------------------------------ replica of the tracker
        synced = Signal()
        r_cur = Signal(80)
        r_prev = Signal(80)
        r_have_cur = Signal()
        r_have_prev = Signal()
        r_exp = Signal(64)
        m.d.comb += self.synced.eq(synced)

        # decision in two stages (registered compares): dec_now, the cycle after the count
        # arrived, registers the compares of the header with the replica; dec2 the decision.
        # The first message completes at least 2 beats after the count.
        dec_now = Signal()
        dec2 = Signal()
        m.d.sync += [dec_now.eq(hdr_now), dec2.eq(dec_now)]
        sess_cur = Signal()
        sess_prev = Signal()
        # (the session arrives at least a beat before the count: its compares, in two
        # registered halves, are fresh at dec2)
        eq_parts = [Signal(4, name="sess_eq_cur"), Signal(4, name="sess_eq_prev")]
        for parts, ref in zip(eq_parts, (r_cur, r_prev)):
            m.d.sync += [parts[k].eq(session[20 * k:20 * k + 20] == ref[20 * k:20 * k + 20])
                         for k in range(4)]
        m.d.sync += [sess_cur.eq(r_have_cur & eq_parts[0].all()),
                     sess_prev.eq(r_have_prev & eq_parts[1].all())]
        d_n0, d_eq, d_le, d_sn_le = Signal(), Signal(), Signal(), Signal()
        sn = Signal(65)
        m.d.comb += sn.eq(seq + n_eff)
        with m.If(dec_now):
            m.d.sync += [d_n0.eq(n_eff == 0), d_eq.eq(seq == r_exp), d_le.eq(seq <= r_exp),
                         d_sn_le.eq(sn <= r_exp)]
        new = ~sess_cur & ~sess_prev
        stale = ~sess_cur & sess_prev
        # a new session: expected := s, so neither a duplicate nor a gap
        dup = ~stale & ~new & ~d_n0 & d_sn_le
        # accepted, nothing skipped, no gap (a heartbeat: at most the next sequence number)
        follow = ~stale & ~dup & (new | Mux(d_n0, d_le, d_eq))
        # the packet being decided / committed
        k_walk = Signal()      # accepted and followed: its messages are delivered
        k_nop = Signal()       # duplicate or stale session: drained, no effect
        k_new = Signal()
        k_seq = Signal(64)
        k_sess = Signal(80)
        k_active = Signal()    # decided, not yet committed
        k_ended = Signal()     # its message count is final
        k_m = Signal(16)
        k_vok_known = Signal()
        k_vok = Signal()
        k_room = Signal()
        e_full = Signal()      # an entry found the queue full
        with m.If(e_full):
            m.d.sync += k_walk.eq(0)          # never expected; no entry after a missing one
        with m.If(dec_now):
            m.d.sync += [k_seq.eq(seq), k_sess.eq(session), k_walk.eq(0), k_nop.eq(0),
                         k_active.eq(1), k_ended.eq(0), k_vok_known.eq(0)]
        with m.If(dec2):
            m.d.sync += [k_walk.eq(synced & follow), k_nop.eq(synced & (stale | dup)),
                         k_new.eq(new)]

        # the header verdict: final 3 cycles after the count's beat (its beat is at least
        # 3 beats after the one ending the IPv4 header; the parser's verdict is final 6
        # cycles after that one), and still this frame's
        mark = Signal(3)
        m.d.sync += mark.eq(Cat(hdr_now, mark[0:2]))
        mark_now = mark[2]
        need = Signal(16)
        m.d.comb += need.eq((ulen - 17) >> 3)    # the line buffer's words for the packet
        b_wait = Signal()           # a packet header of line B not (yet) known harmless
        room_now = ((tap.level_a + need) <= self.line_depth) & tap.desc_room_a & ~b_wait
        with m.If(mark_now):
            m.d.sync += [k_vok_known.eq(1), k_vok.eq(tap.verdict_a), k_room.eq(room_now)]
        vok_known = k_vok_known | mark_now
        vok = Mux(mark_now, tap.verdict_a, k_vok)
        room = Mux(mark_now, room_now, k_room)

        # ------------------------------------------------------------ message walk
        # No frame offsets are compared with the beat index here (timing): a message's
        # positions are kept as lanes and as counts of beats still to come, loaded when its
        # length prefix is decoded. ``nl``: the lane of the next prefix's second byte, in the
        # beat that ends the current message (``ppa_same``) or the next one (WAIT).
        # state, one-hot: IN (a message being received), WAIT (its successor's prefix is in
        # the next beat), neither: STOP (nothing more in this packet)
        s_in = Signal()
        s_wait = Signal()
        idx = Signal(16)           # messages framed in this packet
        more_c = Signal()          # another message after the current one (idx + 1 < n)
        lost = Signal()            # a message shorter than _MIN_LEN: not followed
        mid = Signal()             # toggles per message (tags its lookup)
        nl = Signal(3)
        ppa_same = Signal()
        ln_r = Signal(16)          # the current message's length
        ln_ok = Signal()           # ... is at least _MIN_LEN
        pre_ok_r = Signal()        # its prefix lay in the payload
        l_a, l_f, l_u = Signal(), Signal(), Signal()   # ... is an A's, an F's, a U's
        me_cnt = Signal(13)        # beats until the one holding its last byte (1: the next)
        me_at = Signal()           # me_cnt == 1
        me_lane = Signal(3)
        me_oh = Signal(8)
        # the payload's last byte, and where the next beat stands against it
        pl = Signal(17)
        # (one stage from the UDP length: a 12-byte first message ends 4 beats after it, and
        # the next-beat flags below need plb1 the beat before)
        m.d.sync += pl.eq(pstart + ulen - 9)
        f_lt, f_eq = Signal(), Signal()
        plb1 = Signal(14)          # the payload's last beat - 1
        m.d.sync += plb1.eq(pl[3:] - 1)
        with m.If(beat):           # (the next beat is bi + 1)
            m.d.sync += [f_lt.eq(Mux(at_start, plb1 != 0, cnt < plb1)),
                         f_eq.eq(Mux(at_start, plb1 == 0, cnt == plb1))]

        def in_payload(lane):
            return f_lt | (f_eq & (lane <= pl[0:3]))

        def present_oh(oh):
            return ~rx.last | (rx.keep & oh).any()

        with m.If(start):
            m.d.sync += [s_in.eq(0), s_wait.eq(0), idx.eq(0), lost.eq(0)]
        comp = Signal()            # the current message's last byte is in this beat
        m.d.comb += comp.eq(beat & ~start & ~rx.first & s_in & ln_ok & pre_ok_r & me_at
                            & in_payload(me_lane) & present_oh(me_oh))
        over = beat & ~start & s_in & me_at & ~comp   # cut: the packet ends here
        # the prefix: the first one in the count's beat (payload offsets 20-21, lanes 6-7 or
        # 2-3), the others at lane nl
        lane_h = Mux(p6, 3, 7)
        hdr_n = Mux(hdr_cnt == 0xFFFF, 0, hdr_cnt)
        left = Signal(16)          # messages of the count after the current one
        pre_h = hdr_now & (hdr_n != 0)
        pre_w = beat & ~start & s_wait
        pre_a = comp & ppa_same & more_c
        pre = Signal()
        m.d.comb += pre.eq(pre_h | pre_w | pre_a)
        # The next message's registers load on ``pre_ld``: ``pre`` without the checks of the
        # beat's end (the count or the last byte present, in the payload; the count not 0 or
        # 0xFFFF). Where those fail the packet stops (``s_in``, ``s_wait`` from ``pre``) and
        # nothing reads what was loaded: every use is gated by ``s_in`` or ``s_wait``, and
        # the next packet's first prefix loads them again. (LUT levels: the lane checks
        # stay off the path into the length's registers.)
        pre_ld = Signal()
        m.d.comb += pre_ld.eq((beat & ~at_start & cnt_here & got_ulen) | pre_w
                              | (beat & ~at_start & ~rx.first & s_in & ln_ok & pre_ok_r & me_at
                                 & ppa_same & more_c))
        # (selected by cnt_here, a register: in the count's beat nothing else loads)
        lane_c = Mux(cnt_here, lane_h, nl)
        ln_n = Signal(16)
        m.d.comb += ln_n.eq(lane_field(w2, nl, 2))
        ln = Signal(16)
        m.d.comb += ln.eq(Mux(cnt_here, Mux(p6, _be(d, 2, 2), _be(d, 6, 2)), ln_n))
        nl_oh = Signal(8)
        m.d.comb += nl_oh.eq(1 << nl)
        pre_ok = Mux(cnt_here, 1, in_payload(nl) & present_oh(nl_oh))
        sum_ = Signal(17)          # lane of the prefix's second byte + length: the last byte
        m.d.comb += sum_.eq(lane_c + ln)
        with m.If(hdr_now):
            # (left and more_c from the raw count: they are read only after a message of
            # this packet starts, which an end of session or a heartbeat never does)
            m.d.sync += [s_in.eq(0), s_wait.eq(hdr_n != 0),
                         more_c.eq(hdr_cnt[1:] != 0), left.eq(hdr_cnt - 1)]
        with m.If(comp):
            m.d.sync += [idx.eq(idx + 1), s_in.eq(0), s_wait.eq(more_c),
                         more_c.eq(left[1:] != 0), left.eq(left - 1)]
        with m.If(over):
            m.d.sync += [s_in.eq(0), s_wait.eq(0)]
        with m.If(beat & ~start & s_in & ~me_at):
            m.d.sync += [me_cnt.eq(me_cnt - 1), me_at.eq(me_cnt == 2)]
        # a message shorter than _MIN_LEN is found a cycle later (ln_ok): it cannot complete
        # before, and none of its kind is one the walker takes or pushes
        # (so is a prefix past the payload, pre_ok: the message it starts cannot complete)
        with m.If(s_in & ~pre_ok_r):
            m.d.sync += [s_in.eq(0), s_wait.eq(0)]
        with m.Elif(s_in & ~ln_ok):
            m.d.sync += [s_in.eq(0), s_wait.eq(0), lost.eq(1)]
        with m.If(pre):
            m.d.sync += [s_in.eq(1), s_wait.eq(0), mid.eq(~mid)]
        with m.If(pre_ld):
            m.d.sync += [ln_r.eq(ln), ln_ok.eq(ln >= _MIN_LEN),
                         pre_ok_r.eq(pre_ok),
                         l_a.eq(ln == itch.LENGTHS["A"]), l_f.eq(ln == itch.LENGTHS["F"]),
                         l_u.eq(ln == itch.LENGTHS["U"]),
                         me_cnt.eq(sum_[3:]), me_at.eq(sum_[4:] == 0),
                         me_lane.eq(sum_[0:3]), me_oh.eq(1 << sum_[0:3]),
                         nl.eq(sum_[0:3] + 2), ppa_same.eq(sum_[0:3] <= 5)]
        # after the frame's last beat nothing more completes
        with m.If(beat & rx.last):
            m.d.sync += [s_in.eq(0), s_wait.eq(0)]
        # the packet's count is final
        with m.If(k_active & ~k_ended & ~s_in & ~s_wait & ~dec_now & ~dec2):
            m.d.sync += [k_ended.eq(1), k_m.eq(idx)]

        # ------------------------------------------------------------ fields (one beat late)
        # each captured from the two previous beats one beat after its last byte: a count of
        # beats and a lane per field, loaded with the prefix
        def fspec(name, t="A"):
            return FIELD_MAP[name][t]

        lo, ls = fspec("locate")
        to, ts_ = fspec("timestamp")
        so, _ = fspec("side")
        for t in "AFECXDUH":        # every type the walker reads has these three where A has
            assert fspec("locate", t) == (lo, ls) and fspec("timestamp", t) == (to, ts_)
        for t in "AF":
            assert fspec("side", t)[0] == so
        in_msg = beat & ~start & s_in
        fields = {"type": 0, "locate": lo + ls - 1, "ts": to + ts_ - 1, "side": so}
        fire = {}
        flane = {}

        def field_after(name, end):
            """(pulse, lane): the beat after the one holding message byte ``end``"""
            cnt_f = Signal(3, name=f"f_{name}_cnt")
            at_f = Signal(name=f"f_{name}_at")
            lane_f = Signal(3, name=f"f_{name}_lane")
            pos = lane_c + 1 + end  # from the prefix's second byte's lane: < 8 * 4
            with m.If(pre_ld):
                m.d.sync += [cnt_f.eq((pos >> 3) + 1), at_f.eq((pos >> 3) == 0),
                             lane_f.eq(pos[0:3])]
            with m.Elif(in_msg & ~at_f & (cnt_f != 0)):
                m.d.sync += [cnt_f.eq(cnt_f - 1), at_f.eq(cnt_f == 2)]
            with m.Elif(in_msg & at_f):
                m.d.sync += [cnt_f.eq(0), at_f.eq(0)]
            return in_msg & at_f, lane_f

        for name, end in fields.items():
            fire[name], flane[name] = field_after(name, end)
        # the order table's fields, read in the beat holding their last byte (``w2``): the
        # beat after the one holding the byte 8 before it
        now_fields = {"ref": ("ref", "A"), "sh19": ("shares", "E"), "sh20": ("shares", "A"),
                      "sh27": ("shares", "U"), "nref": ("new_ref", "U")}
        for t in "AFECXDU":
            assert fspec("ref", t) == fspec("ref", "A")
        assert fspec("shares", "F") == fspec("shares", "A")
        assert fspec("shares", "C") == fspec("shares", "X") == fspec("shares", "E")
        nfire, nval = {}, {}
        for name, (fname, t) in now_fields.items():
            off, size = fspec(fname, t)
            assert off + size - 1 - 8 >= 0
            nfire[name], lane_n = field_after(f"n_{name}", off + size - 1 - 8)
            nval[name] = lane_field(w2, lane_n, size)

        mtype = Signal(8)
        mts = Signal(48)
        mside = Signal(8)
        lk_valid = Signal()
        lk_slot = Signal(len(self.loc.slot))
        lk_untracked = Signal()
        lk_pend = Signal()
        lk_mid = Signal()
        mt = {t: Signal(name=f"mt_{t.lower()}") for t in "AFECXDU"}
        mt_a, mt_f, mt_u = mt["A"], mt["F"], mt["U"]
        with m.If(fire["type"]):
            t_now = lane_field(w_late, flane["type"], 1)
            m.d.sync += [mtype.eq(t_now), *[mt[t].eq(t_now == ord(t)) for t in mt]]
        loc_now = Signal()
        m.d.comb += [loc_now.eq(fire["locate"]),
                     self.loc.addr.eq(lane_field(w_late, flane["locate"], ls))]
        with m.If(loc_now):
            m.d.sync += [lk_pend.eq(1), lk_mid.eq(mid)]
        with m.Else():
            m.d.sync += lk_pend.eq(0)
        # the map's answer, for the message that asked (a lookup is one cycle)
        lk_here = lk_pend & (lk_mid == mid)
        lk_in = Signal()
        with m.If(lk_here):
            m.d.sync += [lk_valid.eq(self.loc.valid), lk_slot.eq(self.loc.slot),
                         lk_untracked.eq(self.loc.untracked),
                         lk_in.eq(self.loc.slot < self.symbols)]
        with m.If(pre_ld):
            m.d.sync += [lk_valid.eq(0), lk_untracked.eq(0)]
        with m.If(fire["ts"]):
            m.d.sync += mts.eq(lane_field(w_late, flane["ts"], ts_))
        with m.If(fire["side"]):
            m.d.sync += mside.eq(lane_field(w_late, flane["side"], 1))

        # ------------------------------------------------------------ order table: reads
        # The walker's view of the book's order table (docs/architecture.md "Trigger from the
        # port"), so that a U is evaluated here: an entry (reference -> side, slot, shares) is
        # written only by a walked add or replace of a tracked locate, reduced or removed by
        # every later E C X D U naming it, and a U uses it only once the message that stored
        # it has left the book (its event taken: the book stored it, or counted a refusal,
        # which wipes the table). Every message reads its reference in the beat holding the
        # reference's last byte (B) and writes in B+1 (D U: removed), B+2 (E C X: reduced) or
        # the cycle after its last beat k (A F U: stored). The next message reads in beat k+2
        # at the earliest (its reference ends 21 bytes after k's last byte), k+3 after an X
        # that ends in beat B (then its last byte is in lane 4 or later), so no two messages
        # write in one cycle and every read sees every older write.
        IB = self.orders.bit_length() - 1
        OL = data.StructLayout({"valid": 1, "side": 1, "slot": self.slot_bits, "shares": 32,
                                "seq": 32, "tag": 64 - IB})
        m.submodules.otab = otab = Memory(shape=OL, depth=self.orders, init=[])
        rd = otab.read_port()
        wr = otab.write_port()
        t_ref, t_nref = Signal(64), Signal(64)
        t_sh19, t_sh20, t_sh27 = Signal(32), Signal(32), Signal(32)
        for reg, name in ((t_ref, "ref"), (t_nref, "nref"), (t_sh19, "sh19"),
                          (t_sh20, "sh20"), (t_sh27, "sh27")):
            with m.If(nfire[name]):
                m.d.sync += reg.eq(nval[name])
        r_idx = Signal(IB)
        rd_q = Signal()             # the read's answer is on rd.data
        m.d.comb += rd.addr.eq(nval["ref"][0:IB])
        m.d.sync += rd_q.eq(nfire["ref"])
        with m.If(nfire["ref"]):
            m.d.sync += r_idx.eq(nval["ref"][0:IB])
        tbl_on = Signal()           # the table follows the book (else empty or being wiped)
        tbl_susp = Signal()         # ... kept while the walker is unsynced
        tbl_ok = Signal()           # ... and no reason to wipe it this cycle
        done32 = Signal(32)         # the sequence of the last event the engine took
        done_hi = Signal()          # ... was at least 2^32
        ent = Signal(OL)
        m.d.comb += ent.eq(rd.data)
        hit_c = Signal()            # B+1: the reference is in the table
        m.d.comb += hit_c.eq(rd_q & (tbl_on | tbl_susp) & ent.valid & (ent.tag == t_ref[IB:]))
        hit_r = Signal()
        ent_r = Signal(OL)
        proc_r = Signal()           # ... and the message that wrote it has left the book
        with m.If(rd_q):
            # (a U uses the table only while it follows the book, not while suspended)
            m.d.sync += [hit_r.eq(hit_c), ent_r.eq(ent),
                         proc_r.eq(tbl_on & (done_hi | (ent.seq <= done32)))]
        # E C X: a reduction at B+2; D U: the entry removed at B+1. Neither waits for the
        # message to complete: removing or reducing more than the book does only makes the
        # table miss.
        inval = Signal()
        m.d.comb += inval.eq(hit_c & (mt["D"] | mt["U"]))
        red = Signal()
        red_ent = Signal(OL)
        red_idx = Signal(IB)
        m.d.sync += [red.eq(hit_c & (mt["E"] | mt["C"] | mt["X"])), red_ent.eq(ent),
                     red_idx.eq(r_idx)]
        u_ok = Signal()             # a U whose original the book will find (with the strobe's
        #                             lookup: the U's own locate is tracked, so the book takes it)
        m.d.comb += u_ok.eq(mt_u & l_u & hit_r & proc_r)

        # ------------------------------------------------------------ completed message
        po, psz = fspec("price")
        assert fspec("price", "F") == (po, psz)
        f_back = itch.LENGTHS["F"] - po - psz     # the F's price ends this many bytes early
        c_valid = Signal()
        c_type = Signal(8)
        c_len = Signal(16)
        c_side = Signal()
        c_seq = Signal(64)
        c_slot = Signal(len(lk_slot))
        c_untracked = Signal()
        c_ins = Signal()
        c_ref = Signal(64)
        c_sh = Signal(32)
        a_end = Signal(32)          # price ending at the A's last byte
        m.d.comb += a_end.eq(lane_field(w2, me_lane, psz))
        # the F's price ends f_back bytes before its last byte: in this beat or the previous
        f_lane = Signal(3)
        m.d.comb += f_lane.eq(me_lane - f_back)
        f_price = Mux(me_lane >= f_back, lane_field(w2, f_lane, psz),
                      lane_field(w_late, f_lane, psz))
        m.d.sync += c_valid.eq(comp)
        # the strobe, registered with the fields: an add completes at least 4 beats after the
        # count, when the verdict and the lookup (2 beats before) are in registers
        # (not while a strobe is held, below; ``fast.valid`` is a register of its own)
        strobe = Signal()
        strobe_d = Signal()
        h_on_next = Signal()
        m.d.comb += strobe_d.eq(comp & k_walk & k_vok_known & k_vok & k_room
                                & ((mt_a & l_a) | (mt_f & l_f) | u_ok) & lk_valid & lk_in
                                & ~lk_untracked & self.enable & ~h_on_next)
        m.d.sync += strobe.eq(strobe_d)
        # the completed message's side and slot (a U: its original's) and sequence
        n_side = Signal()
        n_slot = Signal.like(c_slot)
        n_seq = Signal(64)
        m.d.comb += [n_side.eq(Mux(mt_u, ent_r.side, Mux(mside == ord("B"), BOOK_BID, BOOK_ASK))),
                     n_slot.eq(Mux(mt_u, ent_r.slot, Mux(lk_here, self.loc.slot, lk_slot))),
                     n_seq.eq(k_seq + idx)]
        # the strobe's payload: the completed message's, kept while a strobe is held (below)
        fp = Signal(FastAdd)
        fp_load = Signal()
        h_start = Signal()          # a hold starts (below)
        with m.If(comp & fp_load):
            m.d.sync += [fp.price.eq(Mux(mt_f, f_price, a_end)), fp.side.eq(n_side),
                         fp.timestamp.eq(mts), fp.sequence.eq(n_seq), fp.slot.eq(n_slot)]
        with m.If(comp):
            m.d.sync += [
                c_type.eq(mtype), c_len.eq(ln_r),
                c_side.eq(n_side), c_seq.eq(n_seq), c_slot.eq(n_slot),
                # what an add or a U puts in the order table
                c_ins.eq((((mt_a & l_a) | (mt_f & l_f)) | (mt_u & l_u & hit_r))
                         & lk_valid & lk_in & ~lk_untracked),
                # (a U's shares end 4 bytes before it: maybe in this beat)
                c_ref.eq(Mux(mt_u, t_nref, t_ref)),
                c_sh.eq(Mux(mt_u, Mux(nfire["sh27"], nval["sh27"], t_sh27), t_sh20)),
                c_untracked.eq(Mux(lk_here, self.loc.untracked, lk_untracked)),
            ]
        c_active = Signal()
        m.d.comb += c_active.eq(Cat(*[(c_type == ord(t)) & (c_len == itch.LENGTHS[t])
                                      for t in EVENT_TYPES]).any())
        c_add = (c_type == ord("A")) | (c_type == ord("F"))
        # walked: the packet is one the tracker delivers whole, its verdict passed
        walked = Signal()
        # (a packet predicted is followed to its end: hold_b keeps its fate, whatever line B
        # brings meanwhile)
        m.d.comb += walked.eq(c_valid & k_walk & vok_known & vok & room & c_active)

        # ------------------------------------------------------------ entries and quiet
        m.submodules.q = q = fifo.SyncFIFOBuffered(width=InFlightEntry.as_shape().size,
                                                   depth=self.in_flight)
        hz = Signal(range(self.in_flight + 1))      # hazards walked, not yet taken over
        # A strobe the engine did not take (an older hazard was in flight) is *held*: presented
        # again while its entry waits in the queue, whenever no older hazard is left (every
        # other cycle at most: each waits for the answer to the one before), for at most HOLD
        # cycles (it is then resolved long before the decoder completes the message:
        # ``HOLD`` in the class). Newer strobes are not presented meanwhile (the held one's own
        # hazard would keep them from being quiet anyway). The entry goes on the queue when the
        # hold starts, marked ``held``; at the queue's head it says *taken* (and no hazard) once
        # the strobe was taken late, and a new hold starts only after the producer took it over.
        h_on = Signal()             # a strobe is held
        h_out = Signal()            # the held strobe's entry is still in the queue
        h_taken = Signal()          # the held strobe was taken (until its entry leaves)
        h_age = Signal(range(self.HOLD + 1))
        hz_old = Signal.like(hz)    # hazards older than the held strobe, not yet taken over
        own_q = Signal(init=1)      # no hazard older than what is presented is in the queue
        retry = Signal()            # the held strobe is presented this cycle
        retry_d = Signal()
        e_retry = Signal()          # ... was presented last cycle
        late = Signal()             # ... and taken
        f_valid = Signal()          # strobe | retry, a register (the engine's inputs)
        # (a retry waits for the answer to the one before: every other cycle at most)
        m.d.comb += retry_d.eq(h_on_next & own_q & ~retry)
        m.d.sync += [retry.eq(retry_d), f_valid.eq(strobe_d | retry_d), e_retry.eq(retry)]
        m.d.comb += [
            late.eq(e_retry & self.took),
            fp_load.eq(~h_on_next),
            self.fast.valid.eq(f_valid),
            self.fast.payload.eq(fp),
            self.quiet.eq(own_q & self.downstream_quiet),
            self.holding.eq(h_on),
        ]
        # the entry, a cycle later (taken: the engine's answer)
        e_valid = Signal()
        e_strobe = Signal()
        e_add, e_u, e_h, e_untracked = Signal(), Signal(), Signal(), Signal()
        e_seq = Signal(16)
        m.d.sync += [
            e_valid.eq(walked), e_strobe.eq(strobe),
            e_add.eq(c_add), e_u.eq(c_type == ord("U")), e_h.eq(c_type == ord("H")),
            e_untracked.eq(c_untracked), e_seq.eq(c_seq[0:16]),
        ]
        entry = Signal(InFlightEntry)
        taken = e_strobe & self.took
        m.d.comb += [
            h_start.eq(e_valid & e_strobe & ~self.took & q.w_rdy & ~h_out & self.enable),
            entry.taken.eq(taken),
            entry.hazard.eq((((e_add | e_u) & ~taken) | e_h) & ~e_untracked),
            entry.held.eq(h_start),
            entry.seq.eq(e_seq),
            q.w_data.eq(entry), q.w_en.eq(e_valid), e_full.eq(e_valid & ~q.w_rdy),
            self.entries.valid.eq(q.r_rdy),
            q.r_en.eq(self.entries.ready),
        ]
        head = Signal(InFlightEntry)
        m.d.comb += head.eq(q.r_data)
        # (a held entry taken late: taken, and no hazard: its count went with the take)
        h_done = head.held & h_taken
        out = Signal(InFlightEntry)
        m.d.comb += [out.eq(head), out.taken.eq(head.taken | h_done),
                     out.hazard.eq(head.hazard & ~h_done), self.entries.payload.eq(out)]
        popped = q.r_rdy & self.entries.ready
        pop_hz = Signal()
        m.d.comb += pop_hz.eq(popped & out.hazard)
        hz_next = Signal.like(hz)
        hz_old_next = Signal.like(hz)
        m.d.comb += [
            hz_next.eq(hz + (e_valid & entry.hazard) - pop_hz - late),
            hz_old_next.eq(Mux(h_start, hz, hz_old) - pop_hz),
            h_on_next.eq(Mux(h_start, 1, h_on & ~late & (h_age != self.HOLD - 1))
                         & self.enable),
        ]
        hz_zero = Signal(init=1)    # hz == 0, registered with it
        m.d.sync += [hz.eq(hz_next), hz_zero.eq(hz_next == 0),
                     hz_old.eq(hz_old_next), h_on.eq(h_on_next),
                     own_q.eq(Mux(h_on_next, hz_old_next == 0, hz_next == 0)),
                     h_age.eq(Mux(h_start, 0, h_age + h_on))]
        with m.If(h_start):
            m.d.sync += [h_out.eq(1), h_taken.eq(0)]
        with m.Elif(popped & head.held):
            m.d.sync += h_out.eq(0)
        with m.If(late):
            m.d.sync += h_taken.eq(1)
        with m.If(strobe):
            m.d.sync += self.offered.eq(self.offered + 1)

        # ------------------------------------------------------------ hold line B
        # predicted packets of line A not yet taken by the tracker (pushed after the verdict)
        held = Signal(range(self.in_flight + 1))
        counted = mark_now & k_active & (k_walk | k_nop) & tap.verdict_a & room_now
        # (line A's descriptors leave in order: the first ``held`` ones are the predicted)
        held_next = Signal.like(held)
        hold = Signal()             # held != 0, registered with it (the packet's descriptor
        #                             reaches the tracker a cycle after it is counted at least,
        #                             with ``hold``)
        held_1 = Signal()           # held == 1, likewise
        held_2 = Signal()           # held >= 2, likewise
        m.d.comb += [held_next.eq(held + counted - (tap.pop_a & hold)),
                     tap.hold_b.eq(hold)]
        # (the flags of held_next without the sum: the tracker's pop, late in its cycle,
        # chooses among compares of ``held``; LUT levels)
        pop = tap.pop_a
        m.d.sync += [
            held.eq(held_next),
            hold.eq(counted | held_2 | (held_1 & ~pop)),
            held_1.eq(Mux(counted, Mux(pop, held <= 1, held == 0),
                          Mux(pop, held == 2, held == 1))),
            held_2.eq(Mux(counted, Mux(pop, held >= 2, held >= 1),
                          Mux(pop, held >= 3, held >= 2))),
        ]

        # ------------------------------------------------------------ line B's headers
        # Line B does not unsync the walker as long as each of its packets is certainly a
        # duplicate: the current session and ``s + n <= expected`` (an end of session or a
        # heartbeat: ``s <= expected``), which the tracker drains without effect. Its packet
        # header is checked against the replica; one of another session or above the
        # replica's ``expected`` is pending (``b_wait``) until the replica reaches it (B's copy
        # of the packet line A is walking clears when that packet commits). Line A's packet
        # counted meanwhile is not followed (no room: ``b_wait``), and the walker unsyncs, as
        # B's packet may reach the tracker first. A torn B frame, one shorter than its
        # header, or a second session pending beside the first unsyncs the walker until the
        # resync (the tracker may deliver from it what the walker did not see).
        rb = self.rx_b
        b_at0 = Signal(init=1)
        b_cnt = Signal(5)           # beats of the frame so far (saturating at 31)
        b_vlan = Signal()
        b_ihl = Signal(4)
        b_ws = Signal(5)            # the beat holding UDP payload byte 0
        b_lane6 = Signal()          # ... which is at lane 6 (else 2)
        b_win = Signal(4 * 64)      # that beat and the next three
        b_got = Signal(3)           # beats of the window in
        b_need = Mux(b_lane6, 4, 3)  # beats up to the count's last byte (payload byte 19)
        b_beat = rb.valid
        b_idx = Mux(b_at0, 0, b_cnt)
        b_torn = b_beat & rb.first & ~b_at0
        b_hdr = Signal()            # the count's beat was taken into the window
        b_short = Signal()          # the frame ended before it
        b_got_now = Mux(b_idx == 0, 0, b_got)
        with m.If(b_beat):
            m.d.sync += [b_at0.eq(rb.last), b_cnt.eq(Mux(b_idx == 31, 31, b_idx + 1))]
            with m.If(b_idx == 1):
                m.d.sync += [b_vlan.eq(_be(rb.data, 4, 2) == 0x8100),
                             b_ihl.eq(lane_byte(rb.data, 6)[0:4])]
            with m.If((b_idx == 2) & b_vlan):
                m.d.sync += b_ihl.eq(lane_byte(rb.data, 2)[0:4])
            with m.If(b_idx == 0):
                m.d.sync += b_got.eq(0)
        # (from beat 3 on: the payload starts at 22 + 4 vlan + 4 ihl, at least in beat 5)
        b_ps = 22 + Mux(b_vlan, 4, 0) + (b_ihl << 2)
        m.d.sync += [b_ws.eq(b_ps >> 3), b_lane6.eq(b_ps[2])]
        b_in_win = b_beat & (b_idx >= 5) & (b_idx >= b_ws) & (b_got < b_need)
        with m.If(b_in_win):
            m.d.sync += [b_win.eq(Cat(b_win[64:], rb.data)), b_got.eq(b_got + 1)]
        m.d.comb += [b_hdr.eq(b_in_win & (b_got == b_need - 1)),
                     b_short.eq(b_beat & rb.last & ~b_hdr & (b_got_now != b_need))]
        # the header's checks, one stage per cycle: ``b_stage[0]`` the count's beat is in
        b_stage = Signal(4)
        m.d.sync += b_stage.eq(Cat(b_hdr, b_stage[0:3]))
        hb = Signal(160)            # payload bytes 0-19: session, sequence, count
        # (4 beats in the window: payload byte 0 at lane 6 of the lowest; 3: at lane 2 of
        # the second lowest)
        with m.If(b_stage[0]):
            m.d.sync += hb.eq(Mux(b_lane6, b_win[6 * 8:26 * 8], b_win[64 + 2 * 8:64 + 22 * 8]))
        hb_sess = hb[0:80]
        hb_cnt = _be(hb, 18, 2)
        b_new = Signal(65)          # s + n of the packet being checked
        b_end = Signal(65)          # the highest s + n of line B's packets not yet cleared
        b_sess = Signal(80)         # ... and their session
        b_same = Signal(4)          # the packet's session is the replica's (two stages)
        b_same_p = Signal(4)        # ... is that of the packets not yet cleared
        b_cur = Signal(4)           # those are of the replica's session (registered)
        with m.If(b_stage[1]):
            m.d.sync += b_new.eq(_be(hb, 10, 8) + Mux(hb_cnt == 0xFFFF, 0, hb_cnt))
        for k in range(4):
            part = slice(20 * k, 20 * k + 20)
            m.d.sync += [b_same[k].eq(hb_sess[part] == r_cur[part]),
                         b_same_p[k].eq(hb_sess[part] == b_sess[part]),
                         b_cur[k].eq(b_sess[part] == r_cur[part])]
        b_pend = Signal()           # B packets not yet cleared: of the session b_sess, with
        #                             s + n up to b_end
        b_fail = Signal()           # a frame of B the walker cannot clear: unsynced until
        #                             the resync
        b_le = Signal()             # b_end <= the replica's expected (registered compare;
        #                             fresh, as b_cur, two cycles after b_end changed)
        m.d.sync += b_le.eq(b_end <= r_exp)
        b_clear = b_pend & b_le & b_cur.all() & r_have_cur
        with m.If(b_stage[2]):
            # (a packet of the replica's session at most its expected is cleared at once)
            live = b_pend & ~b_clear
            m.d.sync += [b_end.eq(Mux(live & (b_end > b_new), b_end, b_new)), b_sess.eq(hb_sess),
                         b_pend.eq(live | ~((b_new <= r_exp) & b_same.all() & r_have_cur))]
            with m.If(live & ~b_same_p.all()):
                m.d.sync += b_fail.eq(1)        # (two sessions waiting: not followed)
        with m.Elif(b_clear & (b_stage[2:4] == 0)):
            m.d.sync += b_pend.eq(0)
        with m.If(b_torn | b_short):
            m.d.sync += b_fail.eq(1)
        # A B packet whose count's beat is a cycle or more before line A's can reach the
        # tracker before A's ``hold_b`` (a packet's descriptor follows its count's beat by 4
        # cycles at least, ``hold_b`` A's by 4, and the tracker takes no B packet in the cycle
        # ``hold_b`` comes): its check is done (in 3 cycles) by the time A's packet is counted
        # (3 cycles after its count's beat). A later one cannot.
        m.d.comb += b_wait.eq(b_pend | b_fail)
        b_waited = Signal()         # (counted a cycle later: LUT levels)
        m.d.sync += b_waited.eq(mark_now & k_active & k_walk & tap.verdict_a & b_pend & ~b_fail)
        with m.If(b_waited):
            m.d.sync += self.b_waits.eq(self.b_waits + 1)

        # ------------------------------------------------------------ commit, sync
        # (from registers: the verdict a cycle after it was sampled)
        commit = k_active & k_ended & k_vok_known & ~dec_now & ~dec2
        with m.If(commit):
            m.d.sync += k_active.eq(0)
            with m.If(k_vok & k_walk):
                reach = Signal(65)
                m.d.comb += reach.eq(k_seq + k_m)
                with m.If(k_new):
                    m.d.sync += [r_cur.eq(k_sess), r_have_cur.eq(1), r_exp.eq(reach),
                                 r_prev.eq(r_cur), r_have_prev.eq(r_have_cur)]
                with m.Elif(reach > r_exp):
                    m.d.sync += r_exp.eq(reach)
        quiet_for = Signal(range(_QUIET + 1))
        with m.If(beat | tap.busy_b):
            m.d.sync += quiet_for.eq(0)
        with m.Elif(quiet_for != _QUIET):
            m.d.sync += quiet_for.eq(quiet_for + 1)
        # nothing of line A in flight in the walker or the feed, no beat for _QUIET cycles
        feed_quiet = tap.idle & (quiet_for == _QUIET) & ~k_active & ~q.r_rdy & ~hold
        resync = ~synced & self.enable & tap.track_sequence & feed_quiet & hz_zero
        with m.If(torn):
            m.d.sync += [k_walk.eq(0), s_in.eq(0), s_wait.eq(0)]
        unsync = (b_fail | ~self.enable | ~tap.track_sequence | torn
                  | (dec2 & ~follow & ~stale & ~dup)             # gap or overlap
                  | (mark_now & k_active & k_walk & tap.verdict_a & ~room_now)
                  | (c_valid & k_walk & ~vok_known)               # never expected
                  | (k_active & k_walk & lost)
                  | e_full)
        # ------------------------------------------------------------ order table: writes
        # Wiped after reset and whenever the book may hold what the table does not know: off,
        # a refusal, a new session (unless it is the first packet since the table began to
        # follow: nothing of the old one is then in flight). When the walker unsyncs the
        # table is only suspended (not used, nothing stored; reductions and removals of the
        # packet being finished still applied): if at the resync the tracker's session and
        # ``expected`` are the walker's, the book got no message the walker did not see (a
        # line B copy, a duplicate) and the table follows the book again at once, else it is
        # wiped. A wiped table follows the book again only from a moment when nothing is left
        # in the feed or the book, so that every event the engine takes from then on is of a
        # message walked since.
        tbl_fresh = Signal()
        tbl_flush = ~self.enable | self.refused | (dec2 & synced & new & ~tbl_fresh)
        m.d.comb += tbl_ok.eq(tbl_on & synced & ~tbl_flush)
        with m.If(dec2):
            m.d.sync += tbl_fresh.eq(0)
        scrub = Signal(init=1)
        scrub_idx = Signal(IB)
        drained = synced & self.book_idle & feed_quiet
        # Every message in the feed and the book is of the current session since a moment
        # it was drained: ``done`` then grows with the sequence numbers of what the table
        # stores, and the table may start mid-stream (a dense A/B feed is never drained).
        # Started so, it is wiped at the next new session (no ``tbl_fresh``): messages of
        # the old one may be in flight.
        sess_steady = Signal()
        pk_since = Signal()         # a packet decided since that moment
        with m.If(drained):
            m.d.sync += [sess_steady.eq(1), pk_since.eq(0)]
        with m.Elif(~synced):
            m.d.sync += sess_steady.eq(0)
        with m.Elif(dec2):
            m.d.sync += pk_since.eq(1)
            with m.If(new & pk_since):
                m.d.sync += sess_steady.eq(0)
        same_feed = ((tap.session == r_cur) & (tap.have_session == r_have_cur)
                     & (tap.expected == r_exp))
        with m.If(self.ev_take):
            m.d.sync += [done32.eq(self.ev_seq[0:32]), done_hi.eq(self.ev_seq[32:] != 0)]
        with m.If((tbl_on | tbl_susp) & tbl_flush):
            m.d.sync += [tbl_on.eq(0), tbl_susp.eq(0), scrub.eq(1), scrub_idx.eq(0)]
        with m.Elif(tbl_susp & resync):
            # (resumed at once: ``done`` went on following the book meanwhile)
            with m.If(same_feed):
                m.d.sync += [tbl_susp.eq(0), tbl_on.eq(1)]
            with m.Else():
                m.d.sync += [tbl_susp.eq(0), scrub.eq(1), scrub_idx.eq(0)]
        with m.Elif(tbl_on & ~synced):
            m.d.sync += [tbl_on.eq(0), tbl_susp.eq(1)]
        with m.Elif(scrub):
            m.d.sync += scrub_idx.eq(scrub_idx + 1)
            with m.If(scrub_idx == self.orders - 1):
                m.d.sync += scrub.eq(0)
        with m.Elif(~tbl_on & ~tbl_susp & ~tbl_flush & synced & ~b_wait
                    & (drained | sess_steady)):
            m.d.sync += [tbl_on.eq(1), tbl_fresh.eq(drained), done32.eq(0), done_hi.eq(0)]
        # reductions and removals: also while suspended
        tbl_cut = (tbl_on | tbl_susp) & ~tbl_flush
        w_new = Signal(OL)
        m.d.comb += [
            w_new.valid.eq(1), w_new.side.eq(c_side), w_new.slot.eq(c_slot),
            w_new.shares.eq(c_sh), w_new.seq.eq(c_seq[0:32]), w_new.tag.eq(c_ref[IB:]),
        ]
        w_red = Signal(OL)          # the entry with what the message took off its shares
        m.d.comb += [w_red.eq(red_ent), w_red.shares.eq(red_ent.shares - t_sh19)]
        with m.If(scrub):
            m.d.comb += [wr.en.eq(1), wr.addr.eq(scrub_idx), wr.data.eq(0)]
        with m.Elif(tbl_cut & inval):
            m.d.comb += [wr.en.eq(1), wr.addr.eq(r_idx), wr.data.eq(0)]
        with m.Elif(tbl_cut & red):
            m.d.comb += [wr.en.eq(1), wr.addr.eq(red_idx),
                         wr.data.eq(Mux(t_sh19 < red_ent.shares, w_red, 0))]
        with m.Elif(tbl_ok & walked & c_ins & (c_seq[32:] == 0)):
            m.d.comb += [wr.en.eq(1), wr.addr.eq(c_ref[0:IB]), wr.data.eq(w_new)]

        with m.If(resync):
            # (the feed is idle: the tracker's state holds whatever B brought)
            m.d.sync += [b_pend.eq(0), b_fail.eq(0)]
            m.d.sync += [synced.eq(1), self.syncs.eq(self.syncs + 1), r_cur.eq(tap.session), r_prev.eq(tap.prev_session),
                         r_have_cur.eq(tap.have_session), r_have_prev.eq(tap.have_prev),
                         r_exp.eq(tap.expected)]
        with m.Elif(unsync):
            m.d.sync += synced.eq(0)
        return m
