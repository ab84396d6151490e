"""Payloads of the order path: book builder -> trigger engine -> pre-trade risk -> order egress.

Sides: a *book* side (``BookEvent.add.side``, ``FastAdd.side``) is 0 bid (ITCH ``B``), 1 ask
(ITCH ``S``), as in hw/book; an *order* side (``Candidate.side``) is 0 buy, 1 sell, as in the
emulator (``BID``/``ASK`` = buy/sell). Prices are ITCH units (1/10000 USD), timestamps ITCH
nanoseconds since midnight (48 bits), ``stamp`` values cycles of the free-running counter
(:class:`tickwire.hw.egress.latency.CycleCounter`).
"""

from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..layouts import AddInfo, BookEvent, Quote  # noqa: F401 (re-exported)
from .common import SLOT_BITS

__all__ = [
    "STATE_TRADING", "BOOK_BID", "BOOK_ASK", "ORDER_BUY", "ORDER_SELL",
    "Quote", "AddInfo", "BookEvent", "FastAdd", "TriggerRow", "Candidate", "CutThroughLink",
    "InFlightEntry",
]

STATE_TRADING = ord("T")
BOOK_BID, BOOK_ASK = 0, 1
ORDER_BUY, ORDER_SELL = 0, 1


class FastAdd(data.Struct):
    """Cut-through input from the ITCH decoder: presented (``valid``) in the cycle the last
    byte of an add's price field arrives. ``side`` is the book side of the added order
    (0 bid, 1 ask; a U may be presented only when the side of its original order is known),
    ``slot`` the slot the book builder will use for the message. ``stamp``/``stamp_valid``
    as in BookEvent (without it the latency starts at the strobe)."""
    slot: SLOT_BITS
    side: 1
    price: 32
    sequence: 64
    timestamp: 48
    stamp: 32
    stamp_valid: 1


class InFlightEntry(data.Struct):
    """A message on its way to the trigger engine with wire triggers (hw/trigger/cutthrough.py
    "Wire triggers"): ``hazard`` (its evaluation could fire, re-arm or change a trading state
    and has not been done), ``taken`` (a strobe of it was evaluated: the engine skips its
    event; a ``held`` one, whose strobe the port walker presents again, says so from its
    late take on), ``held``, the low 16 bits of its sequence number."""
    hazard: 1
    taken: 1
    held: 1
    seq: 16


class TriggerRow(data.Struct):
    """One slot of the host-written trigger table (docs/architecture.md "Trigger engine")."""
    buy_price: 32
    sell_price: 32
    quantity: 32
    enable_buy: 1
    enable_sell: 1
    rearm: 1


class CutThroughLink(wiring.Signature):
    """What the cut-through producer and the trigger engine tell each other besides ``fast``
    and ``quiet`` (from the producer's side; hw/trigger/cutthrough.py "Wire triggers"):
    ``ev_skip``/``ev_skip_seq`` the event waiting on ``ev`` is a taken message's (low 16 bits
    of its sequence, for the check); ``fast_took`` the previous cycle's strobe was taken;
    ``probe_slot`` -> ``probe_row``/``probe_valid`` a slot's trigger row now (valid: the slot
    is in range)."""

    def __init__(self):
        super().__init__({
            "ev_skip": Out(1), "ev_skip_seq": Out(16), "fast_took": In(1),
            "probe_slot": Out(SLOT_BITS), "probe_row": In(TriggerRow), "probe_valid": In(1),
        })


class Candidate(data.Struct):
    """A fired trigger: an IOC order for pre-trade risk. ``ref_price`` is the slot's collar
    reference; ``stamp`` the cycle its latency counts from (the input's ``stamp`` if valid,
    else the cycle the BookEvent was accepted or the cut-through strobe taken); ``fast`` 1
    when it came from the cut-through path."""
    slot: SLOT_BITS
    side: 1
    price: 32
    quantity: 32
    ref_price: 32
    timestamp: 48
    sequence: 64
    stamp: 32
    fast: 1
    #: cycle the engine evaluated the BookEvent or cut-through strobe (its trigger decision)
    t_event: 32
