"""SoupBinTCP 3.0: the TCP framing that carries OUCH.

A packet is a 2-byte big-endian length (counting the packet type byte and the payload), the
packet type (one ASCII letter) and the payload. Alpha fields are left-justified and padded
with spaces on the right; numeric fields (sequence numbers) are ASCII digits right-justified
and padded with spaces on the left.
"""

from __future__ import annotations

__all__ = [
    "PACKET_TYPES", "SoupBinTCPError", "frame", "split_packets", "iter_packets",
    "PacketReader", "decode_packet", "login_request", "login_accepted", "login_rejected",
    "client_heartbeat", "server_heartbeat", "end_of_session", "logout_request", "debug",
    "unsequenced_data", "sequenced_data",
]

#: Packet type letter -> name (client to server: L U R O; server to client: A J S H Z; '+' both).
PACKET_TYPES = {
    "+": "debug", "A": "login_accepted", "J": "login_rejected", "S": "sequenced_data",
    "H": "server_heartbeat", "Z": "end_of_session", "L": "login_request",
    "U": "unsequenced_data", "R": "client_heartbeat", "O": "logout_request",
}
#: Login rejected reason codes.
REJECT_REASONS = {"A": "not_authorized", "S": "session_not_available"}
MAX_PAYLOAD = 0xFFFF - 1  # the length field counts the type byte


class SoupBinTCPError(ValueError):
    """A malformed SoupBinTCP packet or stream; the text names what and where."""


def frame(packet_type: str, payload: bytes = b"") -> bytes:
    """One packet: length (type + payload), type, payload."""
    if len(packet_type) != 1 or not packet_type.isascii():
        raise SoupBinTCPError(f"SoupBinTCP packet type must be one ASCII character, "
                              f"not {packet_type!r}")
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise SoupBinTCPError(f"SoupBinTCP payload of {len(payload)} bytes exceeds "
                              f"{MAX_PAYLOAD}")
    return (len(payload) + 1).to_bytes(2, "big") + packet_type.encode("ascii") + payload


def _packets(mv: memoryview):
    """Yield ``(type, payload, end)`` for each complete packet, ``end`` the stream offset after
    it; stop at a partial trailing packet."""
    off = 0
    while off + 2 <= len(mv):
        n = int.from_bytes(mv[off:off + 2], "big")
        if n == 0:
            raise SoupBinTCPError(f"stream offset {off}: SoupBinTCP packet length 0 "
                                  f"(no packet type)")
        if off + 2 + n > len(mv):
            return
        yield chr(mv[off + 2]), bytes(mv[off + 3:off + 2 + n]), off + 2 + n
        off += 2 + n


def split_packets(stream: bytes | memoryview) -> tuple[list[tuple[str, bytes]], bytes]:
    """Split a byte stream into complete packets and the unconsumed tail (a partial packet)."""
    mv = memoryview(stream)
    out, off = [], 0
    for t, payload, off in _packets(mv):
        out.append((t, payload))
    return out, bytes(mv[off:])


def iter_packets(stream: bytes | memoryview):
    """Yield ``(type, payload)`` for each complete packet; a partial trailing packet (a TCP
    read that ended mid-packet) is not yielded — use :class:`PacketReader` to keep it."""
    for t, payload, _ in _packets(memoryview(stream)):
        yield t, payload


class PacketReader:
    """Incremental reader for a TCP byte stream: ``feed`` chunks, get whole packets back."""

    def __init__(self) -> None:
        self.pending = b""
        self.offset = 0  # stream offset of ``pending``, for error messages

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        buf = self.pending + bytes(data)
        try:
            packets, self.pending = split_packets(buf)
        except SoupBinTCPError as e:
            raise SoupBinTCPError(f"{e} (stream bytes from {self.offset})") from None
        self.offset += len(buf) - len(self.pending)
        return packets


def _alpha(value: str, size: int, what: str) -> bytes:
    b = value.encode("ascii")
    if len(b) > size:
        raise SoupBinTCPError(f"SoupBinTCP {what}={value!r} longer than {size} bytes")
    return b.ljust(size, b" ")


def _numeric(value: int, size: int, what: str) -> bytes:
    s = str(int(value))
    if int(value) < 0 or len(s) > size:
        raise SoupBinTCPError(f"SoupBinTCP {what}={value} does not fit {size} digits")
    return s.rjust(size, " ").encode("ascii")


def login_request(username: str, password: str, session: str = "",
                  sequence: int = 0) -> bytes:
    """'L': username (6), password (10), requested session (10, blank = current) and
    requested sequence number (20; 0 = the most recent, 1 = from the start)."""
    return frame("L", _alpha(username, 6, "username") + _alpha(password, 10, "password")
                 + _alpha(session, 10, "session") + _numeric(sequence, 20, "sequence"))


def login_accepted(session: str, sequence: int) -> bytes:
    """'A': session (10) and the sequence number of the next sequenced message (20)."""
    return frame("A", _alpha(session, 10, "session") + _numeric(sequence, 20, "sequence"))


def login_rejected(reason: str) -> bytes:
    """'J': reason code 'A' (not authorized) or 'S' (session not available)."""
    if reason not in REJECT_REASONS:
        raise SoupBinTCPError(f"SoupBinTCP login reject reason must be 'A' or 'S', "
                              f"not {reason!r}")
    return frame("J", reason.encode("ascii"))


def client_heartbeat() -> bytes:
    return frame("R")


def server_heartbeat() -> bytes:
    return frame("H")


def end_of_session() -> bytes:
    return frame("Z")


def logout_request() -> bytes:
    return frame("O")


def debug(text: str) -> bytes:
    return frame("+", text.encode("ascii"))


def unsequenced_data(message: bytes) -> bytes:
    """'U': one client message (an OUCH order)."""
    return frame("U", message)


def sequenced_data(message: bytes) -> bytes:
    """'S': one server message (an OUCH reply)."""
    return frame("S", message)


# Payload layouts of the packets with fields: type -> ((name, size, kind), ...).
_LAYOUTS = {
    "L": (("username", 6, "a"), ("password", 10, "a"), ("session", 10, "a"),
          ("sequence", 20, "n")),
    "A": (("session", 10, "a"), ("sequence", 20, "n")),
    "J": (("reason", 1, "a"),),
}


def decode_packet(packet_type: str, payload: bytes, where: str = "") -> dict:
    """Fields of one packet: ``{"type", "name", ...}``; data packets carry ``message``,
    debug packets ``text``."""
    name = PACKET_TYPES.get(packet_type)
    if name is None:
        raise SoupBinTCPError(f"{where}unknown SoupBinTCP packet type {packet_type!r}")
    out: dict = {"type": packet_type, "name": name}
    payload = bytes(payload)
    if packet_type in _LAYOUTS:
        layout = _LAYOUTS[packet_type]
        size = sum(s for _, s, _ in layout)
        if len(payload) != size:
            raise SoupBinTCPError(f"{where}SoupBinTCP {name} payload is {len(payload)} "
                                  f"bytes, expected {size}")
        off = 0
        for fname, s, kind in layout:
            chunk = payload[off:off + s].decode("ascii")
            if kind == "n":
                digits = chunk.strip(" ")
                if not digits.isdigit():
                    raise SoupBinTCPError(f"{where}SoupBinTCP {name}.{fname} at payload "
                                          f"offset {off} is not numeric: {chunk!r}")
                out[fname] = int(digits)
            else:
                out[fname] = chunk.rstrip(" ")
            off += s
    elif packet_type in "US":
        out["message"] = payload
    elif packet_type == "+":
        out["text"] = payload.decode("latin-1")
    elif payload:
        raise SoupBinTCPError(f"{where}SoupBinTCP {name} carries {len(payload)} payload "
                              f"bytes, expected none")
    return out
