"""Stream payload layouts shared between gateware blocks (one definition, imported everywhere)."""

from amaranth.lib import data

__all__ = ["DecodedMessage", "BookUpdateHeader", "Quote", "AddInfo", "BookEvent", "BadRange"]


class DecodedMessage(data.Struct):
    """One decoded ITCH 5.0 message, as the ITCH decoder hands it to the book builder.

    Only the fields the pipeline uses are carried; which field a message type fills follows
    docs/architecture.md (``ref`` is ``original_order_reference_number`` for ``U``, ``shares``
    holds shares / executed_shares / canceled_shares, the low 32 bits of ``cross_shares`` for
    ``Q``; ``price`` holds price / execution_price / cross_price; ``stock`` the 8 ASCII bytes of
    the stock field, first character in the most significant byte; ``state`` is
    ``trading_state`` for ``H`` and ``event_code`` for ``S``).
    """
    type: 8           # ASCII message type
    locate: 16        # stock_locate
    timestamp: 48     # ns since midnight
    sequence: 64      # MoldUDP64 sequence number of this message
    ref: 64
    new_ref: 64
    side: 8           # ASCII 'B' / 'S' for A F P, else 0
    shares: 32
    price: 32
    stock: 64
    state: 8


class BookUpdateHeader(data.Struct):
    """Header of a top-N book update emitted by the book builder after a visible change."""
    sequence: 64
    timestamp: 48
    slot: 8


# ---- book builder -> trigger engine

class Quote(data.Struct):
    """Best price of one side of a slot's book; ``valid`` 0: the side is empty."""
    price: 32
    valid: 1


class AddInfo(data.Struct):
    """The add a message made (A, F; the new order of a U whose original order was found):
    ``valid``, the book ``side`` (0 bid, 1 ask) and the ``price``. It counts for the trigger
    condition even when the book refused to store it (duplicate_ref, order_table_full), see
    docs/architecture.md "Trigger engine"."""
    valid: 1
    side: 1
    price: 32


class BookEvent(data.Struct):
    """What the book builder hands the trigger engine after each message of a tracked slot.

    ``evaluate`` 1: a book-affecting message (A F E C X D U): triggers are evaluated with the
    post-message best ask/bid and ``trading_state``. ``evaluate`` 0: a state-only event (an
    H message of a tracked slot): only the engine's copy of the slot's trading state (used
    by the cut-through path) is updated. ``sequence``/``timestamp`` are the message's.
    ``stamp``/``stamp_valid``: optionally, the cycle-counter value at which the message's
    tick-to-trade latency starts (e.g. the first beat of the frame that carried it); without
    it the latency of an order it fires starts at the event's arrival.
    """
    sequence: 64
    timestamp: 48
    slot: 8
    evaluate: 1
    trading_state: 8
    best_ask: Quote
    best_bid: Quote
    add: AddInfo
    stamp: 32
    stamp_valid: 1


class BadRange(data.Struct):
    """Feed -> order egress: the messages ``lo`` .. ``hi - 1`` (MoldUDP64 sequence numbers)
    came in a frame whose FCS turned out bad after they were taken (docs/architecture.md
    "Bad FCS after cut-through"). ``hi`` is exclusive."""
    lo: 64
    hi: 64
