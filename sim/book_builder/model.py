"""Pure-Python reference model of docs/architecture.md "Book builder".

A slow, direct statement of the rules that the numba emulator (tickwire.host.emu.core) defines;
``tests/test_hw_book_model.py`` keeps the two in agreement. The Amaranth unit tests of the
level array and the order table use it at operation level; the builder-level benches use the
emulator itself. Messages are dicts with the :class:`DecodedMessage` field names
(``type`` as a 1-char str or an int, ``side``/``state`` as 1-char str or int, ``stock`` as a
str, bytes or the 64-bit big-endian integer).
"""

from __future__ import annotations

__all__ = ["BookModel", "stock_int", "stock_str", "xor_fold", "order_bucket"]

COUNTERS = ("book_messages", "book_updates", "duplicate_ref", "unknown_ref", "overfill",
            "order_table_full", "level_overflow", "level_miss", "symbol_overflow")
M32 = (1 << 32) - 1


def xor_fold(ref: int, bits: int) -> int:
    h, s = 0, 0
    while s < 64:
        h ^= ref >> s
        s += bits
    return h & ((1 << bits) - 1)


def order_bucket(ref: int, bits: int, way_bits: int) -> int:
    return xor_fold(ref >> way_bits, bits)


def stock_int(stock) -> int:
    if isinstance(stock, int):
        return stock
    if isinstance(stock, str):
        stock = stock.encode("latin-1")
    return int.from_bytes(bytes(stock).ljust(8, b" ")[:8], "big")


def stock_str(stock: int) -> str:
    return stock.to_bytes(8, "big").decode("latin-1").rstrip(" ")


def _ch(v) -> str:
    if isinstance(v, str):
        return v
    return chr(v) if v else "\0"


class BookModel:
    def __init__(self, *, symbols=64, order_buckets=1 << 12, order_ways=4, levels=32, depth=10,
                 names=(), auto=False, locates=1 << 16):
        self.symbols, self.levels, self.depth = symbols, levels, depth
        self.order_ways = order_ways
        self.wbits = order_ways.bit_length() - 1
        self.bbits = order_buckets.bit_length() - 1
        self.locates = locates
        self.auto = auto
        self.names: list[int | None] = [None] * symbols
        for i, n in enumerate(names):
            self.names[i] = None if n is None else stock_int(n)
        self.locmap: dict[int, int] = {}   # locate -> slot, or -2: seen and not tracked
        self.buckets = [[None] * order_ways for _ in range(order_buckets)]
        # book[slot][side] = list of [price, shares, count], best first; side 0 bid, 1 ask
        self.book = [[[], []] for _ in range(symbols)]
        self.trading_state = [ord("T")] * symbols
        self.last_trade = [(0, 0)] * symbols
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.events: list[tuple] = []

    # ---------------------------------------------------------------- symbol table
    def _slot(self, msg) -> int | None:
        loc = msg["locate"]
        if loc in self.locmap:
            s = self.locmap[loc]
            return s if s >= 0 else None
        t = _ch(msg["type"])
        if loc >= self.locates or t not in "RAFPQ":
            return None
        name = stock_int(msg.get("stock", 0))
        for i, n in enumerate(self.names):
            if n == name:
                self.locmap[loc] = i
                return i
        if self.auto:
            if t in "PQ":
                return None
            for i, n in enumerate(self.names):
                if n is None:
                    self.names[i] = name
                    self.locmap[loc] = i
                    return i
            self.counters["symbol_overflow"] += 1
        self.locmap[loc] = -2
        return None

    # ---------------------------------------------------------------- order table
    def _find(self, ref):
        b = self.buckets[order_bucket(ref, self.bbits, self.wbits)]
        for w, rec in enumerate(b):
            if rec is not None and rec[0] == ref:
                return b, w
        return b, None

    def _add_order(self, ref, slot, side, price, shares) -> int | None:
        """Returns the sorted position touched (or None)."""
        b, w = self._find(ref)
        if w is not None:
            self.counters["duplicate_ref"] += 1
            return None
        for w, rec in enumerate(b):
            if rec is None:
                b[w] = [ref, slot, side, price, shares]
                return self._level_add(slot, side, price, shares)
        self.counters["order_table_full"] += 1
        return None

    def _reduce_order(self, ref, amount, whole):
        """Returns (record or None, position touched or None)."""
        b, w = self._find(ref)
        if w is None:
            self.counters["unknown_ref"] += 1
            return None, None
        rec = b[w]
        _, slot, side, price, rem = rec
        if whole:
            amount = rem
        elif amount > rem:
            self.counters["overfill"] += 1
            amount = rem
        rem -= amount
        removed = rem == 0
        if removed:
            b[w] = None
        else:
            rec[4] = rem
        return rec, self._level_reduce(slot, side, price, amount, removed)

    # ---------------------------------------------------------------- levels
    @staticmethod
    def _better(side, a, b):
        return a > b if side == 0 else a < b

    def _level_add(self, slot, side, price, shares):
        arr = self.book[slot][side]
        q = 0
        while q < len(arr) and self._better(side, arr[q][0], price):
            q += 1
        if q < len(arr) and arr[q][0] == price:
            arr[q][1] = (arr[q][1] + shares) & M32
            arr[q][2] = (arr[q][2] + 1) & M32
            return q
        if len(arr) == self.levels:
            self.counters["level_overflow"] += 1
            if q == self.levels:
                return None
            arr.pop()
        arr.insert(q, [price, shares, 1])
        return q

    def _level_reduce(self, slot, side, price, amount, removed):
        arr = self.book[slot][side]
        for p, lvl in enumerate(arr):
            if lvl[0] == price:
                break
        else:
            self.counters["level_miss"] += 1
            return None
        if amount == 0 and not removed:
            return None
        if lvl[1] <= amount or lvl[2] <= int(removed):
            del arr[p]
        else:
            lvl[1] -= amount
            lvl[2] -= int(removed)
        return p

    # ---------------------------------------------------------------- messages
    def process(self, msg):
        """Apply one message; return the top-N row it emits or None.

        Also appends the trigger engine's BookEvent for the message (book messages and H of a
        tracked slot) to :attr:`events` as (sequence, timestamp, slot, evaluate,
        trading_state, (best ask price, valid), (best bid price, valid),
        (add valid, add side, add price))."""
        slot = self._slot(msg)
        if slot is None:
            return None
        t = _ch(msg["type"])
        touched = []
        add = (0, 0, 0)
        if t in "AF":
            side = 0 if _ch(msg["side"]) == "B" else 1
            add = (1, side, msg["price"])
            touched.append(self._add_order(msg["ref"], slot, side, msg["price"], msg["shares"]))
        elif t in "ECX":
            rec, pos = self._reduce_order(msg["ref"], msg["shares"], False)
            touched.append(pos)
        elif t == "D":
            rec, pos = self._reduce_order(msg["ref"], 0, True)
            touched.append(pos)
        elif t == "U":
            b, w = self._find(msg["ref"])
            before = None
            if w is not None:
                _, slot, side = b[w][:3]
                before = self._side_top(slot, side)
            rec, pos = self._reduce_order(msg["ref"], 0, True)
            touched.append(pos)
            if rec is not None:
                add = (1, rec[2], msg["price"])
                touched.append(self._add_order(msg["new_ref"], rec[1], rec[2], msg["price"],
                                               msg["shares"]))
                if before == self._side_top(slot, side):
                    touched = []   # a replace that leaves the visible levels as they were
        elif t in "PQ":
            self.last_trade[slot] = (msg["price"], msg["shares"] & M32)
            return None
        elif t == "H":
            st = msg["state"]
            self.trading_state[slot] = ord(st) if isinstance(st, str) else st
            self._event(msg, slot, 0, add)
            return None
        else:
            return None
        self.counters["book_messages"] += 1
        if t in "ECXD" and rec is not None:
            slot = rec[1]
        self._event(msg, slot, 1, add)
        if not any(p is not None and p < self.depth for p in touched):
            return None
        self.counters["book_updates"] += 1
        return (msg["sequence"], msg["timestamp"], slot, self.top(slot))

    def _event(self, msg, slot, evaluate, add):
        bid, ask = self.book[slot]
        self.events.append((msg["sequence"], msg["timestamp"], slot, evaluate,
                            self.trading_state[slot], (ask[0][0], 1) if ask else (0, 0),
                            (bid[0][0], 1) if bid else (0, 0), add))

    def _side_top(self, slot, side):
        arr = self.book[slot][side]
        return [tuple(arr[k][:2]) if k < len(arr) else (0, 0) for k in range(self.depth)]

    def top(self, slot):
        bid, ask = self.book[slot]
        rows = []
        for k in range(self.depth):
            a = ask[k] if k < len(ask) else (0, 0)
            b = bid[k] if k < len(bid) else (0, 0)
            rows.append((a[0], a[1], b[0], b[1]))
        return tuple(rows)
