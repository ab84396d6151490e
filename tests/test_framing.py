"""Ethernet/IPv4/UDP/TCP frame building and parsing, checked against scapy as the oracle."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.utils import rdpcap

from tickwire.host import framing as fr

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _scapy_ip_checksum(pkt) -> int:
    ip = pkt[IP].copy()
    del ip.chksum
    return IP(bytes(ip))[IP].chksum


def _scapy_tcp_checksum(pkt) -> int:
    ip = pkt[IP].copy()
    del ip[TCP].chksum
    return IP(bytes(ip))[TCP].chksum


def test_ipv4_checksum_known_vector():
    # The classic worked example (Wikipedia "IPv4 header checksum").
    hdr = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert fr.ipv4_checksum(hdr) == 0xB861
    good = hdr[:10] + b"\xb8\x61" + hdr[12:]
    assert fr.ipv4_checksum(good) == 0  # a correct header verifies to zero


def test_address_helpers():
    assert fr.ip_to_int("233.54.12.111") == 0xE9360C6F
    assert fr.int_to_ip(0xE9360C6F) == "233.54.12.111"
    assert fr.ip_to_bytes("1.2.3.4") == b"\x01\x02\x03\x04"
    assert fr.mac_to_bytes("aa:BB:cc:00:01:ff") == bytes.fromhex("aabbcc0001ff")
    assert fr.bytes_to_mac(bytes.fromhex("aabbcc0001ff")) == "aa:bb:cc:00:01:ff"
    # RFC 1112: only the low 23 bits of the group map into the MAC.
    assert fr.multicast_mac("233.54.12.111") == "01:00:5e:36:0c:6f"
    assert fr.multicast_mac("239.182.12.111") == "01:00:5e:36:0c:6f"
    for bad in ("1.2.3", "1.2.3.256", "a.b.c.d"):
        with pytest.raises(ValueError):
            fr.ip_to_int(bad)
    with pytest.raises(ValueError):
        fr.mac_to_bytes("aa:bb:cc:dd:ee")
    with pytest.raises(ValueError):
        fr.multicast_mac("10.0.0.1")


@pytest.mark.parametrize("vlan", [None, 0, 5, 4095])
@pytest.mark.parametrize("size", [0, 1, 17, 20, 1452])
def test_udp_frame_parses_in_scapy(vlan, size):
    payload = bytes(random.Random(size).getrandbits(8) for _ in range(size))
    f = fr.build_udp_frame(payload, vlan=vlan, ttl=21, ip_id=0xBEEF, src_port=4321)
    assert len(f) >= fr.MIN_FRAME
    p = Ether(f)
    if vlan is None:
        assert not p.haslayer(Dot1Q)
    else:
        assert p[Dot1Q].vlan == vlan and p[Dot1Q].type == 0x0800
    assert p.dst == "01:00:5e:36:0c:6f" and p.src == "02:00:00:00:00:01"
    ip = p[IP]
    assert (ip.src, ip.dst, ip.ttl, ip.id, ip.proto) == ("206.200.1.1", "233.54.12.111", 21,
                                                          0xBEEF, 17)
    assert ip.len == 28 + size and ip.flags == "DF" and ip.frag == 0
    assert ip.chksum == _scapy_ip_checksum(p)
    u = p[UDP]
    assert (u.sport, u.dport, u.len, u.chksum) == (4321, 26477, 8 + size, 0)
    assert bytes(u.payload)[:size] == payload
    # padding (short frames only) is zeros after the IP datagram
    hdr = 18 if vlan is not None else 14
    assert f[hdr + 28 + size:] == b"\0" * (len(f) - hdr - 28 - size)
    if hdr + 28 + size >= fr.MIN_FRAME:
        assert len(f) == hdr + 28 + size


@pytest.mark.parametrize("vlan", [None, 5])
@pytest.mark.parametrize("size", [0, 1, 3, 54, 1000])
def test_tcp_frame_parses_in_scapy(vlan, size):
    payload = bytes(random.Random(size + 7).getrandbits(8) for _ in range(size))
    kw = dict(src_mac="00:1c:73:92:02:bd", dst_mac="00:1c:73:85:bf:b3", src_ip="74.120.49.66",
              dst_ip="206.200.125.172", src_port=40565, dst_port=8001, seq=3380842935,
              ack=154434299, window=32850, vlan=vlan, ttl=63, ip_id=7)
    f = fr.build_tcp_frame(payload, **kw)
    p = Ether(f)
    assert p.haslayer(Dot1Q) == (vlan is not None)
    assert p[IP].chksum == _scapy_ip_checksum(p)
    t = p[TCP]
    assert t.chksum == _scapy_tcp_checksum(p)
    assert (t.sport, t.dport, t.seq, t.ack, t.window, str(t.flags), t.dataofs) == (
        40565, 8001, 3380842935, 154434299, 32850, "PA", 5)
    assert bytes(t.payload)[:size] == payload
    seg = fr.parse_tcp_frame(f)
    assert isinstance(seg, fr.TcpSegment)
    assert (seg.payload, seg.seq, seg.ack, seg.vlan, seg.src_ip) == (
        payload, 3380842935, 154434299, vlan, "74.120.49.66")
    for flags, want in (("S", "S"), ("SA", "SA"), ("FA", "FA"), ("R", "R")):
        assert str(Ether(fr.build_tcp_frame(payload, **{**kw, "flags": flags}))[TCP].flags) == want


def test_tcp_checksum_matches_scapy_random():
    rng = random.Random(1)
    for _ in range(50):
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
        src = fr.int_to_ip(rng.getrandbits(32))
        dst = fr.int_to_ip(rng.getrandbits(32))
        f = fr.build_tcp_frame(payload, src_mac="02:00:00:00:00:01", dst_mac="02:00:00:00:00:02",
                               src_ip=src, dst_ip=dst, src_port=rng.getrandbits(16),
                               dst_port=rng.getrandbits(16), seq=rng.getrandbits(32),
                               ack=rng.getrandbits(32), window=rng.getrandbits(16))
        p = Ether(f)
        assert p[TCP].chksum == _scapy_tcp_checksum(p)
        seg = bytes(p[TCP])[:20 + len(payload)]
        zeroed = seg[:16] + b"\0\0" + seg[18:]
        assert fr.tcp_checksum(src, dst, zeroed) == p[TCP].chksum


def test_real_ouch_capture_parses():
    path = SHARED / "ouch" / "EnterOrderMessage.pcap"
    if not path.exists():
        pytest.skip(f"shared data absent: {path}")
    p = rdpcap(str(path))[0]
    seg = fr.parse_tcp_frame(bytes(p))
    assert isinstance(seg, fr.TcpSegment)
    assert seg.vlan == 5 and seg.dst_port == 8001
    assert seg.payload == bytes(p[TCP].payload)
    assert seg.payload[:3] == b"\x00\x36U"
    # and our builder reproduces the frame bit for bit from its fields
    again = fr.build_tcp_frame(seg.payload, src_mac=seg.src_mac, dst_mac=seg.dst_mac,
                               src_ip=seg.src_ip, dst_ip=seg.dst_ip, src_port=seg.src_port,
                               dst_port=seg.dst_port, seq=seg.seq, ack=seg.ack,
                               window=seg.window, flags=seg.flags, vlan=seg.vlan, ttl=seg.ttl,
                               ip_id=seg.ip_id)
    assert again == bytes(p)


def test_parse_udp_frame_roundtrip_and_padding():
    payload = b"0123456789" + struct.pack(">QH", 5, 0)
    for vlan in (None, 141):
        f = fr.build_udp_frame(payload, vlan=vlan, ip_id=3)
        d = fr.parse_udp_frame(f)
        assert isinstance(d, fr.UdpDatagram)
        assert (d.payload, d.vlan, d.dst_port, d.dst_ip, d.ip_id) == (payload, vlan, 26477,
                                                                       "233.54.12.111", 3)
        assert f[d.payload_offset:d.payload_offset + len(payload)] == payload
        # bytes after the IPv4 total length are Ethernet padding and are ignored
        assert fr.parse_udp_frame(f + b"\xff" * 30).payload == payload


def _mutate(frame: bytes, at: int, value: bytes, fix_checksum: bool = True,
            l3: int = 14) -> bytes:
    b = bytearray(frame)
    b[at:at + len(value)] = value
    if fix_checksum:
        ihl = (b[l3] & 0xF) * 4
        b[l3 + 10:l3 + 12] = b"\0\0"
        if l3 + ihl <= len(b):
            b[l3 + 10:l3 + 12] = struct.pack(">H", fr.ipv4_checksum(bytes(b[l3:l3 + ihl])))
    return bytes(b)


def _drop_cases():
    """(reason, frame) pairs, one per check, each frame failing exactly that check first."""
    mold = b"SESSION001" + struct.pack(">QH", 1, 0)
    good = fr.build_udp_frame(mold)
    tagged = fr.build_udp_frame(mold, vlan=7)
    return [
        ("runt", good[:13]),
        ("runt", tagged[:17]),
        ("not_ipv4", _mutate(good, 12, b"\x86\xdd", False)),
        ("not_ipv4", good[:12] + b"\x81\x00\x00\x07\x81\x00\x00\x08" + good[12:]),  # QinQ
        ("ip_header", good[:14]),
        ("ip_header", _mutate(good, 14, b"\x65")),               # version 6
        ("ip_header", _mutate(good, 14, b"\x44")),               # IHL 4
        ("ip_header", _mutate(good, 14, b"\x4f")[:40]),          # 60-byte header past frame
        ("ip_checksum", _mutate(good, 24, b"\x12\x34", False)),
        ("ip_length", _mutate(good, 16, struct.pack(">H", 27))),
        ("ip_length", good[:-1]),                                # ends in the MoldUDP64 header
        ("ip_length", good[:14 + 20 + 7]),                       # ends in the UDP header
        ("not_udp", _mutate(good, 23, b"\x06")),
        ("ip_fragment", _mutate(good, 20, b"\x20\x00")),         # MF
        ("ip_fragment", _mutate(good, 20, b"\x00\x01")),         # offset 8
        ("udp_length", _mutate(good, 38, struct.pack(">H", 7))),
        ("udp_length", _mutate(good, 38, struct.pack(">H", 8 + len(mold) + 1))),
        ("filtered", fr.build_udp_frame(mold, dst_port=26478)),
        ("filtered", fr.build_udp_frame(mold, dst_ip="233.54.12.112")),
        ("mold_truncated", fr.build_udp_frame(mold[:19])),
        ("mold_truncated", fr.build_udp_frame(b"")),
    ]


@pytest.mark.parametrize("reason,frame", _drop_cases())
def test_parse_udp_frame_drop_reasons(reason, frame):
    groups = [("233.54.12.111", 26477)]
    assert fr.parse_udp_frame(frame, groups) == reason
    if reason == "ip_checksum":
        assert isinstance(fr.parse_udp_frame(frame, groups, check_ip_checksum=False),
                          fr.UdpDatagram)


def test_frame_cut_after_the_moldudp64_header_keeps_the_bytes_present():
    mold = b"SESSION001" + struct.pack(">QH", 1, 2) + b"\x00\x03abc\x00\x02de"
    good = fr.build_udp_frame(mold)
    # cut-through: the decisions were taken at the header; the payload is what arrived
    d = fr.parse_udp_frame(good[:-3])
    assert isinstance(d, fr.UdpDatagram) and d.payload == mold[:-3]
    # a total length past the frame, every byte of the UDP datagram present: nothing lost
    d = fr.parse_udp_frame(_mutate(good, 16, struct.pack(">H", len(good) - 14 + 1)))
    assert isinstance(d, fr.UdpDatagram) and d.payload == mold
    # our own order frames are still checked whole
    tcp = fr.build_tcp_frame(b"x" * 10, src_mac="02:00:00:00:00:01",
                             dst_mac="02:00:00:00:00:02", src_ip="10.0.0.1",
                             dst_ip="10.0.0.2", src_port=1, dst_port=2, seq=0, ack=0, window=1)
    assert isinstance(fr.parse_tcp_frame(tcp), fr.TcpSegment)
    assert fr.parse_tcp_frame(tcp[:-1]) == "ip_length"


def test_parse_udp_frame_check_order():
    mold = b"SESSION001" + struct.pack(">QH", 1, 0)
    good = fr.build_udp_frame(mold)
    # bad checksum AND not UDP: the checksum check comes first
    f = _mutate(_mutate(good, 23, b"\x06"), 24, b"\0\0", False)
    assert fr.parse_udp_frame(f) == "ip_checksum"
    # fragment AND filtered: ip_fragment first
    f = _mutate(fr.build_udp_frame(mold, dst_port=1), 20, b"\x20\x00")
    assert fr.parse_udp_frame(f, [("233.54.12.111", 26477)]) == "ip_fragment"
    # empty group table accepts every group; so does None
    assert isinstance(fr.parse_udp_frame(fr.build_udp_frame(mold, dst_port=1), []),
                      fr.UdpDatagram)
    assert fr.parse_udp_frame(fr.build_udp_frame(mold[:5]), moldudp64=False).payload == mold[:5]
    assert fr.FRAME_REASONS == ("runt", "not_ipv4", "ip_header", "ip_checksum", "ip_length",
                                "not_udp", "ip_fragment", "udp_length", "filtered",
                                "mold_truncated")


def test_group_table_forms():
    import numpy as np
    ips, ports = fr.group_table([("233.54.12.111", 26477), (0xE931C428, 25475)])
    assert ips.dtype == np.uint32 and ports.dtype == np.uint16
    assert ips.tolist() == [0xE9360C6F, 0xE931C428] and ports.tolist() == [26477, 25475]
    ips2, ports2 = fr.group_table((ips, ports))
    assert ips2.tolist() == ips.tolist() and ports2.tolist() == ports.tolist()
    assert len(fr.group_table(None)[0]) == 0
