"""NASDAQ TotalView-ITCH 5.0: the message table (single source of truth), decode and encode.

Every layout in the project — the Python codec here, the numba decoder of the emulator and the
gateware decoder — is derived from :data:`MESSAGES`. All integers are big-endian; prices are
4-byte integers in 1/10000 USD (MWCB levels in ``V`` are 8 bytes with 8 decimals); text fields
are ASCII, left-justified and space-padded on the wire, returned with trailing spaces stripped.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Field", "Message", "MESSAGES", "LENGTHS", "ItchError", "decode", "decode_at", "encode",
    "iter_messages", "field_offset",
]

# Field kinds: "u" unsigned integer, "a" ASCII text (stripped), "c" one ASCII character.
HEADER = (("stock_locate", 1, 2, "u"), ("tracking_number", 3, 2, "u"), ("timestamp", 5, 6, "u"))


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    size: int
    kind: str  # "u" | "a" | "c"


@dataclass(frozen=True)
class Message:
    type: str
    name: str
    length: int
    fields: tuple[Field, ...]  # including the common header, excluding the type byte

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"ITCH {self.type!r} has no field {name!r}")


def _msg(type_: str, name: str, length: int, body: str) -> Message:
    """Build a Message from a compact ``name@offset:size:kind`` list (kinds default to u)."""
    fields = [Field(n, o, s, k) for (n, o, s, k) in HEADER]
    for item in body.split():
        name_, rest = item.split("@")
        parts = rest.split(":")
        off, size = int(parts[0]), int(parts[1])
        kind = parts[2] if len(parts) > 2 else ("c" if size == 1 else "u")
        fields.append(Field(name_, off, size, kind))
    end = max(f.offset + f.size for f in fields)
    if end != length:
        raise AssertionError(f"ITCH {type_}: fields end at {end}, length {length}")
    return Message(type_, name, length, tuple(fields))


# Table from the ITCH 5.0 specification (checked against ../shared/docs/protocols.md).
_TABLE = [
    ("S", "system_event", 12, "event_code@11:1"),
    ("R", "stock_directory", 39,
     "stock@11:8:a market_category@19:1 financial_status_indicator@20:1 round_lot_size@21:4 "
     "round_lots_only@25:1 issue_classification@26:1 issue_sub_type@27:2:a authenticity@29:1 "
     "short_sale_threshold_indicator@30:1 ipo_flag@31:1 luld_reference_price_tier@32:1 "
     "etp_flag@33:1 etp_leverage_factor@34:4 inverse_indicator@38:1"),
    ("H", "stock_trading_action", 25,
     "stock@11:8:a trading_state@19:1 reserved@20:1 reason_code@21:4:a"),
    ("Y", "reg_sho_restriction", 20, "stock@11:8:a reg_sho_action@19:1"),
    ("L", "market_participant_position", 26,
     "mpid@11:4:a stock@15:8:a primary_market_maker@23:1 market_maker_mode@24:1 "
     "market_participant_state@25:1"),
    ("V", "mwcb_decline_level", 35, "level_1@11:8 level_2@19:8 level_3@27:8"),
    ("W", "mwcb_status", 12, "breached_level@11:1"),
    ("K", "ipo_quoting_period_update", 28,
     "stock@11:8:a ipo_quotation_release_time@19:4 ipo_quotation_release_qualifier@23:1 "
     "ipo_price@24:4"),
    ("J", "luld_auction_collar", 35,
     "stock@11:8:a auction_collar_reference_price@19:4 upper_auction_collar_price@23:4 "
     "lower_auction_collar_price@27:4 auction_collar_extension@31:4"),
    ("h", "operational_halt", 21, "stock@11:8:a market_code@19:1 operational_halt_action@20:1"),
    ("A", "add_order", 36,
     "order_reference_number@11:8 buy_sell_indicator@19:1 shares@20:4 stock@24:8:a price@32:4"),
    ("F", "add_order_mpid", 40,
     "order_reference_number@11:8 buy_sell_indicator@19:1 shares@20:4 stock@24:8:a price@32:4 "
     "attribution@36:4:a"),
    ("E", "order_executed", 31,
     "order_reference_number@11:8 executed_shares@19:4 match_number@23:8"),
    ("C", "order_executed_with_price", 36,
     "order_reference_number@11:8 executed_shares@19:4 match_number@23:8 printable@31:1 "
     "execution_price@32:4"),
    ("X", "order_cancel", 23, "order_reference_number@11:8 canceled_shares@19:4"),
    ("D", "order_delete", 19, "order_reference_number@11:8"),
    ("U", "order_replace", 35,
     "original_order_reference_number@11:8 new_order_reference_number@19:8 shares@27:4 "
     "price@31:4"),
    ("P", "trade", 44,
     "order_reference_number@11:8 buy_sell_indicator@19:1 shares@20:4 stock@24:8:a price@32:4 "
     "match_number@36:8"),
    ("Q", "cross_trade", 40,
     "cross_shares@11:8 stock@19:8:a cross_price@27:4 match_number@31:8 cross_type@39:1"),
    ("B", "broken_trade", 19, "match_number@11:8"),
    ("I", "noii", 50,
     "paired_shares@11:8 imbalance_shares@19:8 imbalance_direction@27:1 stock@28:8:a "
     "far_price@36:4 near_price@40:4 current_reference_price@44:4 cross_type@48:1 "
     "price_variation_indicator@49:1"),
    ("N", "rpii", 20, "stock@11:8:a interest_flag@19:1"),
    ("O", "dlcr_price_discovery", 48,
     "stock@11:8:a open_eligibility_status@19:1 minimum_allowable_price@20:4 "
     "maximum_allowable_price@24:4 near_execution_price@28:4 near_execution_time@32:8 "
     "lower_price_range_collar@40:4 upper_price_range_collar@44:4"),
]

MESSAGES: dict[str, Message] = {t: _msg(t, n, ln, body) for (t, n, ln, body) in _TABLE}
#: Message length by type letter.
LENGTHS: dict[str, int] = {t: m.length for t, m in MESSAGES.items()}
#: Length by type byte (0 = unknown type), as a 256-entry table for fast paths.
LENGTH_BY_BYTE: tuple[int, ...] = tuple(LENGTHS.get(chr(b), 0) for b in range(256))


def field_offset(type_: str, name: str) -> int:
    """Offset of a field inside a message of ``type_`` (for generated fast decoders)."""
    return MESSAGES[type_].field(name).offset


class ItchError(ValueError):
    """A malformed ITCH message; the text names what and where."""


def decode_at(buf: bytes | memoryview, offset: int = 0, length: int | None = None,
              where: str = "") -> dict:
    """Decode the message starting at ``buf[offset]``.

    ``length`` is the framing's length (MoldUDP64 or BinaryFILE prefix) when known; it must
    equal the type's length. ``where`` names the source for error messages.
    """
    mv = memoryview(buf)
    if offset >= len(mv):
        raise ItchError(f"{where}offset {offset}: no message (buffer is {len(mv)} bytes)")
    t = chr(mv[offset])
    spec = MESSAGES.get(t)
    if spec is None:
        raise ItchError(f"{where}offset {offset}: unknown ITCH message type 0x{mv[offset]:02x}")
    if length is not None and length != spec.length:
        raise ItchError(f"{where}offset {offset}: ITCH {t!r} framed as {length} bytes, "
                        f"spec length is {spec.length}")
    if offset + spec.length > len(mv):
        raise ItchError(f"{where}offset {offset}: ITCH {t!r} truncated "
                        f"({len(mv) - offset} of {spec.length} bytes)")
    raw = bytes(mv[offset:offset + spec.length])
    out: dict = {"type": t}
    for f in spec.fields:
        chunk = raw[f.offset:f.offset + f.size]
        if f.kind == "u":
            out[f.name] = int.from_bytes(chunk, "big")
        else:
            out[f.name] = chunk.decode("latin-1").rstrip(" ")
    return out


def decode(msg: bytes | memoryview) -> dict:
    """Decode one whole message (its length must match the type)."""
    return decode_at(msg, 0, len(msg))


def encode(type_: str, **fields) -> bytes:
    """Encode a message; missing integer fields are 0, missing text fields are spaces."""
    spec = MESSAGES.get(type_)
    if spec is None:
        raise ItchError(f"unknown ITCH message type {type_!r}")
    unknown = set(fields) - {f.name for f in spec.fields} - {"type"}
    if unknown:
        raise ItchError(f"ITCH {type_!r} has no field(s) {sorted(unknown)}")
    out = bytearray(spec.length)
    out[0] = ord(type_)
    for f in spec.fields:
        v = fields.get(f.name)
        if f.kind == "u":
            v = int(v or 0)
            if not 0 <= v < 1 << (8 * f.size):
                raise ItchError(f"ITCH {type_!r}.{f.name}={v} does not fit {f.size} bytes")
            out[f.offset:f.offset + f.size] = v.to_bytes(f.size, "big")
        else:
            s = (v if v is not None else "")
            s = s.encode("latin-1") if isinstance(s, str) else bytes(s)
            if len(s) > f.size:
                raise ItchError(f"ITCH {type_!r}.{f.name}={s!r} longer than {f.size} bytes")
            out[f.offset:f.offset + f.size] = s.ljust(f.size, b" ")
    return bytes(out)


def iter_messages(buf: bytes | memoryview, where: str = ""):
    """Iterate over a concatenation of bare messages (no length prefixes)."""
    off = 0
    mv = memoryview(buf)
    while off < len(mv):
        m = decode_at(mv, off, None, where)
        yield m
        off += LENGTHS[m["type"]]
