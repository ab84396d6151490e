"""Shared helpers of the feed benches: the shared captures, frame builders (including every
malformed kind the frame checks know) and the expected cut-through output of the parser.

The oracles are the project's reference code: tickwire.host.framing.parse_udp_frame (frame
checks), tickwire.host.moldudp64 (packets, SequenceTracker, reference_feed) and
tickwire.host.itch (messages).
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

from tickwire.host import itch
from tickwire.host.capture import read_pcap
from tickwire.host.framing import (FRAME_REASONS, ip_to_int, ipv4_checksum, multicast_mac,
                                   parse_udp_frame)
from tickwire.sim.runner import SHARED_DATA

ITCH_DIR = SHARED_DATA / "itch"
#: The two MoldUDP64 groups of the real captures (README of the shared data).
GROUPS = (("233.54.12.111", 26477), ("233.49.196.40", 25475))
PASS = len(FRAME_REASONS)


def captures(anonymised: bool | None = None) -> list[Path]:
    """The shared ITCH captures; ``anonymised`` selects the `.20230822` ones (True), the real
    wire ones (False) or all (None)."""
    out = sorted(ITCH_DIR.glob("*.pcap"))
    if anonymised is not None:
        out = [p for p in out if (".20230822" in p.name) == anonymised]
    return out


def capture_frames(path: Path) -> list[bytes]:
    return list(read_pcap(path))


def group_entries(groups=GROUPS, n: int = 4) -> dict:
    """The parser's ``groups`` port value (dict of dotted field names) for a table."""
    d = {}
    for i in range(n):
        if i < len(groups):
            ip, port = groups[i]
            d.update({f"{i}.valid": 1, f"{i}.ip": ip_to_int(ip), f"{i}.port": port})
        else:
            d.update({f"{i}.valid": 0, f"{i}.ip": 0, f"{i}.port": 0})
    return d


# --------------------------------------------------------------------------- frame building

def ipv4_frame(payload: bytes, *, dst_ip="233.54.12.111", dst_port=26477,
               src_ip="206.200.1.1", src_port=10000, vlan: int | None = None,
               ethertype: int = 0x0800, version: int = 4, ihl: int = 5, proto: int = 17,
               flags_frag: int = 0x4000, total_adj: int = 0, udp_len: int | None = None,
               bad_checksum: bool = False, ip_extra: bytes = b"", pad_to: int = 60,
               outer_tpid: int | None = None) -> bytes:
    """An Ethernet [802.1Q] / IPv4 / UDP frame with every header field under control.

    ``ihl`` > 5 adds options (zero bytes); ``total_adj`` is added to the IPv4 total length
    after the checksum-relevant build (the checksum covers the final header); ``udp_len``
    overrides the UDP length; ``ip_extra`` are IPv4 payload bytes after the UDP datagram;
    ``outer_tpid`` puts a second tag (e.g. 0x8100 or 0x88A8) in front.
    """
    udp = struct.pack(">HHHH", src_port, dst_port,
                      (8 + len(payload)) if udp_len is None else udp_len, 0) + payload
    opts = bytes(max(0, ihl - 5) * 4)
    total = 4 * ihl + len(udp) + len(ip_extra) + total_adj
    hdr = bytearray(struct.pack(">BBHHHBBH4s4s", (version << 4) | (ihl & 0xF), 0,
                                total & 0xFFFF, 0x1234, flags_frag, 64, proto, 0,
                                ip_to_int(src_ip).to_bytes(4, "big"),
                                ip_to_int(dst_ip).to_bytes(4, "big")) + opts)
    c = ipv4_checksum(bytes(hdr))
    if bad_checksum:
        c ^= 0x0100
    struct.pack_into(">H", hdr, 10, c)
    try:
        dmac = bytes.fromhex(multicast_mac(dst_ip).replace(":", ""))
    except ValueError:
        dmac = b"\x02\0\0\0\0\x02"
    eth = dmac + b"\x02\0\0\0\0\x01"
    if outer_tpid is not None:
        eth += struct.pack(">HH", outer_tpid, 7)
    if vlan is not None:
        eth += struct.pack(">HH", 0x8100, vlan)
    frame = eth + struct.pack(">H", ethertype) + bytes(hdr) + udp + ip_extra
    return frame.ljust(pad_to, b"\0")


def mold_packet(session: bytes, seq: int, messages: list[bytes], count: int | None = None
                ) -> bytes:
    out = [session.ljust(10, b" ")[:10], struct.pack(">QH", seq, len(messages)
                                                     if count is None else count)]
    for m in messages:
        out.append(struct.pack(">H", len(m)) + m)
    return b"".join(out)


def random_message(rng: random.Random, types: str = "AFECXDUPQHRS") -> bytes:
    """A random well-formed ITCH message of one of ``types`` (all fields random)."""
    t = rng.choice(types)
    spec = itch.MESSAGES[t]
    fields = {}
    for f in spec.fields:
        if f.kind == "u":
            fields[f.name] = rng.randrange(1 << (8 * f.size))
        elif f.kind == "c":
            fields[f.name] = chr(rng.choice(b"BSTHPQYN"))
        else:
            n = rng.randrange(0, f.size + 1)
            fields[f.name] = "".join(chr(rng.randrange(0x21, 0x7F)) for _ in range(n))
    if "buy_sell_indicator" in fields:
        fields["buy_sell_indicator"] = rng.choice("BS")
    return itch.encode(t, **fields)


def malformed_frames(rng: random.Random, good) -> list[tuple[str, bytes]]:
    """One frame of every malformed kind, each followed by a good frame (``good()`` builds
    one). Returns ``(label, frame)`` pairs."""
    msgs = [random_message(rng) for _ in range(3)]
    pay = mold_packet(b"SESSION01", 1000, msgs)
    base = dict(dst_ip=GROUPS[0][0], dst_port=GROUPS[0][1])
    full = ipv4_frame(pay, **base)
    cases = [
        ("runt 0", full[:1]),
        ("runt 13", full[:13]),
        ("runt vlan 17", ipv4_frame(pay, vlan=5, **base)[:17]),
        ("eth header only", full[:14]),
        ("vlan header only", ipv4_frame(pay, vlan=5, **base)[:18]),
        ("not_ipv4 ipv6", ipv4_frame(pay, ethertype=0x86DD, **base)),
        ("not_ipv4 qinq", ipv4_frame(pay, vlan=5, outer_tpid=0x8100, **base)),
        ("not_ipv4 88a8", ipv4_frame(pay, vlan=5, outer_tpid=0x88A8, **base)),
        ("ip_header v6", ipv4_frame(pay, version=6, **base)),
        ("ip_header ihl4", ipv4_frame(pay, ihl=4, **base)),
        ("ip_header past frame", full[:30]),
        ("ip_header options past frame", ipv4_frame(pay, ihl=15, **base)[:60]),
        ("ip_checksum", ipv4_frame(pay, bad_checksum=True, **base)),
        ("ip_checksum vlan opts", ipv4_frame(pay, bad_checksum=True, vlan=9, ihl=7, **base)),
        ("ip_length short total", ipv4_frame(pay, total_adj=-(len(pay) + 8) - 1, **base)),
        ("frame cut in payload", full[:len(full) - 5]),
        ("ip_length truncated in mold header", full[:14 + 20 + 8 + 12]),
        ("ip_length truncated at mold header's last byte", full[:14 + 20 + 8 + 19]),
        ("frame cut after mold header", full[:14 + 20 + 8 + 20]),
        ("ip_length truncated in udp header", full[:14 + 20 + 5]),
        ("total length past frame", ipv4_frame(pay, total_adj=3, **base)),
        ("not_udp tcp", ipv4_frame(pay, proto=6, **base)),
        ("ip_fragment mf", ipv4_frame(pay, flags_frag=0x2000, **base)),
        ("ip_fragment offset", ipv4_frame(pay, flags_frag=0x0001, **base)),
        ("udp_length < 8", ipv4_frame(pay, udp_len=7, **base)),
        ("udp_length > ip payload", ipv4_frame(pay, udp_len=len(pay) + 9, **base)),
        ("filtered port", ipv4_frame(pay, dst_ip=GROUPS[0][0], dst_port=GROUPS[0][1] + 1)),
        ("filtered ip", ipv4_frame(pay, dst_ip="233.54.12.112", dst_port=GROUPS[0][1])),
        ("filtered cross", ipv4_frame(pay, dst_ip=GROUPS[0][0], dst_port=GROUPS[1][1])),
        ("mold_truncated", ipv4_frame(pay[:19], **base)),
        ("mold_truncated 0", ipv4_frame(b"", **base)),
        ("udp shorter than ip payload", ipv4_frame(pay, ip_extra=b"\xAA" * 11, **base)),
        ("udp shorter, frame truncated in ip extra",
         ipv4_frame(pay, ip_extra=b"\xAA" * 11, **base)[:-4]),
        ("ip options", ipv4_frame(pay, ihl=6, **base)),
        ("ip options vlan", ipv4_frame(pay, ihl=11, vlan=3, **base)),
        ("df clear", ipv4_frame(pay, flags_frag=0, **base)),
        ("padding after ip", ipv4_frame(pay, **base) + b"\x55" * 13),
        ("tiny padded", ipv4_frame(mold_packet(b"S", 5, []), **base)),
        ("group 2", ipv4_frame(pay, dst_ip=GROUPS[1][0], dst_port=GROUPS[1][1], vlan=100)),
    ]
    out = []
    for label, f in cases:
        out.append((label, f))
        out.append(("good after " + label, good()))
    return out


# --------------------------------------------------------------------------- parser model

def expected_parser_output(frame: bytes, groups=None, check_ip_checksum: bool = True):
    """(status code, payload bytes or None) of the frame parser for ``frame``.

    The status is the reference's (parse_udp_frame). Passing frames give their UDP payload (the
    bytes present, for a frame that ends early). An ``ip_length`` frame that ends before its
    MoldUDP64 header is complete (total length >= IHL*4 + 8) and passes every other header
    check on the bytes present is forwarded cut-through: its payload bytes present (fewer than
    the header's 20, so the line buffer discards them).
    """
    r = parse_udp_frame(frame, groups, check_ip_checksum=check_ip_checksum)
    if not isinstance(r, str):
        return PASS, r.payload
    code = FRAME_REASONS.index(r)
    if r != "ip_length":
        return code, None
    n = len(frame)
    l3 = 18 if frame[12:14] == b"\x81\x00" else 14
    ihl = (frame[l3] & 0xF) * 4
    total = int.from_bytes(frame[l3 + 2:l3 + 4], "big")
    if total < ihl + 8:
        return code, None
    pstart = l3 + ihl + 8
    if n <= pstart:
        return code, None
    # the header checks after ip_length, on the (present) header bytes, as if not truncated
    if frame[l3 + 9] != 17 or int.from_bytes(frame[l3 + 6:l3 + 8], "big") & 0x3FFF:
        return code, None
    dport = int.from_bytes(frame[l3 + ihl + 2:l3 + ihl + 4], "big")
    ulen = int.from_bytes(frame[l3 + ihl + 4:l3 + ihl + 6], "big")
    if ulen < 8 or ulen > total - ihl or ulen - 8 < 20:
        return code, None
    if groups:
        dst = int.from_bytes(frame[l3 + 16:l3 + 20], "big")
        if not any(ip_to_int(ip) == dst and p == dport for ip, p in groups):
            return code, None
    return code, frame[pstart:min(n, pstart + ulen - 8)]


def packets_from_beats(items: list[dict]) -> list[tuple[bytes, bool, int]]:
    """Reassemble PayloadBeat dicts into (payload, length) per packet."""
    out, cur = [], None
    for it in items:
        if it["first"]:
            if cur is not None:
                raise AssertionError("payload beat with first inside a packet")
            cur = bytearray()
        if cur is None:
            raise AssertionError("payload beat outside a packet")
        n = it["nbytes"]
        if not 1 <= n <= 8:
            raise AssertionError(f"payload beat with nbytes={n}")
        cur += it["data"].to_bytes(8, "little")[:n]
        if it["last"]:
            out.append((bytes(cur), it["length"]))
            cur = None
        elif n != 8:
            raise AssertionError(f"non-last payload beat with nbytes={n}")
    if cur is not None:
        raise AssertionError("unterminated payload packet")
    return out
