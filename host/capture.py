"""Capture files in and out: pcap, pcapng and NASDAQ BinaryFILE.

Readers return flat numpy arrays (the file's bytes plus per-record offsets and lengths) so the
numba feed stage can index 100 MB captures without a Python loop per packet. Record walks are
numba-compiled. A file ending in the middle of a record is an error (:class:`CaptureError`
naming the file and the record's byte offset) unless ``strict=False``, which drops the
incomplete tail and reports its offset in ``Frames.truncated_at``. Gzip-compressed inputs are
decompressed transparently (offsets then refer to the decompressed bytes).

Bad-FCS frames (``Frames.fcs_bad``) come from the formats' own FCS information: pcapng's
``epb_flags`` CRC-error bit, and frames captured with their FCS (pcapng ``if_fcslen`` or the
``epb_flags`` FCS length, pcap's link-type FCS bits), whose 4-byte FCS is stripped and
checked. ``write_pcapng`` writes the flag back; pcap has no per-frame flag.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numba as nb
import numpy as np

from .framing import FcsError, fcs_flags

__all__ = [
    "CaptureError", "Frames", "LINKTYPE_ETHERNET", "MAX_RECORD", "read_pcap", "read_pcapng",
    "read_capture", "write_pcap", "write_pcapng", "read_binaryfile", "write_binaryfile",
    "sniff_format", "merge_by_time",
]

LINKTYPE_ETHERNET = 1
#: Largest record accepted (libpcap's maximum snapshot length); larger means corruption.
MAX_RECORD = 262144

_PCAP_MAGICS = {  # first 4 bytes -> (byte order, nanosecond)
    b"\xd4\xc3\xb2\xa1": ("<", False), b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True), b"\xa1\xb2\x3c\x4d": (">", True),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_GZIP = b"\x1f\x8b"


class CaptureError(ValueError):
    """A malformed or unsupported capture file; the text names the file and byte offset."""


@dataclass
class Frames:
    """Frames of a capture: frame *i* is ``data[offsets[i] : offsets[i] + lengths[i]]``."""
    data: np.ndarray             # uint8: the whole file (or a concatenation)
    offsets: np.ndarray          # int64
    lengths: np.ndarray          # int64: captured length
    timestamps_ns: np.ndarray    # int64: nanoseconds since the Unix epoch
    linktype: int = LINKTYPE_ETHERNET
    truncated_at: int | None = None  # byte offset of a dropped incomplete last record
    #: bool per frame: the MAC found its FCS wrong (None: no frame flagged). Such a frame
    #: reaches the feed anyway, flagged on its last beat (docs/architecture.md, "Bad FCS").
    fcs_bad: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets)

    def frame(self, i: int) -> bytes:
        """Frame ``i`` (a :class:`~tickwire.host.framing.FcsError` when flagged)."""
        o = int(self.offsets[i])
        b = self.data[o:o + int(self.lengths[i])].tobytes()
        return FcsError(b) if self.fcs_bad is not None and self.fcs_bad[i] else b

    def __iter__(self):
        for i in range(len(self)):
            yield self.frame(i)

    @classmethod
    def from_list(cls, frames: Iterable[bytes], timestamps_ns: Sequence[int] | None = None,
                  linktype: int = LINKTYPE_ETHERNET) -> "Frames":
        """Pack a list of frames into one buffer (timestamps default to 0, 1, 2, ... ns);
        :class:`~tickwire.host.framing.FcsError` frames are flagged in ``fcs_bad``."""
        frames = list(frames)
        bad = fcs_flags(frames)
        frames = [bytes(f) for f in frames]
        lengths = np.fromiter((len(f) for f in frames), np.int64, len(frames))
        offsets = np.zeros(len(frames), np.int64)
        if len(frames):
            offsets[1:] = np.cumsum(lengths)[:-1]
        data = np.frombuffer(b"".join(frames), np.uint8).copy()
        ts = (np.arange(len(frames), dtype=np.int64) if timestamps_ns is None
              else np.asarray(timestamps_ns, np.int64))
        if len(ts) != len(frames):
            raise ValueError(f"{len(ts)} timestamps for {len(frames)} frames")
        return cls(data, offsets, lengths, ts, linktype, fcs_bad=bad if bad.any() else None)


def open_binaryfile(path):
    """A binary file object over the (decompressed) bytes of a BinaryFILE."""
    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(2)
    return gzip.open(p, "rb") if head == _GZIP else open(p, "rb")


def load_bytes(path) -> np.ndarray:
    """The file's bytes (decompressed when gzip)."""
    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(2)
    if head == _GZIP:
        # into a bytearray so the array is writable like np.fromfile's (numba compiles
        # read-only arrays as a separate type)
        buf = bytearray()
        with gzip.open(p, "rb") as f:
            while chunk := f.read(1 << 24):
                buf += chunk
        return np.frombuffer(buf, np.uint8)
    return np.fromfile(p, np.uint8)


def _head(path, n: int = 4) -> bytes:
    with open(path, "rb") as f:
        head = f.read(n)
    if head[:2] == _GZIP:
        with gzip.open(path, "rb") as f:
            head = f.read(n)
    return head


def sniff_format(path) -> str:
    """``"pcap"``, ``"pcapng"`` or ``"binaryfile"`` by the (decompressed) file's magic.

    BinaryFILE has no magic: anything that is not pcap/pcapng is taken for one.
    """
    head = _head(path)
    if head in _PCAP_MAGICS:
        return "pcap"
    if head == _PCAPNG_SHB:
        return "pcapng"
    return "binaryfile"


# --------------------------------------------------------------------------- pcap

@nb.njit(cache=True)
def _u32(d, o, big):
    if big:
        return (np.int64(d[o]) << 24) | (np.int64(d[o + 1]) << 16) | (np.int64(d[o + 2]) << 8) \
            | np.int64(d[o + 3])
    return (np.int64(d[o + 3]) << 24) | (np.int64(d[o + 2]) << 16) | (np.int64(d[o + 1]) << 8) \
        | np.int64(d[o])


@nb.njit(cache=True)
def _u16(d, o, big):
    if big:
        return (np.int64(d[o]) << 8) | np.int64(d[o + 1])
    return (np.int64(d[o + 1]) << 8) | np.int64(d[o])


def _crc_tables() -> np.ndarray:
    """Slice-by-8 tables for the reflected CRC-32 (Ethernet FCS, zlib.crc32)."""
    t = np.zeros((8, 256), np.int64)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 if c & 1 else 0)
        t[0, i] = c
    for k in range(1, 8):
        t[k] = (t[k - 1] >> 8) ^ t[0][t[k - 1] & 0xFF]
    return t


_CRC = _crc_tables()


@nb.njit(cache=True)
def _crc32(d, o, n, t):
    """zlib.crc32 of ``d[o:o+n]``; slice-by-8 since FCS captures are checked frame by frame
    over the whole file."""
    c = np.int64(0xFFFFFFFF)
    while n >= 8:
        one = _u32(d, o, False) ^ c
        two = _u32(d, o + 4, False)
        c = (t[7, one & 0xFF] ^ t[6, (one >> 8) & 0xFF] ^ t[5, (one >> 16) & 0xFF]
             ^ t[4, one >> 24] ^ t[3, two & 0xFF] ^ t[2, (two >> 8) & 0xFF]
             ^ t[1, (two >> 16) & 0xFF] ^ t[0, two >> 24])
        o += 8
        n -= 8
    while n > 0:
        c = (c >> 8) ^ t[0, (c ^ np.int64(d[o])) & 0xFF]
        o += 1
        n -= 1
    return c ^ 0xFFFFFFFF


@nb.njit(cache=True)
def _strip_fcs(d, offsets, lengths, orig_at, big, t, bad):
    """Frames captured with a 4-byte FCS: drop it from ``lengths`` and flag a wrong one in
    ``bad``. A snapped frame (captured < original length, read at ``orig_at``) lost its FCS:
    left as is, unchecked. One shorter than an FCS cannot be right: flagged, left as is."""
    for i in range(offsets.size):
        n = lengths[i]
        if n != _u32(d, orig_at[i], big[i]):
            continue
        if n < 4:
            bad[i] = True
            continue
        n -= 4
        lengths[i] = n
        if _crc32(d, offsets[i], n, t) != _u32(d, offsets[i] + n, False):
            bad[i] = True


def _fcs_pass(d, offsets, lengths, orig_at, big, sel) -> np.ndarray:
    """Run :func:`_strip_fcs` on the frames ``sel`` (bool) of ``offsets``/``lengths``
    (``lengths`` updated in place); returns their bad-FCS flags (bool, all frames)."""
    idx = np.flatnonzero(sel)
    sub_len = lengths[idx]
    sub_bad = np.zeros(idx.size, np.bool_)
    _strip_fcs(d, offsets[idx], sub_len, orig_at[idx], big[idx], _CRC, sub_bad)
    lengths[idx] = sub_len
    bad = np.zeros(lengths.size, np.bool_)
    bad[idx] = sub_bad
    return bad


@nb.njit(cache=True)
def _pcap_walk(d, big, ns, max_record, fill, offsets, lengths, ts):
    """Walk pcap records from byte 24. Returns (records, error code, error offset, end).

    error 0 none, 1 truncated record header, 2 truncated record data, 3 record too long.
    With ``fill`` the arrays are written (call once without to count).
    """
    n = d.size
    off = 24
    k = 0
    scale = 1 if ns else 1000
    while off < n:
        if off + 16 > n:
            return k, 1, off, off
        incl = _u32(d, off + 8, big)
        if incl > max_record:
            return k, 3, off, off
        if off + 16 + incl > n:
            return k, 2, off, off
        if fill:
            offsets[k] = off + 16
            lengths[k] = incl
            ts[k] = _u32(d, off, big) * 1000000000 + _u32(d, off + 4, big) * scale
        k += 1
        off += 16 + incl
    return k, 0, 0, off


_WALK_ERRORS = {1: "truncated record header", 2: "truncated record data",
                3: "implausible record length"}


def _or_none(bad):
    """``Frames.fcs_bad`` convention: None when no frame is flagged."""
    return bad if bad is not None and bad.any() else None


def read_pcap(path, *, strict: bool = True) -> Frames:
    """Read a pcap file (µs or ns magic, either byte order; gzip allowed). A header whose
    link type says frames carry a 4-byte FCS: each unsnapped frame loses its FCS, and a wrong
    one flags ``fcs_bad``."""
    d = load_bytes(path)
    if d.size < 24:
        raise CaptureError(f"{path}: offset 0: pcap file header truncated ({d.size} bytes)")
    magic = d[:4].tobytes()
    if magic not in _PCAP_MAGICS:
        raise CaptureError(f"{path}: offset 0: not a pcap file (magic {magic.hex()})")
    order, ns = _PCAP_MAGICS[magic]
    big = order == ">"
    _, _, _, _, snaplen, network = struct.unpack(order + "HHiIII", d[4:24].tobytes())
    linktype = network & 0xFFFF  # upper bits may carry FCS information
    # draft-ietf-opsawg-pcap: bit 28 set -> bits 29-31 are the FCS length in 16-bit units
    fcs_len = 2 * (network >> 29) if network & 0x10000000 else 0
    max_record = max(MAX_RECORD, snaplen)
    e = np.zeros(0, np.int64)
    k, err, where, _ = _pcap_walk(d, big, ns, max_record, False, e, e, e)
    if err and (strict or err == 3):  # non-strict forgives a cut-off tail, not corruption
        raise CaptureError(f"{path}: offset {where}: {_WALK_ERRORS[err]} (record {k})")
    offsets = np.empty(k, np.int64)
    lengths = np.empty(k, np.int64)
    ts = np.empty(k, np.int64)
    _pcap_walk(d, big, ns, max_record, True, offsets, lengths, ts)
    bad = None
    if fcs_len == 4:  # the only FCS length checked (Ethernet's); others are left in place
        bad = _fcs_pass(d, offsets, lengths, offsets - 4, np.full(k, big),
                        np.ones(k, np.bool_))
    return Frames(d, offsets, lengths, ts, linktype, where if err else None,
                  _or_none(bad))


def _as_frames(frames, timestamps_ns) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """(frames, timestamps, bad-FCS flag per frame) of a Frames or a list of bytes."""
    if isinstance(frames, Frames):
        ts = frames.timestamps_ns if timestamps_ns is None else timestamps_ns
        bad = (np.zeros(len(frames), np.bool_) if frames.fcs_bad is None
               else np.asarray(frames.fcs_bad, np.bool_))
        frames = [frames.data[o:o + n].tobytes()
                  for o, n in zip(frames.offsets.tolist(), frames.lengths.tolist())]
    else:
        frames = list(frames)
        bad = fcs_flags(frames)  # before bytes() turns FcsError into plain bytes
        frames = [bytes(f) for f in frames]
        ts = np.arange(len(frames), dtype=np.int64) if timestamps_ns is None else timestamps_ns
    ts = np.asarray(ts, np.int64)
    if len(ts) != len(frames):
        raise ValueError(f"{len(ts)} timestamps for {len(frames)} frames")
    return frames, ts, bad


def write_pcap(path, frames: Frames | Iterable[bytes], timestamps_ns=None, *,
               nanosecond: bool = True, linktype: int = LINKTYPE_ETHERNET,
               snaplen: int = MAX_RECORD) -> None:
    """Write a little-endian pcap (ns magic a1b23c4d unless ``nanosecond=False``, which
    truncates timestamps to µs). Timestamps default to the Frames' own, else 0, 1, 2... ns.
    pcap has no per-frame flags: bad-FCS flags are not kept (:func:`write_pcapng` keeps them)."""
    frames, ts, _ = _as_frames(frames, timestamps_ns)
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    sec = ts // 1_000_000_000
    frac = ts % 1_000_000_000
    if not nanosecond:
        frac = frac // 1000
    out = [struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for f, s, fr in zip(frames, sec.tolist(), frac.tolist()):
        out.append(struct.pack("<IIII", s, fr, len(f), len(f)))
        out.append(f)
    Path(path).write_bytes(b"".join(out))


# --------------------------------------------------------------------------- pcapng

_SHB, _IDB, _SPB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000003, 0x00000006


@nb.njit(cache=True)
def _epb_flags(d, o, end, big):
    """The ``epb_flags`` word (option 2) in the option list ``d[o:end]``, 0 when absent."""
    while o + 4 <= end:
        code = _u16(d, o, big)
        ln = _u16(d, o + 2, big)
        if code == 0:
            break
        if code == 2 and ln == 4 and o + 8 <= end:
            return _u32(d, o + 4, big)
        o += 4 + ((ln + 3) & ~3)
    return 0


@nb.njit(cache=True)
def _pcapng_walk(d, fill, kinds, offs, a, b, c, flags, big_out):
    """Walk pcapng blocks. For each SHB/IDB/EPB/SPB (others skipped) record its kind, block
    offset, and for EPB: (interface, timestamp, captured length, epb_flags or 0), for SPB:
    (0, 0, length, 0). Returns (blocks, error code, error offset); error 1 truncated block,
    2 bad block length, 3 bad byte-order magic, 4 packet data past the block."""
    n = d.size
    off = 0
    k = 0
    big = False
    while off < n:
        if off + 12 > n:
            return k, 1, off
        btype = _u32(d, off, False)  # SHB's type is a palindrome; others need its order
        if btype == 0x0A0D0D0A:
            bom = _u32(d, off + 8, False)
            if bom == 0x1A2B3C4D:
                big = False
            elif bom == 0x4D3C2B1A:
                big = True
            else:
                return k, 3, off
        else:
            btype = _u32(d, off, big)
        blen = _u32(d, off + 4, big)
        if blen < 12 or blen % 4 != 0:
            return k, 2, off
        if off + blen > n:
            return k, 1, off
        kind = 0
        if btype == 0x0A0D0D0A:
            kind = 1
        elif btype == 1:
            kind = 2
        elif btype == 6:
            kind = 3
            if blen < 32:
                return k, 2, off
            cap = _u32(d, off + 20, big)
            if 28 + cap > blen - 4:
                return k, 4, off
        elif btype == 3:
            kind = 4
            if blen < 16:
                return k, 2, off
        if kind:
            if fill:
                kinds[k] = kind
                offs[k] = off
                big_out[k] = big
                flags[k] = 0
                if kind == 3:
                    a[k] = _u32(d, off + 8, big)
                    b[k] = (_u32(d, off + 12, big) << 32) | _u32(d, off + 16, big)
                    cap = _u32(d, off + 20, big)
                    c[k] = cap
                    opts = off + 28 + ((cap + 3) & ~3)
                    if opts < off + blen - 4:  # options are rare: parse only when present
                        flags[k] = _epb_flags(d, opts, off + blen - 4, big)
                elif kind == 4:
                    a[k] = 0
                    b[k] = 0
                    c[k] = min(_u32(d, off + 8, big), blen - 16)
            k += 1
        off += blen
    return k, 0, 0


def _options(buf: bytes, order: str) -> dict[int, bytes]:
    """Parse a pcapng option list (code -> first value)."""
    out: dict[int, bytes] = {}
    o = 0
    while o + 4 <= len(buf):
        code, ln = struct.unpack_from(order + "HH", buf, o)
        if code == 0:
            break
        out.setdefault(code, buf[o + 4:o + 4 + ln])
        o += 4 + ((ln + 3) & ~3)
    return out


def _ticks_to_ns(ticks: np.ndarray, tsresol: int, tsoffset: int) -> np.ndarray:
    """Timestamps in units of ``if_tsresol`` to int64 ns since the epoch."""
    t = ticks.astype(np.uint64)
    if tsresol & 0x80:
        k = tsresol & 0x7F
        sec = (t >> np.uint64(k)).astype(np.int64)
        frac = t & np.uint64((1 << k) - 1)
        if k <= 34:  # frac * 1e9 fits in 64 bits
            fns = ((frac * np.uint64(10 ** 9)) >> np.uint64(k)).astype(np.int64)
        else:
            fns = np.floor(frac.astype(np.float64) * 1e9 / 2.0 ** k).astype(np.int64)
        ns = sec * 1_000_000_000 + fns
    else:
        k = tsresol
        if k <= 9:
            ns = t.astype(np.int64) * (10 ** (9 - k))
        else:
            ns = (t // np.uint64(10 ** (k - 9))).astype(np.int64)
    return ns + tsoffset * 1_000_000_000


def read_pcapng(path, *, strict: bool = True) -> Frames:
    """Read a pcapng file: SHB (any byte order, several sections), IDB (``if_tsresol``,
    ``if_tsoffset``), EPB and SPB (SPB frames have timestamp 0). All interfaces must share
    one link type."""
    d = load_bytes(path)
    if d[:4].tobytes() != _PCAPNG_SHB:
        raise CaptureError(f"{path}: offset 0: not a pcapng file (no section header block)")
    e64 = np.zeros(0, np.int64)
    eb = np.zeros(0, np.bool_)
    k, err, where = _pcapng_walk(d, False, e64, e64, e64, e64, e64, e64, eb)
    if err:
        why = {1: "truncated block", 2: "bad block length", 3: "bad byte-order magic",
               4: "packet data runs past its block"}[err]
        if strict or err != 1:
            raise CaptureError(f"{path}: offset {where}: {why} (block {k})")
    kinds, offs, a, b, c, flags = np.empty((6, k), np.int64)  # rows: 1-D C-contiguous views
    big = np.empty(k, np.bool_)
    _pcapng_walk(d, True, kinds, offs, a, b, c, flags, big)

    # Interfaces: global index = section's first interface + local id (a few, Python is fine).
    ifaces: list[tuple[int, int, int, int]] = []  # (linktype, tsresol, tsoffset, fcslen)
    section_base = np.zeros(k, np.int64)     # per block: index of its section's interface 0
    base = 0
    for i in np.flatnonzero(kinds <= 2).tolist():
        o = int(offs[i])
        order = ">" if big[i] else "<"
        if kinds[i] == 1:
            base = len(ifaces)
        else:
            blen = struct.unpack_from(order + "I", d, o + 4)[0]
            lt = struct.unpack_from(order + "H", d, o + 8)[0]
            opts = _options(d[o + 16:o + blen - 4].tobytes(), order)
            tsresol = opts.get(9, b"\x06")[0]
            tsoff = struct.unpack(order + "q", opts[14][:8])[0] if len(opts.get(14, b"")) >= 8 \
                else 0
            fcslen = opts.get(13, b"\0")[0]  # if_fcslen: FCS bytes at the end of each frame
            ifaces.append((lt, tsresol, tsoff, fcslen))
        section_base[i] = base
    # Propagate each section's base to the packet blocks after it.
    marks = np.where(kinds <= 2, np.arange(k), -1)
    last = np.maximum.accumulate(marks) if k else marks
    pkt = (kinds >= 3)
    if np.any(pkt & (last < 0)):
        raise CaptureError(f"{path}: offset {int(offs[pkt][0])}: packet before any header")
    gidx = section_base[last[pkt]] + a[pkt]
    if len(gidx) and (gidx.max() >= len(ifaces)):
        bad = int(offs[pkt][np.argmax(gidx >= len(ifaces))])
        raise CaptureError(f"{path}: offset {bad}: packet names an undefined interface")
    linktypes = {ifaces[i][0] for i in np.unique(gidx).tolist()}
    if len(linktypes) > 1:
        raise CaptureError(f"{path}: offset 0: interfaces of different link types "
                           f"{sorted(linktypes)} are not supported")
    linktype = linktypes.pop() if linktypes else (ifaces[0][0] if ifaces else LINKTYPE_ETHERNET)
    ts = np.zeros(len(gidx), np.int64)
    for g in np.unique(gidx).tolist():
        sel = gidx == g
        _, tsresol, tsoff, _ = ifaces[g]
        ts[sel] = _ticks_to_ns(b[pkt][sel], tsresol, tsoff)
    is_spb = kinds[pkt] == 4
    ts[is_spb] = 0
    blocks = offs[pkt]
    offsets = blocks + np.where(is_spb, 12, 28)
    lengths = c[pkt].copy()
    fcs_bad = None
    ef = flags[pkt]
    ef_fcs = np.zeros(0, np.int64)
    if ef.any():  # (no EPB options, the common case, costs one scan)
        fcs_bad = (ef >> 24) & 1 == 1  # epb_flags bit 24: the link layer saw a CRC error
        ef_fcs = (ef >> 5) & 0xF
    if_fcs = np.array([i[3] for i in ifaces], np.int64)
    if (if_fcs == 4).any() or ef_fcs.any():
        # FCS bytes per frame: epb_flags bits 5-8 override the interface's if_fcslen
        fcs = if_fcs[gidx]
        if ef_fcs.any():
            fcs = np.where(ef_fcs != 0, ef_fcs, fcs)
        sel = fcs == 4  # Ethernet's; other FCS lengths are left in place
        if sel.any():
            orig_at = blocks + np.where(is_spb, 8, 24)  # original length field
            checked = _fcs_pass(d, offsets, lengths, orig_at, big[pkt], sel)
            fcs_bad = checked if fcs_bad is None else fcs_bad | checked
    return Frames(d, offsets, lengths, ts, linktype, where if err else None, _or_none(fcs_bad))


#: EPB options of a bad-FCS frame: epb_flags = bit 24 (CRC error), then opt_endofopt.
_EPB_CRC_ERROR = struct.pack("<HHIHH", 2, 4, 1 << 24, 0, 0)


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def write_pcapng(path, frames: Frames | Iterable[bytes], timestamps_ns=None, *,
                 linktype: int = LINKTYPE_ETHERNET) -> None:
    """Write a little-endian pcapng: one SHB, one IDB (``if_tsresol`` = 9: nanoseconds), one
    EPB per frame. A bad-FCS frame (:class:`~tickwire.host.framing.FcsError`, or flagged in
    ``Frames.fcs_bad``) gets ``epb_flags`` with bit 24 (CRC error); others have no options."""
    frames, ts, bad = _as_frames(frames, timestamps_ns)
    shb_body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
    shb = struct.pack("<II", _SHB, 12 + len(shb_body)) + shb_body + struct.pack(
        "<I", 12 + len(shb_body))
    opts = struct.pack("<HH", 9, 1) + _pad4(b"\x09") + struct.pack("<HH", 0, 0)
    idb_body = struct.pack("<HHI", linktype, 0, 0) + opts
    idb = struct.pack("<II", _IDB, 12 + len(idb_body)) + idb_body + struct.pack(
        "<I", 12 + len(idb_body))
    out = [shb, idb]
    for f, t, e in zip(frames, ts.tolist(), bad.tolist()):
        body = struct.pack("<IIIII", 0, (t >> 32) & 0xFFFFFFFF, t & 0xFFFFFFFF, len(f),
                           len(f)) + _pad4(f)
        if e:
            body += _EPB_CRC_ERROR
        blen = 12 + len(body)
        out.append(struct.pack("<II", _EPB, blen) + body + struct.pack("<I", blen))
    Path(path).write_bytes(b"".join(out))


def read_capture(path, *, strict: bool = True) -> Frames:
    """Read a pcap or pcapng file, whichever it is."""
    fmt = sniff_format(path)
    if fmt == "pcap":
        return read_pcap(path, strict=strict)
    if fmt == "pcapng":
        return read_pcapng(path, strict=strict)
    raise CaptureError(f"{path}: offset 0: not a pcap or pcapng file")


def merge_by_time(*captures: Frames) -> Frames:
    """Interleave captures (e.g. lines A and B) by timestamp into one Frames; on equal
    timestamps the earlier argument comes first (stable)."""
    if not captures:
        raise ValueError("merge_by_time needs at least one capture")
    lts = {f.linktype for f in captures}
    if len(lts) > 1:
        raise ValueError(f"cannot merge captures of link types {sorted(lts)}")
    bases = np.cumsum([0] + [f.data.size for f in captures[:-1]])
    data = np.concatenate([f.data for f in captures])
    offsets = np.concatenate([f.offsets + base for f, base in zip(captures, bases)])
    lengths = np.concatenate([f.lengths for f in captures])
    ts = np.concatenate([f.timestamps_ns for f in captures])
    order = np.argsort(ts, kind="stable")
    bad = None
    if any(f.fcs_bad is not None for f in captures):
        bad = np.concatenate([np.zeros(len(f), np.bool_) if f.fcs_bad is None
                              else np.asarray(f.fcs_bad, np.bool_) for f in captures])[order]
    return Frames(data, offsets[order], lengths[order], ts[order], lts.pop(),
                  fcs_bad=_or_none(bad))


# --------------------------------------------------------------------------- BinaryFILE

@nb.njit(cache=True)
def _binaryfile_walk(d, fill, offsets, lengths):
    """Returns (messages, error offset or -1)."""
    n = d.size
    off = 0
    k = 0
    while off < n:
        if off + 2 > n:
            return k, off
        ln = (np.int64(d[off]) << 8) | np.int64(d[off + 1])
        if off + 2 + ln > n:
            return k, off
        if fill:
            offsets[k] = off + 2
            lengths[k] = ln
        k += 1
        off += 2 + ln
    return k, -1


def read_binaryfile(path, *, strict: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a NASDAQ BinaryFILE (each message preceded by its 2-byte big-endian length;
    gzip allowed). Returns ``(data uint8, offsets int64, lengths int64)``; message *i* is
    ``data[offsets[i] : offsets[i] + lengths[i]]`` (offsets point past the length prefix).
    With ``strict=False`` an incomplete last message is dropped instead of raising."""
    d = load_bytes(path)
    e = np.zeros(0, np.int64)
    k, err = _binaryfile_walk(d, False, e, e)
    if err >= 0 and strict:
        raise CaptureError(f"{path}: offset {err}: truncated BinaryFILE message (message {k})")
    offsets = np.empty(k, np.int64)
    lengths = np.empty(k, np.int64)
    _binaryfile_walk(d, True, offsets, lengths)
    return d, offsets, lengths


def write_binaryfile(path, messages: Iterable[bytes], compress: bool | None = None) -> None:
    """Write a BinaryFILE; gzip when ``compress`` (default: when the path ends with .gz)."""
    if compress is None:
        compress = os.fspath(path).endswith(".gz")
    parts = []
    for m in messages:
        m = bytes(m)
        if len(m) > 0xFFFF:
            raise ValueError(f"message of {len(m)} bytes is too long for BinaryFILE")
        parts.append(struct.pack(">H", len(m)))
        parts.append(m)
    blob = b"".join(parts)
    if compress:
        # mtime=0: the same messages always give the same file
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(blob)
    else:
        Path(path).write_bytes(blob)
