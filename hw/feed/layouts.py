"""Signatures and stream payloads of the feed blocks (frame parser -> MoldUDP64 -> ITCH).

Byte order everywhere: byte 0 of a frame (or payload) is in lane 0, bits ``[7:0]`` of
``data``; a beat of ``width`` bits carries bytes ``8i .. 8i+7`` of its frame. Multi-byte
protocol fields are big-endian on the wire and are presented as plain unsigned integers.
"""

from amaranth.hdl import Cat
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from tickwire.host.framing import FRAME_REASONS
from tickwire.host.moldudp64 import COUNTERS
from tickwire.spec.counters import LINE_FRAME_COUNTERS
from tickwire.spec.streams import beat_fields

__all__ = [
    "AxiStreamSignature", "GroupEntry", "PayloadBeat", "MoldHeader", "mold_header", "LineBeat",
    "MoldBeat", "PacketDone", "TrackerEvent", "Verdict", "FeedTap", "FRAME_REASONS",
    "FRAME_STATUS_PASS", "FEED_COUNTERS", "TRACKER_COUNTERS", "DECODER_COUNTERS", "WIDE_COUNTERS",
    "lane_byte",
]


class AxiStreamSignature(wiring.Signature):
    """Ingress from a MAC (source side): ``data``, ``keep`` (byte enables, contiguous from lane
    0, all ones except possibly on the last beat), ``first``, ``last``, ``valid``. There is no
    ``ready``: the consumer takes one beat per cycle. Frames carry no FCS; ``user`` on the last
    beat says the MAC found it wrong (a cut-through MAC flags the frame it has forwarded)."""

    def __init__(self, width: int = 64):
        fields = beat_fields(width)     # the one description of the beat (tickwire.spec)
        self.width = width
        super().__init__({**{name: Out(w) for name, w in fields}, "valid": Out(1)})

    def __eq__(self, other):
        return isinstance(other, AxiStreamSignature) and other.width == self.width

    def __repr__(self):
        return f"AxiStreamSignature({self.width})"


#: One entry of the host-set group table (destination IPv4 and UDP port of a MoldUDP64 feed).
GroupEntry = data.StructLayout({"valid": 1, "ip": 32, "port": 16})

#: Frame parser output: the UDP payload (MoldUDP64 packet) of an accepted frame, byte 0 of the
#: payload in lane 0 of the ``first`` beat. ``nbytes`` (1..8) valid bytes, from lane 0.
#: ``length``: the payload length the UDP header announces (constant over the packet); a frame
#: that ends early ends its payload with ``last`` before that length.
PayloadBeat = data.StructLayout({
    "data": 64, "nbytes": 4, "first": 1, "last": 1, "length": 16,
})

#: MoldUDP64 header of a buffered packet (line buffer -> tracker).
#: ``session``: the 10 session bytes, byte 0 in bits [7:0].
MoldHeader = data.StructLayout({"session": 80, "sequence": 64, "count": 16})


def lane_byte(v, k):
    """Byte ``k`` of ``v``, byte 0 in bits 7:0 (a beat's lane ``k``)."""
    return v[8 * k:8 * k + 8]


def mold_header(w0, w1, w2) -> dict:
    """The MoldUDP64 header's fields (:data:`MoldHeader`'s values) from the payload's words 0,
    1 and 2 (payload byte 8k + j in lane j of word k): the session in bytes 0-9, the sequence
    number in 10-17 and the message count in 18-19, both big-endian. ``w0`` may be None when
    the session is not wanted."""
    return {
        "session": None if w0 is None else Cat(w0, w1[0:16]),
        "sequence": Cat(*[lane_byte(w2, 1), lane_byte(w2, 0)]
                         + [lane_byte(w1, k) for k in range(7, 1, -1)]),
        "count": Cat(lane_byte(w2, 3), lane_byte(w2, 2)),
    }

#: Packet data in a line buffer: payload bytes 16.. of the MoldUDP64 packet (the first beat's
#: lanes 0..3 are the end of the header, the first length prefix is in lanes 4, 5).
LineBeat = data.StructLayout({"data": 64, "nbytes": 4, "last": 1})

#: Tracker -> ITCH decoder: a packet to walk (same data as LineBeat), with its first message's
#: sequence number, header count and the number of leading messages to skip (overlap).
MoldBeat = data.StructLayout({
    "data": 64, "nbytes": 4, "first": 1, "last": 1,
    "sequence": 64, "count": 16, "skip": 16,
})

#: ITCH decoder -> tracker, once per walked packet: ``framed`` messages lay within the UDP
#: payload (< count after an overrun, which includes a frame that ended early).
PacketDone = data.StructLayout({"framed": 16, "overrun": 1})


class Verdict:
    """Tracker outcome of a packet (``TrackerEvent.verdict``)."""
    ACCEPTED = 0
    DUPLICATE = 1
    STALE_SESSION = 2
    NAMES = ("accepted", "duplicate", "stale_session")


#: One tracker decision, emitted when it takes effect (telemetry; benches replay it).
TrackerEvent = data.StructLayout({
    "line": 1, "verdict": 2, "new_session": 1, "gap": 1, "overrun": 1,
    "session": 80, "sequence": 64, "count": 16, "framed": 16, "skip": 16,
})

#: ``frame_status`` codes of the parser: index into FRAME_REASONS, or this for a passed frame.
FRAME_STATUS_PASS = len(FRAME_REASONS)

#: Counter names (equal to the emulator's, tickwire.host.moldudp64.COUNTERS).
FEED_COUNTERS = tuple(COUNTERS)
TRACKER_COUNTERS = ("packets", "gaps", "gap_messages", "last_gap_first", "last_gap_last",
                    "dup_packets", "stale_session", "heartbeats", "end_of_session",
                    "session_changes")
DECODER_COUNTERS = ("messages", "unknown_type", "bad_length", "mold_overrun")
#: Counters that hold sequence numbers (64-bit) rather than event counts.
WIDE_COUNTERS = ("gap_messages", "last_gap_first", "last_gap_last")

assert set(LINE_FRAME_COUNTERS) | set(TRACKER_COUNTERS) | set(DECODER_COUNTERS) \
    == set(FEED_COUNTERS), FEED_COUNTERS


class FeedTap(wiring.Signature):
    """What the port walker (hw/trigger/portwalk.py) reads of the feed front end besides line
    A's beats, from the front end's side: parser A's header ``verdict``; line buffer A's data
    FIFO ``level_a`` (of ``line_depth`` words) and ``desc_room_a``; ``busy_b`` (a beat on
    line B); ``idle`` (nothing in the line buffers or the tracker: its state is final); the
    tracker's state (``session``, ``prev_session``, ``have_session``, ``have_prev``,
    ``expected``), ``track_sequence`` and ``pop_a`` (the tracker takes line A's head
    packet). Back: ``hold_b`` (MoldTracker.hold_b)."""

    def __init__(self, line_depth: int):
        self.line_depth = line_depth
        super().__init__({
            "verdict_a": Out(1), "level_a": Out(range(line_depth + 1)), "desc_room_a": Out(1),
            "busy_b": Out(1), "idle": Out(1),
            "session": Out(80), "prev_session": Out(80), "have_session": Out(1),
            "have_prev": Out(1), "expected": Out(64), "track_sequence": Out(1),
            "pop_a": Out(1), "hold_b": In(1),
        })

    def __eq__(self, other):
        return isinstance(other, FeedTap) and other.line_depth == self.line_depth
