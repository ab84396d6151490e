"""The deep levels: every price level of a slot's side behind the level engine's sorted cache.

The level engine keeps the best ``cache`` levels of each slot and side in its wide word (what
the top-N rows and the trigger engine read). This block keeps the next ``deep`` levels, one
sorted list per slot and side in block RAM, so that together they hold ``cache + deep`` levels
with exactly the rules of docs/architecture.md ("Price levels") for an array of that many:
the cache's worst level moves here when a better one is inserted (``PUSH``), a level worse
than the whole full cache is added here (``ADD``), a reduction the cache does not find is
looked up here (``REDUCE``), and when the cache loses a level the best level here refills its
last entry (``POP``). Invariant: a side has deep levels only while its cache is full, and
every cache level is better than every deep one.

Each list is a circular buffer of ``deep`` entries, a power of two (best first at ``base``), so
that the moves at the cache boundary (``PUSH``, ``POP``) and the eviction of the worst level
cost one access; a lookup is a binary search (two cycles per step, and one to compare the
level it ends on) and an insert or removal at rank ``i`` moves the shorter part, the ``i``
better levels or the ones behind, by one place (one per cycle). The level engine holds its
pipeline while a request is served (``done`` ends it), so the cost is back-pressure, never
loss.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..trigger.common import check_int, checked_init
from ..memory_init import NO_INIT, install as _install_no_init
from .common import better_price
from .layouts import LevelEntry

# memories marked NO_INIT are converted without initial contents (hw/memory_init.py)
_install_no_init()

__all__ = ["DeepLevels", "DeepKind", "deep_request_layout"]


class DeepKind:
    """What the level engine asks of the deep levels (2 bits)."""
    PUSH = 0     # the cache's evicted worst level becomes the best deep level
    POP = 1      # the cache lost a level: hand back the best deep level (if any)
    ADD = 2      # add ``amount`` shares (one order) at ``price``, worse than the whole cache
    REDUCE = 3   # reduce the level at ``price`` by ``amount`` (``removed``: one order less)


def deep_request_layout(slot_bits: int) -> data.StructLayout:
    return data.StructLayout({
        "kind": 2,
        "slot": unsigned(slot_bits),
        "side": 1,
        "price": 32,
        "amount": 32,
        "removed": 1,
        "entry": LevelEntry,   # PUSH: the evicted level
    })


class DeepLevels(wiring.Component):
    """``deep`` sorted levels per slot and side, served one request at a time.

    ``req``/``req_valid``: a request, held until ``done`` (a one-cycle pulse). With a ``POP``
    that found a level, ``refill_valid`` and ``refill`` accompany ``done`` (``refill_valid`` is
    1 in no other cycle). Counters ``level_overflow`` (a level dropped or refused because cache
    and deep are full) and ``level_miss`` (a reduction at a price held nowhere) follow the
    document's rules.
    """

    @checked_init
    def __init__(self, *, symbols: int, deep: int):
        check_int("symbols", symbols, 1, 256)
        check_int("deep", deep, 2, 4096, pow2=True)
        self.symbols, self.deep = symbols, deep
        self.slot_bits = max(1, (symbols - 1).bit_length())
        self.idx_bits = (deep - 1).bit_length()   # deep is 2 ** idx_bits
        self.len_bits = deep.bit_length()
        super().__init__({
            "req": In(deep_request_layout(self.slot_bits)),
            "req_valid": In(1),
            "done": Out(1),
            "refill_valid": Out(1),
            "refill": Out(LevelEntry),
            "level_overflow": Out(32),
            "level_miss": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        D, ib, lb = self.deep, self.idx_bits, self.len_bits
        regions = 2 * self.symbols

        # contents need no initial value: a list reads only entries it wrote
        m.submodules.mem = mem = memory.Memory(
            shape=LevelEntry, depth=regions << ib, init=[], attrs={NO_INIT: 1})
        wp = mem.write_port()
        # (not transparent: no state reads an address written in the same cycle and uses
        # the level, so the read needs no bypass multiplexer: LUT levels)
        rp = mem.read_port()
        # per slot and side: where the best level sits and how many there are
        m.submodules.ptr = ptr = memory.Memory(
            # (``held``: len != 0, stored beside it so that the FSM's test of an empty list
            # starts at the memory's read; the contents start as zeros: empty)
            shape=data.StructLayout({"base": unsigned(ib), "len": unsigned(lb), "held": 1}),
            depth=regions, init=[])
        ptr_wp = ptr.write_port()
        ptr_rp = ptr.read_port(domain="comb")

        # Physical indexes wrap modulo ``deep`` (a power of two) for free, and every memory
        # address is a register or one adder away from registers (short paths).
        req = Signal(deep_request_layout(self.slot_bits))
        base = Signal(ib)       # physical index of the best level
        n = Signal(lb)          # levels held
        lo = Signal(lb)         # binary search: lo <= rank < = hi, mid = (lo + hi) // 2
        hi = Signal(lb)
        mid = Signal(lb)
        mid_up = Signal(lb)     # the next mid if the level at mid is better (lo := mid + 1)
        mid_dn = Signal(lb)     # ... if it is not (hi := mid)
        src = Signal(ib)        # shift: physical index read next
        dst = Signal(ib)        # shift: where the level read last goes
        ins_at = Signal(ib)     # insert: physical index of the new level
        cnt = Signal(lb)        # shift: levels left to move
        # CHECK's choices, registered in SEARCH (k_: kept for CHECK)
        k_front, k_front_rm = Signal(), Signal()     # move the better levels (add, removal)
        k_lo_lt_n, k_full, k_full_at_end = Signal(), Signal(), Signal()
        k_at_lo, k_at_lo_m1, k_at_lo_p1, k_at_back = (Signal(ib, name=f"k_{x}") for x in
                                                      ("at_lo", "at_lo_m1", "at_lo_p1",
                                                       "at_back"))
        k_n_lo, k_n1_lo = Signal(lb), Signal(lb)    # levels behind rank lo (add, removal)
        # the FSM's tests of counts, registered when the counts are set (LUT levels: the next
        # state then depends on flip-flops, not on an 11-bit compare)
        lohi = Signal()         # lo == hi (the search has ended)
        nn = Signal(lb)         # the levels kept once a full list has dropped its worst (an
        #                         add to a full list drops one; from IDLE)
        e_up, e_dn = Signal(), Signal()     # ... after STEP's two outcomes (from SEARCH)
        n_zero = Signal()       # n == 0 (from IDLE)
        cnt_0, cnt_1 = Signal(), Signal()   # cnt == 0, cnt == 1
        found_r = Signal()      # MATCH -> CHECK: the level at rank lo has the request's price
        gone_r = Signal()       # ... and a reduction by the request empties it
        taken_r = Signal()      # ... the request reduces something (shares or an order)
        up = Signal()           # shift: read ascending (each level one place toward the front)
        ins = Signal()          # the shift makes room for a level (else closes a removed one)
        front = Signal()        # the shift moves the better levels (base moves), else the worse
        rdata = Signal(LevelEntry)
        refill = Signal(LevelEntry)
        m.d.comb += [rdata.eq(rp.data), self.refill.eq(refill)]
        region = Cat(req.side, req.slot)

        def at(index):
            return Cat(index[:ib], region)

        # the list is full (n == D: n never exceeds D, a power of two, so its top bit says it)
        full = n[-1]

        def set_cnt(v):
            return [cnt.eq(v), cnt_0.eq(v == 0), cnt_1.eq(v == 1)]

        def better(p):
            # a level at p is better than the request's price
            return better_price(p, req.price, req.side)

        m.d.comb += [ptr_rp.addr.eq(Cat(self.req.side, self.req.slot)),
                     ptr_wp.addr.eq(region), ptr_wp.data.base.eq(base),
                     ptr_wp.data.len.eq(n), ptr_wp.data.held.eq(n != 0), rp.en.eq(1)]

        # The level memory's write port is driven from registers: a write lands a cycle after
        # the state that decides it (LUT levels: the UltraRAMs' write enables and data start
        # at flip-flops). No state reads an address in the cycle after the one writing it:
        # a move reads each level before the write over it, and a request's last write is
        # followed by STORE or IDLE.
        w_en = Signal()
        w_addr = Signal.like(wp.addr)
        w_data = Signal(LevelEntry)
        m.d.sync += [wp.en.eq(w_en), wp.addr.eq(w_addr), wp.data.eq(w_data)]
        # a POP's refill: set in the cycle before its STORE (a register, so that the level
        # engine's write of the refill into its word starts at a flip-flop)
        refill_go = Signal()
        m.d.comb += self.refill_valid.eq(refill_go)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.req_valid):
                    n0 = ptr_rp.data.len
                    empty = ~ptr_rp.data.held
                    m.d.sync += [req.eq(self.req), base.eq(ptr_rp.data.base), n.eq(n0),
                                 lo.eq(0), hi.eq(n0), mid.eq(n0 >> 1),
                                 lohi.eq(empty), n_zero.eq(empty),
                                 nn.eq(Mux((self.req.kind == DeepKind.ADD) & n0[-1], D - 1,
                                           n0))]
                    with m.Switch(self.req.kind):
                        with m.Case(DeepKind.PUSH):
                            m.next = "PUSH"
                        with m.Case(DeepKind.POP):
                            m.next = "POP"
                        with m.Default():
                            m.next = "SEARCH"

            with m.State("PUSH"):
                # the evicted level is better than every deep one: it goes in front; a full
                # list first drops its worst (the array's worst: level_overflow)
                m.d.comb += [w_addr.eq(at(base - 1)), w_data.eq(req.entry), w_en.eq(1)]
                m.d.sync += [base.eq(base - 1), n.eq(Mux(full, n, n + 1))]
                with m.If(full):
                    m.d.sync += self.level_overflow.eq(self.level_overflow + 1)
                m.next = "STORE"

            with m.State("POP"):
                m.d.comb += rp.addr.eq(at(base))
                with m.If(n_zero):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "POP_DATA"
            with m.State("POP_DATA"):
                m.d.sync += [refill.eq(rdata), base.eq(base + 1), n.eq(n - 1), refill_go.eq(1)]
                m.next = "STORE"

            # binary search: lo ends as the number of levels better than the request's price
            with m.State("SEARCH"):
                m.d.comb += rp.addr.eq(at(base + mid))
                m.d.sync += [mid_up.eq((mid + hi + 1) >> 1), mid_dn.eq((lo + mid) >> 1),
                             e_up.eq(mid + 1 == hi), e_dn.eq(lo == mid)]
                # CHECK's choices that do not depend on the level read, from the registers
                # they have in the SEARCH before it (lo, n and base no longer change there),
                # so that CHECK only compares the level with the request (LUT levels)
                # (2 lo <= nn as lo <= nn // 2: operands of one width)
                m.d.sync += [
                    k_front.eq(lo <= (nn >> 1)), k_front_rm.eq((lo << 1) < n),
                    k_lo_lt_n.eq(lo < n), k_full.eq(full),
                    k_full_at_end.eq(full & (lo == n)),
                    k_at_lo.eq(base + lo), k_at_lo_m1.eq(base + lo - 1),
                    k_at_lo_p1.eq(base + lo + 1), k_at_back.eq(base + nn - 1),
                    k_n_lo.eq(nn - lo), k_n1_lo.eq(n - 1 - lo),
                ]
                with m.If(lohi):
                    m.next = "MATCH"
                with m.Else():
                    m.next = "STEP"
            with m.State("STEP"):
                with m.If(better(rdata.price)):
                    m.d.sync += [lo.eq(mid + 1), mid.eq(mid_up), lohi.eq(e_up)]
                with m.Else():
                    m.d.sync += [hi.eq(mid), mid.eq(mid_dn), lohi.eq(e_dn)]
                m.next = "SEARCH"
            with m.State("MATCH"):
                # the level at rank lo compared with the request, registered for CHECK (its
                # choices then start at flip-flops: LUT levels); the read is repeated so that
                # rdata still holds that level in CHECK
                m.d.comb += rp.addr.eq(at(base + mid))
                # (equal as neither better nor worse: carry-chain compares, LUT levels)
                m.d.sync += [found_r.eq(k_lo_lt_n & ~better(rdata.price)
                                        & ~better_price(req.price, rdata.price, req.side)),
                             gone_r.eq((rdata.shares <= req.amount)
                                       | (rdata.count <= req.removed)),
                             taken_r.eq((req.amount != 0) | req.removed)]
                m.next = "CHECK"
            with m.State("CHECK"):
                # rdata: the level at rank lo (meaningless when lo == n)
                found = found_r
                # an insert or removal at rank lo moves whichever part is shorter: the lo
                # better levels (and base with them) or the levels behind rank lo (k_front,
                # k_front_rm: from SEARCH)
                m.d.sync += ins_at.eq(Mux(k_front, k_at_lo_m1, k_at_lo))
                with m.If(req.kind == DeepKind.ADD):
                    with m.If(found):
                        m.d.comb += [w_addr.eq(at(k_at_lo)), w_en.eq(1),
                                     w_data.price.eq(rdata.price),
                                     w_data.shares.eq(rdata.shares + req.amount),
                                     w_data.count.eq(rdata.count + 1)]
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Elif(k_full_at_end):
                        # worse than every level of a full array: not stored
                        m.d.sync += self.level_overflow.eq(self.level_overflow + 1)
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        with m.If(k_full):
                            # drop the worst to make room (it is behind rank lo)
                            m.d.sync += [n.eq(n - 1),
                                         self.level_overflow.eq(self.level_overflow + 1)]
                        with m.If(k_front):
                            # the lo better levels one place toward the front
                            m.d.sync += [src.eq(base), up.eq(1), front.eq(1), *set_cnt(lo)]
                        with m.Else():
                            # the levels from rank lo one place back, the last first
                            m.d.sync += [src.eq(k_at_back), up.eq(0), front.eq(0),
                                         *set_cnt(k_n_lo)]
                        m.d.sync += ins.eq(1)
                        m.next = "SHIFT"
                with m.Else():
                    taken = taken_r
                    gone = gone_r
                    with m.If(~found):
                        m.d.sync += self.level_miss.eq(self.level_miss + 1)
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Elif(~taken):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Elif(gone):
                        with m.If(k_front_rm):
                            # the lo better levels one place back over it, the last first
                            m.d.sync += [src.eq(k_at_lo_m1), up.eq(0), front.eq(1),
                                         *set_cnt(lo)]
                        with m.Else():
                            # the levels behind it one place forward over it
                            m.d.sync += [src.eq(k_at_lo_p1), up.eq(1), front.eq(0),
                                         *set_cnt(k_n1_lo)]
                        m.d.sync += ins.eq(0)
                        m.next = "SHIFT"
                    with m.Else():
                        m.d.comb += [w_addr.eq(at(k_at_lo)), w_en.eq(1),
                                     w_data.price.eq(rdata.price),
                                     w_data.shares.eq(rdata.shares - req.amount),
                                     w_data.count.eq(rdata.count - req.removed)]
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"

            # one level per cycle: read at src, write it one place over on the next cycle
            with m.State("SHIFT"):
                m.d.comb += rp.addr.eq(at(src))
                m.d.sync += [src.eq(Mux(up, src + 1, src - 1)),
                             dst.eq(Mux(up, src - 1, src + 1))]
                with m.If(cnt_0):
                    m.next = "FINISH"
                with m.Else():
                    m.next = "MOVE"
            with m.State("MOVE"):
                m.d.comb += [w_addr.eq(at(dst)), w_data.eq(rdata), w_en.eq(1),
                             rp.addr.eq(at(src))]
                m.d.sync += [src.eq(Mux(up, src + 1, src - 1)),
                             dst.eq(Mux(up, src - 1, src + 1)), cnt.eq(cnt - 1),
                             cnt_0.eq(cnt_1), cnt_1.eq(cnt == 2)]
                with m.If(cnt_1):
                    m.next = "FINISH"
            with m.State("FINISH"):
                with m.If(ins):
                    # the new level takes rank lo (in a list that starts one earlier if the
                    # better levels moved)
                    m.d.comb += [w_addr.eq(at(ins_at)), w_en.eq(1),
                                 w_data.price.eq(req.price), w_data.shares.eq(req.amount),
                                 w_data.count.eq(1)]
                    m.d.sync += n.eq(n + 1)
                    with m.If(front):
                        m.d.sync += base.eq(base - 1)
                with m.Else():
                    m.d.sync += n.eq(n - 1)
                    with m.If(front):
                        m.d.sync += base.eq(base + 1)
                m.next = "STORE"

            with m.State("STORE"):
                m.d.comb += [ptr_wp.en.eq(1), self.done.eq(1)]
                m.d.sync += refill_go.eq(0)
                m.next = "IDLE"
        return m
