"""Two-bank order table in block RAM (``order_buckets`` × ``order_ways`` records in all).

Bank 0 holds ``order_buckets / 2`` buckets indexed by the fold hash, bank 1 as many indexed by
mix32 (:mod:`.hash`); a reference is in the bucket of one bank or the other, an insert takes
the bucket with fewer live entries (bank 0 on a tie), lowest free way (docs/architecture.md,
"Order table").

Pipeline (lock-step, one operation per cycle; ``accept`` takes the op on ``op``/``op_valid``)::

    A   op offered; both banks' bucket reads issued (op.bucket, op.bucket1)
    D   buckets arrive (or are forwarded from W, per bank); per way of both banks in
        parallel: valid & ref == key, free, amount > shares, shares <= amount,
        shares - amount; which bank is emptier                             -> R1
    R1  the matching way / lowest free way of the chosen bank, the rule of the op, the new
        bucket word of the bank written and the level operation it causes  -> W
    W   bucket written back; ``out`` offers the level op downstream (``down_accept``)

Hazards as in :mod:`.levels`: W's write is forwarded into D; an op in D whose bucket in
either bank is the op in R1's waits one cycle (R1 writes one bank, which one is only known
in R1), and reads its two buckets again meanwhile (the write leaving W in that cycle may be
to the other bank, whose forwarding ends with it). Both tests compare buckets of ops a stage
apart, so they are computed a cycle ahead and registered (the accept path then starts at a
flip-flop). The second half of a U (``u1``)
takes the slot and side of the order removed by its first half (``u0``) from a context
register written by R1.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, wiring

from tickwire.spec.capacity import GATEWARE

from ..trigger.common import check_int, checked_init
from .common import order_op_layout
from .layouts import OpKind, order_record_layout
from .order_rule import RULE_COUNTERS, OrderRule, table_members

__all__ = ["OrderTable"]


class OrderTable(wiring.Component):
    @checked_init
    def __init__(self, *, symbols: int = GATEWARE["symbols"],
                 order_buckets: int = GATEWARE["order_buckets"],
                 order_ways: int = GATEWARE["order_ways"]):
        check_int("symbols", symbols, 1, 256)
        check_int("order_buckets", order_buckets, 2, 1 << 24, pow2=True)
        check_int("order_ways", order_ways, 1, 16, pow2=True)
        self.symbols = symbols
        self.order_buckets = order_buckets
        self.order_ways = order_ways
        self.slot_bits = max(1, (symbols - 1).bit_length())
        self.bucket_bits = order_buckets.bit_length() - 1
        self.bank_bits = self.bucket_bits - 1      # buckets per bank: 2^bank_bits
        super().__init__(table_members(self.slot_bits, self.bank_bits))

    def elaborate(self, platform):
        m = Module()
        W = self.order_ways
        rec_l = order_record_layout(self.slot_bits)
        bucket_l = data.ArrayLayout(rec_l, W)
        op_l = order_op_layout(self.slot_bits, self.bank_bits)

        def addr(op, b):
            return op.bucket if b == 0 else op.bucket1

        def live(op, valid):
            return valid & (op.kind != OpKind.NOP)

        wps, rps = [], []
        for b in range(2):
            # UltraRAM, as the one-bank table of 4096 words mapped by itself: 2048 words a bank
            # would otherwise go to block RAM (61 BRAM36), which the level store needs
            mem = memory.Memory(shape=bucket_l, depth=self.order_buckets // 2, init=[],
                                attrs={"ram_style": "ultra"})
            m.submodules[f"bank{b}"] = mem
            wps.append(mem.write_port())
            rps.append(mem.read_port(transparent_for=(wps[-1],)))

        rule = OrderRule(slot_bits=self.slot_bits, bank_bits=self.bank_bits, ways=W)
        d_op = Signal(op_l)
        d_valid = Signal()
        r1_op = rule.r1_op
        r1_valid = Signal()
        w_lop = Signal(rule.lop_l)
        w_valid = Signal()
        w_we = Signal(2)
        w_addr = [Signal(self.bank_bits, name=f"w_addr{b}") for b in range(2)]
        w_data = [Signal(bucket_l, name=f"w_data{b}") for b in range(2)]

        # hazard (D waits for R1) and forwarding (W into D), per bank, a cycle ahead
        haz = Signal()
        fwd_eq = Signal(2)
        adv_w = self.down_accept
        adv_r1 = self.down_accept & ~haz
        with m.If(adv_r1):
            # D moves to R1, A's op to D, R1 to W
            m.d.sync += [
                haz.eq(live(self.op, self.op_valid) & live(d_op, d_valid)
                       & Cat(*[addr(self.op, b) == addr(d_op, b) for b in range(2)]).any()),
                fwd_eq.eq(Cat(*[addr(r1_op, b) == addr(self.op, b) for b in range(2)])),
            ]
        with m.Elif(adv_w):
            # D stays, R1 moves to W and leaves a bubble
            m.d.sync += [
                haz.eq(0),
                fwd_eq.eq(Cat(*[addr(r1_op, b) == addr(d_op, b) for b in range(2)])),
            ]
        m.d.comb += [
            self.accept.eq(adv_r1),
            self.out.eq(w_lop),
            self.out_valid.eq(w_valid),
        ]
        for b in range(2):
            m.d.comb += [
                # while D waits (haz), its buckets are read again: the wait moves a write
                # out of W that only one bank's forwarding had covered
                rps[b].addr.eq(Mux(haz, addr(d_op, b), addr(self.op, b))),
                rps[b].en.eq(adv_r1 | haz),
                wps[b].addr.eq(w_addr[b]),
                wps[b].data.eq(w_data[b]),
                wps[b].en.eq(w_valid & w_we[b]),
            ]
        with m.If(adv_r1):
            m.d.sync += [d_op.eq(self.op), d_valid.eq(self.op_valid)]

        # ---- stage D: W's write forwarded per bank, the ways compared (OrderRule.load)
        buckets = []
        for b in range(2):
            bk = Signal(bucket_l, name=f"d_bucket{b}")
            m.d.comb += bk.eq(Mux(w_valid & w_we[b] & fwd_eq[b], w_data[b], rps[b].data))
            buckets.append(bk)
        with m.If(adv_r1):
            m.d.sync += [r1_valid.eq(d_valid), *rule.load(d_op, buckets)]
        with m.Elif(adv_w):
            m.d.sync += r1_valid.eq(0)

        # ---- stage R1: the rule
        rule.rule(m)
        with m.If(adv_w):
            m.d.sync += [
                w_lop.eq(rule.lop),
                w_valid.eq(r1_valid),
                w_we.eq(Cat(rule.we & ~rule.bank1, rule.we & rule.bank1)),
                w_addr[0].eq(r1_op.bucket),
                w_addr[1].eq(r1_op.bucket1),
                w_data[0].eq(rule.new_bucket[0]),
                w_data[1].eq(rule.new_bucket[1]),
            ]
            rule.commit(m, r1_valid, {n: getattr(self, n) for n in RULE_COUNTERS})
        return m
