"""Message streams and the emulator scoreboard for the book builder benches.

* :func:`fault_day` — a generated day (tickwire.host.gen) with the faults that stress what
  the book builder must get right put in: many symbols (tracked and not), duplicate and
  unknown references, overfills, zero-share corner cases, replaces onto their own reference,
  more distinct prices than ``levels`` (eviction, level_miss), hash collisions (run it with a
  small ``order_buckets``), P/Q/H state messages and bursts on one slot (back-to-back
  hazards).
* :func:`to_decoded` — an ITCH message as the ``DecodedMessage`` fields the decoder hands the
  book builder (hw/layouts.py).
* :func:`emulator_rows` — the numba emulator's top-N rows and book counters: the scoreboard;
  :func:`emulator_case` adds the BookEvent of every message, the emulator stepped one message
  at a time.
"""

from __future__ import annotations

import numpy as np

from tickwire.host import gen, itch
from tickwire.spec.capacity import GATEWARE, ROW_DEPTH

__all__ = ["FIELDS", "to_decoded", "BOOK_FAULTS", "fault_day", "emulator_rows",
           "emulator_case", "BOOK_COUNTERS"]

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


#: The faults the book benches put into a generated day (tickwire.host.gen.inject_faults):
#: duplicate and unknown references, overfills, zero shares, a bad side, replaces onto their
#: own reference, prices far from the touch and orders left behind it (evictions, level
#: misses, full buckets), references with high bits (the bucket hash folds all 64) and halts.
BOOK_FAULTS = dict(duplicate_ref=0.01, unknown_ref=0.01, overfill=0.03, zero_shares=0.02,
                   bad_side=0.005, reused_ref=0.1, far_price=0.2, deep_book=0.2, wide_ref=0.3,
                   halt=0.005)


def fault_day(seed: int, n: int, symbols: int, **rates: float
              ) -> tuple[list[bytes], list[str]]:
    """A generated day of ``n`` messages over ``symbols`` stocks (tickwire.host.gen: bursts,
    one busy symbol at a time, P/Q/H/S messages) with :data:`BOOK_FAULTS` put in, ``rates``
    overriding them; returns (messages, stock name of locate i + 1)."""
    day = gen.generate_day(symbols=symbols, messages=n, seed=seed)
    return gen.inject_faults(day, seed, dict(BOOK_FAULTS, **rates)), day.symbols


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
