"""Sorted price levels: one wide memory word per slot (both sides), read-modify-write pipeline.

Pipeline (one operation per cycle; lock-step stages, ``accept`` takes the op offered on
``op``/``op_valid``)::

    A   op offered; level memory read issued at op.slot          (the upstream's register)
    D   memory word arrives (or is forwarded from W); per entry of the op's side, in
        parallel: better-than / worse-than price compares, shares ± amount, shares <=
        amount, count ± 1; the side-wide "found" ORs in groups     -> registered into R1
    R1  per side and entry, one of four sources (the entry, the one before it, the one
        after it, the level the op makes there), picked from the entry's own compares and
        one side-wide bit                                          -> registered into W
    W   new word written back; visibility, counters; ``out`` presents the whole word

Deep levels (``levels > cache``): the word holds the best ``cache`` levels per side and
:class:`.deep.DeepLevels` the rest. An op whose R1 decode needs them (the cache's worst evicted,
an add worse than the whole full cache, a reduction the full cache does not find, a removal
from a full cache that the best deep level refills) holds in W until the deep levels have
served it; a refill is written into the word's last entry before W hands it on. Rows and
visibility only ever read the cache (``depth < cache``), so the pair behaves as one sorted
array of ``levels`` entries.

Hazards: the op in D needs the word as left by every older op (a pass-through op too: an H's
BookEvent carries the slot's best prices). The write of the op in W is forwarded into D; an
op in D for the slot of the op in R1 waits one cycle (a bubble goes into R1), then takes R1's
result forwarded from W. Both slot compares are made a cycle ahead and registered, so that
``accept`` and D's arithmetic start at flip-flops (LUT levels). Ops on other slots flow at one
per cycle, ops on the same slot back to back at one per two cycles.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import GATEWARE, ROW_DEPTH

from ..trigger.common import check_int, checked_init
from .common import BankedMemory, better_price, carry_eq, level_op_layout
from .deep import DeepKind, DeepLevels
from .layouts import COUNT_BITS, LevelEntry, OpKind, side_layout, slot_levels_layout

__all__ = ["LevelEngine", "level_result_layout", "CACHE_LEVELS", "check_levels"]

#: Levels per slot and side kept in the engine's word (the sorted cache); deeper ones live in
#: the deep levels' block RAM.
CACHE_LEVELS = 32

#: Entries per group of D's partial ORs (a LUT6 ORs a group; R1 ORs the groups)
_GROUP = 6


def level_result_layout(slot_bits: int, levels: int) -> data.StructLayout:
    # the book first: at bit 0 its 32-bit words line up with the simulator's, so copying it
    # between stages is a word copy rather than a shift per word (RTL simulation speed)
    return data.StructLayout({
        "book": slot_levels_layout(levels),   # the slot's word after the op (both sides)
        "op": level_op_layout(slot_bits),
        "visible": 1,                         # this op touched sorted position < depth
        "emit": 1,                            # a top-N row is due after this op
        # the op counted level_overflow / level_miss; with deep levels only the misses of a
        # cache that is not full are flagged here (the deep levels count the rest themselves)
        "overflow": 1,
        "miss": 1,
    })


def _w_layout(slot_bits: int, levels: int) -> data.StructLayout:
    return data.StructLayout({
        "book": slot_levels_layout(levels),   # first, as in level_result_layout
        "op": level_op_layout(slot_bits),
        "visible": 1,
        "emit_pre": 1,     # last op of a message with a visible op
        "cmp": 1,          # second half of a U: emit only if the side's top N changed value
        "overflow": 1,
        "miss": 1,
        "deep": 1,         # the op needs the deep levels (``dkind``, ``dentry``) before it leaves
        "dkind": 2,
        "dentry": LevelEntry,
    })


def check_levels(levels: int, cache: int, depth: int) -> None:
    """The level engine's parameter rules (its own and the book builder's constructor)."""
    if depth > levels:
        raise ValueError(f"depth ({depth}) must not exceed levels ({levels})")
    deep = levels - min(cache, levels)
    if deep and depth >= cache:
        raise ValueError(f"depth ({depth}) must be below cache ({cache}) when levels "
                         f"({levels}) exceed it")
    if deep and (deep < 2 or deep & (deep - 1)):
        raise ValueError(f"levels ({levels}) - cache ({cache}) = {deep} deep levels: "
                         f"must be a power of two >= 2")


class LevelEngine(wiring.Component):
    """Per-slot, per-side sorted level arrays with the doc's insert / evict / remove rules.

    Parameters: ``symbols`` slots, ``levels`` entries per side, ``depth`` N (visibility is a
    change at sorted position < N), ``cache`` entries per side in the word (the rest, if any,
    in the deep levels; then ``cache`` must exceed ``depth``).
    """

    @checked_init
    def __init__(self, *, symbols: int = GATEWARE["symbols"], levels: int = GATEWARE["levels"],
                 depth: int = ROW_DEPTH, cache: int = CACHE_LEVELS):
        check_int("symbols", symbols, 1, 256)
        check_int("levels", levels, 1, 4096)
        check_int("depth", depth, 1)
        check_int("cache", cache, 1, 256)
        check_levels(levels, cache, depth)
        self.symbols = symbols
        self.levels = levels
        self.cache = min(cache, levels)
        self.deep = levels - self.cache
        self.depth = depth
        self.slot_bits = max(1, (symbols - 1).bit_length())
        super().__init__({
            "op": In(level_op_layout(self.slot_bits)),
            "op_valid": In(1),
            "accept": Out(1),
            "hold": In(1),
            "out": Out(level_result_layout(self.slot_bits, self.cache)),
            "out_valid": Out(1),
            "level_overflow": Out(32),
            "level_miss": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        L, N = self.cache, self.depth
        hybrid = self.deep > 0
        op_l = level_op_layout(self.slot_bits)
        book_l = slot_levels_layout(L)

        m.submodules.mem = mem = BankedMemory(width=book_l.size, depth=self.symbols)
        rp_data = book_l(mem.rdata)

        # ---- stage registers
        d_op = Signal(op_l)
        d_valid = Signal()
        # D's op is a reduction that changes something (a reduction by 0 shares that leaves
        # the order in place changes nothing), decided as the op enters D (LUT levels)
        d_kred = Signal()
        r1_op = Signal(op_l)
        r1_valid = Signal()
        r1_book = Signal(book_l)
        r1_better = Signal(L)
        r1_eq = Signal(L)
        # the side-wide ORs of R1's decode, taken in D over groups of _GROUP entries (LUT
        # levels: R1 then ORs a handful of registers). found: an entry has the op's price;
        # gone: ... for an add, the same; for a reduction, and the reduction empties it
        groups = [range(j, min(j + _GROUP, L)) for j in range(0, L, _GROUP)]
        r1_found_g = Signal(len(groups))
        r1_gone_g = Signal(len(groups))
        r1_ka = Signal(2)       # per side: an add on that side that uses the word
        r1_kr = Signal(2)       # ... a reduction that changes something (amount or removed)
        r1_newsh = Signal(data.ArrayLayout(32, L))
        r1_newcnt = Signal(data.ArrayLayout(COUNT_BITS, L))
        w = Signal(_w_layout(self.slot_bits, L))
        w_valid = Signal()
        pend = Signal()   # a visible non-last op of the message in flight (first half of U)
        in_u = Signal()   # the op in R1 follows a non-last op (it is the second half of a U)
        # the op side's top N (price, shares; 0,0 when empty) before the first half of a U
        snap = Signal(data.ArrayLayout(64, N))

        # ---- control
        # (registered a cycle ahead, as in the order table, so that ``accept`` starts at
        # flip-flops)
        haz = Signal()
        # W holds an op that needs the deep levels until they are done with it
        stall = Signal()
        deep_done = Signal()
        if hybrid:
            m.d.comb += stall.eq(w_valid & w.deep & ~deep_done)
        adv_w = Signal()
        adv_r1 = Signal()
        m.d.comb += [adv_w.eq(~self.hold & ~stall), adv_r1.eq(adv_w & ~haz)]
        m.d.comb += [
            self.accept.eq(adv_r1),
            mem.raddr.eq(self.op.slot),
            mem.ren.eq(adv_r1),
            mem.waddr.eq(w.op.slot),
            mem.wdata.eq(w.book),
            mem.wen.eq(w_valid & w.op.uses),
            self.out.op.eq(w.op),
            self.out.book.eq(w.book),
            self.out.visible.eq(w.visible),
            self.out.overflow.eq(w.overflow),
            self.out.miss.eq(w.miss),
            self.out_valid.eq(w_valid & ~stall),
        ]
        with m.If(adv_r1):
            m.d.sync += [d_op.eq(self.op), d_valid.eq(self.op_valid),
                         d_kred.eq((self.op.kind == OpKind.REDUCE)
                                   & ((self.op.amount != 0) | self.op.removed)),
                         # D's op moves to R1 and the offered one into D
                         haz.eq(self.op_valid & d_valid & d_op.uses
                                & (self.op.slot == d_op.slot))]
        with m.Elif(adv_w):
            m.d.sync += haz.eq(0)   # R1 moves to W and leaves a bubble

        # ---- stage D: forward, compare, arithmetic
        # (registered: W will hold an op on D's slot; a slot compare here would precede the
        # whole stage's arithmetic)
        fwd = Signal()
        with m.If(adv_w):
            # next cycle W holds R1's op, and D holds this D op after a hazard bubble, else
            # the op accepted now
            m.d.sync += fwd.eq(r1_valid & r1_op.uses & ((d_valid & (r1_op.slot == d_op.slot))
                                                        | (r1_op.slot == self.op.slot)))
        book = Signal(book_l)
        m.d.comb += book.eq(Mux(fwd, w.book, rp_data))
        side = Signal(side_layout(L))
        m.d.comb += side.eq(Mux(d_op.side, book[1], book[0]))
        better = []
        eq = []
        gone_e = []     # per entry: found, and for a reduction it empties the entry
        newsh = []
        newcnt = []
        is_add = d_op.kind == OpKind.ADD
        for i in range(L):
            e = side.entry[i]
            v = side.valid[i]
            b_i = better_price(e.price, d_op.price, d_op.side)
            # equal as neither better nor worse: two compares on the carry chain rather
            # than a 32-bit equality's LUT tree (LUT levels)
            w_i = better_price(d_op.price, e.price, d_op.side)
            better.append(v & b_i)
            eq.append(v & ~b_i & ~w_i)
            gone_e.append(eq[i] & (is_add | (e.shares <= d_op.amount) | (e.count <= d_op.removed)))
            newsh.append(Mux(is_add, e.shares + d_op.amount, e.shares - d_op.amount)[:32])
            newcnt.append(Mux(is_add, e.count + 1, e.count - d_op.removed)[:COUNT_BITS])
        with m.If(adv_r1):
            m.d.sync += [
                r1_op.eq(d_op),
                r1_valid.eq(d_valid),
                r1_book.eq(book),
                r1_better.eq(Cat(*better)),
                r1_eq.eq(Cat(*eq)),
                r1_found_g.eq(Cat(*[Cat(*[eq[i] for i in g]).any() for g in groups])),
                r1_gone_g.eq(Cat(*[Cat(*[gone_e[i] for i in g]).any() for g in groups])),
            ]
            for s in (0, 1):
                on_s = d_op.uses & (d_op.side == s)
                m.d.sync += [r1_ka[s].eq(on_s & is_add), r1_kr[s].eq(on_s & d_kred)]
            for i in range(L):
                m.d.sync += [r1_newsh[i].eq(newsh[i]), r1_newcnt[i].eq(newcnt[i])]
        with m.Elif(adv_w):
            m.d.sync += r1_valid.eq(0)   # bubble behind a same-slot hazard

        # ---- stage R1: decode and shift
        # Each entry picks its new value from four sources: itself, the entry before it (an
        # insert shifts the worse ones back), the entry after it (a removal closes the gap)
        # or X, the level the op makes there (a new one, or the found one modified). The pick
        # needs one side-wide bit, ``gone`` (an add: found; a reduction: found and the entry
        # goes), and the entry's own compares; the levels are sorted and distinct, so the
        # equal entry is unique and sits at the insert position (the first entry not better).
        old = Signal(side_layout(L))
        m.d.comb += old.eq(Mux(r1_op.side, r1_book[1], r1_book[0]))
        found = Signal()
        gone = Signal()
        m.d.comb += [found.eq(r1_found_g.any()), gone.eq(r1_gone_g.any())]
        kadd = r1_op.kind == OpKind.ADD
        kred_any = r1_op.kind == OpKind.REDUCE
        ins = Signal()
        rem = Signal()
        overflow = Signal()
        miss = Signal()
        visible = Signal()
        full = old.valid[L - 1]
        k_add = r1_ka.any()     # an add that uses the word (either side)
        k_red = r1_kr.any()
        m.d.comb += [
            ins.eq(k_add & ~found & ~r1_better[L - 1]),
            rem.eq(k_red & gone),
            # an add changes sorted position < N whether it inserts or modifies: the entry
            # not better than it is at the insert position; a reduction, if it finds an
            # entry there
            visible.eq((k_add & ~r1_better[N - 1]) | (k_red & r1_eq[:N].any())),
        ]
        deep = Signal()
        dkind = Signal(2)
        if hybrid:
            # the deep levels decide overflow and miss whenever the cache is full
            m.d.comb += [
                miss.eq(r1_op.uses & kred_any & ~found & ~full),
                deep.eq(r1_op.uses & full & (kadd & ~found | kred_any & ~found | rem)),
            ]
            with m.If(kadd & ins):
                m.d.comb += dkind.eq(DeepKind.PUSH)
            with m.Elif(kadd):
                m.d.comb += dkind.eq(DeepKind.ADD)
            with m.Elif(rem):
                m.d.comb += dkind.eq(DeepKind.POP)
            with m.Else():
                m.d.comb += dkind.eq(DeepKind.REDUCE)
        else:
            m.d.comb += [
                overflow.eq(r1_op.uses & kadd & ~found & full),
                miss.eq(r1_op.uses & kred_any & ~found),
            ]
        new_book = Signal(book_l)
        for k in (0, 1):
            cur_s = r1_book[k]
            new = new_book[k]
            for i in range(L):
                at_q = (r1_better[i - 1] if i else 1) & ~r1_better[i]      # i == insert position
                after_q = ~r1_better[i - 1] if i else Const(0, 1)         # i > insert position
                from_p = ~r1_better[i]                                     # i >= removed position
                cur = Cat(cur_s.entry[i].as_value(), cur_s.valid[i])
                prev = Cat(cur_s.entry[i - 1].as_value(), cur_s.valid[i - 1]) if i else 0
                nxt = (Cat(cur_s.entry[i + 1].as_value(), cur_s.valid[i + 1]) if i + 1 < L
                       else Const(0, len(cur)))
                x = Signal(LevelEntry, name=f"x_{k}_{i}")   # the level the op makes at i
                m.d.comb += [
                    x.price.eq(Mux(r1_eq[i], cur_s.entry[i].price, r1_op.price)),
                    x.shares.eq(Mux(r1_eq[i], r1_newsh[i], r1_op.amount)),
                    x.count.eq(Mux(r1_eq[i], r1_newcnt[i], 1)),
                ]
                src = Signal(2, name=f"src_{k}_{i}")   # 0 cur, 1 prev, 2 next, 3 x
                with m.If(r1_ka[k]):
                    m.d.comb += src.eq(Mux(at_q, 3, Mux(after_q & ~gone, 1, 0)))
                with m.Elif(r1_kr[k]):
                    m.d.comb += src.eq(Mux(gone, Mux(from_p, 2, 0), Mux(r1_eq[i], 3, 0)))
                n_i = Signal(len(cur), name=f"new_{k}_{i}")
                m.d.comb += n_i.eq(Mux(src[1], Mux(src[0], Cat(x.as_value(), Const(1, 1)), nxt),
                                       Mux(src[0], prev, cur)))
                m.d.comb += [new.entry[i].eq(n_i[:-1]), new.valid[i].eq(n_i[-1])]

        with m.If(adv_w):
            m.d.sync += [
                w.op.eq(r1_op),
                w.book.eq(new_book),
                w.visible.eq(visible),
                w.emit_pre.eq(r1_op.uses & r1_op.last & (visible | pend)),
                w.cmp.eq(r1_op.last & in_u),
                w.overflow.eq(overflow),
                w.miss.eq(miss),
                w.deep.eq(deep),
                w.dkind.eq(dkind),
                w.dentry.eq(old.entry[L - 1]),
                w_valid.eq(r1_valid),
            ]
            with m.If(r1_valid & r1_op.uses):
                m.d.sync += [pend.eq(~r1_op.last & visible), in_u.eq(~r1_op.last)]
            with m.If(r1_valid & r1_op.uses & ~r1_op.last):
                for k in range(N):
                    m.d.sync += snap[k].eq(Mux(old.valid[k], Cat(old.entry[k].price,
                                                                  old.entry[k].shares), 0))

        # ---- stage W: the second half of a U emits only if its side's top N changed value
        wside = Signal(side_layout(L))
        m.d.comb += wside.eq(Mux(w.op.side, w.book[1], w.book[0]))
        same = Signal()
        # (each entry's 64-bit compare on the carry chain: LUT levels)
        m.d.comb += same.eq(Cat(*[
            carry_eq(Mux(wside.valid[k], Cat(wside.entry[k].price, wside.entry[k].shares), 0),
                     snap[k])
            for k in range(N)]).all())
        m.d.comb += self.out.emit.eq(w.emit_pre & ~(w.cmp & same))

        ovf_word = Signal(32)
        miss_word = Signal(32)
        with m.If(adv_w & r1_valid & overflow):
            m.d.sync += ovf_word.eq(ovf_word + 1)
        with m.If(adv_w & r1_valid & miss):
            m.d.sync += miss_word.eq(miss_word + 1)
        if not hybrid:
            m.d.comb += [self.level_overflow.eq(ovf_word), self.level_miss.eq(miss_word)]
            return m

        # ---- the deep levels, served while W holds the op
        m.submodules.deep = dl = DeepLevels(symbols=self.symbols, deep=self.deep)
        m.d.comb += [
            dl.req_valid.eq(stall),
            dl.req.kind.eq(w.dkind),
            dl.req.slot.eq(w.op.slot),
            dl.req.side.eq(w.op.side),
            dl.req.price.eq(w.op.price),
            dl.req.amount.eq(w.op.amount),
            dl.req.removed.eq(w.op.removed),
            dl.req.entry.eq(w.dentry),
            self.level_overflow.eq(ovf_word + dl.level_overflow),
            self.level_miss.eq(miss_word + dl.level_miss),
        ]
        with m.If(adv_w):
            m.d.sync += deep_done.eq(0)
        with m.Elif(dl.done):
            m.d.sync += deep_done.eq(1)
        with m.If(dl.refill_valid):
            # the best deep level becomes the cache's last entry (emptied by the removal)
            for s in (0, 1):
                with m.If(w.op.side == s):
                    m.d.sync += [w.book[s].entry[L - 1].eq(dl.refill),
                                 w.book[s].valid[L - 1].eq(1)]
        return m
