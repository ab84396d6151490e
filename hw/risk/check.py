"""Pre-trade risk: the ten checks of docs/architecture.md "Pre-trade risk", in line.

Bit-exact with the emulator's ``_risk_check`` / ``_refill`` and the accept/reject bookkeeping
of ``process()``. Two pipeline stages, one candidate per cycle, no back-pressure:

* **A** (the cycle a candidate is on ``i``): the three products, into registers (one DSP
  multiply each: ``quantity × price`` (notional), ``collar_bps × ref``, ``|price − ref| ×
  10000``; 32×32 and 32×14 bits, registered at the input (the trigger engine's output
  register) and the output), and the ``max_qty`` comparison.
* **B** (next cycle): every check against the state, the priority encoder, and the state
  updates (registered). Per-slot state is in asynchronous-read memories (distributed RAM
  for 64 slots), so a candidate on the same slot in the very next cycle sees the update.

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

from ..trigger.common import MAX_SLOTS, SLOT_BITS, check_int, checked_init
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


def _bucket(m, name, b, now, refill, cmr, cap_ok, accept):
    """Refill, check and take (see the module docstring); returns (new Bucket value parts,
    available)."""
    full = Signal(name=f"{name}_full")
    avail = Signal(name=f"{name}_avail")
    base = Signal(66, name=f"{name}_base")
    last = Signal(48, name=f"{name}_last")
    m.d.comb += [
        full.eq((now >= b.full_at) | (b.last >= b.full_at)),
        avail.eq(cap_ok & ((now + cmr >= b.full_at) | (b.last + cmr >= b.full_at))),
        base.eq(Mux(full, now, b.full_at)),
        last.eq(Mux(full | (now > b.last), now, b.last)),
    ]
    return Mux(accept, base + refill, base), last, avail


class PreTradeRisk(wiring.Component):
    """Pre-trade risk gateware.

    Parameters:
        symbols        slots (1..256, default 64)
        counter_width  width of the counters (default 32, wrap)
        limits_init    power-on SlotLimits of every slot (dict; default :attr:`LIMITS_INIT`)

    Ports:
        i              In(stream.Signature(Candidate, always_ready=True))
        params         In(RiskParams)  global limits (static while orders flow; the bucket
                       constants follow a change two cycles later)
        sl_we, sl_slot, sl_data (SlotLimits)   host write of a slot's enable / limits
                       (power-on: ``limits_init``, default :attr:`LIMITS_INIT`)
        pos_we, pos_slot, pos_value            host write of a slot's position (applied
                       one cycle late when the stage updates a position in that cycle)
        pos_raddr -> pos_rdata                 host read of a position (combinational)
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
        orders_sent, risk_rejects, reject_<reason>   counters
    """

    LATENCY = 2
    THROUGHPUT = "1 candidate/cycle"
    #: Power-on per-slot limits: the emulator's defaults (config ``[risk]``: every slot
    #: enabled, max_long = max_short = 2000).
    LIMITS_INIT = {"enable": 1, "max_long": 2000, "max_short": 2000}

    @checked_init
    def __init__(self, *, symbols: int = 64, counter_width: int = 32,
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
        ports = {
            "i": In(stream.Signature(Candidate, always_ready=True)),
            "params": In(RiskParams),
            "sl_we": In(1), "sl_slot": In(SLOT_BITS), "sl_data": In(SlotLimits),
            "pos_we": In(1), "pos_slot": In(SLOT_BITS), "pos_value": In(signed(64)),
            "pos_raddr": In(SLOT_BITS), "pos_rdata": Out(signed(64)),
            "gross_we": In(1), "gross_value": In(64),
            "clear": In(1), "trip_clear": In(1), "user_ref_load": In(1), "busy": Out(1),
            "o": Out(stream.Signature(AcceptedOrder, always_ready=True)),
            "d": Out(stream.Signature(Decision, always_ready=True)),
            "kill_active": Out(1), "tripped": Out(1), "gross": Out(64), "user_ref": Out(32),
        }
        for name in COUNTERS:
            ports[name] = Out(counter_width)
        super().__init__(ports)

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
        m.d.comb += [pos_hr.addr.eq(self.pos_raddr), self.pos_rdata.eq(pos_hr.data)]

        # bucket constants: (burst − 1) × refill_ns and burst >= 1, two register stages
        # (a DSP with input and output registers)
        consts = []
        for which in ("symbol", "global"):
            a = Signal(signed(17), name=f"{which}_burst_m1")
            b = Signal(48, name=f"{which}_refill_q")
            cmr = Signal(signed(66), name=f"{which}_cmr")
            ok = Signal(name=f"{which}_cap_ok")
            m.d.sync += [a.eq(getattr(p, f"{which}_burst") - 1),
                         b.eq(getattr(p, f"{which}_refill_ns")),
                         cmr.eq(a * b), ok.eq(a >= 0)]
            consts.append((cmr, ok))
        (sym_cmr, sym_ok), (glb_cmr, glb_ok) = consts

        # ------------------------------------------------------------ clear sweep
        sweeping = Signal()
        sweep_slot = Signal(range(S))
        with m.If(sweeping):
            with m.If(sweep_slot == S - 1):
                m.d.sync += sweeping.eq(0)
            m.d.sync += sweep_slot.eq(sweep_slot + 1)
        with m.Elif(self.clear):
            m.d.sync += [sweeping.eq(1), sweep_slot.eq(0)]
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
        m.d.sync += [
            a_valid.eq(self.i.valid),
            a.eq(c),
            a_over_qty.eq(c.quantity > p.max_order_qty),
            a_notional.eq(c.quantity * c.price),
            a_cref.eq(p.collar_bps * c.ref_price),
            a_dev.eq(absdiff * 10000),
        ]

        # ------------------------------------------------------------ stage B
        s = a.slot
        in_range = s < S
        for rp in (lim_r, pos_r, sbk_r, dup_r):
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

        sym_on = p.symbol_refill_ns != 0
        glb_on = p.global_refill_ns != 0
        accept = Signal()
        s_f1, s_l1, s_av = _bucket(m, "sym", sbk_r.data, now, p.symbol_refill_ns, sym_cmr,
                                   sym_ok, accept)
        g_f1, g_l1, g_av = _bucket(m, "glb", g_bucket, now, p.global_refill_ns, glb_cmr,
                                   glb_ok, accept)
        dr = dup_r.data
        age = Signal(signed(50))
        m.d.comb += age.eq(now - dr.time)
        buy = a.side == ORDER_BUY
        fails = Signal(len(RISK_REASONS))
        m.d.comb += fails.eq(Cat(
            p.kill | tripped | self.busy,                                       # kill
            ~in_range | ~lim.enable,                                            # symbol_disabled
            a_over_qty,                                                         # max_qty
            a_notional > p.max_notional,                                        # max_notional
            (a.ref_price != 0) & (a_dev > a_cref),                              # price_collar
            Mux(buy, position + a.quantity > lim.max_long,
                position - a.quantity < -lim.max_short),                        # position
            gross + a_notional > p.max_gross,                                   # gross_exposure
            sym_on & ~s_av,                                                     # throttle_symbol
            glb_on & ~g_av,                                                     # throttle_global
            (p.dup_window_ns != 0) & dr.valid & (dr.side == a.side)
            & (dr.price == a.price) & (dr.quantity == a.quantity)
            & (age < p.dup_window_ns),                                          # duplicate
        ))
        reason = Signal(4)
        for k in reversed(range(len(RISK_REASONS))):
            with m.If(fails[k]):
                m.d.comb += reason.eq(k)
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
            self.d.valid.eq(a_valid),
            self.d.payload.slot.eq(a.slot), self.d.payload.side.eq(a.side),
            self.d.payload.price.eq(a.price), self.d.payload.quantity.eq(a.quantity),
            self.d.payload.sequence.eq(a.sequence), self.d.payload.accept.eq(fails == 0),
            self.d.payload.reason.eq(reason),
        ]
        m.d.comb += uref.inc.eq(accept)

        # state updates
        upd = a_valid & in_range
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
        with m.If(accept):
            m.d.sync += gross.eq(gross + a_notional)
        with m.If(self.gross_we):
            m.d.sync += gross.eq(self.gross_value)

        # position: the stage's update first, a host write (held one cycle if they collide)
        pend = Signal()
        pend_slot = Signal(SLOT_BITS)
        pend_value = Signal(signed(64))
        host_pos = self.pos_we & (self.pos_slot < S)
        with m.If(accept):
            m.d.comb += [pos_w.addr.eq(s), pos_w.en.eq(1),
                         pos_w.data.eq(Mux(buy, position + a.quantity, position - a.quantity))]
            with m.If(host_pos):
                m.d.sync += [pend.eq(1), pend_slot.eq(self.pos_slot),
                             pend_value.eq(self.pos_value)]
        with m.Elif(sweeping):
            m.d.comb += [pos_w.addr.eq(sweep_slot), pos_w.en.eq(1), pos_w.data.eq(0)]
        with m.Elif(pend):
            m.d.comb += [pos_w.addr.eq(pend_slot), pos_w.en.eq(1), pos_w.data.eq(pend_value)]
            m.d.sync += pend.eq(host_pos)
            m.d.sync += [pend_slot.eq(self.pos_slot), pend_value.eq(self.pos_value)]
        with m.Elif(host_pos):
            m.d.comb += [pos_w.addr.eq(self.pos_slot), pos_w.en.eq(1),
                         pos_w.data.eq(self.pos_value)]
        m.d.comb += [lim_w.addr.eq(self.sl_slot), lim_w.data.eq(self.sl_data),
                     lim_w.en.eq(self.sl_we & (self.sl_slot < S))]

        # counters and the auto-kill trip
        with m.If(accept):
            m.d.sync += self.orders_sent.eq(self.orders_sent + 1)
        with m.If(reject):
            m.d.sync += [self.risk_rejects.eq(self.risk_rejects + 1),
                         total_rejects.eq(total_rejects + 1)]
            for k, r in enumerate(RISK_REASONS):
                cnt = getattr(self, "reject_" + r)
                with m.If(reason == k):
                    m.d.sync += cnt.eq(cnt + 1)
            with m.If((p.kill_after_rejects != 0)
                      & (total_rejects + 1 >= p.kill_after_rejects)):
                m.d.sync += tripped.eq(1)
        with m.If(self.trip_clear):
            m.d.sync += [tripped.eq(0), total_rejects.eq(0)]
        with m.If(self.clear & ~sweeping):
            m.d.sync += [tripped.eq(0), total_rejects.eq(0), gross.eq(0), g_bucket.eq(0),
                         pend.eq(0), a_valid.eq(0), self.o.valid.eq(0), self.d.valid.eq(0)]
            for name in COUNTERS:
                m.d.sync += getattr(self, name).eq(0)
        return m
