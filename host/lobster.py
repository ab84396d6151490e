"""LOBSTER samples as ITCH 5.0: the book oracle of the emulator and the gateware.

A LOBSTER message file lists events (1 add, 2 partial cancel, 3 delete, 4 visible execution,
5 hidden execution, 7 halt) and its order-book file the top levels after each event. Orders
resting from before the sample show up only through their later reductions, levels deeper than
the file's depth are invisible until revealed, and the redistributed sample lacks some events,
so the book is *implied* by the two files together (:func:`reconcile`):

* an order that is reduced but never added is a resting order: it is added, with the sum of
  every reduction the sample applies to it, right before its first reduction;
* after each event the visible levels are compared with the order-book row; volume the row
  shows beyond the known orders is added as a synthetic order, volume it lacks is cancelled
  (synthetic orders first), right before that event.

The resulting ITCH ``R A X D E P H`` stream, replayed from an empty book, must reproduce the
order-book file after every event; the counts of implied orders are reported.
"""

from __future__ import annotations

import bisect
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import itch

EMPTY_ASK = 9999999999
SYNTHETIC_REF_BASE = 1 << 40


@dataclass
class LobsterSample:
    events: np.ndarray   # [E, 6]: time_ns, type, order id, size, price, direction
    books: np.ndarray    # [E, 4*levels]: ask p, ask s, bid p, bid s per level (LOBSTER units)

    @property
    def levels(self) -> int:
        return self.books.shape[1] // 4

    def book_rows(self) -> np.ndarray:
        """Books as [E, levels, 4] with empty levels 0,0 (the tickwire convention)."""
        b = self.books.reshape(len(self.books), self.levels, 4).copy()
        b[b[:, :, 0] >= EMPTY_ASK] = 0
        b[b[:, :, 2] <= -EMPTY_ASK] = 0
        b[b[:, :, 2] < 0] = 0
        return b


def _lines(path: str | Path) -> list[str]:
    """Data lines of a LOBSTER file: gzipped or plain, LF or CRLF, with or without a header."""
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    lines = [ln for ln in raw.decode("ascii").splitlines() if ln.strip()]
    if lines and not lines[0].split(",", 1)[0].strip().lstrip("-").replace(".", "").isdigit():
        lines = lines[1:]    # a header row, added by some redistributions
    return lines


def _time_ns(text: str) -> int:
    # seconds after midnight with up to nanosecond digits: split to stay exact
    sec, _, frac = text.strip().partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def load(message_csv: str | Path, orderbook_csv: str | Path) -> LobsterSample:
    """A message file and its order-book file (``.csv`` or ``.csv.gz``)."""
    msg, book = _lines(message_csv), _lines(orderbook_csv)
    if len(msg) != len(book):
        raise ValueError(f"{message_csv}: {len(msg)} events but {orderbook_csv} has "
                         f"{len(book)} rows")
    ev = np.zeros((len(msg), 6), np.int64)
    for i, line in enumerate(msg):
        f = line.split(",")
        if len(f) < 6:
            raise ValueError(f"{message_csv}: event {i}: {len(f)} fields, expected 6")
        ev[i, 0] = _time_ns(f[0])
        ev[i, 1:] = [int(float(x)) for x in f[1:6]]
    books = np.array([[int(x) for x in ln.split(",")] for ln in book], np.int64).reshape(
        len(book), -1)
    if books.shape[1] % 4:
        raise ValueError(f"{orderbook_csv}: {books.shape[1]} columns, not 4 per level")
    return LobsterSample(ev, books)


class _Model:
    """Per-price volumes of live orders; the reference the reconciliation works against."""

    def __init__(self):
        self.live: dict[int, list[int]] = {}      # id -> [side, price, size]
        self.vol: dict[tuple[int, int], int] = {}

    def add(self, oid, side, price, size):
        self.live[oid] = [side, price, size]
        self.vol[(side, price)] = self.vol.get((side, price), 0) + size

    def reduce(self, oid, amount):
        o = self.live[oid]
        amount = min(amount, o[2])
        o[2] -= amount
        self.vol[(o[0], o[1])] -= amount
        if not self.vol[(o[0], o[1])]:
            del self.vol[(o[0], o[1])]
        if o[2] == 0:
            del self.live[oid]
        return amount

    def side_levels(self, side):
        ps = sorted((p for (s_, p) in self.vol if s_ == side), reverse=(side == 0))
        return ps


def reconcile(sample: LobsterSample):
    """The event stream with the implied resting and synthetic orders woven in.

    Returns a list of steps ``(kind, args)`` where kind is ``"event"`` (index into
    ``sample.events``) or an injected ``"add"`` (id, side, price, size) / ``"cancel"``
    (id, shares), and statistics of what was implied.
    """
    ev = sample.events
    added = set(int(x) for x in ev[ev[:, 1] == 1, 2])
    ghost_total: dict[int, int] = {}
    for t, typ, oid, size, price, d in ev:
        if typ in (2, 3, 4) and oid not in added:
            ghost_total[int(oid)] = ghost_total.get(int(oid), 0) + int(size)
    rows = sample.book_rows()
    m = _Model()
    synth: dict[tuple[int, int], list[int]] = {}
    next_id = SYNTHETIC_REF_BASE
    steps: list[tuple] = []
    stats = {"resting_orders": 0, "synthetic_adds": 0, "synthetic_cancels": 0}
    ghosts_live = set()
    for e, (t, typ, oid, size, price, d) in enumerate(ev):
        oid, size, price = int(oid), int(size), int(price)
        side = 0 if d == 1 else 1
        pre: list[tuple] = []
        if typ in (2, 3, 4) and oid in ghost_total and oid not in ghosts_live:
            ghosts_live.add(oid)
            m.add(oid, side, price, ghost_total[oid])
            pre.append(("add", (oid, side, price, ghost_total[oid])))
            stats["resting_orders"] += 1
        # apply the event to the model
        if typ == 1:
            m.add(oid, side, price, size)
        elif typ in (2, 4) and oid in m.live:
            m.reduce(oid, size)
        elif typ == 3 and oid in m.live:
            m.reduce(oid, m.live[oid][2])
        # reconcile the visible book with the row after this event
        for sd, pcol, scol in ((1, 0, 1), (0, 2, 3)):
            shown = {int(p): int(z) for p, z in rows[e, :, [pcol, scol]].T if p}
            model_ps = m.side_levels(sd)
            if len(shown) == sample.levels:
                worst = min(shown) if sd == 0 else max(shown)
                model_ps = [p for p in model_ps if (p >= worst if sd == 0 else p <= worst)]
            for p in sorted(set(shown) | set(model_ps)):
                diff = shown.get(p, 0) - m.vol.get((sd, p), 0)
                if diff > 0:
                    m.add(next_id, sd, p, diff)
                    synth.setdefault((sd, p), []).append(next_id)
                    pre.append(("add", (next_id, sd, p, diff)))
                    next_id += 1
                    stats["synthetic_adds"] += 1
                elif diff < 0:
                    need = -diff
                    pool = synth.get((sd, p), []) + [
                        k for k, o in m.live.items() if o[0] == sd and o[1] == p
                        and k not in synth.get((sd, p), [])]
                    for k in pool:
                        if need == 0:
                            break
                        if k not in m.live:
                            continue
                        got = m.reduce(k, need)
                        pre.append(("cancel", (k, got)))
                        need -= got
                        stats["synthetic_cancels"] += 1
        steps.extend(pre)
        steps.append(("event", e))
    return steps, stats


class _Book:
    """Every order the replay has put on the book, by price: the level-1 reconciliation's model
    of what the emulator holds."""

    def __init__(self):
        self.orders: dict[int, list[int]] = {}                 # ref -> [side, price, size]
        self.at: dict[tuple[int, int], dict[int, None]] = {}   # (side, price) -> refs, in order
        self.vol: dict[tuple[int, int], int] = {}
        self.prices: tuple[list[int], list[int]] = ([], [])    # per side, ascending
        self.peak_orders = 0
        self.peak_levels = [0, 0]

    def add(self, ref, side, price, size):
        self.orders[ref] = [side, price, size]
        key = (side, price)
        if key not in self.at:
            self.at[key] = {}
            self.vol[key] = 0
            bisect.insort(self.prices[side], price)
            self.peak_levels[side] = max(self.peak_levels[side], len(self.prices[side]))
        self.at[key][ref] = None
        self.vol[key] += size
        self.peak_orders = max(self.peak_orders, len(self.orders))

    def reduce(self, ref, amount) -> int:
        """Take up to ``amount`` shares off ``ref`` (all of it when ``amount`` is None)."""
        side, price, size = o = self.orders[ref]
        amount = size if amount is None else min(amount, size)
        o[2] -= amount
        key = (side, price)
        self.vol[key] -= amount
        if o[2] == 0:
            del self.orders[ref]
            del self.at[key][ref]
            if not self.at[key]:
                del self.at[key], self.vol[key]
                ps = self.prices[side]
                del ps[bisect.bisect_left(ps, price)]
        return amount

    def best(self, side):
        ps = self.prices[side]
        return (ps[-1] if side == 0 else ps[0]) if ps else None


def reconcile_level1(sample: LobsterSample):
    """The event stream of a level-1 sample with the unseen liquidity woven in.

    A level-1 file names only the events at the best bid or ask; everything deeper is added,
    moved and cancelled out of sight. After each event the model (:class:`_Book`) must show the
    row's best bid and ask with their sizes, so right before the event:

    * an order the event names but the book lacks (resting from before the open, or taken
      away earlier as unseen liquidity) is added with every reduction the file still applies
      to it; one smaller than the event's reduction is deleted and added again at that size;
    * volume at the best price beyond the row's size, and every level better than the row's
      best, is cancelled: synthetic orders first, then the shares of real orders that no later
      event needs, then real orders (which a later event then adds again);
    * volume the row shows beyond the book's is added as a synthetic order, with a reference
      number at or above :data:`SYNTHETIC_REF_BASE` (above every real reference, checked).

    Levels behind the best are left as the file implies them, so the book keeps the unseen
    orders that were added at the touch and left behind by the price. Returns ``(steps,
    stats)`` as :func:`reconcile` (steps also ``"delete"`` (ref,)); stats count what was
    implied and the book's peak live orders and levels per side.
    """
    if sample.levels != 1:
        raise ValueError(f"reconcile_level1: a level-1 sample, not {sample.levels} levels")
    ev = sample.events
    if len(ev) and int(ev[:, 2].max()) >= SYNTHETIC_REF_BASE:
        raise ValueError(f"order id {int(ev[:, 2].max())} reaches the synthetic reference "
                         f"numbers ({SYNTHETIC_REF_BASE}..)")
    rows = sample.book_rows()[:, 0, :]
    fut: dict[int, int] = {}          # shares the remaining events take off each order
    for typ, oid, size in ev[:, 1:4].tolist():
        if typ in (2, 3, 4):
            fut[oid] = fut.get(oid, 0) + size
    book = _Book()
    seen: set[int] = set()
    next_ref = SYNTHETIC_REF_BASE
    steps: list[tuple] = []
    stats = dict.fromkeys(("resting_orders", "revived_orders", "resized_orders",
                           "synthetic_adds", "synthetic_cancels", "hidden_cancels"), 0)

    def take(side, price, need, keep, pre):
        """Cancel ``need`` shares at ``price`` (all when None), never touching ``keep``."""
        refs = [r for r in book.at.get((side, price), ()) if r != keep]
        synth = [r for r in refs if r >= SYNTHETIC_REF_BASE]
        real = [r for r in refs if r < SYNTHETIC_REF_BASE]
        plan = [(r, None) for r in synth]
        plan += [(r, book.orders[r][2] - fut.get(r, 0)) for r in real]   # spare shares
        plan += [(r, None) for r in sorted(real, key=lambda r: fut.get(r, 0))]
        for r, cap in plan:
            if need == 0:
                break
            if r not in book.orders or (cap is not None and cap <= 0):
                continue
            amount = book.orders[r][2] if cap is None else cap
            if need is not None:
                amount = min(amount, need)
                need -= amount
            whole = amount == book.orders[r][2]
            book.reduce(r, amount)
            pre.append(("delete", (r,)) if whole else ("cancel", (r, amount)))
            stats["synthetic_cancels" if r >= SYNTHETIC_REF_BASE else "hidden_cancels"] += 1
        return need or 0

    for e, (typ, oid, size, price, d) in enumerate(ev[:, 1:6].tolist()):
        side = 0 if d == 1 else 1
        pre: list[tuple] = []
        if typ in (2, 3, 4):
            o = book.orders.get(oid)
            if o is not None and (o[0] != side or o[1] != price or (typ != 3 and o[2] < size)):
                book.reduce(oid, None)          # too small, or not where the event says
                pre.append(("delete", (oid,)))
                stats["resized_orders"] += 1
                o = None
            if o is None:
                book.add(oid, side, price, fut[oid])
                pre.append(("add", (oid, side, price, fut[oid])))
                if oid not in seen:
                    stats["resting_orders"] += 1
                elif len(pre) == 1:             # not resized: taken away earlier
                    stats["revived_orders"] += 1
            seen.add(oid)
            book.reduce(oid, None if typ == 3 else size)
            fut[oid] -= size
        elif typ == 1:
            if oid in book.orders:
                raise ValueError(f"LOBSTER event {e}: order {oid} added twice")
            book.add(oid, side, price, size)
            seen.add(oid)
        # the row after this event: nothing better than its best, exactly its size there
        ask_p, ask_s, bid_p, bid_s = rows[e].tolist()
        keep = oid if typ in (1, 2, 4) else -1
        for sd, best_p, best_s in ((0, bid_p, bid_s), (1, ask_p, ask_s)):
            ps = book.prices[sd]
            while ps and (not best_p or (ps[-1] > best_p if sd == 0 else ps[0] < best_p)):
                p = ps[-1] if sd == 0 else ps[0]
                if take(sd, p, None, keep, pre) or (sd, p) in book.vol:
                    raise ValueError(f"LOBSTER event {e}: order {oid} is better than the "
                                     f"row's best {'bid' if sd == 0 else 'ask'} {best_p}")
            if not best_p:
                continue
            diff = best_s - book.vol.get((sd, best_p), 0)
            if diff > 0:
                book.add(next_ref, sd, best_p, diff)
                pre.append(("add", (next_ref, sd, best_p, diff)))
                next_ref += 1
                stats["synthetic_adds"] += 1
            elif diff < 0 and take(sd, best_p, -diff, keep, pre):
                raise ValueError(f"LOBSTER event {e}: the row's {best_s} shares at "
                                 f"{best_p} are fewer than order {oid} holds")
        steps.extend(pre)
        steps.append(("event", e))
    stats.update(peak_orders=book.peak_orders, peak_bid_levels=book.peak_levels[0],
                 peak_ask_levels=book.peak_levels[1], synthetic_refs=next_ref - SYNTHETIC_REF_BASE)
    return steps, stats


def to_itch(sample: LobsterSample, symbol: str = "AAPL", locate: int = 1):
    """ITCH messages for the sample: directory, then the reconciled event stream
    (:func:`reconcile_level1` for a level-1 sample, :func:`reconcile` for a deeper one).

    Returns (messages, event_index, stats): ``messages[event_index[e]]`` is event ``e``;
    the injected messages of an event come right before it (after the previous event).
    """
    steps, stats = (reconcile_level1 if sample.levels == 1 else reconcile)(sample)
    t0 = int(sample.events[0, 0]) - 1
    msgs = [itch.encode("R", stock_locate=locate, timestamp=t0, stock=symbol,
                        market_category="Q", financial_status_indicator="N",
                        round_lot_size=100, round_lots_only="N")]
    event_index = np.zeros(len(sample.events), np.int64)
    match = 1
    ts = t0
    for kind, arg in steps:
        if kind == "add":
            oid, side, price, size = arg
            msgs.append(itch.encode("A", stock_locate=locate, timestamp=ts,
                                    order_reference_number=oid, buy_sell_indicator="BS"[side],
                                    shares=size, stock=symbol, price=price))
            continue
        if kind == "cancel":
            oid, shares = arg
            msgs.append(itch.encode("X", stock_locate=locate, timestamp=ts,
                                    order_reference_number=oid, canceled_shares=shares))
            continue
        if kind == "delete":
            msgs.append(itch.encode("D", stock_locate=locate, timestamp=ts,
                                    order_reference_number=arg[0]))
            continue
        e = arg
        t, typ, oid, size, price, d = (int(x) for x in sample.events[e])
        ts = t
        side = 0 if d == 1 else 1
        common = dict(stock_locate=locate, timestamp=t)
        event_index[e] = len(msgs)
        if typ == 1:
            msgs.append(itch.encode("A", **common, order_reference_number=oid,
                                    buy_sell_indicator="BS"[side], shares=size, stock=symbol,
                                    price=price))
        elif typ == 2:
            msgs.append(itch.encode("X", **common, order_reference_number=oid,
                                    canceled_shares=size))
        elif typ == 3:
            msgs.append(itch.encode("D", **common, order_reference_number=oid))
        elif typ == 4:
            msgs.append(itch.encode("E", **common, order_reference_number=oid,
                                    executed_shares=size, match_number=match))
            match += 1
        elif typ == 5:
            msgs.append(itch.encode("P", **common, order_reference_number=0,
                                    buy_sell_indicator="BS"[side], shares=size, stock=symbol,
                                    price=price, match_number=match))
            match += 1
        elif typ == 7:
            state = {-1: "H", 0: "Q", 1: "T"}.get(price, "H")
            msgs.append(itch.encode("H", **common, stock=symbol, trading_state=state))
        else:
            raise ValueError(f"LOBSTER event {e} (type {typ}): unknown event type")
    return msgs, event_index, stats
