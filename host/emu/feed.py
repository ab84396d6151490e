"""The emulator's feed stage: frames -> MoldUDP64 -> an index of accepted ITCH messages.

One numba pass over a capture applies the frame checks, the MoldUDP64 sequence rules and the
per-message type/length checks of docs/architecture.md ("Feed: frames and MoldUDP64") and
returns where each accepted message lies in the capture's buffer. Nothing is copied: the
decoder reads the messages in place. :func:`tickwire.host.moldudp64.reference_feed` is the
slow pure-Python statement of the same rules; the two must agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from .. import itch
from ..capture import LINKTYPE_ETHERNET, Frames
from ..framing import FRAME_REASONS, group_table
from ..moldudp64 import COUNTERS, session_str

__all__ = ["MessageIndex", "FRAME_STATUS", "index_frames", "index_binaryfile"]

# Counter slots. Literal here (not derived) so numba's on-disk cache can never hold a stale
# order; checked against moldudp64.COUNTERS below.
_RUNT, _NOT_IPV4, _IP_HEADER, _IP_CHECKSUM, _IP_LENGTH, _NOT_UDP, _IP_FRAGMENT = range(7)
_UDP_LENGTH, _FILTERED, _MOLD_TRUNCATED, _MOLD_OVERRUN, _FRAMES, _PACKETS = range(7, 13)
_MESSAGES, _GAPS, _GAP_MESSAGES, _LAST_GAP_FIRST, _LAST_GAP_LAST = range(13, 18)
_DUP_PACKETS, _STALE_SESSION, _HEARTBEATS, _END_OF_SESSION = range(18, 22)
_SESSION_CHANGES, _UNKNOWN_TYPE, _BAD_LENGTH, _FCS_ERRORS = range(22, 26)
_N_COUNTERS = 26
assert len(COUNTERS) == _N_COUNTERS and COUNTERS[_BAD_LENGTH] == "bad_length" \
    and COUNTERS[_MOLD_OVERRUN] == "mold_overrun" and COUNTERS[_SESSION_CHANGES] == \
    "session_changes" and COUNTERS[_MOLD_TRUNCATED] == "mold_truncated" \
    and COUNTERS[_FCS_ERRORS] == "fcs_errors", COUNTERS

#: Per-frame outcome codes of :attr:`MessageIndex.frame_status`: the frame drop reasons
#: (codes 0..9), then the packet outcomes.
FRAME_STATUS = FRAME_REASONS + ("duplicate", "stale_session", "mold_overrun", "accepted")
_ST_DUPLICATE, _ST_STALE, _ST_OVERRUN, _ST_ACCEPTED = range(10, 14)

_LENGTH_BY_BYTE = np.array(itch.LENGTH_BY_BYTE, np.int64)
_LENGTH_BY_BYTE_NB = _LENGTH_BY_BYTE  # a global array: numba freezes it into the code


@dataclass
class MessageIndex:
    """Accepted ITCH messages: message *i* is ``data[offsets[i] : offsets[i] + lengths[i]]``
    (``offsets`` point at the type byte)."""
    data: np.ndarray              # uint8 buffer the offsets refer to (Frames.data)
    offsets: np.ndarray           # int64
    lengths: np.ndarray           # int64
    sequences: np.ndarray         # uint64: MoldUDP64 sequence (BinaryFILE: record number, 1-based)
    frame_index: np.ndarray       # int64: frame the message came from (-1: BinaryFILE)
    session: str                  # the first session seen ("" when none)
    counters: dict[str, int]
    frame_status: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    #                               per frame, an index into FRAME_STATUS

    def __len__(self) -> int:
        return len(self.offsets)

    def message(self, i: int) -> bytes:
        o = int(self.offsets[i])
        return self.data[o:o + int(self.lengths[i])].tobytes()

    def frame_outcome(self, i: int) -> str:
        return FRAME_STATUS[int(self.frame_status[i])]


@nb.njit(cache=True, inline="always")
def _be16(d, o):
    return (np.int64(d[o]) << 8) | np.int64(d[o + 1])


@nb.njit(cache=True)
def _grow(a, n):
    b = np.empty(max(2 * a.size, 1024), a.dtype)
    b[:n] = a[:n]
    return b


@nb.njit(cache=True, inline="always")
def _is_session(data, pay, session):
    """Whether the MoldUDP64 header at ``pay`` names ``session`` (10 bytes)."""
    for j in range(10):
        if data[pay + j] != session[j]:
            return False
    return True


@nb.njit(cache=True, inline="always")
def _frame_check(data, base, n, gip, gport, check_csum):
    """The frame checks of the ``n``-byte frame at ``base``, in their order: (drop reason, a
    counter slot and frame status; -1 when none), offset of the MoldUDP64 header, UDP length."""
    # -- Ethernet [802.1Q]
    if n < 14:
        return _RUNT, 0, 0
    et = _be16(data, base + 12)
    l3 = 14
    if et == 0x8100:
        if n < 18:
            return _RUNT, 0, 0
        et = _be16(data, base + 16)
        l3 = 18
    if et != 0x0800:
        return _NOT_IPV4, 0, 0
    # -- IPv4
    ip = base + l3
    if l3 >= n:
        return _IP_HEADER, 0, 0
    vihl = data[ip]
    ihl = np.int64(vihl & 0xF) * 4
    if (vihl >> 4) != 4 or ihl < 20 or l3 + ihl > n:
        return _IP_HEADER, 0, 0
    if check_csum:
        s = np.int64(0)
        for j in range(0, ihl, 2):
            s += _be16(data, ip + j)
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        if s != 0xFFFF:
            return _IP_CHECKSUM, 0, 0
    total = _be16(data, ip + 2)
    # a frame cut short still counts from its MoldUDP64 header on (cut-through: every
    # decision is taken there); its payload is then the bytes present
    if total < ihl + 8 or l3 + min(total, ihl + 28) > n:
        return _IP_LENGTH, 0, 0
    if data[ip + 9] != 17:
        return _NOT_UDP, 0, 0
    if _be16(data, ip + 6) & 0x3FFF:
        return _IP_FRAGMENT, 0, 0
    # -- UDP
    udp = ip + ihl
    ulen = _be16(data, udp + 4)
    if ulen < 8 or ulen > total - ihl:
        return _UDP_LENGTH, 0, 0
    if gip.size > 0:
        dst = (np.uint32(data[ip + 16]) << 24) | (np.uint32(data[ip + 17]) << 16) | \
            (np.uint32(data[ip + 18]) << 8) | np.uint32(data[ip + 19])
        dport = np.uint16(_be16(data, udp + 2))
        hit = False
        for g in range(gip.size):
            if gip[g] == dst and gport[g] == dport:
                hit = True
                break
        if not hit:
            return _FILTERED, 0, 0
    # -- MoldUDP64
    if ulen - 8 < 20:
        return _MOLD_TRUNCATED, 0, 0
    return -1, udp + 8, ulen


@nb.njit(cache=True)
def _index(data, offsets, lengths, gip, gport, check_csum, track, len_by_byte, cap):
    nf = offsets.size
    c = np.zeros(_N_COUNTERS, np.int64)
    status = np.empty(nf, np.int8)
    o_off = np.empty(cap, np.int64)
    o_len = np.empty(cap, np.int64)
    o_seq = np.empty(cap, np.uint64)
    o_frame = np.empty(cap, np.int64)
    k = 0
    # Sequence tracker: current session, the one before it, expected sequence.
    cur = np.zeros(10, np.uint8)
    prev = np.zeros(10, np.uint8)
    have_cur = False
    have_prev = False
    expected = np.uint64(0)
    first_session = -1
    for fi in range(nf):
        c[_FRAMES] += 1
        r, pay, ulen = _frame_check(data, offsets[fi], lengths[fi], gip, gport, check_csum)
        if r >= 0:
            c[r] += 1
            status[fi] = r
            continue
        end = min(pay + ulen - 8, offsets[fi] + lengths[fi])
        if first_session < 0:
            first_session = pay
        seq = np.uint64(0)
        for j in range(8):
            seq = (seq << np.uint64(8)) | np.uint64(data[pay + 10 + j])
        count = _be16(data, pay + 18)
        nmsg = 0 if count == 0xFFFF else count
        un = np.uint64(nmsg)
        if track:
            # session: current, previous (stale) or new
            if not (have_cur and _is_session(data, pay, cur)):
                if have_prev and _is_session(data, pay, prev):
                    c[_STALE_SESSION] += 1
                    status[fi] = _ST_STALE
                    continue
                if have_cur:
                    c[_SESSION_CHANGES] += 1
                    prev[:] = cur
                    have_prev = True
                for j in range(10):
                    cur[j] = data[pay + j]
                have_cur = True
                expected = seq
            if nmsg > 0 and seq + un <= expected:
                c[_DUP_PACKETS] += 1
                status[fi] = _ST_DUPLICATE
                continue
        c[_PACKETS] += 1
        if track and seq > expected:
            c[_GAPS] += 1
            c[_GAP_MESSAGES] += np.int64(seq - expected)
            c[_LAST_GAP_FIRST] = np.int64(expected)
            c[_LAST_GAP_LAST] = np.int64(seq - np.uint64(1))
        if count == 0:
            c[_HEARTBEATS] += 1
        elif count == 0xFFFF:
            c[_END_OF_SESSION] += 1
        first = np.int64(0)
        if track and expected > seq:
            first = np.int64(min(expected - seq, un))
        # -- messages
        off = pay + 20
        framed = np.int64(0)
        st = _ST_ACCEPTED
        for i in range(nmsg):
            if off + 2 > end:
                st = _ST_OVERRUN
                break
            ln = _be16(data, off)
            if off + 2 + ln > end:
                st = _ST_OVERRUN
                break
            framed += 1
            if i >= first:
                want = len_by_byte[data[off + 2]] if ln > 0 else -1
                if want == 0:
                    c[_UNKNOWN_TYPE] += 1
                elif want != ln:
                    c[_BAD_LENGTH] += 1
                else:
                    if k == o_off.size:
                        o_off = _grow(o_off, k)
                        o_len = _grow(o_len, k)
                        o_seq = _grow(o_seq, k)
                        o_frame = _grow(o_frame, k)
                    o_off[k] = off + 2
                    o_len[k] = ln
                    o_seq[k] = seq + np.uint64(i)
                    o_frame[k] = fi
                    k += 1
            off += 2 + ln
        if st == _ST_OVERRUN:
            c[_MOLD_OVERRUN] += 1
        status[fi] = st
        reach = seq + np.uint64(framed)
        if reach > expected:
            expected = reach
    c[_MESSAGES] = k
    return o_off[:k], o_len[:k], o_seq[:k], o_frame[:k], c, status, first_session


def _counters(c: np.ndarray) -> dict[str, int]:
    return {name: int(v) for name, v in zip(COUNTERS, c.tolist())}


def index_frames(frames: Frames, groups=None, *, check_ip_checksum: bool = True,
                 track_sequence: bool = True) -> MessageIndex:
    """Index the accepted ITCH messages of a capture (lines A and B already merged in arrival
    order, e.g. with :func:`tickwire.host.capture.merge_by_time`).

    ``groups``: the host-set group table — None/empty accepts every (IPv4, port); else a pair
    of arrays (uint32 IPs, ports) or an iterable of ``("a.b.c.d", port)``.
    ``check_ip_checksum=False`` turns the ``ip_checksum`` check off and
    ``track_sequence=False`` the sequence tracker (every packet's messages are delivered) —
    both for anonymised captures whose checksums, sessions and sequence numbers were zeroed.
    """
    if frames.linktype != LINKTYPE_ETHERNET:
        raise ValueError(f"feed needs Ethernet frames (link type 1), got link type "
                         f"{frames.linktype}")
    gip, gport = group_table(groups)
    data = np.ascontiguousarray(frames.data, np.uint8)
    offsets = np.ascontiguousarray(frames.offsets, np.int64)
    lengths = np.ascontiguousarray(frames.lengths, np.int64)
    if len(offsets) and (offsets.min() < 0 or (offsets + lengths).max() > data.size):
        raise ValueError("frame offsets/lengths run outside the data buffer")
    # Delivered messages are disjoint spans of >= 14 bytes (2-byte prefix + the shortest ITCH
    # message), so this bound never needs the grow path. np.empty only reserves address space;
    # pages are touched as messages are written, so the slices below cost no copy.
    cap = data.size // 14 + 1
    o_off, o_len, o_seq, o_frame, c, status, fs = _index(
        data, offsets, lengths, gip, gport, bool(check_ip_checksum), bool(track_sequence),
        _LENGTH_BY_BYTE, cap)
    session = session_str(data[fs:fs + 10].tobytes()) if fs >= 0 else ""
    # A flagged frame is taken as it came (its messages were acted on before its end showed
    # the FCS): it only counts, and the count says the book may be wrong.
    if frames.fcs_bad is not None:
        c[_FCS_ERRORS] = int(np.count_nonzero(frames.fcs_bad))
    return MessageIndex(data, o_off, o_len, o_seq, o_frame, session, _counters(c), status)


def index_binaryfile(data: np.ndarray, offsets: np.ndarray, lengths: np.ndarray
                     ) -> MessageIndex:
    """Index the messages of a BinaryFILE (from :func:`tickwire.host.capture.read_binaryfile`):
    record *i* has sequence *i* + 1; unknown types and bad lengths are counted and skipped."""
    data = np.asarray(data, np.uint8)
    offsets = np.asarray(offsets, np.int64)
    lengths = np.asarray(lengths, np.int64)
    nonempty = lengths > 0
    types = np.zeros(len(offsets), np.int64)
    types[nonempty] = data[offsets[nonempty]]
    want = np.where(nonempty, _LENGTH_BY_BYTE[types], -1)
    unknown = want == 0
    bad = ~unknown & (want != lengths)
    ok = ~unknown & ~bad
    c = np.zeros(_N_COUNTERS, np.int64)
    c[_UNKNOWN_TYPE] = int(unknown.sum())
    c[_BAD_LENGTH] = int(bad.sum())
    c[_MESSAGES] = int(ok.sum())
    seq = (np.flatnonzero(ok) + 1).astype(np.uint64)
    return MessageIndex(data, offsets[ok], lengths[ok], seq,
                        np.full(int(ok.sum()), -1, np.int64), "", _counters(c))


@nb.njit(cache=True)
def _walk_binaryfile(d, len_by_byte):
    """One pass over a BinaryFILE: (offsets, lengths, sequences, unknown, bad, error offset)."""
    n = d.size
    cap = n // 14 + 1  # the shortest record is 2 + 12 bytes
    offs = np.empty(cap, np.int64)
    lens = np.empty(cap, np.int64)
    seqs = np.empty(cap, np.uint64)
    off = 0
    rec = 0
    k = 0
    unknown = 0
    bad = 0
    err = -1
    while off < n:
        if off + 2 > n:
            err = off
            break
        ln = (np.int64(d[off]) << 8) | np.int64(d[off + 1])
        if off + 2 + ln > n:
            err = off
            break
        rec += 1
        if ln == 0:
            bad += 1
        else:
            want = len_by_byte[d[off + 2]]
            if want == 0:
                unknown += 1
            elif want != ln:
                bad += 1
            else:
                if k == cap:  # cannot happen: every record is at least 14 bytes
                    offs = _grow(offs, k)
                    lens = _grow(lens, k)
                    seqs = _grow(seqs, k)
                    cap = offs.size
                offs[k] = off + 2
                lens[k] = ln
                seqs[k] = rec
                k += 1
        off += 2 + ln
    return offs[:k], lens[:k], seqs[:k], unknown, bad, err


def index_binaryfile_bytes(data: np.ndarray, where: str = "BinaryFILE") -> MessageIndex:
    """Walk and index a BinaryFILE's bytes in one pass (same result as read_binaryfile +
    index_binaryfile); a truncated last record raises naming ``where`` and the offset."""
    data = np.ascontiguousarray(data, np.uint8)
    offs, lens, seqs, unknown, bad, err = _walk_binaryfile(data, _LENGTH_BY_BYTE)
    if err >= 0:
        raise ValueError(f"{where}: offset {err}: truncated BinaryFILE record "
                         f"(after {len(offs) + unknown + bad} records)")
    c = np.zeros(_N_COUNTERS, np.int64)
    c[_UNKNOWN_TYPE] = unknown
    c[_BAD_LENGTH] = bad
    c[_MESSAGES] = len(offs)
    return MessageIndex(data, offs, lens, seqs, np.full(len(offs), -1, np.int64), "",
                        _counters(c))


@nb.njit(cache=True, nogil=True)
def walk_binaryfile_chunk(d, offs, seqs, rec, skipped):
    """Index the complete records at the start of ``d`` (a BinaryFILE chunk).

    Returns (messages indexed, bytes used, record count so far); unknown types and bad lengths
    are counted in ``skipped`` and keep their record numbers.
    """
    n = d.size
    off = 0
    k = 0
    while off + 2 <= n:
        ln = (np.int64(d[off]) << 8) | np.int64(d[off + 1])
        if off + 2 + ln > n:
            break
        rec += 1
        if ln == 0:
            skipped[1] += 1
        else:
            want = _LENGTH_BY_BYTE_NB[d[off + 2]]
            if want == 0:
                skipped[0] += 1
            elif want != ln:
                skipped[1] += 1
            else:
                offs[k] = off + 2
                seqs[k] = rec
                k += 1
        off += 2 + ln
    return k, off, rec
