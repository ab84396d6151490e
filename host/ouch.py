"""NASDAQ OUCH 5.0 order entry: the message table, encode and decode.

Table-driven like :mod:`tickwire.host.itch`: :data:`MESSAGES` holds one field table per
message and direction, and :func:`encode` / :func:`decode` are driven by it. All integers are
big-endian; prices are 8-byte signed integers with 4 implied decimals (1/10000 USD, the ITCH
scale); timestamps (server messages) are 8-byte nanoseconds since midnight; text fields are
ASCII, left-justified and space-padded on the wire, returned with trailing spaces stripped.

Messages marked ``appendage`` end with a 2-byte appendage length followed by that many bytes
of optional fields, each ``length(1) tag(1) value`` where ``length`` counts the tag and the
value. Decoding returns the raw bytes as ``appendage`` and the parsed fields as ``options``
(name -> value; unknown tags as ``tag_<n>`` -> bytes).

Directions: ``"client"`` (client to NASDAQ, "inbound" in the specification) and ``"server"``
(NASDAQ to client, "outbound"). Layouts follow the OUCH 5.0 specification; the Enter Order is
verified byte for byte against a real capture (tests/test_ouch.py).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Field", "Message", "MESSAGES", "OPTION_TAGS", "OuchError", "encode", "decode",
    "encode_options", "decode_options", "default_cl_ord_id", "enter_order",
    "encode_enter_order", "encode_replace_order", "encode_cancel_order",
    "encode_system_event", "encode_order_accepted", "encode_order_replaced",
    "encode_order_canceled", "encode_order_executed", "encode_order_rejected",
]

CLIENT = "client"
SERVER = "server"
DIRECTIONS = (CLIENT, SERVER)


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    size: int
    kind: str  # "u" unsigned, "i" signed, "a" text (stripped), "c" one character


@dataclass(frozen=True)
class Message:
    type: str
    name: str
    direction: str
    length: int  # fixed part, including the 2-byte appendage length when present
    fields: tuple[Field, ...]  # excluding the type byte and the appendage length
    appendage: bool

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"OUCH {self.direction} {self.type!r} has no field {name!r}")


class OuchError(ValueError):
    """A malformed OUCH message or bad field value; the text names what and where."""


# Field sizes and kinds shared by the messages (name -> (size, kind)).
_FIELD_TYPES = {
    "timestamp": (8, "u"), "user_ref_num": (4, "u"), "orig_user_ref_num": (4, "u"),
    "side": (1, "c"), "quantity": (4, "u"), "symbol": (8, "a"), "price": (8, "i"),
    "time_in_force": (1, "c"), "display": (1, "c"), "capacity": (1, "c"),
    "intermarket_sweep_eligibility": (1, "c"), "cross_type": (1, "c"),
    "cl_ord_id": (14, "a"), "order_reference_number": (8, "u"), "order_state": (1, "c"),
    "event_code": (1, "c"), "reason": (1, "c"), "liquidity_flag": (1, "c"),
    "match_number": (8, "u"), "reject_reason": (2, "u"),
}


def _msg(direction: str, type_: str, name: str, body: str, appendage: bool) -> Message:
    """Build a Message from a space-separated field list (offsets follow from the sizes)."""
    fields, off = [], 1
    for fname in body.split():
        size, kind = _FIELD_TYPES[fname]
        fields.append(Field(fname, off, size, kind))
        off += size
    return Message(type_, name, direction, off + (2 if appendage else 0), tuple(fields),
                   appendage)


_ENTER = ("user_ref_num side quantity symbol price time_in_force display capacity "
          "intermarket_sweep_eligibility cross_type cl_ord_id")
_ACCEPTED_TAIL = ("side quantity symbol price time_in_force display order_reference_number "
                  "capacity intermarket_sweep_eligibility cross_type order_state cl_ord_id")

# (direction, type, name, fields, appendage) from the OUCH 5.0 specification.
_TABLE = [
    (CLIENT, "O", "enter_order", _ENTER, True),  # 47 + appendage
    (CLIENT, "U", "replace_order",
     "orig_user_ref_num user_ref_num quantity price time_in_force display "
     "intermarket_sweep_eligibility cl_ord_id", True),  # 40 + appendage
    (CLIENT, "X", "cancel_order", "user_ref_num quantity", False),  # 9
    (SERVER, "S", "system_event", "timestamp event_code", False),  # 10
    (SERVER, "A", "order_accepted", "timestamp user_ref_num " + _ACCEPTED_TAIL, True),  # 64
    (SERVER, "U", "order_replaced",
     "timestamp orig_user_ref_num user_ref_num " + _ACCEPTED_TAIL, True),  # 68
    (SERVER, "C", "order_canceled", "timestamp user_ref_num quantity reason", False),  # 18
    (SERVER, "E", "order_executed",
     "timestamp user_ref_num quantity price liquidity_flag match_number", True),  # 36
    (SERVER, "J", "order_rejected", "timestamp user_ref_num reject_reason cl_ord_id",
     False),  # 29
]

#: (direction, type letter) -> Message.
MESSAGES: dict[tuple[str, str], Message] = {
    (d, t): _msg(d, t, n, body, app) for (d, t, n, body, app) in _TABLE}
_BY_NAME = {m.name: m for m in MESSAGES.values()}

#: Optional-field tags of the appendage: tag -> (name, kind). The value's size is given by
#: the TLV length byte, so the kind only says how to read it.
OPTION_TAGS: dict[int, tuple[str, str]] = {
    2: ("firm", "a"), 3: ("min_qty", "u"), 4: ("customer_type", "c"), 5: ("max_floor", "u"),
    6: ("price_type", "c"), 7: ("peg_offset", "i"), 9: ("discretion_price", "i"),
    10: ("discretion_price_type", "c"), 11: ("discretion_peg_offset", "i"),
    12: ("post_only", "c"), 13: ("random_reserves", "u"), 14: ("route", "a"),
    15: ("expire_time", "u"), 16: ("trade_now", "c"), 17: ("handle_inst", "c"),
    18: ("bbo_weight_indicator", "c"), 19: ("reference_price", "i"),
    20: ("reference_price_type", "c"),
}
# Value sizes for encoding the integer options (text options take their own length).
_OPTION_SIZES = {"min_qty": 4, "max_floor": 4, "peg_offset": 4, "discretion_price": 8,
                 "discretion_peg_offset": 4, "random_reserves": 4, "expire_time": 4,
                 "reference_price": 8}
_OPTION_BY_NAME = {name: (tag, kind) for tag, (name, kind) in OPTION_TAGS.items()}


def _direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise OuchError(f"OUCH direction must be 'client' or 'server', not {direction!r}")
    return direction


def _put(out: bytearray, f: Field, v, what: str) -> None:
    if f.kind in "ui":
        v = int(v or 0)
        signed = f.kind == "i"
        lo = -(1 << (8 * f.size - 1)) if signed else 0
        hi = (1 << (8 * f.size - 1)) if signed else (1 << (8 * f.size))
        if not lo <= v < hi:
            raise OuchError(f"{what}.{f.name}={v} does not fit {f.size} bytes")
        out[f.offset:f.offset + f.size] = v.to_bytes(f.size, "big", signed=signed)
    else:
        s = v if v is not None else ""
        s = s.encode("ascii") if isinstance(s, str) else bytes(s)
        if len(s) > f.size:
            raise OuchError(f"{what}.{f.name}={s!r} longer than {f.size} bytes")
        out[f.offset:f.offset + f.size] = s.ljust(f.size, b" ")


def _get(raw, f: Field):
    chunk = bytes(raw[f.offset:f.offset + f.size])
    if f.kind == "u":
        return int.from_bytes(chunk, "big")
    if f.kind == "i":
        return int.from_bytes(chunk, "big", signed=True)
    return chunk.decode("latin-1").rstrip(" ")


def encode_options(options: dict | list | tuple) -> bytes:
    """Appendage bytes for optional fields given as ``{name: value}`` or ``[(tag, bytes)]``.

    Names are those of :data:`OPTION_TAGS`; ``tag_<n>`` or an integer tag passes raw bytes.
    """
    items = options.items() if isinstance(options, dict) else options
    out = bytearray()
    for key, value in items:
        if isinstance(key, int) or (isinstance(key, str) and key.startswith("tag_")):
            tag = key if isinstance(key, int) else int(key[4:])
            val = bytes(value)
        elif key in _OPTION_BY_NAME:
            tag, kind = _OPTION_BY_NAME[key]
            if kind in "ui":
                size = _OPTION_SIZES[key]
                try:
                    val = int(value).to_bytes(size, "big", signed=kind == "i")
                except OverflowError:
                    raise OuchError(f"OUCH option {key}={value} does not fit {size} bytes") \
                        from None
            else:
                val = value.encode("ascii") if isinstance(value, str) else bytes(value)
                if kind == "c" and len(val) != 1:
                    raise OuchError(f"OUCH option {key}={value!r} must be one character")
        else:
            raise OuchError(f"unknown OUCH option {key!r}")
        if not 0 <= tag < 256 or len(val) + 1 > 255:
            raise OuchError(f"OUCH option tag {tag} with {len(val)} value bytes does not fit")
        out += bytes((len(val) + 1, tag)) + val
    return bytes(out)


def decode_options(raw: bytes | memoryview, where: str = "") -> dict:
    """Parse appendage bytes into ``{name: value}`` (unknown tags: ``tag_<n>`` -> bytes)."""
    raw = bytes(raw)
    out: dict = {}
    off = 0
    while off < len(raw):
        n = raw[off]
        if n < 1:
            raise OuchError(f"{where}appendage offset {off}: optional field length 0")
        if off + 1 + n > len(raw):
            raise OuchError(f"{where}appendage offset {off}: optional field of length {n} "
                            f"runs past the appendage ({len(raw) - off - 1} bytes left)")
        tag, val = raw[off + 1], raw[off + 2:off + 1 + n]
        name, kind = OPTION_TAGS.get(tag, (f"tag_{tag}", "raw"))
        if kind == "u":
            out[name] = int.from_bytes(val, "big")
        elif kind == "i":
            out[name] = int.from_bytes(val, "big", signed=True)
        elif kind in "ac":
            out[name] = val.decode("latin-1").rstrip(" ")
        else:
            out[name] = val
        off += 1 + n
    return out


def encode(type_: str, direction: str, **fields) -> bytes:
    """Encode one message; missing integers are 0, missing text is spaces.

    For messages with an appendage pass ``appendage=`` (raw bytes) or ``options=`` (a dict
    for :func:`encode_options`); ``appendage_length``, when given, must match.
    """
    spec = MESSAGES.get((_direction(direction), type_))
    if spec is None:
        raise OuchError(f"unknown OUCH {direction} message type {type_!r}")
    what = f"OUCH {direction} {type_!r} ({spec.name})"
    extra = {"type", "appendage", "options", "appendage_length"} if spec.appendage else {"type"}
    unknown = set(fields) - {f.name for f in spec.fields} - extra
    if unknown:
        raise OuchError(f"{what} has no field(s) {sorted(unknown)}")
    if fields.get("type", type_) != type_:
        raise OuchError(f"{what}: type field says {fields['type']!r}")
    out = bytearray(spec.length)
    out[0] = ord(type_)
    for f in spec.fields:
        _put(out, f, fields.get(f.name), what)
    if spec.appendage:
        app = fields.get("appendage")
        opts = fields.get("options")
        if app is None:
            app = encode_options(opts) if opts else b""
        else:
            app = bytes(app)
            if opts is not None and decode_options(app, f"{what} ") != dict(opts):
                raise OuchError(f"{what}: options do not match the appendage bytes")
        if len(app) > 0xFFFF:
            raise OuchError(f"{what}: appendage of {len(app)} bytes is too long")
        given = fields.get("appendage_length")
        if given is not None and given != len(app):
            raise OuchError(f"{what}: appendage_length={given} but appendage has "
                            f"{len(app)} bytes")
        out[spec.length - 2:spec.length] = len(app).to_bytes(2, "big")
        out += app
    return bytes(out)


def decode(msg: bytes | memoryview, direction: str, where: str = "") -> dict:
    """Decode one whole message; its length must match the type (and appendage length)."""
    mv = memoryview(msg)
    _direction(direction)
    if len(mv) == 0:
        raise OuchError(f"{where}empty OUCH {direction} message")
    t = chr(mv[0])
    spec = MESSAGES.get((direction, t))
    if spec is None:
        raise OuchError(f"{where}offset 0: unknown OUCH {direction} message type "
                        f"0x{mv[0]:02x} ({t!r})")
    what = f"{where}OUCH {direction} {t!r} ({spec.name})"
    if len(mv) < spec.length:
        missing = next((f for f in spec.fields if f.offset + f.size > len(mv)), None)
        at = (f"field {missing.name!r} at offset {missing.offset}" if missing
              else f"appendage length at offset {spec.length - 2}")
        raise OuchError(f"{what} truncated: {len(mv)} of {spec.length} bytes, {at} "
                        f"incomplete")
    out: dict = {"type": t}
    for f in spec.fields:
        out[f.name] = _get(mv, f)
    if spec.appendage:
        n = int.from_bytes(mv[spec.length - 2:spec.length], "big")
        if len(mv) != spec.length + n:
            raise OuchError(f"{what}: appendage length {n} at offset {spec.length - 2} "
                            f"needs {spec.length + n} bytes, message has {len(mv)}")
        app = bytes(mv[spec.length:])
        out["appendage_length"] = n
        out["appendage"] = app
        out["options"] = decode_options(app, f"{what} ")
    elif len(mv) != spec.length:
        raise OuchError(f"{what}: {len(mv)} bytes, spec length is {spec.length}")
    return out


def default_cl_ord_id(user_ref_num: int) -> str:
    """tickwire's ClOrdID: ``TW`` + the user reference number as 12 decimal digits."""
    if not 0 <= user_ref_num < 10**12:
        raise OuchError(f"user_ref_num {user_ref_num} does not fit 12 decimal digits")
    return f"TW{user_ref_num:012d}"


def enter_order(user_ref_num: int, side: str, quantity: int, symbol: str, price: int,
                time_in_force: str = "3", display: str = "Y", capacity: str = "P",
                intermarket_sweep: str = "N", cross_type: str = "N",
                cl_ord_id: str | None = None, appendage: bytes = b"") -> bytes:
    """The Enter Order tickwire sends (docs/architecture.md "Order encoding"): IOC by default,
    ClOrdID ``TW`` + 12-digit user_ref_num unless given."""
    return encode("O", CLIENT, user_ref_num=user_ref_num, side=side, quantity=quantity,
                  symbol=symbol, price=price, time_in_force=time_in_force, display=display,
                  capacity=capacity, intermarket_sweep_eligibility=intermarket_sweep,
                  cross_type=cross_type,
                  cl_ord_id=default_cl_ord_id(user_ref_num) if cl_ord_id is None
                  else cl_ord_id, appendage=appendage)


def _encoder(name: str):
    spec = _BY_NAME[name]

    def enc(**fields) -> bytes:
        return encode(spec.type, spec.direction, **fields)

    enc.__name__ = f"encode_{name}"
    enc.__doc__ = (f"Encode an OUCH {spec.direction} {spec.type!r} {name} message "
                   f"(fields: {', '.join(f.name for f in spec.fields)}"
                   f"{', appendage/options' if spec.appendage else ''}).")
    return enc


encode_enter_order = _encoder("enter_order")
encode_replace_order = _encoder("replace_order")
encode_cancel_order = _encoder("cancel_order")
encode_system_event = _encoder("system_event")
encode_order_accepted = _encoder("order_accepted")
encode_order_replaced = _encoder("order_replaced")
encode_order_canceled = _encoder("order_canceled")
encode_order_executed = _encoder("order_executed")
encode_order_rejected = _encoder("order_rejected")
