"""Ethernet [802.1Q] / IPv4 / UDP and TCP frames: building, checksums and the reference parser.

:func:`parse_udp_frame` is the pure-Python reference of the frame checks of
``docs/architecture.md`` ("Feed: frames and MoldUDP64"); the numba feed stage
(:mod:`tickwire.host.emu.feed`) and the gateware must agree with it frame by frame.
Frames are Ethernet without the FCS, as pcap stores them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..spec.counters import FRAME_REASONS  # noqa: F401
from ..spec.values import (bytes_to_mac, int_to_ip, ip_to_bytes, ip_to_int,  # noqa: F401
                           mac_to_bytes)

__all__ = [
    "FRAME_REASONS", "ETH_P_IPV4", "ETH_P_8021Q", "IPPROTO_UDP", "IPPROTO_TCP", "MIN_FRAME",
    "ip_to_int", "int_to_ip", "ip_to_bytes", "mac_to_bytes", "bytes_to_mac", "multicast_mac",
    "ones_complement_sum", "ipv4_checksum", "tcp_checksum", "udp_checksum",
    "build_udp_frame", "build_tcp_frame", "UdpDatagram", "TcpSegment",
    "parse_udp_frame", "parse_tcp_frame", "group_table", "FcsError", "fcs_flags",
    "after_aborts", "sent_as",
]


class FcsError(bytes):
    """A frame whose Ethernet FCS the MAC found wrong. A cut-through MAC forwards it anyway
    and flags it on its last beat (the feed's ``user`` bit); the feed counts it
    (``fcs_errors``) and the book reports lost state (docs/architecture.md, "Bad FCS")."""

    __slots__ = ()

    def __repr__(self):
        return f"FcsError({bytes.__repr__(self)})"


def fcs_flags(frames) -> np.ndarray:
    """Per frame of ``frames`` (bytes), whether it is an :class:`FcsError`."""
    return np.fromiter((isinstance(f, FcsError) for f in frames), np.bool_, len(frames))

ETH_P_IPV4 = 0x0800
ETH_P_8021Q = 0x8100
IPPROTO_TCP = 6
IPPROTO_UDP = 17
#: Minimum Ethernet frame without the FCS; a MAC pads shorter frames with zeros.
MIN_FRAME = 60
MOLD_HEADER = 20

#: Frame drop reasons, in the order the checks are applied (docs/architecture.md).

_TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40,
              "C": 0x80}


# --------------------------------------------------------------------------- addresses

def multicast_mac(ip: str | int) -> str:
    """The Ethernet address of an IPv4 multicast group (01:00:5e + low 23 bits, RFC 1112)."""
    v = ip_to_int(ip)
    if v >> 28 != 0xE:
        raise ValueError(f"{int_to_ip(v)} is not an IPv4 multicast address")
    return bytes_to_mac(bytes((0x01, 0x00, 0x5E, (v >> 16) & 0x7F, (v >> 8) & 0xFF, v & 0xFF)))


# --------------------------------------------------------------------------- checksums

def ones_complement_sum(data: bytes) -> int:
    """16-bit one's-complement sum of big-endian words (odd length padded with a zero byte)."""
    if len(data) & 1:
        data = bytes(data) + b"\0"
    a = np.frombuffer(data, dtype=">u2")
    s = int(a.sum(dtype=np.uint64))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ipv4_checksum(header: bytes) -> int:
    """Checksum to put in an IPv4 header (its checksum field must be zero, or use verify:
    a header with a correct checksum gives 0)."""
    return ~ones_complement_sum(header) & 0xFFFF


def _l4_checksum(proto: int, src_ip, dst_ip, segment: bytes) -> int:
    pseudo = ip_to_bytes(src_ip) + ip_to_bytes(dst_ip) + struct.pack(">BBH", 0, proto,
                                                                      len(segment))
    return ~ones_complement_sum(pseudo + bytes(segment)) & 0xFFFF


def tcp_checksum(src_ip, dst_ip, segment: bytes) -> int:
    """TCP checksum over the IPv4 pseudo-header and ``segment`` (checksum field zeroed)."""
    return _l4_checksum(IPPROTO_TCP, src_ip, dst_ip, segment)


def udp_checksum(src_ip, dst_ip, datagram: bytes) -> int:
    """UDP checksum (0 is sent as 0xFFFF, since 0 means "no checksum")."""
    c = _l4_checksum(IPPROTO_UDP, src_ip, dst_ip, datagram)
    return c or 0xFFFF


# --------------------------------------------------------------------------- building

def _eth(dst_mac, src_mac, vlan: int | None, ethertype: int) -> bytes:
    hdr = mac_to_bytes(dst_mac) + mac_to_bytes(src_mac)
    if vlan is not None:
        if not 0 <= vlan < 4096:
            raise ValueError(f"VLAN id {vlan} out of range 0..4095")
        hdr += struct.pack(">HH", ETH_P_8021Q, vlan)
    return hdr + struct.pack(">H", ethertype)


def _ipv4(proto: int, payload_len: int, src_ip, dst_ip, ttl: int, ip_id: int,
          df: bool) -> bytes:
    total = 20 + payload_len
    if total > 0xFFFF:
        raise ValueError(f"IPv4 datagram of {total} bytes is too long")
    hdr = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, ip_id & 0xFFFF,
                                0x4000 if df else 0, ttl, proto, 0,
                                ip_to_bytes(src_ip), ip_to_bytes(dst_ip)))
    struct.pack_into(">H", hdr, 10, ipv4_checksum(hdr))
    return bytes(hdr)


def _pad(frame: bytes) -> bytes:
    return frame + b"\0" * (MIN_FRAME - len(frame)) if len(frame) < MIN_FRAME else frame


def build_udp_frame(payload: bytes, *, dst_ip: str | int = "233.54.12.111",
                    dst_port: int = 26477, src_ip: str | int = "206.200.1.1",
                    src_port: int = 10000, src_mac: str = "02:00:00:00:00:01",
                    dst_mac: str | None = None, vlan: int | None = None, ttl: int = 64,
                    ip_id: int = 0, df: bool = True) -> bytes:
    """An Ethernet [802.1Q] / IPv4 / UDP frame (no FCS) carrying ``payload``.

    Valid IPv4 checksum, UDP checksum 0 (as NASDAQ sends), padded with zeros to 60 bytes.
    ``dst_mac`` defaults to the multicast MAC of ``dst_ip``.
    """
    if dst_mac is None:
        dst_mac = multicast_mac(dst_ip)
    udp = struct.pack(">HHHH", src_port, dst_port, 8 + len(payload), 0) + bytes(payload)
    return _pad(_eth(dst_mac, src_mac, vlan, ETH_P_IPV4)
                + _ipv4(IPPROTO_UDP, len(udp), src_ip, dst_ip, ttl, ip_id, df) + udp)


def _tcp_flags(flags: str | int) -> int:
    if isinstance(flags, int):
        return flags & 0xFF
    v = 0
    for ch in flags:
        if ch not in _TCP_FLAGS:
            raise ValueError(f"unknown TCP flag {ch!r} in {flags!r}")
        v |= _TCP_FLAGS[ch]
    return v


def build_tcp_frame(payload: bytes, *, src_mac: str, dst_mac: str, src_ip: str | int,
                    dst_ip: str | int, src_port: int, dst_port: int, seq: int, ack: int,
                    window: int, flags: str | int = "PA", vlan: int | None = None,
                    ttl: int = 64, ip_id: int = 0, df: bool = True) -> bytes:
    """An Ethernet [802.1Q] / IPv4 / TCP frame (20-byte TCP header, no options) with valid
    IPv4 and TCP checksums, padded to 60 bytes. ``flags``: letters of ``FSRPAUEC``."""
    seg = bytearray(struct.pack(">HHIIBBHHH", src_port, dst_port, seq & 0xFFFFFFFF,
                                ack & 0xFFFFFFFF, 5 << 4, _tcp_flags(flags), window, 0, 0))
    seg += payload
    struct.pack_into(">H", seg, 16, tcp_checksum(src_ip, dst_ip, seg))
    return _pad(_eth(dst_mac, src_mac, vlan, ETH_P_IPV4)
                + _ipv4(IPPROTO_TCP, len(seg), src_ip, dst_ip, ttl, ip_id, df) + bytes(seg))


# --------------------------------------------------------------------------- parsing

@dataclass(frozen=True)
class _Transport:
    """The Ethernet, IPv4 and port fields of a parsed UDP or TCP frame."""
    dst_mac: str
    src_mac: str
    vlan: int | None          # VLAN id of the 802.1Q tag, None when untagged
    src_ip: str
    dst_ip: str
    ttl: int
    ip_id: int
    src_port: int
    dst_port: int


@dataclass(frozen=True)
class UdpDatagram(_Transport):
    """A UDP datagram that passed the frame checks."""
    payload: bytes            # UDP length - 8 bytes
    payload_offset: int       # where the payload starts in the frame


@dataclass(frozen=True)
class TcpSegment(_Transport):
    """A TCP segment that passed :func:`parse_tcp_frame`'s checks."""
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes
    payload_offset: int


def group_table(groups) -> tuple[np.ndarray, np.ndarray]:
    """Normalise a group table to ``(dst IPv4 uint32 array, dst port uint16 array)``.

    ``groups``: None (empty: every group accepted), a pair of arrays, or an iterable of
    ``(ip, port)`` with ``ip`` a dotted string or an int.
    """
    if groups is None:
        return np.zeros(0, np.uint32), np.zeros(0, np.uint16)
    if (isinstance(groups, tuple) and len(groups) == 2
            and isinstance(groups[0], np.ndarray) and isinstance(groups[1], np.ndarray)):
        ips, ports = groups
        if ips.shape != ports.shape:
            raise ValueError("group table: IP and port arrays differ in shape")
        return ips.astype(np.uint32), ports.astype(np.uint16)
    pairs = [(ip_to_int(ip), int(port)) for ip, port in groups]
    for _, port in pairs:
        if not 0 <= port < 1 << 16:
            raise ValueError(f"group table: port {port} out of range")
    return (np.array([p[0] for p in pairs], np.uint32),
            np.array([p[1] for p in pairs], np.uint16))


def _l3(frame: bytes):
    """(l3 offset, vlan) or a drop reason: the runt and not_ipv4 checks."""
    n = len(frame)
    if n < 14:
        return "runt"
    et = (frame[12] << 8) | frame[13]
    vlan = None
    l3 = 14
    if et == ETH_P_8021Q:
        if n < 18:
            return "runt"
        vlan = ((frame[14] << 8) | frame[15]) & 0x0FFF
        et = (frame[16] << 8) | frame[17]
        l3 = 18
    if et != ETH_P_IPV4:
        return "not_ipv4"
    return l3, vlan


def _ip_checks(frame: bytes, l3: int, check_ip_checksum: bool, need: int | None):
    """(ihl bytes, total length) or a drop reason: ip_header, ip_checksum, ip_length.

    ``need``: how many bytes after the IPv4 header (and up to the total length) the frame
    must hold; ``None``: all of them (a frame that ends early is an ``ip_length`` drop)."""
    n = len(frame)
    if l3 >= n or frame[l3] >> 4 != 4 or (frame[l3] & 0xF) < 5:
        return "ip_header"
    ihl = (frame[l3] & 0xF) * 4
    if l3 + ihl > n:
        return "ip_header"
    if check_ip_checksum and ones_complement_sum(frame[l3:l3 + ihl]) != 0xFFFF:
        return "ip_checksum"
    total = (frame[l3 + 2] << 8) | frame[l3 + 3]
    if total < ihl + 8 or l3 + (total if need is None else min(total, ihl + need)) > n:
        return "ip_length"
    return ihl, total


def _transport(frame: bytes, proto: int, check_ip_checksum: bool, need: int | None = None):
    """(l3 offset, vlan, l4 offset, l4 length) of an unfragmented IPv4 packet of protocol
    ``proto``, or a drop reason: the checks up to ``not_udp``/``not_tcp`` and ``ip_fragment``.
    Only 8 bytes after the IP header are guaranteed (a UDP header; TCP checks the rest)."""
    r = _l3(frame)
    if isinstance(r, str):
        return r
    l3, vlan = r
    r = _ip_checks(frame, l3, check_ip_checksum, need)
    if isinstance(r, str):
        return r
    ihl, total = r
    if frame[l3 + 9] != proto:
        return "not_udp" if proto == IPPROTO_UDP else "not_tcp"
    if ((frame[l3 + 6] << 8) | frame[l3 + 7]) & 0x3FFF:  # MF flag or fragment offset
        return "ip_fragment"
    return l3, vlan, l3 + ihl, total - ihl


def _transport_fields(frame: bytes, l3: int, vlan, l4: int) -> dict:
    """The :class:`_Transport` fields of a frame that passed :func:`_transport`."""
    sport, dport = struct.unpack_from(">HH", frame, l4)
    return dict(dst_mac=bytes_to_mac(frame[0:6]), src_mac=bytes_to_mac(frame[6:12]), vlan=vlan,
                src_ip=int_to_ip(int.from_bytes(frame[l3 + 12:l3 + 16], "big")),
                dst_ip=int_to_ip(int.from_bytes(frame[l3 + 16:l3 + 20], "big")),
                ttl=frame[l3 + 8], ip_id=(frame[l3 + 4] << 8) | frame[l3 + 5],
                src_port=sport, dst_port=dport)


def parse_udp_frame(frame: bytes, groups=None, *, check_ip_checksum: bool = True,
                    moldudp64: bool = True) -> UdpDatagram | str:
    """Apply the feed's frame checks; return the datagram, or the drop reason's name.

    ``groups``: see :func:`group_table` (None or empty accepts every group).
    ``check_ip_checksum=False`` skips ``ip_checksum`` (for anonymised captures whose checksum
    field was zeroed). ``moldudp64=False`` skips the last check (``mold_truncated``).

    A frame that ends before its IPv4 total length is cut-through's case: it is an ``ip_length``
    drop only when it ends before the UDP header and, for MoldUDP64, the 20-byte packet header
    (the decisions are taken there); otherwise the datagram's payload is the bytes present
    (its walk then stops where the bytes end: ``mold_overrun``).
    """
    frame = bytes(frame)
    r = _transport(frame, IPPROTO_UDP, check_ip_checksum,
                   need=8 + (MOLD_HEADER if moldudp64 else 0))
    if isinstance(r, str):
        return r
    l3, vlan, l4, l4_len = r
    _, dport, ulen = struct.unpack_from(">HHH", frame, l4)
    if ulen < 8 or ulen > l4_len:
        return "udp_length"
    dst = int.from_bytes(frame[l3 + 16:l3 + 20], "big")
    ips, ports = group_table(groups)
    if len(ips) and not np.any((ips == dst) & (ports == dport)):
        return "filtered"
    if moldudp64 and ulen - 8 < MOLD_HEADER:
        return "mold_truncated"
    return UdpDatagram(**_transport_fields(frame, l3, vlan, l4),
                       payload=frame[l4 + 8:l4 + ulen], payload_offset=l4 + 8)


def parse_tcp_frame(frame: bytes, *, check_checksums: bool = True) -> TcpSegment | str:
    """Parse an Ethernet [802.1Q] / IPv4 / TCP frame (for order egress checks).

    Drop reasons: ``runt``, ``not_ipv4``, ``ip_header``, ``ip_checksum``, ``ip_length``,
    ``not_tcp``, ``ip_fragment``, ``tcp_header`` (data offset < 5 or past the datagram),
    ``tcp_checksum``.
    """
    frame = bytes(frame)
    r = _transport(frame, IPPROTO_TCP, check_checksums)
    if isinstance(r, str):
        return r
    l3, vlan, l4, seg_len = r
    if seg_len < 20:
        return "tcp_header"
    doff = (frame[l4 + 12] >> 4) * 4
    if doff < 20 or doff > seg_len:
        return "tcp_header"
    src = frame[l3 + 12:l3 + 16]
    dst = frame[l3 + 16:l3 + 20]
    seg = frame[l4:l4 + seg_len]
    if check_checksums and ones_complement_sum(
            src + dst + struct.pack(">BBH", 0, IPPROTO_TCP, seg_len) + seg) != 0xFFFF:
        return "tcp_checksum"
    seq, ack, _, flags, window = struct.unpack_from(">IIBBH", frame, l4 + 4)
    return TcpSegment(**_transport_fields(frame, l3, vlan, l4), seq=seq, ack=ack, flags=flags,
                      window=window, payload=seg[doff:], payload_offset=l4 + doff)



def after_aborts(frames, aborted) -> list[bytes]:
    """The TCP frames of one session as they leave when the frames flagged in ``aborted`` are
    aborted (ended with a bad FCS: the peer never sees them): each later frame's sequence
    number moves back by the payload of every aborted frame before it (its checksum
    recomputed), and the aborted ones are :class:`FcsError`. The order egress does this to
    the emulator's frames when a feed frame's FCS turns out bad (docs/architecture.md "Bad
    FCS after cut-through")."""
    out, back = [], 0
    for i, (f, bad) in enumerate(zip(frames, aborted, strict=True)):
        r = _transport(bytes(f), IPPROTO_TCP, False)
        if isinstance(r, str):
            raise ValueError(f"frame {i}: not a TCP frame ({r})")
        l3, _, l4, seg_len = r
        g = bytearray(f)
        if back:
            seq = (struct.unpack_from(">I", g, l4 + 4)[0] - back) & 0xFFFFFFFF
            struct.pack_into(">I", g, l4 + 4, seq)
            struct.pack_into(">H", g, l4 + 16, 0)
            src, dst = (int.from_bytes(g[l3 + k:l3 + k + 4], "big") for k in (12, 16))
            struct.pack_into(">H", g, l4 + 16, tcp_checksum(src, dst, bytes(g[l4:l4 + seg_len])))
        if bad:
            back += seg_len - 4 * (g[l4 + 12] >> 4)
        out.append(FcsError(g) if bad else bytes(g))
    return out


def sent_as(got, want) -> bool:
    """Whether order frames ``got`` (the gateware's, an aborted one an :class:`FcsError`) are
    ``want`` (the emulator's) as the gateware sends them (:func:`after_aborts`)."""
    flags = fcs_flags(got)
    return len(got) == len(want) and (list(got) == list(want) if not flags.any() else
                                      list(got) == after_aborts(want, flags))
