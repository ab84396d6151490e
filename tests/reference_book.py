"""An independent reference of docs/architecture.md's book builder *with* its capacities,
written from the document alone (not from the emulator or the gateware).

:class:`CapBook` holds the symbol table (host names or auto), the two-bank order table
(fold and mix32 bucket hashes, an insert into the emptier bucket), the bounded sorted level arrays (eviction, refusal,
``level_miss``, the shares/count removal rule) and the row rule: an add or reduction emits
when it touches a sorted position < N (a refused add, a level miss or a 0-share reduction that
leaves the order touches none); a replace emits only when the top N of its side changed value.

The unit tests of the level array and the order table (tests/test_hw_book_units.py) drive its
two halves on their own (:meth:`CapBook.store`, :meth:`CapBook.take`,
:meth:`CapBook.level_add`, :meth:`CapBook.level_reduce`); tests/test_emu_book.py runs whole
ITCH streams through :meth:`CapBook.process`. Sides are 0 (bid) and 1 (ask), as in the
gateware's level operations.
"""

from __future__ import annotations

import numpy as np

from tickwire.spec.capacity import GATEWARE, ROW_DEPTH

__all__ = ["CapBook", "BID", "ASK", "COUNTERS"]

BID, ASK = 0, 1
COUNTERS = ("book_messages", "book_updates", "duplicate_ref", "unknown_ref", "overfill",
            "order_table_full", "level_overflow", "level_miss", "symbol_overflow")


class CapBook:
    """The book builder of docs/architecture.md at the given capacities (see the module)."""

    def __init__(self, names=(), *, symbols=GATEWARE["symbols"],
                 order_buckets=GATEWARE["order_buckets"], order_ways=GATEWARE["order_ways"],
                 levels=GATEWARE["levels"], depth=ROW_DEPTH):
        self.auto = not names
        self.names = list(names)[:symbols]
        self.symbols, self.levels, self.depth = symbols, levels, depth
        self.bbits, self.wbits = order_buckets.bit_length() - 1, order_ways.bit_length() - 1
        self.table = [[None] * order_ways for _ in range(order_buckets)]
        self.slot_of = {}                 # locate -> slot, or None once untracked
        self.book = {}                    # (slot, side) -> [[price, shares, count]] best first
        self.c = dict.fromkeys(COUNTERS, 0)
        self.rows = []                    # (message index, slot, top-N as levels x 4)
        self.seen = dict.fromkeys(("zero_share_order", "zero_share_reduction",
                                   "neutral_replace"), 0)   # how often the stream met each rule

    # ------------------------------------------------------------------ order table

    def buckets(self, ref):
        """(bank-0 bucket: fold of ref >> log2(ways) in b-bit chunks, bank-1 bucket: top b
        bits of mix32), the bucket lists themselves; b = log2(order_buckets) - 1."""
        b = self.bbits - 1
        h0 = h1 = 0
        if b:
            q, shift = ref >> self.wbits, 0
            while shift < 64:
                h0 ^= q >> shift
                shift += b
            h0 &= (1 << b) - 1
            k = (ref ^ (ref >> 32)) & 0xFFFFFFFF
            h1 = ((k * 0x9E3779B9) & 0xFFFFFFFF) >> (32 - b)
        return self.table[h0], self.table[(1 << b) + h1]

    def find(self, ref):
        """(bucket, way holding ``ref`` or None): the bucket holding it, else the one an
        insert takes (fewer live entries, bank 0 on a tie)."""
        b0, b1 = self.buckets(ref)
        for b in (b0, b1):
            for w, o in enumerate(b):
                if o is not None and o[0] == ref:
                    return b, w
        return (b1 if b1.count(None) > b0.count(None) else b0), None

    def store(self, ref, slot, side, price, n) -> bool:
        """Put an order in the table (lowest free way); False when refused (counted)."""
        b, w = self.find(ref)
        if w is not None:
            self.c["duplicate_ref"] += 1
        elif None not in b:
            self.c["order_table_full"] += 1
        else:
            b[b.index(None)] = [ref, slot, side, price, n]
            return True
        return False

    def take(self, ref, r, whole=False):
        """Take ``r`` shares (all with ``whole``) off ``ref``: (slot, side, price, shares
        taken, order gone), or None if the reference is unknown (counted)."""
        b, w = self.find(ref)
        if w is None:
            self.c["unknown_ref"] += 1
            return None
        _, slot, side, price, rem = b[w]
        if whole:
            r = rem
        elif r > rem:
            self.c["overfill"] += 1
            r = rem
        gone = r == rem
        if gone:
            b[w] = None
        else:
            b[w][4] = rem - r
        return slot, side, price, r, gone

    # ------------------------------------------------------------------ levels

    def level_add(self, slot, side, price, n):
        """Add ``n`` shares and one order at ``price``: the sorted position touched, or None
        when the side is full and the price worse than all of it."""
        lv = self.book.setdefault((slot, side), [])
        better = (lambda a, b: a > b) if side == BID else (lambda a, b: a < b)
        for pos, e in enumerate(lv):
            if e[0] == price:
                e[1], e[2] = (e[1] + n) % (1 << 32), e[2] + 1
                return pos
        pos = sum(1 for e in lv if better(e[0], price))
        if len(lv) == self.levels:
            self.c["level_overflow"] += 1
            if pos == len(lv):
                return None                         # worse than a full side: not stored
            lv.pop()                                # the worst goes
        lv.insert(pos, [price, n, 1])
        return pos

    def level_reduce(self, slot, side, price, r, gone):
        """Take ``r`` shares (and the order, if ``gone``) off ``price``: the sorted position
        touched, or None (a level miss, or a 0-share reduction that leaves the order)."""
        lv = self.book.setdefault((slot, side), [])
        pos = next((k for k, e in enumerate(lv) if e[0] == price), None)
        if pos is None:
            self.c["level_miss"] += 1
            return None
        e = lv[pos]
        if r == 0 and not gone:
            self.seen["zero_share_reduction"] += 1
            return None
        if e[1] <= r or e[2] - gone <= 0:
            lv.remove(e)
        else:
            e[1], e[2] = e[1] - r, e[2] - gone
        return pos

    def side_top(self, slot, side):
        """The top N (price, shares) of one side, empty levels (0, 0)."""
        lv = self.book.get((slot, side), [])
        return [tuple(lv[k][:2]) if k < len(lv) else (0, 0) for k in range(self.depth)]

    def top(self, slot):
        """The row of ``slot``: depth x (ask price, ask shares, bid price, bid shares)."""
        out = np.zeros((self.depth, 4), np.int64)
        for col, side in ((0, ASK), (2, BID)):
            for k, (p, n) in enumerate(self.side_top(slot, side)):
                out[k, col], out[k, col + 1] = p, n
        return out

    # ------------------------------------------------------------------ messages

    def _map(self, m):
        loc = m["stock_locate"]
        if loc in self.slot_of or m["type"] not in "RAFPQ":
            return self.slot_of.get(loc)
        name = m["stock"]
        if name in self.names:
            self.slot_of[loc] = self.names.index(name)
        elif not self.auto:
            self.slot_of[loc] = None
        elif m["type"] in "RAF":
            if len(self.names) < self.symbols:
                self.names.append(name)
                self.slot_of[loc] = len(self.names) - 1
            else:
                self.c["symbol_overflow"] += 1
                self.slot_of[loc] = None
        return self.slot_of.get(loc)

    def _insert(self, ref, slot, side, price, n):
        if not self.store(ref, slot, side, price, n):
            return None
        self.seen["zero_share_order"] += n == 0
        return self.level_add(slot, side, price, n)

    def _reduce(self, ref, r, whole=False):
        """(slot, side, sorted position touched or None), or None if ``ref`` is unknown."""
        hit = self.take(ref, r, whole)
        if hit is None:
            return None
        slot, side, price, r, gone = hit
        return slot, side, self.level_reduce(slot, side, price, r, gone)

    def process(self, i, m):
        """Apply message ``i`` (an ``itch.decode`` dict); a row goes to :attr:`rows`."""
        slot = self._map(m)
        t = m["type"]
        if slot is None or t not in "AFECXDU":
            return
        self.c["book_messages"] += 1
        pos = None
        if t in "AF":
            pos = self._insert(m["order_reference_number"], slot,
                               BID if m["buy_sell_indicator"] == "B" else ASK, m["price"],
                               m["shares"])
        elif t in "ECXD":
            n = m.get("executed_shares", m.get("canceled_shares", 0))
            hit = self._reduce(m["order_reference_number"], n, whole=t == "D")
            if hit:
                slot, _, pos = hit
        else:
            b, w = self.find(m["original_order_reference_number"])
            if w is None:
                self.c["unknown_ref"] += 1
            else:
                slot, side = b[w][1], b[w][2]
                before = self.side_top(slot, side)
                self._reduce(m["original_order_reference_number"], 0, whole=True)
                self._insert(m["new_order_reference_number"], slot, side, m["price"],
                             m["shares"])
                if before != self.side_top(slot, side):
                    pos = 0
                elif before[0][0]:
                    self.seen["neutral_replace"] += 1
        if pos is not None and pos < self.depth:
            self.c["book_updates"] += 1
            self.rows.append((i, slot, self.top(slot)))
