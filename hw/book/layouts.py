"""Layouts private to the book builder (the shared ones live in :mod:`tickwire.hw.layouts`)."""

from amaranth.hdl import unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..layouts import AddInfo, BookEvent, BookUpdateHeader, Quote  # noqa: F401

__all__ = [
    "TopLevel", "book_update_layout", "LevelEntry", "side_layout", "slot_levels_layout",
    "order_record_layout", "SlotState", "OpKind", "SIDE_BID", "SIDE_ASK",
    "PRICE_BITS", "SHARES_BITS", "COUNT_BITS", "Quote", "AddInfo", "BookEvent",
    "LocateLookup",
]

PRICE_BITS = 32
SHARES_BITS = 32
#: Width of a level's order count (wraps like the emulator's uint32; a level whose count
#: drops to 0 is removed).
COUNT_BITS = 32

#: Side encoding inside the book: bid (ITCH 'B') = 0, ask (ITCH 'S') = 1.
SIDE_BID = 0
SIDE_ASK = 1


class OpKind:
    """Kind of an order-table or level operation (2 bits)."""
    NOP = 0      # no change (state-only message, or a refused operation)
    ADD = 1      # order add / level add
    REDUCE = 2   # E C X: reduce by the message's shares
    DELETE = 3   # D and the first half of U: remove the order's remaining shares


class TopLevel(data.Struct):
    """One row entry k of the top-N output (empty level: price 0, size 0)."""
    ask_price: 32
    ask_size: 32
    bid_price: 32
    bid_size: 32


def book_update_layout(depth: int) -> data.StructLayout:
    """Payload of the top-N update stream: header + ``depth`` × (ask p, ask s, bid p, bid s)."""
    return data.StructLayout({
        "header": BookUpdateHeader,
        "levels": data.ArrayLayout(TopLevel, depth),
    })


class LevelEntry(data.Struct):
    price: PRICE_BITS
    shares: SHARES_BITS
    count: COUNT_BITS


def side_layout(levels: int) -> data.StructLayout:
    """A sorted side: ``valid`` is a thermometer (entries 0..n-1 valid), entry 0 is the best."""
    return data.StructLayout({
        "valid": unsigned(levels),
        "entry": data.ArrayLayout(LevelEntry, levels),
    })


def slot_levels_layout(levels: int) -> data.StructLayout:
    """One word of the level memory: both sides of a slot (indexed by side: bid 0, ask 1)."""
    return data.ArrayLayout(side_layout(levels), 2)


def order_record_layout(slot_bits: int) -> data.StructLayout:
    return data.StructLayout({
        "valid": 1,
        "ref": 64,
        "slot": unsigned(slot_bits),
        "side": 1,
        "price": PRICE_BITS,
        "shares": SHARES_BITS,
    })


class SlotState(data.Struct):
    """What the trigger engine reads per slot."""
    best_bid_price: 32
    best_bid_size: 32
    best_ask_price: 32
    best_ask_size: 32
    trading_state: 8
    last_price: 32
    last_shares: 32


class LocateLookup(wiring.Signature):
    """A read port of the book's locate map, from the reader's side: ``addr`` (a stock
    locate) in cycle t; in t+1 ``valid`` (mapped to ``slot``: permanent once 1) and
    ``untracked`` (seen and not tracked: permanent)."""

    def __init__(self, slot_bits: int):
        self.slot_bits = slot_bits
        super().__init__({"addr": Out(16), "valid": In(1), "slot": In(slot_bits),
                          "untracked": In(1)})

    def __eq__(self, other):
        return isinstance(other, LocateLookup) and other.slot_bits == self.slot_bits
