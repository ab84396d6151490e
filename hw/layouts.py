"""Stream payload layouts shared between gateware blocks (one definition, imported everywhere)."""

from amaranth.lib import data

__all__ = ["DecodedMessage", "BookUpdateHeader"]


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
