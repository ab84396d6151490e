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
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import GATEWARE

from ..trigger.common import check_int, checked_init
from .common import level_op_layout, lowest_onehot, onehot_select, order_op_layout
from .layouts import OpKind, order_record_layout

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
        super().__init__({
            "op": In(order_op_layout(self.slot_bits, self.bank_bits)),
            "op_valid": In(1),
            "accept": Out(1),
            "down_accept": In(1),
            "out": Out(level_op_layout(self.slot_bits)),
            "out_valid": Out(1),
            "duplicate_ref": Out(32),
            "unknown_ref": Out(32),
            "overfill": Out(32),
            "order_table_full": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        W = self.order_ways
        rec_l = order_record_layout(self.slot_bits)
        bucket_l = data.ArrayLayout(rec_l, W)
        op_l = order_op_layout(self.slot_bits, self.bank_bits)
        lop_l = level_op_layout(self.slot_bits)

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

        d_op = Signal(op_l)
        d_valid = Signal()
        r1_op = Signal(op_l)
        r1_valid = Signal()
        r1_bucket = [Signal(bucket_l, name=f"r1_bucket{b}") for b in range(2)]
        # per way, bank 0's ways then bank 1's
        r1_match = Signal(2 * W)
        r1_free = Signal(2 * W)
        r1_over = Signal(2 * W)
        r1_le = Signal(2 * W)
        r1_rem = Signal(data.ArrayLayout(32, 2 * W))
        r1_pick1 = Signal()     # bank 1's bucket has fewer live entries: an insert goes there
        w_lop = Signal(lop_l)
        w_valid = Signal()
        w_we = Signal(2)
        w_addr = [Signal(self.bank_bits, name=f"w_addr{b}") for b in range(2)]
        w_data = [Signal(bucket_l, name=f"w_data{b}") for b in range(2)]
        # context of the U in flight: did its first half find the order, and where was it
        ctx_found = Signal()
        ctx_slot = Signal(self.slot_bits)
        ctx_side = Signal()

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

        # ---- stage D
        buckets = []
        for b in range(2):
            bk = Signal(bucket_l, name=f"d_bucket{b}")
            m.d.comb += bk.eq(Mux(w_valid & w_we[b] & fwd_eq[b], w_data[b], rps[b].data))
            buckets.append(bk)
        ways = [buckets[b][i] for b in range(2) for i in range(W)]
        n_free = [sum(~buckets[b][i].valid for i in range(W)) for b in range(2)]
        with m.If(adv_r1):
            m.d.sync += [
                r1_op.eq(d_op),
                r1_valid.eq(d_valid),
                r1_match.eq(Cat(*[e.valid & (e.ref == d_op.key) for e in ways])),
                r1_free.eq(Cat(*[~e.valid for e in ways])),
                r1_over.eq(Cat(*[d_op.amount > e.shares for e in ways])),
                r1_le.eq(Cat(*[e.shares <= d_op.amount for e in ways])),
                r1_pick1.eq(n_free[1] > n_free[0]),
            ]
            for b in range(2):
                m.d.sync += r1_bucket[b].eq(buckets[b])
            for i, e in enumerate(ways):
                m.d.sync += r1_rem[i].eq(e.shares - d_op.amount)
        with m.Elif(adv_w):
            m.d.sync += r1_valid.eq(0)

        # ---- stage R1
        # a reference is stored at most once (an insert first looks in both banks), so at
        # most one way matches: the match vector selects without priority
        r1_ways = [r1_bucket[b][i] for b in range(2) for i in range(W)]
        found = Signal()
        has_free = Signal()
        m.d.comb += [found.eq(r1_match.any()), has_free.eq(r1_free.any())]
        rec = Signal(rec_l)
        m.d.comb += rec.eq(onehot_select([r1_match[i] for i in range(2 * W)], r1_ways))
        rec_over = onehot_select([r1_match[i] for i in range(2 * W)], list(r1_over))
        rec_le = onehot_select([r1_match[i] for i in range(2 * W)], list(r1_le))
        # the insert's way: lowest free way of the chosen bank (the emptier bucket has a free
        # way whenever either has)
        free_sel = [lowest_onehot([r1_free[b * W + i] for i in range(W)]) for b in range(2)]
        ins_way = ([free_sel[0][i] & ~r1_pick1 for i in range(W)]
                   + [free_sel[1][i] & r1_pick1 for i in range(W)])

        lop = Signal(lop_l)
        we = Signal()
        ins = Signal()          # the op stores a new order
        red = Signal()          # the op changes or removes the matching order
        dup = Signal()
        unknown = Signal()
        overfill = Signal()
        full = Signal()
        m.d.comb += [
            lop.kind.eq(OpKind.NOP),
            lop.uses.eq(r1_op.kind != OpKind.NOP),
            lop.slot.eq(r1_op.slot),
            lop.side.eq(r1_op.side),
            lop.price.eq(r1_op.price),
            lop.amount.eq(r1_op.amount),
            lop.last.eq(~r1_op.u0),
            lop.meta.eq(r1_op.meta),
        ]
        # second half of a U: the removed order's slot and side (if it was found)
        add_slot = Mux(r1_op.u1 & ctx_found, ctx_slot, r1_op.slot)
        add_side = Mux(r1_op.u1 & ctx_found, ctx_side, r1_op.side)
        is_del = r1_op.kind == OpKind.DELETE
        with m.Switch(r1_op.kind):
            with m.Case(OpKind.ADD):
                ok = ~r1_op.u1 | ctx_found
                m.d.comb += [lop.slot.eq(add_slot), lop.side.eq(add_side), lop.add_valid.eq(ok)]
                with m.If(ok & found):
                    m.d.comb += dup.eq(1)
                with m.Elif(ok & ~has_free):
                    m.d.comb += full.eq(1)
                with m.Elif(ok):
                    m.d.comb += [we.eq(1), ins.eq(1), lop.kind.eq(OpKind.ADD)]
            with m.Case(OpKind.REDUCE, OpKind.DELETE):
                with m.If(~found):
                    m.d.comb += unknown.eq(1)
                with m.Else():
                    whole = is_del | rec_le
                    m.d.comb += [
                        overfill.eq(~is_del & rec_over),
                        we.eq(1),
                        red.eq(1),
                        lop.kind.eq(OpKind.REDUCE),
                        lop.slot.eq(rec.slot),
                        lop.side.eq(rec.side),
                        lop.price.eq(rec.price),
                        lop.amount.eq(Mux(whole, rec.shares, r1_op.amount)),
                        lop.removed.eq(whole),
                    ]

        # the new bucket words, way by way: the inserted record, the reduced one, or as read
        new_rec = Signal(rec_l)
        m.d.comb += [
            new_rec.valid.eq(1), new_rec.ref.eq(r1_op.key), new_rec.slot.eq(add_slot),
            new_rec.side.eq(add_side), new_rec.price.eq(r1_op.price),
            new_rec.shares.eq(r1_op.amount),
        ]
        new_bucket = [Signal(bucket_l, name=f"new_bucket{b}") for b in range(2)]
        for b in range(2):
            for i in range(W):
                j = b * W + i
                old = r1_bucket[b][i]
                reduced = Signal(rec_l, name=f"reduced{j}")
                m.d.comb += [reduced.eq(old),
                             reduced.valid.eq(~(is_del | r1_le[j])),
                             reduced.shares.eq(r1_rem[j])]
                m.d.comb += new_bucket[b][i].eq(
                    Mux(ins & ins_way[j], new_rec, Mux(red & r1_match[j], reduced, old)))
        bank1 = Mux(ins, r1_pick1, r1_match[W:].any())

        with m.If(adv_w):
            m.d.sync += [
                w_lop.eq(lop),
                w_valid.eq(r1_valid),
                w_we.eq(Cat(we & ~bank1, we & bank1)),
                w_addr[0].eq(r1_op.bucket),
                w_addr[1].eq(r1_op.bucket1),
                w_data[0].eq(new_bucket[0]),
                w_data[1].eq(new_bucket[1]),
            ]
            with m.If(r1_valid & r1_op.u0):
                m.d.sync += [ctx_found.eq(found), ctx_slot.eq(rec.slot), ctx_side.eq(rec.side)]
            for ctr, cond in ((self.duplicate_ref, dup), (self.unknown_ref, unknown),
                              (self.overfill, overfill), (self.order_table_full, full)):
                with m.If(r1_valid & cond):
                    m.d.sync += ctr.eq(ctr + 1)
        return m
