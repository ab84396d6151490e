"""Frames on the device's streams: feed frames as 64-bit MAC beats, order frames back from
beats, book rows from the update stream, and where each message sits on the wire.

Plain numpy: the RTL back-end, boards (DMA buffers carry the same records) and the latency
tools share these.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..host.framing import FcsError, fcs_flags
from ..spec.streams import (BEAT_BITS, BEAT_FIELDS, BOOK_BEAT, book_beats, book_row_bits,
                            field_offsets)

__all__ = ["FRAME_GAP", "beats", "frames_of", "gather_frames", "parse_rows", "shallower",
           "mold_counts", "poll_points", "message_positions", "trigger_latencies", "field_end",
           "parse_latency", "LATENCY_STAMPS"]

#: idle cycles between frames on a line (12-byte IFG + 8-byte preamble at 64 bits per cycle)
FRAME_GAP = 3
# byte / bit positions of the beat's fields in a record (after its u32 of idle cycles)
_AT = {name: (4 + off // 8, off % 8) for name, off in field_offsets(BEAT_FIELDS).items()}
_RECORD = 4 + (BEAT_BITS + 7) // 8


def beats(frames: list[bytes], gap: int = FRAME_GAP, gaps: list[int] | None = None) -> bytes:
    """Harness records for one line: per 64-bit beat a u32 of idle cycles before it, then
    the beat packed LSB first as ``tickwire.spec.streams.BEAT_FIELDS`` lays it out, lane 0 =
    the frame's first byte; an :class:`~tickwire.host.framing.FcsError` frame has ``user``
    on its last beat."""
    n = len(frames)
    if n == 0:
        return b""
    lens = np.fromiter((len(f) for f in frames), np.int64, n)
    nb = (lens + 7) // 8
    total = int(nb.sum())
    out = np.zeros((total, _RECORD), np.uint8)
    first = np.concatenate([[0], np.cumsum(nb)[:-1]])
    g = np.full(n, gap, np.uint32) if gaps is None else np.asarray(gaps, np.uint32)
    out[first, :4] = g.view(np.uint8).reshape(n, 4)
    padded = np.zeros(total * 8, np.uint8)
    pos = 0
    for f, k in zip(frames, nb.tolist()):
        padded[pos:pos + len(f)] = np.frombuffer(f, np.uint8)
        pos += 8 * k
    d = _AT["data"][0]
    out[:, d:d + 8] = padded.reshape(total, 8)
    last = first + nb - 1
    keep = np.full(total, 0xFF, np.uint16)
    tail = lens - 8 * (nb - 1)
    keep[last] = (1 << tail) - 1
    out[:, _AT["keep"][0]] = keep.astype(np.uint8)
    for rows, name in ((first, "first"), (last, "last"), (last[fcs_flags(frames)], "user")):
        byte, bit = _AT[name]
        out[rows, byte] |= 1 << bit
    return out.tobytes()


def frames_of(path: str | Path) -> list[bytes]:
    """The Ethernet frames of a capture; a BinaryFILE becomes MoldUDP64/UDP frames whose
    sequence numbers are its record numbers (as the emulator numbers them)."""
    from ..host import capture, moldudp64
    from ..host.framing import build_udp_frame
    fmt = capture.sniff_format(path)
    if fmt != "binaryfile":
        fr = capture.read_capture(path)
        return [fr.frame(i) for i in range(len(fr))]
    data, offs, lens = capture.read_binaryfile(path)
    frames, batch, size, seq = [], [], 20, 1
    for o, n in zip(offs.tolist(), lens.tolist()):
        if batch and size + 2 + n > 1400:
            frames.append(build_udp_frame(moldudp64.pack("BINARYFILE", seq, batch)))
            seq += len(batch)
            batch, size = [], 20
        batch.append(data[o:o + n].tobytes())
        size += 2 + n
    if batch:
        frames.append(build_udp_frame(moldudp64.pack("BINARYFILE", seq, batch)))
    return frames


def gather_frames(out: np.ndarray) -> tuple[list[bytes], list[int], list[int]]:
    """Frames of order-stream records (beats as :data:`BEAT_FIELDS`); (frames, first
    cycles, last cycles). A frame with ``user`` on its last beat (aborted: the MAC ends it with
    a bad FCS) is an :class:`~tickwire.host.framing.FcsError`. Raises on a malformed beat
    sequence."""
    width, off = dict(BEAT_FIELDS), field_offsets(BEAT_FIELDS)
    lanes = width["data"] // 8
    frames, firsts, lasts = [], [], []
    cur = bytearray()
    raw = np.ascontiguousarray(out["payload"])
    for cyc, rec in zip(out["cycle"].tolist(), raw):
        v = int.from_bytes(bytes(rec), "little")
        d = (v >> off["data"]) & ((1 << 8 * lanes) - 1)
        keep = (v >> off["keep"]) & ((1 << lanes) - 1)
        first, last = (v >> off["first"]) & 1, (v >> off["last"]) & 1
        n = bin(keep).count("1")
        if keep != (1 << n) - 1 or (not last and n != lanes):
            raise AssertionError(f"cycle {cyc}: keep {keep:#x}")
        if bool(first) != (len(cur) == 0):
            raise AssertionError(f"cycle {cyc}: first flag out of place")
        if first:
            firsts.append(cyc)
        cur += d.to_bytes(lanes, "little")[:n]
        if last:
            frames.append(FcsError(cur) if (v >> off["user"]) & 1 else bytes(cur))
            lasts.append(cyc)
            cur = bytearray()
    if cur:
        raise AssertionError("the last frame has no last beat")
    return frames, firsts, lasts


def parse_rows(out: np.ndarray, depth: int):
    """(sequence, timestamp, slot, levels[N, depth, 4]) of book-update records
    (hw/book/layouts.py ``book_update_layout``: sequence 64, timestamp 48, slot 8, then per
    level ask price, ask size, bid price, bid size, 32 bits each)."""
    raw = np.ascontiguousarray(out["payload"])
    n = len(raw)
    pad = np.zeros((n, (raw.shape[1] + 7) // 8 * 8), np.uint8)
    pad[:, :raw.shape[1]] = raw
    seq = pad[:, 0:8].copy().view("<u8")[:, 0]
    ts = (pad[:, 8:16].copy().view("<u8")[:, 0]) & np.uint64((1 << 48) - 1)
    slot = pad[:, 14].astype(np.int32)
    body = np.ascontiguousarray(pad[:, 15:15 + 16 * depth]).view("<u4").reshape(n, depth, 4)
    return seq, ts, slot, body.astype(np.uint32)


def book_packet_rows(packets: list[bytes], depth: int):
    """(sequence, timestamp, slot, levels[N, depth, 4]) of the book rows a board sends its
    host (``m_axis_book`` packets, or the slots of the Alveo book ring), as :func:`parse_rows`
    gives them. Each packet must be one row: ``book_beats(depth)`` whole beats, the row's bits
    from bit 0, the padding zero; anything else raises ValueError naming the packet."""
    bits = book_row_bits(depth)
    size = book_beats(depth) * BOOK_BEAT // 8
    nbytes = (bits + 7) // 8
    rec = np.zeros(len(packets), [("cycle", "<u8"), ("payload", np.uint8, (nbytes,))])
    for i, p in enumerate(packets):
        if len(p) != size:
            raise ValueError(f"book packet {i}: {len(p)} bytes, a row is {size}")
        if int.from_bytes(p, "little") >> bits:
            raise ValueError(f"book packet {i}: padding above bit {bits} is not zero")
        rec["payload"][i] = np.frombuffer(p[:nbytes], np.uint8)
    return parse_rows(rec, depth)


#: the cycle-counter stamps of a latency record (hw/egress/layouts.py ``LatencyRecord``), in
#: field order after the 64-bit sequence, 32 bits each; then ``fast`` (1 bit)
LATENCY_STAMPS = ("t_dec", "t_event", "t_verdict", "t_order")


def parse_latency(out: np.ndarray) -> dict:
    """Columns of latency-stream records: ``cycle`` (harness cycle of the record), ``sequence``,
    the :data:`LATENCY_STAMPS` (uint32, the gateware's wrapping cycle counter) and ``fast``."""
    raw = np.ascontiguousarray(out["payload"])
    n = len(raw)
    pad = np.zeros((n, 32), np.uint8)
    pad[:, :raw.shape[1]] = raw
    cols = {"cycle": out["cycle"].astype(np.uint64),
            "sequence": pad[:, 0:8].copy().view("<u8")[:, 0]}
    for k, name in enumerate(LATENCY_STAMPS):
        cols[name] = pad[:, 8 + 4 * k:12 + 4 * k].copy().view("<u4")[:, 0]
    cols["fast"] = (pad[:, 24] & 1).astype(bool)
    return cols


def shallower(rows, depth: int):
    """Rows of a top-``depth`` book from the rows of a deeper one: a change of the first
    ``depth`` levels is a change of the deeper top too, so keep the rows whose first ``depth``
    levels differ from the slot's previous row."""
    seq, ts, slot, lv = rows
    keep = np.zeros(len(seq), bool)
    last: dict[int, bytes] = {}
    for i in range(len(seq)):
        key = lv[i, :depth].tobytes()
        s = int(slot[i])
        if last.get(s) != key:
            keep[i] = True
            last[s] = key
    return seq[keep], ts[keep], slot[keep], lv[keep, :depth]


def _udp_payload_start(f: bytes) -> int:
    """Offset of the UDP payload of an Ethernet [802.1Q] / IPv4 / UDP frame, or -1."""
    if len(f) < 14:
        return -1
    eth = 14
    et = f[12:14]
    if et == b"\x81\x00":
        if len(f) < 18:
            return -1
        et, eth = f[16:18], 18
    if et != b"\x08\x00" or len(f) < eth + 20 or f[eth] >> 4 != 4 or f[eth + 9] != 17:
        return -1
    return eth + 4 * (f[eth] & 0xF) + 8


def mold_counts(frames: list[bytes]) -> np.ndarray:
    """The MoldUDP64 message count of each frame as its header states it (0 for heartbeats,
    end of session and frames that are not IPv4/UDP): the host loop's measure of stream
    position, the same for every back-end."""
    out = np.zeros(len(frames), np.int64)
    for i, f in enumerate(frames):
        p = _udp_payload_start(f)
        if p >= 0 and len(f) >= p + 20:
            n = int.from_bytes(f[p + 18:p + 20], "big")
            out[i] = 0 if n == 0xFFFF else n
    return out


def poll_points(frames: list[bytes], poll_messages: int) -> list[int]:
    """Frame indices at which the host loop polls: after the first frame at which the
    messages announced since the previous poll reach ``poll_messages``, and at the end."""
    points, acc = [], 0
    for i, n in enumerate(mold_counts(frames).tolist()):
        acc += n
        if acc >= poll_messages:
            points.append(i + 1)
            acc = 0
    if not points or points[-1] != len(frames):
        points.append(len(frames))
    return points


def field_end(t: int, length: int) -> int:
    """Offset of the last byte of the field that can fire a trigger, within its message (an
    add's or replace's price; other messages: their last byte)."""
    from ..host import itch
    if chr(t) in "AFU":
        f = itch.MESSAGES[chr(t)].field("price")
        return f.offset + f.size - 1
    return length - 1


def message_positions(frames: list[bytes]) -> dict[int, tuple[int, int]]:
    """Per MoldUDP64 sequence number, where its first complete copy arrives: (index of its
    frame, index of the frame's beat that holds the last byte of its trigger field)."""
    where: dict[int, tuple[int, int]] = {}
    for k, f in enumerate(frames):
        p = _udp_payload_start(f)
        if p < 0 or len(f) < p + 20:
            continue
        # a frame cut short delivers the messages it completed (docs/architecture.md)
        end = min(p - 8 + int.from_bytes(f[p - 4:p - 2], "big"), len(f))
        seq, n, off = int.from_bytes(f[p + 10:p + 18], "big"), \
            int.from_bytes(f[p + 18:p + 20], "big"), p + 20
        for i in range(n if n != 0xFFFF else 0):
            if off + 2 > end:
                break
            ln = int.from_bytes(f[off:off + 2], "big")
            if ln == 0 or off + 2 + ln > end:
                break
            if seq + i not in where:
                where[seq + i] = (k, (off + 2 + field_end(f[off + 2], ln)) // 8)
            off += 2 + ln
    return where


def trigger_latencies(frames: list[bytes], order_seqs, order_times, input_times
                      ) -> tuple[list[int], list[int]]:
    """Per order: device time from the first byte of the frame that carried its triggering
    message (sequence ``order_seqs[i]``), and from the beat holding the last byte of its
    trigger field, to the order frame's first byte (``order_times[i]``); ``input_times``:
    the time each frame's first beat was taken (a frame's beats follow back to back).
    -1 where the message is not found."""
    where = message_positions(frames)
    from_frame, from_field = [], []
    for s, t in zip(np.asarray(order_seqs).tolist(), np.asarray(order_times).tolist()):
        if s not in where:
            from_frame.append(-1)
            from_field.append(-1)
            continue
        k, beat = where[s]
        from_frame.append(int(t) - int(input_times[k]))
        from_field.append(int(t) - int(input_times[k]) - beat)
    return from_frame, from_field
