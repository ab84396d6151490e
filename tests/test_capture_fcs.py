"""Bad-FCS flags through the capture readers and writers (``Frames.fcs_bad``): pcapng
``epb_flags`` bit 24, frames captured with their FCS (pcapng ``if_fcslen`` / ``epb_flags``
FCS length, pcap link-type FCS bits), and merge_by_time."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from scapy.utils import rdpcap

from tickwire.host import capture as cap
from tickwire.host.framing import FcsError, build_udp_frame

CRC_ERROR = 1 << 24  # epb_flags bit 24


def _frames(n=5):
    return [build_udp_frame(bytes([i]) * (20 + 7 * i)) for i in range(n)]


def _fcs(f: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(f))


def _block(order, btype, body):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def _opt(order, code, value):
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _shb(o):
    return _block(o, 0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def _idb(o, *opts):
    body = struct.pack(o + "HHI", 1, 0, 0)
    if opts:
        body += b"".join(opts) + _opt(o, 0, b"")
    return _block(o, 1, body)


def _epb(o, data, orig=None, opts=b"", iface=0, ts=0):
    orig = len(data) if orig is None else orig
    body = struct.pack(o + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), orig)
    body += data + b"\0" * (-len(data) % 4) + opts
    return _block(o, 6, body)


def _flags_opt(o, word):
    return _opt(o, 2, struct.pack(o + "I", word)) + _opt(o, 0, b"")


def test_crc32_matches_zlib():
    rng = np.random.default_rng(1)
    d = rng.integers(0, 256, 3000, dtype=np.uint8)
    for o, n in [(0, 0), (0, 1), (3, 7), (5, 8), (1, 9), (0, 64), (17, 1517), (100, 2900)]:
        assert cap._crc32(d, o, n, cap._CRC) == zlib.crc32(d[o:o + n].tobytes()), (o, n)


def test_pcapng_roundtrip_keeps_flags(tmp_path):
    frames = _frames()
    frames[1] = FcsError(frames[1])
    frames[4] = FcsError(frames[4])
    ts = [1_700_000_000_000_000_000 + 10 * i for i in range(len(frames))]
    p = tmp_path / "f.pcapng"
    cap.write_pcapng(p, frames, ts)
    got = cap.read_pcapng(p)
    assert got.fcs_bad.tolist() == [False, True, False, False, True]
    assert list(got) == frames and [type(f) for f in got] == [type(f) for f in frames]
    assert got.timestamps_ns.tolist() == ts
    # Frames in, Frames out; and the same via read_capture
    q = tmp_path / "g.pcapng"
    cap.write_pcapng(q, got)
    assert cap.read_capture(q).fcs_bad.tolist() == got.fcs_bad.tolist()
    # other readers skip the option: scapy sees the same frames
    assert [bytes(x) for x in rdpcap(str(p))] == [bytes(f) for f in frames]


def test_pcapng_unflagged_frames_written_as_before(tmp_path):
    frames = _frames(3)
    p, q = tmp_path / "plain.pcapng", tmp_path / "one.pcapng"
    cap.write_pcapng(p, frames)
    cap.write_pcapng(q, [frames[0], FcsError(frames[1]), frames[2]])
    plain, one = p.read_bytes(), q.read_bytes()
    # only frame 1's block differs: 12 bytes longer (epb_flags + opt_endofopt)
    assert len(one) == len(plain) + 12
    got = cap.read_pcapng(p)
    assert got.fcs_bad is None
    for i in (0, 2):  # no options: block length is 32 + padded frame
        blk = int(got.offsets[i]) - 28
        assert struct.unpack_from("<I", plain, blk + 4)[0] == 32 + (len(frames[i]) + 3) // 4 * 4
    flagged = cap.read_pcapng(q)
    blk = int(flagged.offsets[1]) - 28
    blen = struct.unpack_from("<I", one, blk + 4)[0]
    opts = one[blk + 28 + (len(frames[1]) + 3) // 4 * 4: blk + blen - 4]
    assert opts == struct.pack("<HHIHH", 2, 4, CRC_ERROR, 0, 0)


def test_pcapng_if_fcslen_strips_and_checks(tmp_path):
    f = _frames(4)
    o = "<"
    out = _shb(o) + _idb(o, _opt(o, 9, b"\x09"), _opt(o, 13, b"\x04"))
    out += _epb(o, f[0] + _fcs(f[0]), ts=1)                         # good FCS
    bad_fcs = bytearray(_fcs(f[1]))
    bad_fcs[0] ^= 0xFF
    out += _epb(o, f[1] + bytes(bad_fcs), ts=2)                     # wrong FCS
    out += _epb(o, f[2][:40], orig=len(f[2]) + 4, ts=3)             # snapped: FCS not captured
    out += _block(o, 3, struct.pack(o + "I", len(f[3]) + 4) + f[3] + _fcs(f[3]))  # SPB, good
    p = tmp_path / "fcs.pcapng"
    p.write_bytes(out)
    got = cap.read_pcapng(p)
    assert list(got) == [f[0], f[1], f[2][:40], f[3]]
    assert got.lengths.tolist() == [len(f[0]), len(f[1]), 40, len(f[3])]
    assert got.fcs_bad.tolist() == [False, True, False, False]
    assert isinstance(got.frame(1), FcsError) and not isinstance(got.frame(0), FcsError)
    assert got.timestamps_ns.tolist() == [1, 2, 3, 0]


def test_pcapng_all_good_fcs_gives_none(tmp_path):
    f = _frames(3)
    o = "<"
    out = _shb(o) + _idb(o, _opt(o, 13, b"\x04")) + b"".join(_epb(o, x + _fcs(x)) for x in f)
    p = tmp_path / "good.pcapng"
    p.write_bytes(out)
    got = cap.read_pcapng(p)
    assert list(got) == f and got.fcs_bad is None


def test_pcapng_big_endian_flags_and_fcs(tmp_path):
    f = _frames(6)
    o = ">"
    # section 1, big-endian: interface 0 without FCS, interface 1 with (if_fcslen = 4)
    out = _shb(o) + _idb(o) + _idb(o, _opt(o, 13, b"\x04"))
    out += _epb(o, f[0], opts=_flags_opt(o, CRC_ERROR | 0x1))            # flagged by the MAC
    out += _epb(o, f[1], opts=_flags_opt(o, 0x2 | (1 << 31)))            # other bits: not ours
    out += _epb(o, f[2], opts=_opt(o, 1, b"a comment") + _flags_opt(o, CRC_ERROR))
    out += _epb(o, f[3] + _fcs(f[3])[::-1], iface=1)                   # FCS wrong (reversed)
    # epb_flags FCS length (bits 5-8, octets) overrides the interface's if_fcslen
    out += _epb(o, f[4] + _fcs(f[4]), opts=_flags_opt(o, 4 << 5))
    # section 2, little-endian: interface 0 here is a new one, no FCS
    o = "<"
    out += _shb(o) + _idb(o) + _epb(o, f[5], opts=_flags_opt(o, CRC_ERROR))
    p = tmp_path / "be.pcapng"
    p.write_bytes(out)
    got = cap.read_pcapng(p)
    assert list(got) == f
    assert got.fcs_bad.tolist() == [True, False, True, True, False, True]


def _pcap_fcs(tmp_path, frames, network, order="<"):
    out = [struct.pack(order + "IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, network)]
    for i, (f, orig) in enumerate(frames):
        out.append(struct.pack(order + "IIII", 1, i, len(f), orig) + f)
    p = tmp_path / "x.pcap"
    p.write_bytes(b"".join(out))
    return p


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcap_linktype_fcs_bits(tmp_path, order):
    f = _frames(3)
    recs = [(f[0] + _fcs(f[0]), len(f[0]) + 4),
            (f[1] + b"\0\0\0\0", len(f[1]) + 4),                 # wrong FCS
            (f[2][:30], len(f[2]) + 4)]                          # snapped: kept, unchecked
    net = 1 | 0x10000000 | (2 << 29)  # F bit, FCS length 2 x 16 bits
    got = cap.read_pcap(_pcap_fcs(tmp_path, recs, net, order))
    assert got.linktype == 1
    assert list(got) == [f[0], f[1], f[2][:30]]
    assert got.fcs_bad.tolist() == [False, True, False]
    assert got.timestamps_ns.tolist() == [1_000_000_000, 1_000_000_001, 1_000_000_002]


def test_pcap_other_upper_bits_only_masked(tmp_path):
    f = _frames(2)
    recs = [(x + _fcs(x), len(x) + 4) for x in f]
    # F bit clear: bits 29-31 mean nothing; F set with length 0: no FCS
    for net in (1 | (2 << 29), 1 | 0x10000000, 1 | 0x0ABC0000):
        got = cap.read_pcap(_pcap_fcs(tmp_path, recs, net))
        assert got.linktype == 1 and got.fcs_bad is None
        assert list(got) == [r for r, _ in recs]  # FCS left in place
    got = cap.read_pcap(_pcap_fcs(tmp_path, recs, 1 | 0x10000000 | (2 << 29)))
    assert list(got) == f and got.fcs_bad is None


def test_captures_without_flags_have_none(tmp_path):
    frames = _frames()
    cap.write_pcap(tmp_path / "a.pcap", frames)
    cap.write_pcapng(tmp_path / "a.pcapng", frames)
    for name in ("a.pcap", "a.pcapng"):
        got = cap.read_capture(tmp_path / name)
        assert got.fcs_bad is None and list(got) == frames
        assert all(type(x) is bytes for x in got)


def test_merge_by_time_keeps_flags():
    a = cap.Frames.from_list([b"a1", FcsError(b"a2"), b"a3"], [10, 20, 30])
    b = cap.Frames.from_list([FcsError(b"b1"), b"b2"], [15, 20])
    c = cap.Frames.from_list([b"c1"], [5])
    m = cap.merge_by_time(a, b, c)
    assert list(m) == [b"c1", b"a1", b"b1", b"a2", b"b2", b"a3"]
    assert m.fcs_bad.tolist() == [False, False, True, True, False, False]
    assert [type(x) for x in m] == [bytes, bytes, FcsError, FcsError, bytes, bytes]
    # no flagged frame anywhere: None
    plain = cap.merge_by_time(cap.Frames.from_list([b"x"], [2]), c)
    assert plain.fcs_bad is None
    # an all-False array counts as no flags
    z = cap.Frames.from_list([b"z"], [1])
    z.fcs_bad = np.zeros(1, np.bool_)
    assert cap.merge_by_time(z, c).fcs_bad is None


def test_merged_flags_survive_pcapng(tmp_path):
    a = cap.Frames.from_list([b"a1" * 30, FcsError(b"a2" * 30)], [10, 30])
    b = cap.Frames.from_list([FcsError(b"b1" * 30)], [20])
    p = tmp_path / "m.pcapng"
    cap.write_pcapng(p, cap.merge_by_time(a, b))
    got = cap.read_pcapng(p)
    assert got.fcs_bad.tolist() == [False, True, True]
    assert got.timestamps_ns.tolist() == [10, 20, 30]
