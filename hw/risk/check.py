"""Pre-trade risk: the ten checks of docs/architecture.md "Pre-trade risk", in line.

Bit-exact with the emulator's ``_risk_check`` / ``_refill`` and the accept/reject bookkeeping
of ``process()``. Two pipeline stages, one candidate per cycle, no back-pressure:

* **A** (the cycle a candidate is on ``i``): the three products, into registers (one DSP
  multiply each: ``quantity × price`` (notional), ``collar_bps × ref``, ``|price − ref| ×
  10000``; 32×32 and 32×14 bits, registered at the input (the trigger engine's output
  register) and the output), the ``max_qty`` comparison, and the parts of the position,
  throttle and duplicate checks that do not depend on stage B: the slot's position, limits,
  symbol bucket and duplicate record are read and compared with the candidate here, once
  with the values read and once with each write this cycle can make to that slot (stage
  B's update for the candidate before, the clear sweep, a held or host position write, a
  host limits write), and stage B picks the result for the write that was made.
* **B** (next cycle): the remaining comparisons (with the global state, the limits of
  ``params``), the first failing check, and the state updates (registered). Per-slot state
  is in asynchronous-read memories (distributed RAM for 64 slots), so a candidate on the same
  slot in the very next cycle sees the update. Every check is at most three LUT levels deep,
  so that the accept decision and the updates it drives fit in one cycle (``tickwire hw
  report``).

``i`` valid in cycle t -> ``o`` / ``d`` valid in t+2.

Token buckets without a divider. The emulator keeps (tokens, last) and refills with
``k = (now - last) // refill_ns``. The stage keeps, per bucket, ``F`` — the ITCH time at which
the bucket would be full — and ``L`` (the latest check time at or after ``last``). With the
two configuration products ``cmr = (burst − 1) × refill_ns`` and ``burst >= 1`` (registered
in the background) a check at ``now`` is::

    m = max(now, L)
    full = m >= F                      # tokens + k >= burst
    available = burst >= 1 and m + cmr >= F
    F, L := (now, now) if full else (F, m)
    accept: F += refill_ns             # one token taken

Throughout, with ``D = burst × refill_ns − (F − L)``, ``tokens = D // refill_ns`` and
``last = L − (D mod refill_ns)`` equal the emulator's values exactly (for any order of
timestamps); the reset (or ``clear``) state ``F = L = 0`` is the emulator's full bucket
(tokens = burst, last = 0). Every comparison is of the stored values with ``now`` (no
subtract-then-compare chain), in parallel.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import GATEWARE

from ..trigger.common import (MAX_SLOTS, SLOT_BITS, check_int, checked_init, nonzero,
                              sweep)
from ..ports import CounterGroup, TablePort
from ..trigger.layouts import ORDER_BUY, Candidate
from .layouts import (DIGITS, RISK_REASONS, AcceptedOrder, Decision, RiskParams, SlotLimits)
from .userref import UserRefCounter

__all__ = ["PreTradeRisk", "COUNTERS", "Bucket", "DupRecord"]

COUNTERS = ("orders_sent", "risk_rejects") + tuple("reject_" + r for r in RISK_REASONS)


class Bucket(data.Struct):
    full_at: 66
    last: 48


class DupRecord(data.Struct):
    valid: 1
    side: 1
    price: 32
    quantity: 32
    time: 48


def _bucket_update(m, name, full_at, last, full, now, refill, accept):
    """The bucket's new (full_at, last) (see the module docstring): a 4:1 multiplexer by
    ``full`` and ``accept`` of ``now``, ``now + refill``, ``full_at``, ``full_at + refill``,
    so that ``accept``, the latest signal, is one LUT level from the write."""
    f1 = Signal(66, name=f"{name}_f1")
    l1 = Signal(48, name=f"{name}_l1")
    m.d.comb += [
        f1.eq(Mux(full, Mux(accept, now + refill, now), Mux(accept, full_at + refill, full_at))),
        l1.eq(Mux(full | (now > last), now, last)),
    ]
    return f1, l1


class PreTradeRisk(wiring.Component):
    """Pre-trade risk gateware.

    Parameters:
        symbols        slots (1..256, default 64)
        counter_width  width of the counters (default 32, wrap)
        limits_init    power-on SlotLimits of every slot (dict; default :attr:`LIMITS_INIT`)

    Ports:
        i              In(stream.Signature(Candidate, always_ready=True))
        params         In(RiskParams)  global limits (static while orders flow; the bucket
                       constants follow a change two cycles later, whether a throttle is on
                       one cycle later)
        limits         In(TablePort(SLOT_BITS, SlotLimits))  host write of a slot's enable /
                       limits (power-on: ``limits_init``, default :attr:`LIMITS_INIT`)
        positions      In(TablePort(SLOT_BITS, signed(64), read=True))  ``w``: host write of a
                       slot's position (applied one cycle late when the stage updates a
                       position in that cycle); ``r``: host read (combinational)
        gross_we, gross_value                  host write of the gross exposure
        clear          strobe: positions, gross, buckets (full), duplicate records, the
                       auto-kill trip, the counters cleared; user_ref := first_user_ref.
                       ``busy`` while it runs (max(symbols, 32) cycles); a candidate then
                       is rejected as ``kill``
        trip_clear     strobe: clear the auto-kill trip and its reject count
        user_ref_load  strobe: user_ref := first_user_ref (``busy`` for 32 cycles)
        o              Out(stream.Signature(AcceptedOrder, always_ready=True))
        d              Out(stream.Signature(Decision, always_ready=True))  every decision
        kill_active    the kill switch is in effect (``params.kill`` or tripped)
        tripped, gross, user_ref   status (user_ref: the next order's)
        counters       orders_sent, risk_rejects, reject_<reason>
    """

    LATENCY = 2
    THROUGHPUT = "1 candidate/cycle"
    #: Power-on per-slot limits: the emulator's defaults (config ``[risk]``: every slot
    #: enabled, max_long = max_short = 2000).
    LIMITS_INIT = {"enable": 1, "max_long": 2000, "max_short": 2000}

    @checked_init
    def __init__(self, *, symbols: int = GATEWARE["symbols"], counter_width: int = 32,
                 limits_init: dict | None = None):
        check_int("symbols", symbols, 1, MAX_SLOTS)
        check_int("counter_width", counter_width, 1, 64)
        self.symbols = symbols
        self.counter_width = counter_width
        init = dict(self.LIMITS_INIT)
        if limits_init is not None:
            unknown = set(limits_init) - set(init)
            if unknown:
                raise ValueError(f"limits_init: unknown field(s) {sorted(unknown)}; "
                                 f"fields: {sorted(init)}")
            init.update(limits_init)
        check_int("limits_init['enable']", init["enable"], 0, 1)
        for k in ("max_long", "max_short"):
            check_int(f"limits_init[{k!r}]", init[k], -(1 << 63), (1 << 63) - 1)
        self.limits_init = init
        super().__init__({
            "i": In(stream.Signature(Candidate, always_ready=True)),
            "params": In(RiskParams),
            "limits": In(TablePort(SLOT_BITS, SlotLimits)),
            "positions": In(TablePort(SLOT_BITS, signed(64), read=True)),
            "gross_we": In(1), "gross_value": In(64),
            "clear": In(1), "trip_clear": In(1), "user_ref_load": In(1), "busy": Out(1),
            "o": Out(stream.Signature(AcceptedOrder, always_ready=True)),
            "d": Out(stream.Signature(Decision, always_ready=True)),
            "kill_active": Out(1), "tripped": Out(1), "gross": Out(64), "user_ref": Out(32),
            "counters": Out(CounterGroup(COUNTERS, counter_width)),
        })

    def elaborate(self, platform):
        m = Module()
        S = self.symbols
        p = self.params

        m.submodules.uref = uref = UserRefCounter(width=32, digits=DIGITS)
        m.d.comb += [uref.first.eq(p.first_user_ref), self.user_ref.eq(uref.value)]

        m.submodules.limits = limits = memory.Memory(shape=SlotLimits, depth=S,
                                                     init=[self.limits_init] * S)
        m.submodules.pos = pos = memory.Memory(shape=signed(64), depth=S, init=[])
        m.submodules.sbk = sbk = memory.Memory(shape=Bucket, depth=S, init=[])
        m.submodules.dup = dup = memory.Memory(shape=DupRecord, depth=S, init=[])
        lim_r, pos_r, sbk_r, dup_r = (x.read_port(domain="comb") for x in (limits, pos, sbk, dup))
        pos_hr = pos.read_port(domain="comb")
        lim_w, pos_w, sbk_w, dup_w = (x.write_port() for x in (limits, pos, sbk, dup))
        m.d.comb += [pos_hr.addr.eq(self.positions.r.addr),
                     self.positions.r.data.eq(pos_hr.data)]

        # bucket constants: (burst − 1) × refill_ns and burst >= 1. Stage B uses them two
        # register stages after ``params`` (``*_cmr``, ``*_cap_ok``); stage A, which
        # precomputes for B, uses the same values one cycle earlier (``*_cmr_next``: one
        # register stage, a DSP with its output register).
        consts = []
        for which in ("symbol", "global"):
            cmr_next = Signal(signed(66), name=f"{which}_cmr_next")
            # (after reset, cap_ok is 1 for a cycle: the ``burst - 1 >= 0`` of a
            # zero-initialised input register, as the two stages have always given)
            ok_next = Signal(name=f"{which}_cap_ok_next", init=1)
            cmr = Signal(signed(66), name=f"{which}_cmr")
            ok = Signal(name=f"{which}_cap_ok")
            burst_m1 = Signal(signed(17), name=f"{which}_burst_m1")
            m.d.comb += burst_m1.eq(getattr(p, f"{which}_burst") - 1)
            m.d.sync += [cmr_next.eq(burst_m1 * getattr(p, f"{which}_refill_ns")),
                         ok_next.eq(burst_m1 >= 0), cmr.eq(cmr_next), ok.eq(ok_next)]
            consts.append((cmr_next, cmr, ok))
        (sym_cmr_next, _, sym_ok), (glb_cmr_next, glb_cmr, glb_ok) = consts

        # ------------------------------------------------------------ clear sweep
        sweeping, sweep_slot = sweep(m, self.clear, S)
        m.d.comb += [uref.load.eq((self.clear & ~sweeping) | self.user_ref_load),
                     self.busy.eq(sweeping | uref.busy)]

        # ------------------------------------------------------------ stage A
        a_valid = Signal()
        a = Signal(Candidate)
        a_notional = Signal(64)
        a_cref = Signal(64)
        a_dev = Signal(46)
        c = self.i.payload
        diff = Signal(signed(33))
        m.d.comb += diff.eq(c.price - c.ref_price)
        absdiff = Mux(diff < 0, -diff, diff)[:32]
        a_over_qty = Signal()
        a_ref_nz = Signal()
        a_in_range = Signal()
        m.d.sync += [
            a_valid.eq(self.i.valid),
            a.eq(c),
            a_over_qty.eq(c.quantity > p.max_order_qty),
            a_notional.eq(c.quantity * c.price),
            a_cref.eq(p.collar_bps * c.ref_price),
            a_dev.eq(absdiff * 10000),
            a_ref_nz.eq(c.ref_price != 0),
            a_in_range.eq(c.slot < S),
        ]

        # Stage A also reads the candidate's duplicate record and symbol bucket and does the
        # comparisons with them that do not depend on stage B's results. Stage B must see
        # the memories as they are after this cycle's writes (by stage B itself, for the
        # candidate before, or the clear sweep): a write to the candidate's slot is caught
        # here (``*_hit``) with the data written, and stage B takes that side instead.
        for rp in (sbk_r, dup_r):
            m.d.comb += rp.addr.eq(c.slot)

        # duplicate record: compared with the candidate (side, price, quantity) and its age
        def dup_same(rec):
            return rec.valid & ~nonzero(Cat(rec.side ^ c.side, rec.price ^ c.price,
                                             rec.quantity ^ c.quantity))
        a_dup_hit = Signal()
        a_dup_same_r = Signal()
        a_dup_same_w = Signal()
        # (the age as max(age, 0): ``age < window and window != 0`` is ``window > max(age,
        # 0)``, one comparison with the window in stage B)
        a_dup_age_r = Signal(49)
        a_dup_age_w = Signal(49)

        def age_pos(time):
            age = Signal(signed(50))
            m.d.comb += age.eq(c.timestamp - time)
            return Mux(age < 0, 0, age)
        m.d.sync += [
            a_dup_hit.eq(dup_w.en & (dup_w.addr == c.slot)),
            a_dup_same_r.eq(dup_same(dup_r.data)), a_dup_same_w.eq(dup_same(dup_w.data)),
            a_dup_age_r.eq(age_pos(dup_r.data.time)),
            a_dup_age_w.eq(age_pos(dup_w.data.time)),
        ]

        # symbol bucket: availability and fullness for the value read; for a value written
        # this cycle, its parts (``last + cmr`` included) for stage B to compare
        sb = sbk_r.data
        a_sb_hit = Signal()
        a_sb_avail_r = Signal()
        a_sb_full_r = Signal()
        a_sb_f_r = Signal(66)
        a_sb_l_r = Signal(48)
        a_sb_f_w = Signal(66)
        a_sb_l_w = Signal(48)
        a_sb_lc_w = Signal(signed(68))
        a_now_scmr = Signal(signed(68))
        a_now_gcmr = Signal(signed(68))
        now_scmr = c.timestamp + sym_cmr_next
        m.d.sync += [
            a_sb_hit.eq(sbk_w.en & (sbk_w.addr == c.slot)),
            a_sb_avail_r.eq((now_scmr >= sb.full_at) | (sb.last + sym_cmr_next >= sb.full_at)),
            a_sb_full_r.eq((c.timestamp >= sb.full_at) | (sb.last >= sb.full_at)),
            a_sb_f_r.eq(sb.full_at), a_sb_l_r.eq(sb.last),
            a_sb_f_w.eq(sbk_w.data.full_at), a_sb_l_w.eq(sbk_w.data.last),
            a_sb_lc_w.eq(sbk_w.data.last + sym_cmr_next),
            a_now_scmr.eq(now_scmr),
            a_now_gcmr.eq(c.timestamp + glb_cmr_next),
        ]

        # ------------------------------------------------------------ stage B
        s = a.slot
        for rp in (lim_r, pos_r):
            m.d.comb += rp.addr.eq(s)
        lim = lim_r.data
        position = pos_r.data
        now = a.timestamp
        gross = Signal(64)
        g_bucket = Signal(Bucket)
        tripped = Signal()
        total_rejects = Signal(32)
        m.d.comb += [self.gross.eq(gross), self.tripped.eq(tripped),
                     self.kill_active.eq(p.kill | tripped)]

        # the throttles are on (a refill interval set): registered, as the bucket constants
        # (the parameters are static while orders flow; LUT levels: a 48-bit OR in front of
        # the checks)
        sym_on = Signal()
        glb_on = Signal()
        m.d.sync += [sym_on.eq(nonzero(p.symbol_refill_ns)),
                     glb_on.eq(nonzero(p.global_refill_ns))]
        accept = Signal()

        # symbol bucket: this cycle's value is the one written last cycle (if any) or read
        s_av = Signal(name="sym_avail")
        s_full = Signal(name="sym_full")
        s_fa = Mux(a_sb_hit, a_sb_f_w, a_sb_f_r)
        s_la = Mux(a_sb_hit, a_sb_l_w, a_sb_l_r)
        m.d.comb += [
            s_av.eq(sym_ok & Mux(a_sb_hit,
                                 (a_now_scmr >= a_sb_f_w) | (a_sb_lc_w >= a_sb_f_w),
                                 a_sb_avail_r)),
            s_full.eq(Mux(a_sb_hit, (now >= a_sb_f_w) | (a_sb_l_w >= a_sb_f_w), a_sb_full_r)),
        ]
        s_f1, s_l1 = _bucket_update(m, "sym", s_fa, s_la, s_full, now, p.symbol_refill_ns,
                                    accept)

        # global bucket (a register; g_lc = its last + glb_cmr, kept beside it)
        g_av = Signal(name="glb_avail")
        g_full = Signal(name="glb_full")
        g_lc = Signal(signed(68))
        m.d.comb += [
            g_av.eq(glb_ok & ((a_now_gcmr >= g_bucket.full_at) | (g_lc >= g_bucket.full_at))),
            g_full.eq((now >= g_bucket.full_at) | (g_bucket.last >= g_bucket.full_at)),
        ]
        g_f1, g_l1 = _bucket_update(m, "glb", g_bucket.full_at, g_bucket.last, g_full, now,
                                    p.global_refill_ns, accept)

        buy = a.side == ORDER_BUY
        window = p.dup_window_ns
        # position check: precomputed in stage A for each value the slot's position and
        # limits can have now (see "position check, stage A" below)
        a_pos_read = Signal()     # with the position as read in stage A
        a_pos_acc = Signal()      # ... after stage B's update for the order before
        a_pos_w = Signal()        # ... after the sweep / a held or host write
        a_pos_accepted = Signal()
        a_pos_acc_hit = Signal()
        a_pos_w_hit = Signal()
        pos_fail = Mux(a_pos_accepted, Mux(a_pos_acc_hit, a_pos_acc, a_pos_read),
                       Mux(a_pos_w_hit, a_pos_w, a_pos_read))
        fails = Signal(len(RISK_REASONS))
        m.d.comb += fails.eq(Cat(
            p.kill | tripped | self.busy,                                       # kill
            ~a_in_range | ~lim.enable,                                          # symbol_disabled
            a_over_qty,                                                         # max_qty
            a_notional > p.max_notional,                                        # max_notional
            a_ref_nz & (a_dev > a_cref),                                        # price_collar
            pos_fail,                                                           # position
            gross + a_notional > p.max_gross,                                   # gross_exposure
            sym_on & ~s_av,                                                     # throttle_symbol
            glb_on & ~g_av,                                                     # throttle_global
            Mux(a_dup_hit, a_dup_same_w & (window > a_dup_age_w),
                a_dup_same_r & (window > a_dup_age_r)),                         # duplicate
        ))
        # the first failing check, each bit independently (no priority chain for the
        # synthesis to share with the accept test), and its index
        first = Signal(len(RISK_REASONS))
        for k in range(len(RISK_REASONS)):
            m.d.comb += first[k].eq(fails[k] & ((fails & ((1 << k) - 1)) == 0))
        reason = Signal(4)
        m.d.comb += reason.eq(Cat(*[
            Cat(*[first[k] for k in range(len(RISK_REASONS)) if k >> j & 1]).any()
            for j in range(4)]))
        reject = Signal()
        m.d.comb += [accept.eq(a_valid & (fails == 0)), reject.eq(a_valid & (fails != 0))]

        # outputs
        m.d.sync += [
            self.o.valid.eq(accept),
            self.o.payload.slot.eq(a.slot), self.o.payload.side.eq(a.side),
            self.o.payload.price.eq(a.price), self.o.payload.quantity.eq(a.quantity),
            self.o.payload.user_ref.eq(uref.value), self.o.payload.digits.eq(uref.digits_out),
            self.o.payload.timestamp.eq(a.timestamp), self.o.payload.sequence.eq(a.sequence),
            self.o.payload.stamp.eq(a.stamp), self.o.payload.fast.eq(a.fast),
            self.o.payload.t_event.eq(a.t_event),
            self.d.valid.eq(a_valid),
            self.d.payload.slot.eq(a.slot), self.d.payload.side.eq(a.side),
            self.d.payload.price.eq(a.price), self.d.payload.quantity.eq(a.quantity),
            self.d.payload.sequence.eq(a.sequence), self.d.payload.accept.eq(fails == 0),
            self.d.payload.reason.eq(reason),
        ]
        m.d.comb += uref.inc.eq(accept)

        # state updates
        upd = a_valid & a_in_range
        m.d.comb += [
            sbk_w.addr.eq(Mux(sweeping, sweep_slot, s)),
            sbk_w.en.eq(sweeping | (upd & sym_on)),
            dup_w.addr.eq(Mux(sweeping, sweep_slot, s)),
            dup_w.en.eq(sweeping | accept),
        ]
        with m.If(~sweeping):
            m.d.comb += [
                sbk_w.data.full_at.eq(s_f1),
                sbk_w.data.last.eq(s_l1),
                dup_w.data.valid.eq(1), dup_w.data.side.eq(a.side),
                dup_w.data.price.eq(a.price), dup_w.data.quantity.eq(a.quantity),
                dup_w.data.time.eq(now),
            ]
        with m.If(a_valid & glb_on):
            m.d.sync += [g_bucket.full_at.eq(g_f1), g_bucket.last.eq(g_l1)]
        # g_lc follows g_bucket.last and glb_cmr (next cycle's: glb_cmr_next)
        m.d.sync += g_lc.eq(Mux(a_valid & glb_on & (g_full | (now > g_bucket.last)),
                                now + glb_cmr_next, g_bucket.last + glb_cmr_next))
        with m.If(accept):
            m.d.sync += gross.eq(gross + a_notional)
        with m.If(self.gross_we):
            m.d.sync += gross.eq(self.gross_value)

        # position: the stage's update first, a host write (held one cycle if they collide)
        pend = Signal()
        pend_slot = Signal(SLOT_BITS)
        pend_value = Signal(signed(64))
        host_pos = self.positions.w.we & (self.positions.w.index < S)
        with m.If(accept):
            m.d.comb += [pos_w.addr.eq(s), pos_w.en.eq(1),
                         pos_w.data.eq(Mux(buy, position + a.quantity, position - a.quantity))]
            with m.If(host_pos):
                m.d.sync += [pend.eq(1), pend_slot.eq(self.positions.w.index),
                             pend_value.eq(self.positions.w.row)]
        with m.Elif(sweeping):
            m.d.comb += [pos_w.addr.eq(sweep_slot), pos_w.en.eq(1), pos_w.data.eq(0)]
        with m.Elif(pend):
            m.d.comb += [pos_w.addr.eq(pend_slot), pos_w.en.eq(1), pos_w.data.eq(pend_value)]
            m.d.sync += pend.eq(host_pos)
            m.d.sync += [pend_slot.eq(self.positions.w.index), pend_value.eq(self.positions.w.row)]
        with m.Elif(host_pos):
            m.d.comb += [pos_w.addr.eq(self.positions.w.index), pos_w.en.eq(1),
                         pos_w.data.eq(self.positions.w.row)]
        m.d.comb += [lim_w.addr.eq(self.limits.w.index), lim_w.data.eq(self.limits.w.row),
                     lim_w.en.eq(self.limits.w.we & (self.limits.w.index < S))]

        # position check, stage A. The position of the candidate's slot in stage B is the
        # value read now unless this cycle writes it: stage B's update for the order before
        # (when it is accepted: read value ± that order's quantity; a sweep, held or host
        # write then waits), else the sweep / held / host write (nw_*: pos_w without the
        # update). Its limits: as read now, or as written by the host this cycle.
        pos_ra = pos.read_port(domain="comb")
        lim_ra = limits.read_port(domain="comb")
        m.d.comb += [pos_ra.addr.eq(c.slot), lim_ra.addr.eq(c.slot)]
        lim_hit = lim_w.en & (lim_w.addr == c.slot)
        max_long = Mux(lim_hit, self.limits.w.row.max_long, lim_ra.data.max_long)
        max_short = Mux(lim_hit, self.limits.w.row.max_short, lim_ra.data.max_short)
        buy_c = c.side == ORDER_BUY
        qc, qa = c.quantity, a.quantity
        pos_now = pos_ra.data

        def pos_check(value):
            return Mux(buy_c, value + qc > max_long, value + max_short < qc)

        nw_en = sweeping | pend | host_pos
        nw_addr = Mux(sweeping, sweep_slot, Mux(pend, pend_slot, self.positions.w.index))
        nw_data = Mux(sweeping, 0, Mux(pend, pend_value, self.positions.w.row))
        # after an update by d = ±qa: buy: now + d + qc > max_long; sell: now + d + max_short
        # < qc, i.e. now + max_short < qc - d
        q_plus = Mux(buy, qc + qa, qc - qa)      # qc + d
        q_minus = Mux(buy, qc - qa, qc + qa)     # qc - d
        m.d.sync += [
            a_pos_read.eq(pos_check(pos_now)),
            a_pos_acc.eq(Mux(buy_c, pos_now + q_plus > max_long, pos_now + max_short < q_minus)),
            a_pos_w.eq(pos_check(nw_data)),
            a_pos_accepted.eq(accept),
            a_pos_acc_hit.eq(accept & (s == c.slot)),
            a_pos_w_hit.eq(nw_en & (nw_addr == c.slot)),
        ]

        # counters and the auto-kill trip
        with m.If(accept):
            m.d.sync += self.counters.orders_sent.eq(self.counters.orders_sent + 1)
        with m.If(reject):
            m.d.sync += [self.counters.risk_rejects.eq(self.counters.risk_rejects + 1),
                         total_rejects.eq(total_rejects + 1)]
            for k, r in enumerate(RISK_REASONS):
                cnt = getattr(self.counters, "reject_" + r)
                with m.If(first[k]):
                    m.d.sync += cnt.eq(cnt + 1)
            with m.If((p.kill_after_rejects != 0)
                      & (total_rejects + 1 >= p.kill_after_rejects)):
                m.d.sync += tripped.eq(1)
        with m.If(self.trip_clear):
            m.d.sync += [tripped.eq(0), total_rejects.eq(0)]
        with m.If(self.clear & ~sweeping):
            m.d.sync += [tripped.eq(0), total_rejects.eq(0), gross.eq(0), g_bucket.eq(0),
                         g_lc.eq(glb_cmr_next),
                         pend.eq(0), a_valid.eq(0), self.o.valid.eq(0), self.d.valid.eq(0)]
            for name in COUNTERS:
                m.d.sync += getattr(self.counters, name).eq(0)
        return m
