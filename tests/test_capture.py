"""pcap / pcapng / BinaryFILE readers and writers, with scapy as the independent codec."""

from __future__ import annotations

import gzip
import struct
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from scapy.utils import PcapWriter, rdpcap, wrpcapng

from tickwire.host import capture as cap
from tickwire.host import itch
from tickwire.host.emu.feed import index_binaryfile
from tickwire.host.framing import build_udp_frame

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ITCH_PCAPS = sorted((SHARED / "itch").glob("*.pcap"))


def _ns(t) -> int:
    return int(Decimal(t) * 1_000_000_000)


def _sample_frames(n=7):
    frames = [build_udp_frame(bytes(range(i * 13 % 256)) * (1 + i), vlan=(i if i % 2 else None))
              for i in range(n)]
    ts = [1692711000_000000001 + i * 1_234_567_891 for i in range(n)]
    return frames, ts


@pytest.mark.skipif(not ITCH_PCAPS, reason=f"shared data absent: {SHARED / 'itch'}")
def test_read_real_pcaps_matches_scapy():
    for path in ITCH_PCAPS:
        f = cap.read_pcap(path)
        pk = rdpcap(str(path))
        assert len(f) == len(pk), path
        assert f.linktype == 1 and cap.sniff_format(path) == "pcap"
        for i, p in enumerate(pk):
            assert f.frame(i) == bytes(p), (path, i)
            assert int(f.timestamps_ns[i]) == _ns(p.time), (path, i)


def test_write_pcap_read_by_scapy(tmp_path):
    frames, ts = _sample_frames()
    p = tmp_path / "a.pcap"
    cap.write_pcap(p, frames, ts)
    assert p.read_bytes()[:4] == struct.pack("<I", 0xA1B23C4D)
    pk = rdpcap(str(p))
    assert [bytes(x) for x in pk] == frames
    assert [_ns(x.time) for x in pk] == ts
    # microsecond files truncate to whole microseconds
    cap.write_pcap(tmp_path / "u.pcap", frames, ts, nanosecond=False)
    pk = rdpcap(str(tmp_path / "u.pcap"))
    assert [_ns(x.time) for x in pk] == [t // 1000 * 1000 for t in ts]
    back = cap.read_pcap(tmp_path / "u.pcap")
    assert back.timestamps_ns.tolist() == [t // 1000 * 1000 for t in ts]


@pytest.mark.parametrize("nano", [False, True])
@pytest.mark.parametrize("endianness", ["<", ">"])
def test_scapy_pcap_read_by_us(tmp_path, nano, endianness):
    frames, ts = _sample_frames()
    p = tmp_path / "s.pcap"
    from scapy.layers.l2 import Ether
    pkts = []
    for f, t in zip(frames, ts):
        x = Ether(f)
        x.time = Decimal(t) / 1_000_000_000
        pkts.append(x)
    with PcapWriter(str(p), nano=nano, endianness=endianness, linktype=1) as w:
        w.write(pkts)
    got = cap.read_pcap(p)
    assert list(got) == frames
    # scapy rounds to microseconds (we truncate when writing): compare with its own reading
    want = [_ns(x.time) for x in rdpcap(str(p))]
    assert got.timestamps_ns.tolist() == want
    if nano:
        assert want == ts


def test_pcapng_roundtrip_with_scapy(tmp_path):
    frames, ts = _sample_frames()
    p = tmp_path / "a.pcapng"
    cap.write_pcapng(p, frames, ts)
    assert cap.sniff_format(p) == "pcapng"
    pk = rdpcap(str(p))
    assert [bytes(x) for x in pk] == frames
    assert [_ns(x.time) for x in pk] == ts
    back = cap.read_pcapng(p)
    assert list(back) == frames and back.timestamps_ns.tolist() == ts
    # scapy's writer (microsecond resolution by default) read by ours
    from scapy.layers.l2 import Ether
    pkts = []
    for f, t in zip(frames, ts):
        x = Ether(f)
        x.time = Decimal(t) / 1_000_000_000
        pkts.append(x)
    q = tmp_path / "s.pcapng"
    wrpcapng(str(q), pkts)
    got = cap.read_capture(q)
    assert list(got) == frames
    assert got.timestamps_ns.tolist() == [_ns(x.time) for x in rdpcap(str(q))]


def _block(order, btype, body):
    body = body + b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def _opt(order, code, value):
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def test_pcapng_sections_tsresol_and_spb(tmp_path):
    f1, f2, f3 = (build_udp_frame(bytes([i]) * 30) for i in range(3))
    out = b""
    # Section 1, big-endian, interface with if_tsresol = 2^-20 and if_tsoffset = 100 s.
    o = ">"
    out += _block(o, 0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += _block(o, 1, struct.pack(o + "HHI", 1, 0, 65535) + _opt(o, 9, b"\x94")
                  + _opt(o, 14, struct.pack(o + "q", 100)) + _opt(o, 0, b""))
    ticks = (5 << 20) + (1 << 19)  # 5.5 s
    out += _block(o, 6, struct.pack(o + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(f1),
                                    len(f1)) + f1)
    out += _block(o, 0x12345678, b"unknown block kinds are skipped")
    # Section 2, little-endian, two interfaces: microseconds (default) and milliseconds.
    o = "<"
    out += _block(o, 0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    # (snaplens 65535, not 0 = unlimited: scapy reads SPBs of snaplen 0 as empty, and takes
    # an SPB's interface 0 from the first section rather than the SPB's own)
    out += _block(o, 1, struct.pack(o + "HHI", 1, 0, 65535))
    out += _block(o, 1, struct.pack(o + "HHI", 1, 0, 0) + _opt(o, 9, b"\x03"))
    out += _block(o, 6, struct.pack(o + "IIIII", 1, 0, 1234, len(f2), len(f2)) + f2)
    out += _block(o, 3, struct.pack(o + "I", len(f3)) + f3)
    p = tmp_path / "m.pcapng"
    p.write_bytes(out)
    got = cap.read_pcapng(p)
    assert list(got) == [f1, f2, f3]
    assert got.timestamps_ns.tolist() == [105_500_000_000, 1_234_000_000, 0]
    # scapy agrees on the frames and on the 2^-20 resolution (it ignores if_tsoffset)
    pk = rdpcap(str(p))
    assert [bytes(x) for x in pk] == [f1, f2, f3]
    assert _ns(pk[0].time) + 100_000_000_000 == 105_500_000_000


def test_truncated_pcap_is_a_capture_error(tmp_path):
    frames, ts = _sample_frames(3)
    p = tmp_path / "t.pcap"
    cap.write_pcap(p, frames, ts)
    whole = p.read_bytes()
    last = 24 + sum(16 + len(f) for f in frames[:2])
    for cut, offset in ((len(whole) - 1, last), (last + 7, last), (10, 0)):
        p.write_bytes(whole[:cut])
        with pytest.raises(cap.CaptureError) as e:
            cap.read_pcap(p)
        assert str(p) in str(e.value) and f"offset {offset}" in str(e.value)
    p.write_bytes(whole[:-1])
    lax = cap.read_pcap(p, strict=False)
    assert list(lax) == frames[:2] and lax.truncated_at == last
    # an absurd record length is reported, not allocated
    bad = bytearray(whole)
    struct.pack_into("<I", bad, 24 + 8, 0x7FFFFFFF)
    p.write_bytes(bytes(bad))
    with pytest.raises(cap.CaptureError, match="offset 24"):
        cap.read_pcap(p)
    p.write_bytes(b"\x00" * 40)
    with pytest.raises(cap.CaptureError, match="not a pcap"):
        cap.read_pcap(p)


def test_truncated_pcapng_is_a_capture_error(tmp_path):
    frames, ts = _sample_frames(3)
    p = tmp_path / "t.pcapng"
    cap.write_pcapng(p, frames, ts)
    whole = p.read_bytes()
    p.write_bytes(whole[:-3])
    with pytest.raises(cap.CaptureError) as e:
        cap.read_pcapng(p)
    assert str(p) in str(e.value) and "offset" in str(e.value)
    assert list(cap.read_pcapng(p, strict=False)) == frames[:2]


def test_gzip_pcap(tmp_path):
    frames, ts = _sample_frames()
    p = tmp_path / "a.pcap"
    cap.write_pcap(p, frames, ts)
    g = tmp_path / "a.pcap.gz"
    g.write_bytes(gzip.compress(p.read_bytes()))
    assert cap.sniff_format(g) == "pcap"
    assert list(cap.read_capture(g)) == frames


def _itch_messages(n=50):
    out = []
    for i in range(n):
        out.append(itch.encode("A", stock_locate=i % 7, timestamp=i * 1000,
                               order_reference_number=i, buy_sell_indicator="B", shares=100,
                               stock="AAPL", price=1_500_000 + i))
        if i % 5 == 0:
            out.append(itch.encode("D", order_reference_number=i))
    return out


@pytest.mark.parametrize("name,compress", [("f.NASDAQ_ITCH50", None),
                                           ("f.NASDAQ_ITCH50.gz", None),
                                           ("f.bin", True)])
def test_binaryfile_roundtrip(tmp_path, name, compress):
    msgs = _itch_messages()
    p = tmp_path / name
    cap.write_binaryfile(p, msgs, compress=compress)
    gz = p.read_bytes()[:2] == b"\x1f\x8b"
    assert gz == (compress or name.endswith(".gz"))
    assert cap.sniff_format(p) == "binaryfile"
    data, offsets, lengths = cap.read_binaryfile(p)
    got = [data[o:o + n].tobytes() for o, n in zip(offsets, lengths)]
    assert got == msgs
    ix = index_binaryfile(data, offsets, lengths)
    assert len(ix) == len(msgs) and ix.sequences.tolist() == list(range(1, len(msgs) + 1))
    assert [itch.decode(ix.message(i))["type"] for i in range(len(ix))] == [chr(m[0])
                                                                           for m in msgs]
    assert ix.counters["messages"] == len(msgs)


def test_binaryfile_skips_and_truncation(tmp_path):
    good = _itch_messages(3)
    msgs = [good[0], b"Z" + b"\0" * 11, good[1][:-1], b"", good[2]]
    p = tmp_path / "x.NASDAQ_ITCH50"
    cap.write_binaryfile(p, msgs)
    ix = index_binaryfile(*cap.read_binaryfile(p))
    # record numbers stay the sequence even when records around them are skipped
    assert ix.sequences.tolist() == [1, 5]
    assert [ix.message(i) for i in range(2)] == [good[0], good[2]]
    assert (ix.counters["unknown_type"], ix.counters["bad_length"]) == (1, 2)
    whole = p.read_bytes()
    p.write_bytes(whole[:-5])
    with pytest.raises(cap.CaptureError) as e:
        cap.read_binaryfile(p)
    assert str(p) in str(e.value) and f"offset {len(whole) - len(good[2]) - 2}" in str(e.value)
    data, offsets, lengths = cap.read_binaryfile(p, strict=False)
    assert len(offsets) == 4


def test_frames_helpers_and_merge():
    a = cap.Frames.from_list([b"a1", b"a2", b"a3"], [10, 20, 30])
    b = cap.Frames.from_list([b"b1", b"b2"], [15, 20])
    m = cap.merge_by_time(a, b)
    assert list(m) == [b"a1", b"b1", b"a2", b"b2", b"a3"]
    assert m.timestamps_ns.tolist() == [10, 15, 20, 20, 30]
    assert len(m) == 5 and m.frame(1) == b"b1"
    assert isinstance(m.data, np.ndarray) and m.data.dtype == np.uint8
