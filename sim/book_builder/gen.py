"""Message streams and the emulator scoreboard for the book builder benches.

* :func:`random_day` — random ITCH 5.0 messages (bytes) that stress what the book builder must
  get right: many symbols (tracked and not), directory and mid-day first-add mapping,
  duplicate and unknown references, overfills, zero-share corner cases, replaces into the same
  or another bucket, more distinct prices than ``levels`` (eviction, level_miss), hash
  collisions (run it with a small ``order_buckets``), P/Q/H state messages and long runs on
  one slot (back-to-back hazards).
* :func:`to_decoded` — an ITCH message as the ``DecodedMessage`` fields the decoder hands the
  book builder (hw/layouts.py).
* :func:`emulator_rows` — the numba emulator's top-N rows and book counters: the scoreboard;
  :func:`emulator_case` adds the BookEvent of every message, the emulator stepped one message
  at a time.
"""

from __future__ import annotations

import random

import numpy as np

from tickwire.host import itch
from tickwire.spec.capacity import GATEWARE, ROW_DEPTH

__all__ = ["FIELDS", "to_decoded", "random_day", "emulator_rows", "emulator_case",
           "BOOK_COUNTERS"]

FIELDS = ("type", "locate", "timestamp", "sequence", "ref", "new_ref", "side", "shares",
          "price", "stock", "state")
BOOK_COUNTERS = ("book_messages", "book_updates", "duplicate_ref", "unknown_ref", "overfill",
                 "order_table_full", "level_overflow", "level_miss", "symbol_overflow")

# ITCH field -> DecodedMessage field, per type (docs/architecture.md, hw/layouts.py)
_MAP = {
    "A": {"order_reference_number": "ref", "buy_sell_indicator": "side", "shares": "shares",
          "stock": "stock", "price": "price"},
    "E": {"order_reference_number": "ref", "executed_shares": "shares"},
    "C": {"order_reference_number": "ref", "executed_shares": "shares",
          "execution_price": "price"},
    "X": {"order_reference_number": "ref", "canceled_shares": "shares"},
    "D": {"order_reference_number": "ref"},
    "U": {"original_order_reference_number": "ref", "new_order_reference_number": "new_ref",
          "shares": "shares", "price": "price"},
    "P": {"order_reference_number": "ref", "buy_sell_indicator": "side", "shares": "shares",
          "stock": "stock", "price": "price"},
    "Q": {"cross_shares": "shares", "stock": "stock", "cross_price": "price"},
    "H": {"stock": "stock", "trading_state": "state"},
    "S": {"event_code": "state"},
}
_MAP["F"] = _MAP["A"]


def to_decoded(raw: bytes, sequence: int) -> dict:
    """The ``DecodedMessage`` field values of one ITCH message (ints)."""
    t = chr(raw[0])
    spec = itch.MESSAGES[t]
    out = dict.fromkeys(FIELDS, 0)
    out["type"] = raw[0]
    out["locate"] = int.from_bytes(raw[1:3], "big")
    out["timestamp"] = int.from_bytes(raw[5:11], "big")
    out["sequence"] = sequence
    fmap = dict(_MAP.get(t, {}))
    if "stock" not in fmap and any(f.name == "stock" for f in spec.fields):
        fmap["stock"] = "stock"
    for f in spec.fields:
        dst = fmap.get(f.name)
        if dst is None:
            continue
        v = int.from_bytes(raw[f.offset:f.offset + f.size], "big")
        if dst == "shares":
            v &= 0xFFFF_FFFF
        out[dst] = v
    return out


def random_day(seed: int, n: int, *, n_locates: int = 12, spread: int = 40, hot: float = 0.3,
               ref_space: int | None = None, odd: float = 0.02, add_share: float = 0.42,
               hot_switch: float = 0.05,
               ) -> tuple[list[bytes], list[str]]:
    """Random messages; returns (messages, stock name of locate i+1 for i in range(n_locates)).

    ``spread``: distinct price points per side and symbol (more than ``levels`` evicts);
    ``hot``: share of messages on one hot symbol, which changes with probability
    ``hot_switch`` per message; ``ref_space``: draw new order
    references from 1..ref_space (small: many duplicates); ``odd``: rate of zero-share and
    other corner-case fields; ``add_share``: share of adds (above ~0.45 the books grow).
    """
    rng = random.Random(seed)
    names = [f"S{i:03d}{chr(65 + i % 26)}" for i in range(n_locates)]
    base = [rng.randrange(100, 5000) * 100 for _ in range(n_locates)]
    live: dict[int, list] = {}     # ref -> [locate, side, price, shares]
    next_ref = rng.randrange(1, 1 << 40)
    out: list[bytes] = []
    ts = 34_200_000_000_000
    announced = set()

    def new_ref():
        nonlocal next_ref
        if ref_space:
            return rng.randrange(1, ref_space)
        next_ref += rng.choice((1, 1, 1, 2, 7, 4096, 1 << 20, 1 << 36))
        next_ref &= (1 << 64) - 1
        return next_ref

    def shares_or_zero(v):
        return 0 if rng.random() < odd else v

    hot_loc = 1
    for _ in range(n):
        ts += rng.randrange(0, 5000)
        if rng.random() < hot_switch:
            hot_loc = rng.randrange(1, n_locates + 1)
        loc = hot_loc if rng.random() < hot else rng.randrange(1, n_locates + 1)
        r = rng.random()
        hdr = dict(stock_locate=loc, timestamp=ts, tracking_number=rng.randrange(0, 65536))
        if r < 0.03 or (loc not in announced and rng.random() < 0.3):
            announced.add(loc)
            out.append(itch.encode("R", stock=names[loc - 1], **hdr))
        elif r < 0.03 + add_share or not live:
            side = rng.choice("BS") if rng.random() > odd else "X"
            off = rng.randrange(0, spread) * 100
            price = base[loc - 1] - off if side == "B" else base[loc - 1] + 100 + off
            shares = shares_or_zero(rng.choice((100, 200, 300, 500, rng.randrange(1, 2000))))
            ref = rng.choice(list(live)) if (live and rng.random() < 0.03) else new_ref()
            t = rng.choice("AAAF")
            extra = {"attribution": "MPID"} if t == "F" else {}
            out.append(itch.encode(t, order_reference_number=ref, buy_sell_indicator=side,
                                   shares=shares, price=price, stock=names[loc - 1], **extra,
                                   **hdr))
            live.setdefault(ref, [loc, side, price, shares])
        elif r < 0.92:
            if rng.random() < 0.04:
                ref, o = rng.randrange(1, 1 << 40), None
            else:
                ref = rng.choice(list(live))
                o = live[ref]
                hdr["stock_locate"] = o[0]
            t = rng.choice("EEXXCDDDUU")
            if t in "ECX":
                rem = o[3] if o else 100
                if rng.random() < 0.9:
                    sh = rng.randrange(1, rem + 1) if rem else 0
                else:
                    sh = rem + rng.randrange(0, 50)
                sh = shares_or_zero(sh)
                if t == "X":
                    out.append(itch.encode("X", order_reference_number=ref, canceled_shares=sh,
                                           **hdr))
                elif t == "E":
                    out.append(itch.encode("E", order_reference_number=ref, executed_shares=sh,
                                           match_number=rng.randrange(1 << 40), **hdr))
                else:
                    out.append(itch.encode("C", order_reference_number=ref, executed_shares=sh,
                                           match_number=rng.randrange(1 << 40), printable="Y",
                                           execution_price=rng.randrange(1, 10**6), **hdr))
                if o:
                    o[3] -= sh
                    if o[3] <= 0:
                        del live[ref]
            elif t == "D":
                out.append(itch.encode("D", order_reference_number=ref, **hdr))
                live.pop(ref, None)
            else:
                nr = rng.choice(list(live)) if (live and rng.random() < 0.03) else new_ref()
                if rng.random() < 0.1:
                    nr = ref
                side = o[1] if o else "B"
                loc0 = o[0] if o else loc
                same = o is not None and rng.random() < 0.15   # size-preserving replace
                price = o[2] if same else (o[2] if o else base[loc0 - 1]) + rng.choice(
                    (-200, -100, 0, 100, 200))
                shares = o[3] if same else shares_or_zero(rng.randrange(1, 1500))
                out.append(itch.encode("U", original_order_reference_number=ref,
                                       new_order_reference_number=nr, shares=shares,
                                       price=max(price, 0), **hdr))
                live.pop(ref, None)
                if o:
                    live.setdefault(nr, [loc0, side, max(price, 0), shares])
        else:
            t = rng.choice("PQHS")
            if t == "P":
                out.append(itch.encode("P", order_reference_number=0,
                                       buy_sell_indicator=rng.choice("BS"),
                                       shares=rng.randrange(1, 999), stock=names[loc - 1],
                                       price=base[loc - 1], match_number=1, **hdr))
            elif t == "Q":
                out.append(itch.encode("Q", cross_shares=rng.randrange(1, 1 << 32),
                                       stock=names[loc - 1], cross_price=base[loc - 1],
                                       match_number=1, cross_type="O", **hdr))
            elif t == "H":
                out.append(itch.encode("H", stock=names[loc - 1],
                                       trading_state=rng.choice("THPQ"), **hdr))
            else:
                out.append(itch.encode("S", event_code="O", **hdr))
    return out, names


def _emulator(symbols, depth, symbols_capacity, order_buckets, order_ways, levels):
    from tickwire.host.config import Config
    from tickwire.host.emu.pipeline import Emulator

    cfg = Config(symbols=list(symbols or []))
    cfg.strategy.kind = "none"
    cfg.capacity.symbols = symbols_capacity
    cfg.capacity.order_buckets = order_buckets
    cfg.capacity.order_ways = order_ways
    cfg.capacity.levels = levels
    return Emulator(cfg, depth)


def _rows_counters(res):
    r = res.rows
    rows = [(int(r.sequence[i]), int(r.timestamp[i]), int(r.slot[i]),
             tuple(tuple(int(x) for x in lv) for lv in r.levels[i])) for i in range(len(r))]
    return rows, {k: int(res.counters[k]) for k in BOOK_COUNTERS}


def emulator_rows(msgs: list[bytes], *, symbols=None, depth=ROW_DEPTH,
                  symbols_capacity=GATEWARE["symbols"], order_buckets=GATEWARE["order_buckets"],
                  order_ways=GATEWARE["order_ways"], levels=GATEWARE["levels"]):
    """Run the numba emulator (book only): (rows, book counters, emulator).

    Rows are tuples (sequence, timestamp, slot, ((ask p, ask s, bid p, bid s) × depth)), the
    sequence being the message's 1-based index."""
    from tickwire.host.emu.pipeline import messages_buffer

    emu = _emulator(symbols, depth, symbols_capacity, order_buckets, order_ways, levels)
    rows, counters = _rows_counters(emu.run(*messages_buffer(msgs)))
    return rows, counters, emu


def _stored_order(st, raw: bytes):
    """(slot, side) of the stored order an E C X D U message refers to, or None."""
    if chr(raw[0]) not in "ECXDU":
        return None
    ref = np.uint64(int.from_bytes(raw[11:19], "big"))  # each has its reference at 11
    meta = st.orders[:, 2]
    hit = np.flatnonzero(((meta & np.uint64(1)) == 1) & (st.orders[:, 0] == ref))
    if not len(hit):
        return None
    m = int(meta[hit[0]])
    return m >> 8, (m >> 1) & 1


def emulator_case(msgs: list[bytes], *, symbols=None, depth=ROW_DEPTH,
                  symbols_capacity=GATEWARE["symbols"], order_buckets=GATEWARE["order_buckets"],
                  order_ways=GATEWARE["order_ways"], levels=GATEWARE["levels"]):
    """:func:`emulator_rows` with the BookEvents: (rows, book counters, events, emulator).

    The emulator runs one message at a time; between messages the best bid/ask, trading
    state and order table are read. A message the book counts (A F E C X D U of a tracked
    slot; the slot of the order it refers to when stored) and an H of a tracked slot give
    an event (sequence, timestamp, slot, evaluate, trading_state, (best ask price, valid),
    (best bid price, valid), (add valid, add side, add price)), evaluate 0 for H. The add is
    an A/F's own order (also when the book refused it) or a U's new price on its stored
    order's side."""
    from tickwire.host.emu.core import ASK, BID
    from tickwire.host.emu.pipeline import messages_buffer

    emu = _emulator(symbols, depth, symbols_capacity, order_buckets, order_ways, levels)
    st = emu.state
    a_side, a_price = itch.field_offset("A", "buy_sell_indicator"), itch.field_offset("A", "price")
    u_price = itch.field_offset("U", "price")
    events: list[tuple] = []
    k = [0]
    book = [0]                              # book_messages before message k
    order = [_stored_order(st, msgs[0])] if msgs else [None]

    def step(_n):
        i = k[0]
        raw = msgs[i]
        t = chr(raw[0])
        n_book = int(st.counter_dict()["book_messages"])
        slot = int(st.locate_slot[int.from_bytes(raw[1:3], "big")])
        if n_book != book[0] or (t == "H" and slot >= 0):
            add = (0, 0, 0)
            if t in "AF":
                add = (1, BID if raw[a_side] == ord("B") else ASK,
                       int.from_bytes(raw[a_price:a_price + 4], "big"))
            elif t == "U" and order[0] is not None:
                add = (1, order[0][1], int.from_bytes(raw[u_price:u_price + 4], "big"))
            if order[0] is not None:
                slot = order[0][0]
            top = st.top(1)[slot, 0]
            events.append((i + 1, int.from_bytes(raw[5:11], "big"), slot, int(t != "H"),
                           int(st.trading_state[slot]),
                           (int(top[0]), 1) if st.lv_n[slot, ASK] else (0, 0),
                           (int(top[2]), 1) if st.lv_n[slot, BID] else (0, 0), add))
        book[0] = n_book
        k[0] = i + 1
        if i + 1 < len(msgs):
            order[0] = _stored_order(st, msgs[i + 1])

    res = emu.run(*messages_buffer(msgs), chunk=1, progress=step)
    rows, counters = _rows_counters(res)
    return rows, counters, events, emu
