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

Each list is a circular buffer of ``deep`` entries (best first at ``base``) so that the moves
at the cache boundary (``PUSH``, ``POP``) and the eviction of the worst level cost one access;
a lookup is a binary search (two cycles per step) and an insert or removal at rank ``i`` moves
the ``i`` better levels by one (one per cycle). The level engine holds its pipeline while a
request is served (``done`` ends it), so the cost is back-pressure, never loss.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..trigger.common import check_int, checked_init
from .layouts import LevelEntry

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
    that found a level, ``refill_valid`` and ``refill`` accompany ``done``. Counters
    ``level_overflow`` (a level dropped or refused because cache and deep are full) and
    ``level_miss`` (a reduction at a price held nowhere) follow the document's rules.
    """

    @checked_init
    def __init__(self, *, symbols: int, deep: int):
        check_int("symbols", symbols, 1, 256)
        check_int("deep", deep, 1, 4096)
        self.symbols, self.deep = symbols, deep
        self.slot_bits = max(1, (symbols - 1).bit_length())
        self.idx_bits = max(1, (deep - 1).bit_length())
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

        m.submodules.mem = mem = memory.Memory(
            shape=LevelEntry, depth=regions << ib, init=[])
        wp = mem.write_port()
        rp = mem.read_port(transparent_for=(wp,))
        # per slot and side: where the best level sits and how many there are
        m.submodules.ptr = ptr = memory.Memory(
            shape=data.StructLayout({"base": unsigned(ib), "len": unsigned(lb)}),
            depth=regions, init=[])
        ptr_wp = ptr.write_port()
        ptr_rp = ptr.read_port(domain="comb")

        req = Signal(deep_request_layout(self.slot_bits))
        base = Signal(ib)
        n = Signal(lb)
        lo = Signal(lb)
        hi = Signal(lb)
        mid = Signal(lb)
        j = Signal(lb)          # shift: logical index of the level being moved
        cnt = Signal(lb)        # shift: levels left to move
        up = Signal()           # shift toward the best end (an insert) or away (a removal)
        rdata = Signal(LevelEntry)
        refill = Signal(LevelEntry)
        m.d.comb += [rdata.eq(rp.data), self.refill.eq(refill)]
        region = Cat(req.side, req.slot)

        def phys(off):
            """Physical index of logical ``off`` (-1 <= off <= deep) in the circular list."""
            x = Signal(lb + 2)
            m.d.comb += x.eq(base + off + D)
            return Mux(x >= 2 * D, x - 2 * D, Mux(x >= D, x - D, x))[:ib]

        def addr(off):
            return Cat(phys(off), region)

        def better(p):
            # a level at p is better than the request's price (bids: higher, asks: lower)
            return Mux(req.side, p < req.price, p > req.price)

        m.d.comb += [ptr_rp.addr.eq(Cat(self.req.side, self.req.slot)),
                     ptr_wp.addr.eq(region), ptr_wp.data.base.eq(base),
                     ptr_wp.data.len.eq(n), rp.en.eq(1)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.req_valid):
                    m.d.sync += [req.eq(self.req), base.eq(ptr_rp.data.base),
                                 n.eq(ptr_rp.data.len), lo.eq(0), hi.eq(ptr_rp.data.len)]
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
                m.d.comb += [wp.addr.eq(addr(-1)), wp.data.eq(req.entry), wp.en.eq(1)]
                m.d.sync += [base.eq(phys(-1)), n.eq(Mux(n == D, n, n + 1))]
                with m.If(n == D):
                    m.d.sync += self.level_overflow.eq(self.level_overflow + 1)
                m.next = "STORE"

            with m.State("POP"):
                m.d.comb += rp.addr.eq(addr(0))
                with m.If(n == 0):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "POP_DATA"
            with m.State("POP_DATA"):
                m.d.sync += [refill.eq(rdata), base.eq(phys(1)), n.eq(n - 1)]
                m.next = "STORE"

            # binary search: lo = the number of levels better than the request's price
            with m.State("SEARCH"):
                m.d.comb += mid.eq((lo + hi) >> 1)
                m.d.comb += rp.addr.eq(addr(mid))
                m.d.sync += j.eq(mid)
                with m.If(lo == hi):
                    m.next = "CHECK"
                with m.Else():
                    m.next = "STEP"
            with m.State("STEP"):
                with m.If(better(rdata.price)):
                    m.d.sync += lo.eq(j + 1)
                with m.Else():
                    m.d.sync += hi.eq(j)
                m.next = "SEARCH"
            with m.State("CHECK"):
                # rdata: the level at rank lo (meaningless when lo == n)
                found = (lo < n) & (rdata.price == req.price)
                with m.If(req.kind == DeepKind.ADD):
                    with m.If(found):
                        m.d.comb += [wp.addr.eq(addr(lo)), wp.en.eq(1),
                                     wp.data.price.eq(rdata.price),
                                     wp.data.shares.eq(rdata.shares + req.amount),
                                     wp.data.count.eq(rdata.count + 1)]
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Elif((n == D) & (lo == n)):
                        # worse than every level of a full array: not stored
                        m.d.sync += self.level_overflow.eq(self.level_overflow + 1)
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        with m.If(n == D):
                            # drop the worst to make room (it is behind rank lo)
                            m.d.sync += [n.eq(n - 1),
                                         self.level_overflow.eq(self.level_overflow + 1)]
                        # move the lo better levels one place toward the front
                        m.d.sync += [j.eq(0), cnt.eq(lo), up.eq(1)]
                        m.next = "SHIFT"
                with m.Else():
                    taken = (req.amount != 0) | req.removed
                    gone = (rdata.shares <= req.amount) | (rdata.count <= req.removed)
                    with m.If(~found):
                        m.d.sync += self.level_miss.eq(self.level_miss + 1)
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Elif(~taken):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Elif(gone):
                        # move the lo better levels one place back over it
                        m.d.sync += [j.eq(lo - 1), cnt.eq(lo), up.eq(0)]
                        m.next = "SHIFT"
                    with m.Else():
                        m.d.comb += [wp.addr.eq(addr(lo)), wp.en.eq(1),
                                     wp.data.price.eq(rdata.price),
                                     wp.data.shares.eq(rdata.shares - req.amount),
                                     wp.data.count.eq(rdata.count - req.removed)]
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"

            # one level per cycle: read logical j, write it one place over on the next cycle
            with m.State("SHIFT"):
                m.d.comb += rp.addr.eq(addr(j))
                with m.If(cnt == 0):
                    m.next = "FINISH"
                with m.Else():
                    m.next = "MOVE"
            with m.State("MOVE"):
                m.d.comb += [wp.addr.eq(Mux(up, addr(j - 1), addr(j + 1))), wp.data.eq(rdata),
                             wp.en.eq(1)]
                nj = Mux(up, j + 1, j - 1)
                m.d.comb += rp.addr.eq(addr(nj))
                m.d.sync += [j.eq(nj), cnt.eq(cnt - 1)]
                with m.If(cnt == 1):
                    m.next = "FINISH"
            with m.State("FINISH"):
                with m.If(up):
                    # the new level takes rank lo in the list that now starts one earlier
                    m.d.comb += [wp.addr.eq(addr(lo - 1)), wp.en.eq(1),
                                 wp.data.price.eq(req.price), wp.data.shares.eq(req.amount),
                                 wp.data.count.eq(1)]
                    m.d.sync += [base.eq(phys(-1)), n.eq(n + 1)]
                with m.Else():
                    m.d.sync += [base.eq(phys(1)), n.eq(n - 1)]
                m.next = "STORE"

            with m.State("STORE"):
                m.d.comb += [ptr_wp.en.eq(1), self.done.eq(1),
                             self.refill_valid.eq(req.kind == DeepKind.POP)]
                m.next = "IDLE"
        return m
