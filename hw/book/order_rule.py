"""The order-table rule, shared by the on-chip table (:mod:`.orders`) and the off-chip one
(:mod:`.orders_offchip`): what an op does to its two buckets (docs/architecture.md, "Order
table").

Two stages, whatever the table's memory: **D** compares the op with every way of both banks'
buckets (the results registered into :class:`OrderRule`'s R1 registers by :meth:`load`) and
**R1** applies the rule of the op (:meth:`rule`): the level operation it causes, the new bucket
word of the bank it writes, and which loss counter it counts.
"""

from amaranth.hdl import Cat, Mux, Signal
from amaranth.lib import data

from .common import carry_eq, level_op_layout, lowest_onehot, onehot_select, order_op_layout
from .layouts import OpKind, order_record_layout

__all__ = ["OrderRule", "RULE_COUNTERS", "table_members"]

#: Counters of the rule, in the emulator's names.
RULE_COUNTERS = ("duplicate_ref", "unknown_ref", "overfill", "order_table_full")


def table_members(slot_bits: int, bank_bits: int) -> dict:
    """The members every order table has: ops in (``op``/``op_valid``, taken on
    ``accept``), level ops out (``out``/``out_valid``, taken while ``down_accept``), the
    rule's counters."""
    from amaranth.lib.wiring import In, Out
    return {
        "op": In(order_op_layout(slot_bits, bank_bits)),
        "op_valid": In(1),
        "accept": Out(1),
        "down_accept": In(1),
        "out": Out(level_op_layout(slot_bits)),
        "out_valid": Out(1),
        **{name: Out(32) for name in RULE_COUNTERS},
    }


class OrderRule:
    """The R1 registers of an op and its two buckets, and the rule applied to them."""

    def __init__(self, *, slot_bits: int, bank_bits: int, ways: int):
        W = self.ways = ways
        self.rec_l = order_record_layout(slot_bits)
        self.bucket_l = data.ArrayLayout(self.rec_l, W)
        self.op_l = order_op_layout(slot_bits, bank_bits)
        self.lop_l = level_op_layout(slot_bits)
        self.r1_op = Signal(self.op_l)
        self.r1_bucket = [Signal(self.bucket_l, name=f"r1_bucket{b}") for b in range(2)]
        # per way, bank 0's ways then bank 1's
        self.r1_match = Signal(2 * W)
        self.r1_free = Signal(2 * W)
        self.r1_over = Signal(2 * W)
        self.r1_le = Signal(2 * W)
        self.r1_rem = Signal(data.ArrayLayout(32, 2 * W))
        self.r1_pick1 = Signal()   # bank 1's bucket has fewer live entries: an insert goes there
        # context of the U in flight: did its first half find the order, and where was it
        self.ctx_found = Signal()
        self.ctx_slot = Signal(slot_bits)
        self.ctx_side = Signal()

    def load(self, d_op, buckets) -> list:
        """Statements that move the op in D, with its two buckets, into the R1 registers."""
        W = self.ways
        ways = [buckets[b][i] for b in range(2) for i in range(W)]
        n_free = [sum(~buckets[b][i].valid for i in range(W)) for b in range(2)]
        stmts = [
            self.r1_op.eq(d_op),
            self.r1_match.eq(Cat(*[e.valid & carry_eq(e.ref, d_op.key) for e in ways])),
            self.r1_free.eq(Cat(*[~e.valid for e in ways])),
            self.r1_over.eq(Cat(*[d_op.amount > e.shares for e in ways])),
            self.r1_le.eq(Cat(*[e.shares <= d_op.amount for e in ways])),
            self.r1_pick1.eq(n_free[1] > n_free[0]),
        ]
        stmts += [self.r1_bucket[b].eq(buckets[b]) for b in range(2)]
        stmts += [self.r1_rem[i].eq(e.shares - d_op.amount) for i, e in enumerate(ways)]
        return stmts

    def rule(self, m):
        """Combinational R1: sets ``lop`` (the level op), ``we`` (a bucket is written),
        ``bank1`` (which bank), ``new_bucket`` (both banks' new words), ``found``/``rec``
        (the matching order) and ``flags`` (counter name -> condition)."""
        W = self.ways
        r1_op = self.r1_op
        r1_match, r1_free, r1_over, r1_le = self.r1_match, self.r1_free, self.r1_over, self.r1_le
        # a reference is stored at most once (an insert first looks in both banks), so at
        # most one way matches: the match vector selects without priority
        r1_ways = [self.r1_bucket[b][i] for b in range(2) for i in range(W)]
        match = [r1_match[i] for i in range(2 * W)]
        found = Signal()
        has_free = Signal()
        m.d.comb += [found.eq(r1_match.any()), has_free.eq(r1_free.any())]
        rec = Signal(self.rec_l)
        m.d.comb += rec.eq(onehot_select(match, r1_ways))
        rec_over = onehot_select(match, list(r1_over))
        rec_le = onehot_select(match, list(r1_le))
        # the insert's way: lowest free way of the chosen bank (the emptier bucket has a free
        # way whenever either has)
        free_sel = [lowest_onehot([r1_free[b * W + i] for i in range(W)]) for b in range(2)]
        ins_way = ([free_sel[0][i] & ~self.r1_pick1 for i in range(W)]
                   + [free_sel[1][i] & self.r1_pick1 for i in range(W)])

        lop = Signal(self.lop_l)
        we = Signal()
        ins = Signal()          # the op stores a new order
        red = Signal()          # the op changes or removes the matching order
        flags = {name: Signal(name=name) for name in RULE_COUNTERS}
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
        add_slot = Mux(r1_op.u1 & self.ctx_found, self.ctx_slot, r1_op.slot)
        add_side = Mux(r1_op.u1 & self.ctx_found, self.ctx_side, r1_op.side)
        is_del = r1_op.kind == OpKind.DELETE
        with m.Switch(r1_op.kind):
            with m.Case(OpKind.ADD):
                ok = ~r1_op.u1 | self.ctx_found
                m.d.comb += [lop.slot.eq(add_slot), lop.side.eq(add_side), lop.add_valid.eq(ok)]
                with m.If(ok & found):
                    m.d.comb += flags["duplicate_ref"].eq(1)
                with m.Elif(ok & ~has_free):
                    m.d.comb += flags["order_table_full"].eq(1)
                with m.Elif(ok):
                    m.d.comb += [we.eq(1), ins.eq(1), lop.kind.eq(OpKind.ADD)]
            with m.Case(OpKind.REDUCE, OpKind.DELETE):
                with m.If(~found):
                    m.d.comb += flags["unknown_ref"].eq(1)
                with m.Else():
                    whole = is_del | rec_le
                    m.d.comb += [
                        flags["overfill"].eq(~is_del & rec_over),
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
        new_rec = Signal(self.rec_l)
        m.d.comb += [
            new_rec.valid.eq(1), new_rec.ref.eq(r1_op.key), new_rec.slot.eq(add_slot),
            new_rec.side.eq(add_side), new_rec.price.eq(r1_op.price),
            new_rec.shares.eq(r1_op.amount),
        ]
        # (each way's choice from its own bits and one side-wide bit, found: an insert's way
        # implies a free way, a matching way implies found; LUT levels)
        is_add = r1_op.kind == OpKind.ADD
        is_red = (r1_op.kind == OpKind.REDUCE) | is_del
        ok_new = ~r1_op.u1 | self.ctx_found
        new_bucket = [Signal(self.bucket_l, name=f"new_bucket{b}") for b in range(2)]
        for b in range(2):
            for i in range(W):
                j = b * W + i
                old = self.r1_bucket[b][i]
                reduced = Signal(self.rec_l, name=f"reduced{j}")
                m.d.comb += [reduced.eq(old),
                             reduced.valid.eq(~(is_del | r1_le[j])),
                             reduced.shares.eq(self.r1_rem[j])]
                put_new = is_add & ok_new & ~found & ins_way[j]      # ins & ins_way[j]
                put_red = is_red & r1_match[j]                        # red & r1_match[j]
                m.d.comb += new_bucket[b][i].eq(
                    Mux(put_new, new_rec, Mux(put_red, reduced, old)))
        self.lop, self.we, self.found, self.rec, self.flags = lop, we, found, rec, flags
        self.bank1 = Mux(ins, self.r1_pick1, r1_match[W:].any())
        self.new_bucket = new_bucket

    def commit(self, m, r1_valid, counters) -> None:
        """Under the caller's "R1 moves on" condition: the U context and the loss counters
        (``counters``: name -> the 32-bit counter signal)."""
        with m.If(r1_valid & self.r1_op.u0):
            m.d.sync += [self.ctx_found.eq(self.found), self.ctx_slot.eq(self.rec.slot),
                         self.ctx_side.eq(self.rec.side)]
        for name in RULE_COUNTERS:
            with m.If(r1_valid & self.flags[name]):
                m.d.sync += counters[name].eq(counters[name] + 1)
