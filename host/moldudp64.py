"""MoldUDP64: packet codec, the sequence tracker and the pure-Python reference of the feed.

:class:`SequenceTracker` and :func:`reference_feed` are the executable form of
``docs/architecture.md`` ("Feed: frames and MoldUDP64"). They are written for clarity, not
speed; the numba feed stage (:mod:`tickwire.host.emu.feed`) must give identical results.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterable

from . import itch
from ..spec.counters import FEED_COUNTERS as COUNTERS
from .framing import FRAME_REASONS, FcsError, UdpDatagram, group_table, parse_udp_frame

__all__ = [
    "HEADER_LEN", "HEARTBEAT", "END_OF_SESSION", "MoldError", "MoldPacket", "pack",
    "heartbeat", "end_of_session", "unpack", "session_bytes", "session_str",
    "SequenceTracker", "COUNTERS", "ReferenceMessage", "ReferenceFeed", "reference_feed",
]

HEADER_LEN = 20
HEARTBEAT = 0
END_OF_SESSION = 0xFFFF

#: Every feed counter, in a fixed order (the numba stage returns them in this order).


class MoldError(ValueError):
    """A malformed MoldUDP64 packet; the text names the byte offset."""


def session_bytes(session: str | bytes) -> bytes:
    """The 10-byte wire form of a session (text is space padded on the right)."""
    b = session.encode("latin-1") if isinstance(session, str) else bytes(session)
    if len(b) > 10:
        raise MoldError(f"session {session!r} is longer than 10 bytes")
    return b.ljust(10, b" ")


def session_str(raw: bytes) -> str:
    """The text form of a wire session: latin-1, trailing spaces stripped (as ITCH text)."""
    return bytes(raw).decode("latin-1").rstrip(" ")


@dataclass
class MoldPacket:
    session: str
    sequence: int
    count: int                       # header count: 0 heartbeat, 0xFFFF end of session
    messages: list[bytes]            # the messages framed (all of them unless overrun)
    offsets: list[int] = field(default_factory=list)  # each message's offset in the payload
    overrun: int | None = None       # payload offset of the length prefix that overran

    @property
    def is_heartbeat(self) -> bool:
        return self.count == HEARTBEAT

    @property
    def is_end_of_session(self) -> bool:
        return self.count == END_OF_SESSION


def pack(session: str | bytes, seq: int, messages: Iterable[bytes]) -> bytes:
    """A MoldUDP64 packet carrying ``messages`` (none: a heartbeat)."""
    messages = [bytes(m) for m in messages]
    if len(messages) >= END_OF_SESSION:
        raise MoldError(f"{len(messages)} messages do not fit one packet (max 65534)")
    out = [session_bytes(session), struct.pack(">QH", seq, len(messages))]
    for m in messages:
        if len(m) > 0xFFFF:
            raise MoldError(f"message of {len(m)} bytes is too long for MoldUDP64")
        out.append(struct.pack(">H", len(m)))
        out.append(m)
    return b"".join(out)


def heartbeat(session: str | bytes, seq: int) -> bytes:
    """A heartbeat: count 0, ``seq`` the next sequence number to be sent."""
    return session_bytes(session) + struct.pack(">QH", seq, HEARTBEAT)


def end_of_session(session: str | bytes, seq: int) -> bytes:
    """An end-of-session packet: count 0xFFFF, no messages."""
    return session_bytes(session) + struct.pack(">QH", seq, END_OF_SESSION)


def unpack(payload: bytes, *, strict: bool = True) -> MoldPacket:
    """Parse a MoldUDP64 packet (a UDP payload).

    Truncation (< 20 bytes) always raises :class:`MoldError`. A message whose length prefix or
    body runs past the payload raises in ``strict`` mode; otherwise the messages before it are
    returned and ``overrun`` holds the prefix's offset. Bytes after the ``count``-th message
    are ignored (padding).
    """
    payload = bytes(payload)
    if len(payload) < HEADER_LEN:
        raise MoldError(f"offset 0: MoldUDP64 packet of {len(payload)} bytes is shorter than "
                        f"the {HEADER_LEN}-byte header")
    seq, count = struct.unpack_from(">QH", payload, 10)
    pkt = MoldPacket(session_str(payload[:10]), seq, count, [])
    n = 0 if count == END_OF_SESSION else count
    off = HEADER_LEN
    for i in range(n):
        if off + 2 > len(payload):
            why = f"message {i + 1} of {n}: length prefix runs past the {len(payload)}-byte packet"
        else:
            ln = (payload[off] << 8) | payload[off + 1]
            if off + 2 + ln <= len(payload):
                pkt.messages.append(payload[off + 2:off + 2 + ln])
                pkt.offsets.append(off + 2)
                off += 2 + ln
                continue
            why = (f"message {i + 1} of {n}: length {ln} runs past the "
                   f"{len(payload)}-byte packet")
        if strict:
            raise MoldError(f"offset {off}: {why}")
        pkt.overrun = off
        break
    return pkt


class SequenceTracker:
    """Reference MoldUDP64 sequence tracking (one tracker shared by lines A and B).

    Call :meth:`accept` for each packet in arrival order. The tracker remembers the current
    session and the one before it; see docs/architecture.md for the rules.
    """

    def __init__(self) -> None:
        self.session: bytes | None = None
        self.previous: bytes | None = None
        self.expected = 0
        self.packets = self.gaps = self.gap_messages = 0
        self.last_gap_first = self.last_gap_last = 0
        self.dup_packets = self.stale_session = 0
        self.heartbeats = self.end_of_session = self.session_changes = 0
        self.gap_ranges: list[tuple[bytes, int, int]] = []  # every gap, not only the last
        self.last_status = ""

    def accept(self, session: str | bytes, seq: int, count: int,
               framed: int | None = None) -> tuple[int, int]:
        """Track one packet; return ``(first, n)``: deliver its messages ``first .. first+n-1``.

        ``count`` is the header count; ``framed`` the number of messages actually present
        (less than ``count`` after a ``mold_overrun``; default ``count``). ``last_status`` is
        set to ``"stale_session"``, ``"duplicate"`` or ``"accepted"``.
        """
        sess = session_bytes(session)
        if self.session is None or (sess != self.session and sess != self.previous):
            if self.session is not None:
                self.session_changes += 1
                self.previous = self.session
            self.session = sess
            self.expected = seq
        elif sess != self.session:
            self.stale_session += 1
            self.last_status = "stale_session"
            return 0, 0
        n = 0 if count == END_OF_SESSION else count
        if n > 0 and seq + n <= self.expected:
            self.dup_packets += 1
            self.last_status = "duplicate"
            return 0, 0
        self.packets += 1
        self.last_status = "accepted"
        if seq > self.expected:
            self.gaps += 1
            self.gap_messages += seq - self.expected
            self.last_gap_first, self.last_gap_last = self.expected, seq - 1
            self.gap_ranges.append((sess, self.expected, seq - 1))
        if count == HEARTBEAT:
            self.heartbeats += 1
        elif count == END_OF_SESSION:
            self.end_of_session += 1
        m = n if framed is None else min(framed, n)
        first = min(max(0, self.expected - seq), n)
        self.expected = max(self.expected, seq + m)
        return first, max(0, m - first)

    def counters(self) -> dict[str, int]:
        names = ("packets", "gaps", "gap_messages", "last_gap_first", "last_gap_last",
                 "dup_packets", "stale_session", "heartbeats", "end_of_session",
                 "session_changes")
        return {k: getattr(self, k) for k in names}


@dataclass(frozen=True)
class ReferenceMessage:
    sequence: int
    frame_index: int
    offset: int        # offset of the message's type byte in its frame
    data: bytes


@dataclass
class ReferenceFeed:
    messages: list[ReferenceMessage]
    counters: dict[str, int]
    session: str | None              # the first session seen (text form)
    frame_status: list[str]          # per frame: a drop reason, "duplicate", "stale_session",
    #                                  "mold_overrun" or "accepted"


def reference_feed(frames: Iterable[bytes], groups=None, *, check_ip_checksum: bool = True,
                   track_sequence: bool = True) -> ReferenceFeed:
    """The whole feed stage in plain Python: frame checks, MoldUDP64, sequence tracking and the
    per-message type/length checks. Slow; the oracle for :mod:`tickwire.host.emu.feed`.

    ``track_sequence=False``: no tracker; every packet is accepted and all its framed messages
    delivered (for anonymised captures whose sessions and sequence numbers were zeroed)."""
    table = group_table(groups)
    c = dict.fromkeys(COUNTERS, 0)
    tracker = SequenceTracker()
    out: list[ReferenceMessage] = []
    status: list[str] = []
    first_session = None
    for fi, frame in enumerate(frames):
        c["frames"] += 1
        c["fcs_errors"] += isinstance(frame, FcsError)   # counted, otherwise taken as it came
        d = parse_udp_frame(frame, table, check_ip_checksum=check_ip_checksum)
        if isinstance(d, str):
            c[d] += 1
            status.append(d)
            continue
        assert isinstance(d, UdpDatagram)
        pkt = unpack(d.payload, strict=False)
        if first_session is None:
            first_session = pkt.session
        if track_sequence:
            first, n = tracker.accept(d.payload[:10], pkt.sequence, pkt.count,
                                      framed=len(pkt.messages))
            if tracker.last_status != "accepted":
                status.append(tracker.last_status)
                continue
        else:
            first, n = 0, len(pkt.messages)
            tracker.packets += 1
            tracker.heartbeats += pkt.count == HEARTBEAT
            tracker.end_of_session += pkt.count == END_OF_SESSION
        if pkt.overrun is not None:
            c["mold_overrun"] += 1
        status.append("accepted" if pkt.overrun is None else "mold_overrun")
        for i in range(first, first + n):
            m = pkt.messages[i]
            expect = itch.LENGTH_BY_BYTE[m[0]] if m else -1
            if expect == 0:
                c["unknown_type"] += 1
            elif expect != len(m):
                c["bad_length"] += 1
            else:
                c["messages"] += 1
                out.append(ReferenceMessage(pkt.sequence + i, fi,
                                            d.payload_offset + pkt.offsets[i], m))
    c.update(tracker.counters())
    return ReferenceFeed(out, c, first_session, status)
