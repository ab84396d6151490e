"""Layouts of the device's streams that the host and the gateware both write down.

The 64-bit MAC beat, its fields in order, LSB first: the feed's ingress (AXI-stream, no
``ready``) and the order egress (with ``ready``) carry the same beat. hw/feed/layouts.py (``AxiStreamSignature``),
hw/egress/layouts.py (``OrderStreamSignature``) and hw/pipeline.py (``OrderBeat``) build their
ports from it, the RTL harness declares its input ports with it, and backends/wire.py packs
feed beats and unpacks order beats by it.
"""

from __future__ import annotations

__all__ = ["beat_fields", "BEAT_FIELDS", "BEAT_BITS", "field_offsets", "BOOK_BEAT",
           "book_row_bits", "book_beats"]


def beat_fields(width: int = 64) -> tuple[tuple[str, int], ...]:
    """(name, bits) of one beat of ``width`` data bits: ``data`` (byte 0 in lane 0),
    ``keep`` (byte enables, contiguous from lane 0), ``first``, ``last``, ``user``: on the last
    beat, the frame's FCS is bad -- on the feed, the MAC found it so after forwarding the frame
    (cut-through); on the order egress, the MAC is to end the frame with a bad FCS, an abort
    (docs/architecture.md "Bad FCS after cut-through")."""
    if not isinstance(width, int) or width < 8 or width % 8:
        raise TypeError(f"AXI-stream width must be a positive multiple of 8 bits, not "
                        f"{width!r}")
    return (("data", width), ("keep", width // 8), ("first", 1), ("last", 1), ("user", 1))


#: The 64-bit beat of the appliance's two feed lines and of its order output.
BEAT_FIELDS = beat_fields(64)
#: Bits of one packed beat (75).
BEAT_BITS = sum(w for _, w in BEAT_FIELDS)


def field_offsets(fields) -> dict[str, int]:
    """Bit offset of each field when ``fields`` are packed LSB first."""
    out, pos = {}, 0
    for name, w in fields:
        out[name] = pos
        pos += w
    return out


#: Bits of one beat of the book-row stream a board sends to its host (``m_axis_book``).
BOOK_BEAT = 128


def book_row_bits(depth: int) -> int:
    """Bits of one book row (hw/book/layouts.py ``book_update_layout``): sequence 64,
    timestamp 48, slot 8, then per level ask price, ask size, bid price, bid size, 32 each."""
    return 64 + 48 + 8 + depth * 4 * 32


def book_beats(depth: int) -> int:
    """Beats of one book row on ``m_axis_book``: the row from bit 0, zero-padded."""
    return -(-book_row_bits(depth) // BOOK_BEAT)
