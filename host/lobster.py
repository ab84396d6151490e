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


def load(message_csv: str | Path, orderbook_csv: str | Path) -> LobsterSample:
    raw = np.loadtxt(message_csv, delimiter=",", dtype=np.float64, ndmin=2)
    books = np.loadtxt(orderbook_csv, delimiter=",", dtype=np.int64, ndmin=2)
    if len(raw) != len(books):
        raise ValueError(f"{message_csv}: {len(raw)} events but {orderbook_csv} has "
                         f"{len(books)} rows")
    ev = np.zeros((len(raw), 6), np.int64)
    # seconds after midnight with nanosecond digits: split to stay exact
    text = Path(message_csv).read_text().split()
    for i, line in enumerate(text):
        t = line.split(",", 1)[0]
        sec, _, frac = t.partition(".")
        ev[i, 0] = int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
    ev[:, 1:] = raw[:, 1:6].astype(np.int64)
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


def to_itch(sample: LobsterSample, symbol: str = "AAPL", locate: int = 1):
    """ITCH messages for the sample: directory, then the reconciled event stream.

    Returns (messages, event_index, stats): ``messages[event_index[e]]`` is event ``e``;
    the injected messages of an event come right before it (after the previous event).
    """
    steps, stats = reconcile(sample)
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
