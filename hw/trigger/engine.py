"""Trigger engine: host-set buy/sell trigger prices per slot, evaluated after every book event.

Implements docs/architecture.md "Trigger engine" bit for bit (the emulator's ``process()``
trigger part), with a cut-through path for adds.

Two inputs, one evaluation per cycle:

* ``ev`` (BookEvent, with back-pressure): the slow path. An ``evaluate`` event is evaluated
  with the post-message best ask/bid, the message's trading state and its add (if any); every
  event (also ``evaluate`` = 0 ones, H messages) updates the engine's *shadow* of the slot
  (best ask, best bid, trading) that the cut-through path reads.
* ``fast`` (FastAdd, no back-pressure): the cut-through path. In the cycle the decoder sees the
  last byte of an add's price field, the whole evaluation of that message is done at once from
  the shadow (the pre-message book) and the add's price — exact, because an add only improves
  its own side and leaves the other side as it was. It is *taken* only when

  - ``fast_enable`` and ``quiet`` (the producer's promise that every message before this one
    has already reached ``ev``; i.e. the book builder holds no older message), no event is
    waiting on ``ev``, no taken cut-through message is still awaiting its own event, and
  - the add crosses an enabled, armed trigger of the slot (an ask add at ``<= buy_price``, a
    bid add at ``>= sell_price``) in trading state T (else the message is left to the slow
    path).

  A taken message's own event, which arrives later on ``ev``, only updates the shadow (its
  evaluation is already done); its ``sequence`` is checked (``fast_mismatch`` counts a
  violation of the producer contract).

Wire triggers (``wire``, docs/architecture.md "Trigger sources"): only the add term counts,
and only the side the add can cross is evaluated (an ask add the buy side, a bid add the
sell side); an event without an add evaluates nothing. Then an add's evaluation needs no
book at all, so the producer's ``quiet`` only promises that no older message still on its
way could fire, re-arm or change a trading state; the strobe is taken for every add
(crossing or not: a re-arm must happen in order too), also beside a waiting event (taken in
the same cycle without an evaluation: with ``quiet`` it is an older message whose evaluation
does nothing), and any number of taken messages may await their events: the producer marks each of those events
(``link.ev_skip``, with the low 16 bits of its sequence in ``link.ev_skip_seq`` for the
check). ``link.fast_took`` says, the cycle after a strobe, that it was taken.

Host writes (``triggers.w``) replace a slot's row and re-arm both sides in the cycle they are
presented; an evaluation in the same cycle still sees the old row (the write lands after it).
``refs.w`` writes a slot's collar reference price (no re-arm), carried with each candidate to
pre-trade risk (the emulator's trigger write with ``ref_price >= 0`` is both writes in one
cycle). ``enable`` 0: events are consumed and the shadows kept, nothing is evaluated (no
candidate, no arming change), as in a trading state other than T.

Output ``o`` (Candidate, no back-pressure: pre-trade risk takes one per cycle): a message that
fires both sides gives the buy, then the sell one cycle later (the engine pauses one cycle).

Cycles: ``ev`` accepted / ``fast`` taken in cycle t -> candidate on ``o`` in t+1 (t+2 for the
second one).

Structure (one cycle from ``ev``/``fast`` to ``o`` in at most five LUT levels): the two
sources are evaluated side by side, each from its own reads of the tables, and chosen at the
end; the armed bits are distributed RAM too, as ``E ^ H`` per side (``E`` toggled by
evaluations, ``H`` kept with the row and written by the host), so that reading them is one
LUT level and the host and the evaluations each have a write port of their own.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import GATEWARE

from .common import MAX_SLOTS, SLOT_BITS, check_int, checked_init, nonzero, sweep
from ..ports import CounterGroup, TablePort
from .layouts import (BOOK_ASK, BOOK_BID, ORDER_BUY, ORDER_SELL, STATE_TRADING, BookEvent,
                      Candidate, CutThroughLink, FastAdd, Quote, TriggerRow)

__all__ = ["TriggerEngine", "Shadow", "COUNTERS"]

COUNTERS = ("triggers_fired", "fast_taken", "fast_mismatch")


class Shadow(data.Struct):
    """The engine's copy of a slot's book top and trading state (from ``ev``)."""
    best_ask: Quote
    best_bid: Quote
    trading: 1


class TriggerEngine(wiring.Component):
    """Trigger engine gateware.

    Parameters:
        symbols        slots (1..256, default 64)
        counter_width  width of the counters (default 32, wrap)

    Ports:
        ev             In(stream.Signature(BookEvent))
        fast           In(stream.Signature(FastAdd, always_ready=True))  cut-through strobe
        quiet          In(1)   no message older than ``fast``'s is still on its way to ``ev``
        enable         In(1)   order path enable (0: evaluate nothing)
        fast_enable    In(1)
        wire           In(1)   wire triggers (see above)
        link           In(CutThroughLink())  from the producer: ``ev_skip`` (with wire
                               triggers the event on ``ev`` is a taken message's); to it:
                               ``fast_took``, a probed slot's row
        now            In(32)  free-running cycle counter (stamps candidates)
        triggers       In(TablePort(SLOT_BITS, TriggerRow))  host write of a slot's row (re-arms)
        refs           In(TablePort(SLOT_BITS, 32))  host write of a slot's reference price
        clear          In(1)   strobe: clear every row (disabled, ref 0), arm every side, set
                               every shadow to empty/trading, clear the counters; ``busy``
                               while it runs (``symbols`` cycles), the inputs are ignored then
        o              Out(stream.Signature(Candidate, always_ready=True))
        counters       triggers_fired, fast_taken, fast_mismatch
    """

    LATENCY = 1
    THROUGHPUT = "1 event/cycle (a message that fires both sides: 2 cycles)"

    @checked_init
    def __init__(self, *, symbols: int = GATEWARE["symbols"], counter_width: int = 32):
        check_int("symbols", symbols, 1, MAX_SLOTS)
        check_int("counter_width", counter_width, 1, 64)
        self.symbols = symbols
        self.counter_width = counter_width
        ports = {
            "ev": In(stream.Signature(BookEvent)),
            "fast": In(stream.Signature(FastAdd, always_ready=True)),
            "quiet": In(1),
            "enable": In(1),
            "fast_enable": In(1),
            "wire": In(1),
            "link": In(CutThroughLink()),
            "now": In(32),
            "triggers": In(TablePort(SLOT_BITS, TriggerRow)),
            "refs": In(TablePort(SLOT_BITS, 32)),
            "clear": In(1),
            "busy": Out(1),
            "o": Out(stream.Signature(Candidate, always_ready=True)),
            "counters": Out(CounterGroup(COUNTERS, counter_width)),
        }
        super().__init__(ports)

    def elaborate(self, platform):
        # Timing structure (one cycle, ``ev``/``fast`` to the output register, <= 5 LUT levels):
        # the two sources are evaluated side by side, each from its own asynchronous reads of
        # the tables (no address multiplexer in front of the LUTRAMs); the source is chosen
        # late. The armed bits are LUTRAM too (no 64:1 multiplexer of flip-flops): per side,
        # armed = E ^ H, with E written only by evaluations (toggled when the bit changes)
        # and H, kept in the row memory, only by host writes (H := ~E re-arms) and the clear
        # sweep (E := 0, H := 1) -- two writers without a second write port. A host write in
        # the same cycle as an evaluation of the same slot suppresses the evaluation's toggle
        # (the host write wins, as documented).
        m = Module()
        S = self.symbols

        row_shape = data.StructLayout({"row": TriggerRow, "h": 2})
        m.submodules.rows = rows = memory.Memory(shape=row_shape, depth=S,
                                                 init=[{"h": 0b11}] * S)
        m.submodules.refs = refs = memory.Memory(shape=32, depth=S, init=[])
        m.submodules.shadow = shadow = memory.Memory(
            shape=Shadow, depth=S, init=[{"trading": 1}] * S)
        m.submodules.toggles = toggles = memory.Memory(shape=2, depth=S, init=[])
        rows_f, rows_e, rows_p, refs_f, refs_e, sh_f, tg_f, tg_e, tg_h = (
            mem.read_port(domain="comb")
            for mem in (rows, rows, rows, refs, refs, shadow, toggles, toggles, toggles))
        link = self.link
        m.d.comb += [rows_p.addr.eq(link.probe_slot), link.probe_row.eq(rows_p.data.row),
                     link.probe_valid.eq(link.probe_slot < S)]
        rows_w, refs_w, sh_w = (mem.write_port() for mem in (rows, refs, shadow))
        tg_w = toggles.write_port(granularity=1)

        # ------------------------------------------------------------ clear sweep
        sweeping, sweep_slot = sweep(m, self.clear, S)
        m.d.comb += self.busy.eq(sweeping)

        # ------------------------------------------------------------ input selection
        second = Signal(Candidate)
        second_valid = Signal()
        skip_pending = Signal()
        skip_seq = Signal(64)
        can_eval = ~second_valid & ~sweeping & ~self.clear
        f = self.fast.payload
        ev = self.ev.payload
        sel_fast = Signal()
        wire = self.wire
        # book triggers: a strobe only while no event waits and no taken one awaits its
        # event. Wire triggers: also beside a waiting event, which is then taken in the same
        # cycle without an evaluation: with ``quiet`` every older message in flight is one
        # whose evaluation does nothing (``ev.ready`` never hangs on the strobe's logic)
        m.d.comb += sel_fast.eq(self.fast.valid & self.fast_enable & self.enable & self.quiet
                                & (wire | (~self.ev.valid & ~skip_pending)) & can_eval)
        for rp in (rows_f, refs_f, sh_f, tg_f):
            m.d.comb += rp.addr.eq(f.slot)
        for rp in (rows_e, refs_e, tg_e):
            m.d.comb += rp.addr.eq(ev.slot)
        in_range_f = f.slot < S
        in_range_e = ev.slot < S
        row_f, row_e = rows_f.data.row, rows_e.data.row
        sh = sh_f.data
        ab_f = tg_f.data[0] ^ rows_f.data.h[0]
        as_f = tg_f.data[1] ^ rows_f.data.h[1]
        ab_e = tg_e.data[0] ^ rows_e.data.h[0]
        as_e = tg_e.data[1] ^ rows_e.data.h[1]

        # ------------------------------------------------------------ cut-through evaluation
        f_buy = Signal()   # the strobe's add crosses the buy trigger (an ask add <= buy)
        f_sell = Signal()  # ... the sell trigger (a bid add >= sell)
        m.d.comb += [
            f_buy.eq((f.side == BOOK_ASK) & (f.price <= row_f.buy_price)),
            f_sell.eq((f.side == BOOK_BID) & (f.price >= row_f.sell_price)),
        ]
        crosses = (row_f.enable_buy & ab_f & f_buy) | (row_f.enable_sell & as_f & f_sell)
        fast_take = Signal()
        m.d.comb += fast_take.eq(sel_fast & in_range_f & (wire | (sh.trading & crosses)))
        m.d.sync += link.fast_took.eq(fast_take)
        live_f = fast_take & sh.trading
        cond_fb = (~wire & sh.best_ask.valid & (sh.best_ask.price <= row_f.buy_price)) | f_buy
        cond_fs = (~wire & sh.best_bid.valid & (sh.best_bid.price >= row_f.sell_price)) | f_sell
        # wire triggers evaluate only the side the add can cross
        live_fb = live_f & (~wire | (f.side == BOOK_ASK))
        live_fs = live_f & (~wire | (f.side == BOOK_BID))

        # ------------------------------------------------------------ event evaluation
        # (a strobe is only taken while no event waits, so ready need not look at it)
        m.d.comb += self.ev.ready.eq(can_eval)
        ev_take = self.ev.valid & self.ev.ready
        ev_eval = Signal()
        # (a taken message's event is skipped in either mode: the producer marks only those
        # taken with wire triggers, so the source may change with messages in flight)
        skip_now = link.ev_skip | skip_pending
        m.d.comb += ev_eval.eq(ev_take & ev.evaluate & in_range_e & ~skip_now & self.enable
                               & ~(wire & sel_fast))
        live_e = ev_eval & (ev.trading_state == STATE_TRADING)
        add_ask = ev.add.valid & (ev.add.side == BOOK_ASK)
        add_bid = ev.add.valid & (ev.add.side == BOOK_BID)
        cond_eb = ((~wire & ev.best_ask.valid & (ev.best_ask.price <= row_e.buy_price))
                   | (add_ask & (ev.add.price <= row_e.buy_price)))
        cond_es = ((~wire & ev.best_bid.valid & (ev.best_bid.price >= row_e.sell_price))
                   | (add_bid & (ev.add.price >= row_e.sell_price)))
        live_eb = live_e & (~wire | add_ask)
        live_es = live_e & (~wire | add_bid)

        # fire / re-arm per source (at most one source evaluates in a cycle: a strobe is
        # selected only while no event is valid)
        fire_fb, fire_fs, fire_eb, fire_es = (Signal(name=n) for n in
                                              ("fire_fb", "fire_fs", "fire_eb", "fire_es"))
        chg_fb, chg_fs, chg_eb, chg_es = (Signal(name=n) for n in
                                          ("chg_fb", "chg_fs", "chg_eb", "chg_es"))

        def side_logic(live, row, en, armed, cond, fire, chg):
            rearm = live & en & ~armed & row.rearm & ~cond
            m.d.comb += [fire.eq(live & en & armed & cond), chg.eq(fire | rearm)]

        side_logic(live_fb, row_f, row_f.enable_buy, ab_f, cond_fb, fire_fb, chg_fb)
        side_logic(live_fs, row_f, row_f.enable_sell, as_f, cond_fs, fire_fs, chg_fs)
        side_logic(live_eb, row_e, row_e.enable_buy, ab_e, cond_eb, fire_eb, chg_eb)
        side_logic(live_es, row_e, row_e.enable_sell, as_e, cond_es, fire_es, chg_es)
        fire_b = fire_fb | fire_eb
        fire_s = fire_fs | fire_es

        # the candidate fields of the selected source (sel_fast, not fast_take: they only
        # matter when a side fires, and then the source evaluated is the selected one)
        def pick(a, b):
            return Mux(sel_fast, a, b)

        def cand(side, price):
            c = Signal(Candidate, name=f"cand_{'buy' if side == ORDER_BUY else 'sell'}")
            m.d.comb += [
                c.slot.eq(pick(f.slot, ev.slot)), c.side.eq(side), c.price.eq(price),
                c.quantity.eq(pick(row_f.quantity, row_e.quantity)),
                # (an AND-OR, not a multiplexer: Yosys's "share" would merge the two read
                # ports of a multiplexer of their data into one behind an address multiplexer)
                c.ref_price.eq((refs_f.data & sel_fast.replicate(32))
                               | (refs_e.data & (~sel_fast).replicate(32))),
                c.timestamp.eq(pick(f.timestamp, ev.timestamp)),
                c.sequence.eq(pick(f.sequence, ev.sequence)),
                c.stamp.eq(pick(Mux(f.stamp_valid, f.stamp, self.now),
                                Mux(ev.stamp_valid, ev.stamp, self.now))),
                c.fast.eq(sel_fast),
                c.t_event.eq(self.now),
            ]
            return c

        c_buy = cand(ORDER_BUY, pick(row_f.buy_price, row_e.buy_price))
        c_sell = cand(ORDER_SELL, pick(row_f.sell_price, row_e.sell_price))

        # outputs (registered)
        with m.If(second_valid):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(second), second_valid.eq(0)]
        with m.Else():
            m.d.sync += [
                self.o.valid.eq(fire_b | fire_s),
                self.o.payload.eq(Mux(fire_b, c_buy, c_sell)),
                second_valid.eq((fire_fb & fire_fs) | (fire_eb & fire_es)),
                second.eq(c_sell),
            ]

        # armed bits: an evaluation toggles E where the bit changes; a host write re-arms
        # (H := ~E, wins over an evaluation of its slot in the same cycle); the sweep clears
        host_we = self.triggers.w.we & (self.triggers.w.index < S) & ~sweeping
        hit_f = host_we & (self.triggers.w.index == f.slot)
        hit_e = host_we & (self.triggers.w.index == ev.slot)
        m.d.comb += [
            tg_h.addr.eq(self.triggers.w.index),
            tg_w.addr.eq(Mux(sweeping, sweep_slot, pick(f.slot, ev.slot))),
            tg_w.data.eq(Mux(sweeping, 0, ~pick(tg_f.data, tg_e.data))),
            tg_w.en[0].eq(sweeping | (chg_fb & ~hit_f) | (chg_eb & ~hit_e)),
            tg_w.en[1].eq(sweeping | (chg_fs & ~hit_f) | (chg_es & ~hit_e)),
        ]

        # skip bookkeeping for cut-through messages
        with m.If(fast_take & ~wire):
            m.d.sync += [skip_pending.eq(1), skip_seq.eq(f.sequence)]
        with m.Elif(ev_take & ev.evaluate & skip_pending):
            m.d.sync += skip_pending.eq(0)
            with m.If(nonzero(ev.sequence ^ skip_seq)):
                m.d.sync += self.counters.fast_mismatch.eq(self.counters.fast_mismatch + 1)
        with m.If(ev_take & link.ev_skip
                  & (~ev.evaluate | nonzero(ev.sequence[:16] ^ link.ev_skip_seq))):
            m.d.sync += self.counters.fast_mismatch.eq(self.counters.fast_mismatch + 1)
        m.d.sync += self.counters.triggers_fired.eq(self.counters.triggers_fired + fire_b + fire_s)
        with m.If(fast_take):
            m.d.sync += self.counters.fast_taken.eq(self.counters.fast_taken + 1)

        # memory writes
        m.d.comb += [
            rows_w.addr.eq(Mux(sweeping, sweep_slot, self.triggers.w.index)),
            rows_w.data.row.eq(Mux(sweeping, 0, self.triggers.w.row)),
            rows_w.data.h.eq(Mux(sweeping, 0b11, ~tg_h.data)),
            rows_w.en.eq(sweeping | host_we),
            refs_w.addr.eq(Mux(sweeping, sweep_slot, self.refs.w.index)),
            refs_w.data.eq(Mux(sweeping, 0, self.refs.w.row)),
            refs_w.en.eq(sweeping | (self.refs.w.we & (self.refs.w.index < S))),
            sh_w.addr.eq(Mux(sweeping, sweep_slot, ev.slot)),
            sh_w.en.eq(sweeping | (ev_take & in_range_e)),
        ]
        with m.If(sweeping):
            m.d.comb += sh_w.data.trading.eq(1)
        with m.Else():
            m.d.comb += [
                sh_w.data.best_ask.eq(ev.best_ask),
                sh_w.data.best_bid.eq(ev.best_bid),
                sh_w.data.trading.eq(ev.trading_state == STATE_TRADING),
            ]

        with m.If(self.clear & ~sweeping):
            m.d.sync += [
                skip_pending.eq(0), second_valid.eq(0), self.o.valid.eq(0),
                self.counters.triggers_fired.eq(0), self.counters.fast_taken.eq(0), self.counters.fast_mismatch.eq(0),
            ]
        return m
