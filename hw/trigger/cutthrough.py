"""Cut-through source for the trigger engine: the ITCH decoder's ``early`` view -> ``FastAdd``.

The trigger engine (:class:`~.engine.TriggerEngine`) can evaluate an add from the decoder's
view of it, before the message has gone through the book builder, if the
producer guarantees three things (docs/architecture.md "Trigger engine"): the strobe shows a
message the book *will* process (with the slot it will use), it is the next message the engine
will see on ``ev`` (``quiet``), and the message's own data (side, price) are final. This block
makes those guarantees, without any speculation the committed stream could contradict:

* **Only delivered messages.** A strobe is presented in the cycle the decoder shows an ``A``
  or ``F`` *complete* (``early.complete``), wherever it lies in its packet. The packet was
  accepted by the MoldUDP64 tracker at its header, before it was streamed to the decoder
  (duplicates and stale-session packets are drained, never decoded; overlap messages are
  skipped, never assembled), and nothing later in the frame can take a complete message back:
  a frame that ends early keeps the messages it completed (docs/architecture.md "Feed: frames
  and MoldUDP64"). A complete message lies inside the UDP payload (not an overrun), and
  ``early.active`` means its type and framed length are right: such a message is certain to be
  on the decoder's ``o``. For an ``A`` the price is its last field (the strobe comes with the
  price's last byte); an ``F``'s 4-byte attribution follows the price (the strobe comes with
  the message's last byte, at most one word after the price's).
* **The book's slot.** The locate is looked up in the book builder's locate map (``loc_*``:
  a read port; the address is the early ``locate``, which arrives long before the price). The
  book processes an ``A``/``F`` of a mapped locate in that slot; a mapping is permanent, so a
  hit is final. A locate not (yet) mapped -- a first add that will map it by name, an ``R``
  still in flight, an untracked locate -- presents no strobe (the slow path decides).
* **quiet.** No older message of a type the book turns into an event (``A F E C X D U H``)
  is left in the decoder (``held``, counted up to the decoder's ``o`` handshake) or in the
  book builder (``ev_pending``, counted from its ``i`` handshake until the event is taken
  on ``ev`` or the locate is found untracked). Older ``R S P Q`` messages may still be in
  flight: they produce no event and change no shadow (an ``R``/``P``/``Q`` can only map a
  locate that is still unmapped, and then no strobe is presented). The engine also requires
  that no event waits on ``ev``; with ``quiet`` the message strobed is then the next one its
  ``ev`` will carry (``fast_mismatch`` checks that).

* **The engine's shadow.** The engine evaluates a strobe from its shadow of the slot (best
  ask, best bid, trading), written from every event it takes. The order path's ``clear``
  resets the shadows to "empty, trading" while the book keeps its contents, and a state-only
  event (``evaluate`` 0, an ``H``) carries best prices the book builder does not promise (an
  ``H`` directly behind an add of its slot shows the book before that add). So a slot is
  presented only while its latest event taken by the engine -- since the last ``clear`` and
  since reset -- was an ``evaluate`` one: ``fresh``, one bit per slot (``ev_take``,
  ``ev_slot``, ``ev_evaluate``: the engine's ``ev`` handshake). Until the slot's next
  book-affecting event its adds go the slow path.

``U`` (replace) is not presented here: its side is the original order's, known from the
book's order table (the port walker keeps a table of its own and presents the ``U`` it can
be certain of; its entry then says *taken*). Executions never fire on their own (they only
take liquidity away).

**Wire triggers** (``wire``): an add's evaluation needs no book, only the message itself and
the order in which the engine's state (armed bits, trading states, risk) changes, so
``quiet`` becomes: no older message still on its way to the engine could fire, re-arm or
change a trading state. Per message the decoder hands on (types ``A F E C X D U H``, in order)
an entry is kept until the message leaves the book (found untracked at its decision, or its
event taken by the engine): *hazard* for an ``A``, ``F`` or ``U`` the engine did not take
(a ``U``'s side, slot and whether it adds an order are the book's: the original order's)
and an ``H``, unless the book's locate map says the locate is not tracked (``loc_untracked``; the
book ignores its messages, for good), or, for an ``A``/``F``/``H``, that it is mapped to a
slot none of whose sides is enabled (``link.probe_*``: the engine's row; a mapping is
permanent); ``E C X D`` evaluate nothing with wire triggers. An add is taken when no hazard is in flight; its entry then says
*taken*, and the engine skips its event (``link.ev_skip``; the low 16 bits of its sequence in
``link.ev_skip_seq`` for the engine's check). Two in-order queues hold the entries: decoder ->
the book's decision (``ev_decided``), then, for a tracked message, decision -> the engine's
``ev`` handshake. Their occupancy is bounded by the decoder's FIFO and the book's event FIFO;
should a push ever find a queue full, the wire path stops (``quiet`` 0) until reset.

The strobe is presented whether or not the engine takes it (``fast_enable``, ``quiet``, the
crossing test are the engine's); ``stamp_valid`` is 0: a taken strobe's latency starts at
the strobe. Timing: everything is combinational from the registered ``early`` port, the map
read (registered in the book, and its answer once more here: the slot goes straight into the
engine's trigger-row read) and the two registered counts.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import GATEWARE

from ..feed.decoder import EVENT_TYPES, EarlyLayout
from .common import SLOT_BITS
from .layouts import BOOK_ASK, BOOK_BID, CutThroughLink, FastAdd, InFlightEntry

__all__ = ["CutThrough"]


class CutThrough(wiring.Component):
    """Members
    -------
    early : In(EarlyLayout)        the decoder's early view (FeedFrontEnd.early)
    held : In(1)                   FeedFrontEnd.held
    ev_pending : In(1)             BookBuilder.ev_pending
    loc_addr : Out(16)             -> BookBuilder.loc_addr
    loc_valid : In(1), loc_slot : In(slot_bits), loc_untracked : In(1)   <- BookBuilder (one
                                   cycle after loc_addr)
    ev_take, ev_slot, ev_evaluate : In   the engine's ``ev`` handshake (BookEvent slot and
                                         ``evaluate``)
    clear : In(1)                  the order path's clear (resets the engine's shadows)
    wire : In(1)                   wire triggers (the order path's ``wire``)
    ev_decided, ev_tracked : In(1) <- BookBuilder (an event-type message decided, tracked)
    link : Out(CutThroughLink())   <-> TriggerEngine: ``ev_skip``/``ev_skip_seq`` (the
                                   waiting event is a taken message's), ``fast_took``, the
                                   engine's row of the message's slot (``probe_*``)
    fast : Out(stream.Signature(FastAdd, always_ready=True))   -> TriggerEngine.fast
    quiet : Out(1)                 -> TriggerEngine.quiet
    blocked : In(1)                the port walker's strobe has the engine this cycle (this
                                   strobe is then not taken: the message goes the slow way)
    port : In(stream.Signature(InFlightEntry))   <- PortWalker.entries: the entries of the
                                   messages the port walker saw, one taken with each
                                   ``A F E C X D U H`` message completing (its strobe is not
                                   presented again when the walker's was taken); a sequence
                                   that differs stops the wire path as an overflow does
    port_holding : In(1)           <- PortWalker.holding: a held entry taken over while this
                                   is (or was, a cycle before) high stops the wire path too
    offered : Out(counter_width)   strobes presented (taken or not; hardware only)
    stops : Out(counter_width)     times the wire path stopped (``wire_stops``)

    Parameters: ``symbols`` (slots of the book and the engine), ``slot_bits`` (width of the
    book's slot numbers), ``counter_width``.
    """

    def __init__(self, *, symbols: int = GATEWARE["symbols"], slot_bits: int = 6,
                 counter_width: int = 32, in_flight: int = 512):
        if not isinstance(slot_bits, int) or not 1 <= slot_bits <= SLOT_BITS:
            raise ValueError(f"slot_bits must be an integer in 1..{SLOT_BITS}, not "
                             f"{slot_bits!r}")
        if not isinstance(symbols, int) or not 1 <= symbols <= 1 << slot_bits:
            raise ValueError(f"symbols must be an integer in 1..{1 << slot_bits}, not "
                             f"{symbols!r}")
        self.symbols = symbols
        self.in_flight = in_flight
        super().__init__({
            "early": In(EarlyLayout),
            "held": In(1),
            "ev_pending": In(1),
            "loc_addr": Out(16),
            "loc_valid": In(1),
            "loc_slot": In(slot_bits),
            "loc_untracked": In(1),
            "ev_take": In(1),
            "ev_slot": In(SLOT_BITS),
            "ev_evaluate": In(1),
            "clear": In(1),
            "wire": In(1),
            "ev_decided": In(1),
            "ev_tracked": In(1),
            "link": Out(CutThroughLink()),
            "fast": Out(stream.Signature(FastAdd, always_ready=True)),
            "quiet": Out(1),
            "blocked": In(1),
            "port": In(stream.Signature(InFlightEntry)),
            "port_holding": In(1),
            "offered": Out(counter_width),
            "stops": Out(counter_width),
        })

    def elaborate(self, platform):
        m = Module()
        e = self.early
        msg = e.msg
        # the map's data are for the address of the previous cycle: same locate?
        loc_q = Signal(16)
        m.d.sync += loc_q.eq(msg.locate)
        m.d.comb += self.loc_addr.eq(msg.locate)
        hit = self.loc_valid & (loc_q == msg.locate)
        # the strobe's slot from the lookup registered once more (LUT levels: the engine reads
        # its trigger row with it in the same cycle); the locate arrives at least four words
        # before an add's price completes, so the registered answer is there in time
        loc_q2 = Signal(16)
        r_valid = Signal()
        r_slot = Signal.like(self.loc_slot)
        m.d.sync += [loc_q2.eq(loc_q), r_valid.eq(self.loc_valid), r_slot.eq(self.loc_slot)]
        hit_r = r_valid & (loc_q2 == msg.locate)
        is_add = (msg.type == ord("A")) | (msg.type == ord("F"))
        # fresh: the slot's latest event taken by the engine since the last clear (and reset)
        # was an evaluate one (a state-only event's best prices are not the book's)
        S = self.symbols
        fresh = Signal(S)
        with m.If(self.clear):
            m.d.sync += fresh.eq(0)
        with m.Elif(self.ev_take & (self.ev_slot < S)):
            m.d.sync += fresh.bit_select(self.ev_slot, 1).eq(self.ev_evaluate)
        slot_fresh = (fresh.bit_select(r_slot, 1) if S > 1 else fresh[0]) & (r_slot < S)
        strobe = Signal()
        port = self.port
        # the walker's entry at the head: its strobe was taken (a held one: taken late)
        port_took = port.valid & port.payload.taken
        m.d.comb += strobe.eq(e.active & e.complete & is_add & e.fields.price
                              & e.fields.side & e.fields.locate & hit_r & slot_fresh
                              & ~port_took)
        f = self.fast.payload
        m.d.comb += [
            self.fast.valid.eq(strobe),
            f.slot.eq(r_slot),
            f.side.eq(Mux(msg.side == ord("B"), BOOK_BID, BOOK_ASK)),
            f.price.eq(msg.price),
            f.sequence.eq(msg.sequence),
            f.timestamp.eq(msg.timestamp),
            f.stamp.eq(0),
            f.stamp_valid.eq(0),
        ]
        # ---- wire triggers: the in-flight entries (see the module docstring). Everything
        # below starts from registers: the message's entry is pushed the cycle after its
        # ``complete`` (its hazard bit from registered facts), the book's decisions are taken
        # a cycle late, and both queues show their heads from registers; ``quiet`` counts the
        # entry still to be pushed.
        hazards = Signal(range(2 * self.in_flight))
        entry = InFlightEntry
        m.submodules.q_dec = q_dec = fifo.SyncFIFOBuffered(width=InFlightEntry.as_shape().size,
                                                           depth=self.in_flight)
        m.submodules.q_ev = q_ev = fifo.SyncFIFOBuffered(width=InFlightEntry.as_shape().size,
                                                          depth=self.in_flight // 4)
        t = msg.type
        link = self.link
        row = link.probe_row
        m.d.comb += link.probe_slot.eq(self.loc_slot)
        # the facts of the message completing now, registered
        p_valid, p_add, p_u, p_h, p_hit, p_enabled, p_untracked, p_taken = (
            Signal(name=f"p_{n}") for n in ("valid", "add", "u", "h", "hit", "enabled",
                                            "untracked", "taken"))
        p_seq = Signal(16)
        m.d.sync += [
            p_valid.eq(e.active & e.complete & Cat(*[t == ord(ch) for ch in EVENT_TYPES]).any()),
            p_add.eq(is_add), p_u.eq(t == ord("U")), p_h.eq(t == ord("H")), p_hit.eq(hit),
            p_enabled.eq(link.probe_valid & (row.enable_buy | row.enable_sell)),
            p_untracked.eq(self.loc_untracked & (loc_q == msg.locate)),
            # ... and taken: link.fast_took, next cycle
            p_taken.eq(strobe & self.wire & ~self.blocked),
            p_seq.eq(msg.sequence[:16]),
        ]
        push = Signal(entry)
        # the port walker's entry for this message, if it saw it (the same message: both
        # sides keep message order); taken there or here
        m.d.comb += port.ready.eq(p_valid)
        w_mismatch = p_valid & port.valid & (port.payload.seq != p_seq)
        taken = (p_taken & link.fast_took) | port_took
        m.d.comb += [
            push.taken.eq(taken),
            push.hazard.eq((((p_add | p_u) & ~taken) | p_h) & ~p_untracked
                           & (p_u | ~p_hit | p_enabled)),
            push.seq.eq(p_seq),
            q_dec.w_data.eq(push),
            q_dec.w_en.eq(p_valid),
        ]
        decided = Signal()
        tracked = Signal()
        m.d.sync += [decided.eq(self.ev_decided), tracked.eq(self.ev_tracked)]
        head_dec = Signal(entry)
        head_ev = Signal(entry)
        m.d.comb += [
            head_dec.eq(q_dec.r_data), head_ev.eq(q_ev.r_data),
            q_dec.r_en.eq(decided),
            q_ev.w_data.eq(head_dec), q_ev.w_en.eq(decided & tracked),
            q_ev.r_en.eq(self.ev_take),
            link.ev_skip.eq(q_ev.r_rdy & head_ev.taken),
            link.ev_skip_seq.eq(head_ev.seq),
        ]
        m.d.sync += hazards.eq(hazards + (p_valid & push.hazard)
                               - (decided & ~tracked & head_dec.hazard)
                               - (self.ev_take & q_ev.r_rdy & head_ev.hazard))
        # never expected (the queues hold what the decoder's FIFO and the book can): sticky
        # until reset, and the slow path alone is exact
        # (a held entry taken over while the walker may still present its strobe: never, by
        # the walker's HOLD; checked a cycle back too, the producer's strobe decision's cycle)
        holding_q = Signal()
        m.d.sync += holding_q.eq(self.port_holding)
        w_early = p_valid & port.valid & port.payload.held & (self.port_holding | holding_q)
        broken = Signal()
        with m.If(((q_dec.w_en & ~q_dec.w_rdy) | (q_ev.w_en & ~q_ev.w_rdy)
                   | (decided & ~q_dec.r_rdy) | (self.ev_take & ~q_ev.r_rdy) | w_mismatch
                   | w_early)
                  & ~broken):
            m.d.sync += [broken.eq(1), self.stops.eq(self.stops + 1)]
        m.d.comb += self.quiet.eq(Mux(self.wire,
                                      (hazards == 0) & ~(p_valid & push.hazard) & ~broken,
                                      ~self.held & ~self.ev_pending))
        with m.If(strobe):
            m.d.sync += self.offered.eq(self.offered + 1)
        return m
