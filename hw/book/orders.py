"""Set-associative order table in block RAM (``order_buckets`` × ``order_ways`` records).

Pipeline (lock-step, one operation per cycle; ``accept`` takes the op on ``op``/``op_valid``)::

    A   op offered; bucket read issued (op.bucket: hash.order_bucket(op.key))
    D   bucket arrives (or is forwarded from W); per way in parallel: valid & ref == key,
        free, amount > shares, shares <= amount, shares - amount          -> R1
    R1  lowest matching way / lowest free way, the rule of the op, the new bucket word and
        the level operation it causes                                       -> W
    W   bucket written back; ``out`` offers the level op downstream (``down_accept``)

Hazards as in :mod:`.levels`: W's write is forwarded into D; an op in D for the bucket of
the op in R1 waits one cycle. The second half of a U (``u1``) takes the slot and side of the
order removed by its first half (``u0``) from a context register written by R1.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import GATEWARE

from ..trigger.common import check_int, checked_init
from .common import any_of, level_op_layout, lowest_onehot, onehot_select, order_op_layout
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
        super().__init__({
            "op": In(order_op_layout(self.slot_bits, self.bucket_bits)),
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
        op_l = order_op_layout(self.slot_bits, self.bucket_bits)
        lop_l = level_op_layout(self.slot_bits)

        m.submodules.mem = mem = memory.Memory(shape=bucket_l, depth=self.order_buckets, init=[])
        wp = mem.write_port()
        rp = mem.read_port(transparent_for=(wp,))

        d_op = Signal(op_l)
        d_valid = Signal()
        r1_op = Signal(op_l)
        r1_valid = Signal()
        r1_bucket = Signal(bucket_l)
        r1_match = Signal(W)
        r1_free = Signal(W)
        r1_over = Signal(W)
        r1_le = Signal(W)
        r1_rem = Signal(data.ArrayLayout(32, W))
        w_lop = Signal(lop_l)
        w_valid = Signal()
        w_we = Signal()
        w_addr = Signal(self.bucket_bits)
        w_data = Signal(bucket_l)
        # context of the U in flight: did its first half find the order, and where was it
        ctx_found = Signal()
        ctx_slot = Signal(self.slot_bits)
        ctx_side = Signal()

        haz = Signal()
        m.d.comb += haz.eq(d_valid & (d_op.kind != OpKind.NOP) & r1_valid
                           & (r1_op.kind != OpKind.NOP) & (d_op.bucket == r1_op.bucket))
        adv_w = self.down_accept
        adv_r1 = self.down_accept & ~haz
        m.d.comb += [
            self.accept.eq(adv_r1),
            rp.addr.eq(self.op.bucket),
            rp.en.eq(adv_r1),
            wp.addr.eq(w_addr),
            wp.data.eq(w_data),
            wp.en.eq(w_valid & w_we),
            self.out.eq(w_lop),
            self.out_valid.eq(w_valid),
        ]
        with m.If(adv_r1):
            m.d.sync += [d_op.eq(self.op), d_valid.eq(self.op_valid)]

        # ---- stage D
        fwd = Signal()
        m.d.comb += fwd.eq(w_valid & w_we & (w_addr == d_op.bucket))
        bucket = Signal(bucket_l)
        m.d.comb += bucket.eq(Mux(fwd, w_data, rp.data))
        with m.If(adv_r1):
            m.d.sync += [
                r1_op.eq(d_op),
                r1_valid.eq(d_valid),
                r1_bucket.eq(bucket),
                r1_match.eq(Cat(*[bucket[i].valid & (bucket[i].ref == d_op.key) for i in range(W)])),
                r1_free.eq(Cat(*[~bucket[i].valid for i in range(W)])),
                r1_over.eq(Cat(*[d_op.amount > bucket[i].shares for i in range(W)])),
                r1_le.eq(Cat(*[bucket[i].shares <= d_op.amount for i in range(W)])),
            ]
            for i in range(W):
                m.d.sync += r1_rem[i].eq(bucket[i].shares - d_op.amount)
        with m.Elif(adv_w):
            m.d.sync += r1_valid.eq(0)

        # ---- stage R1
        match1 = lowest_onehot([r1_match[i] for i in range(W)])
        free1 = lowest_onehot([r1_free[i] for i in range(W)])
        found = Signal()
        has_free = Signal()
        m.d.comb += [found.eq(r1_match.any()), has_free.eq(r1_free.any())]
        rec = Signal(rec_l)
        m.d.comb += rec.eq(onehot_select(match1, [r1_bucket[i] for i in range(W)]))
        rec_over = onehot_select(match1, [r1_over[i] for i in range(W)])
        rec_le = onehot_select(match1, [r1_le[i] for i in range(W)])
        rec_rem = onehot_select(match1, [r1_rem[i] for i in range(W)])

        new_bucket = Signal(bucket_l)
        lop = Signal(lop_l)
        we = Signal()
        dup = Signal()
        unknown = Signal()
        overfill = Signal()
        full = Signal()
        m.d.comb += [
            new_bucket.eq(r1_bucket),
            lop.kind.eq(OpKind.NOP),
            lop.uses.eq(r1_op.kind != OpKind.NOP),
            lop.slot.eq(r1_op.slot),
            lop.side.eq(r1_op.side),
            lop.price.eq(r1_op.price),
            lop.amount.eq(r1_op.amount),
            lop.last.eq(~r1_op.u0),
            lop.meta.eq(r1_op.meta),
        ]
        new_rec = Signal(rec_l)
        with m.Switch(r1_op.kind):
            with m.Case(OpKind.ADD):
                # second half of a U: the removed order's slot and side (if it was found)
                slot = Mux(r1_op.u1 & ctx_found, ctx_slot, r1_op.slot)
                side = Mux(r1_op.u1 & ctx_found, ctx_side, r1_op.side)
                ok = ~r1_op.u1 | ctx_found
                m.d.comb += [lop.slot.eq(slot), lop.side.eq(side), lop.add_valid.eq(ok)]
                with m.If(ok & found):
                    m.d.comb += dup.eq(1)
                with m.Elif(ok & ~has_free):
                    m.d.comb += full.eq(1)
                with m.Elif(ok):
                    m.d.comb += [
                        new_rec.valid.eq(1), new_rec.ref.eq(r1_op.key), new_rec.slot.eq(slot),
                        new_rec.side.eq(side), new_rec.price.eq(r1_op.price),
                        new_rec.shares.eq(r1_op.amount),
                        we.eq(1),
                        lop.kind.eq(OpKind.ADD),
                    ]
                    for i in range(W):
                        with m.If(free1[i]):
                            m.d.comb += new_bucket[i].eq(new_rec)
            with m.Case(OpKind.REDUCE, OpKind.DELETE):
                with m.If(~found):
                    m.d.comb += unknown.eq(1)
                with m.Else():
                    whole = (r1_op.kind == OpKind.DELETE) | rec_le
                    m.d.comb += [
                        overfill.eq((r1_op.kind == OpKind.REDUCE) & rec_over),
                        new_rec.eq(rec),
                        new_rec.valid.eq(~whole),
                        new_rec.shares.eq(rec_rem),
                        we.eq(1),
                        lop.kind.eq(OpKind.REDUCE),
                        lop.slot.eq(rec.slot),
                        lop.side.eq(rec.side),
                        lop.price.eq(rec.price),
                        lop.amount.eq(Mux(whole, rec.shares, r1_op.amount)),
                        lop.removed.eq(whole),
                    ]
                    for i in range(W):
                        with m.If(match1[i]):
                            m.d.comb += new_bucket[i].eq(new_rec)

        with m.If(adv_w):
            m.d.sync += [
                w_lop.eq(lop),
                w_valid.eq(r1_valid),
                w_we.eq(we),
                w_addr.eq(r1_op.bucket),
                w_data.eq(new_bucket),
            ]
            with m.If(r1_valid & r1_op.u0):
                m.d.sync += [ctx_found.eq(found), ctx_slot.eq(rec.slot), ctx_side.eq(rec.side)]
            for ctr, cond in ((self.duplicate_ref, dup), (self.unknown_ref, unknown),
                              (self.overfill, overfill), (self.order_table_full, full)):
                with m.If(r1_valid & cond):
                    m.d.sync += ctr.eq(ctr + 1)
        return m
