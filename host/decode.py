"""What ``tickwire decode`` reads besides ITCH: SoupBinTCP/OUCH 5.0 over TCP captures, such as
the order frames the appliance sends.

Each TCP flow's payload is put back in order (a retransmitted byte is taken once), split into
SoupBinTCP packets, and each packet becomes one record: data packets (``U`` client to server,
``S`` server to client) with the OUCH message's fields, the session packets (login, heartbeat,
...) with theirs. What cannot be decoded is counted by reason, never skipped silently.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterator

from . import ouch
from . import soupbintcp as soup
from .capture import LINKTYPE_ETHERNET, Frames, read_capture, sniff_format
from .framing import parse_tcp_frame, parse_udp_frame

__all__ = ["PROTOCOLS", "pick_protocol", "ouch_records", "format_record", "SNIFF_FRAMES"]

PROTOCOLS = ("auto", "itch", "ouch")
#: frames ``auto`` looks at to tell a TCP (OUCH) capture from a UDP (ITCH) one
SNIFF_FRAMES = 10_000


def pick_protocol(path, protocol: str = "auto") -> str:
    """``itch`` or ``ouch`` for ``path``: as asked, or (``auto``) ``ouch`` when the first
    :data:`SNIFF_FRAMES` frames hold TCP and no UDP, ``itch`` otherwise. A capture with both
    is an error that asks for ``--protocol``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"--protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")
    if protocol != "auto":
        return protocol
    if sniff_format(path) == "binaryfile":
        return "itch"
    fr = read_capture(path)
    if fr.linktype != LINKTYPE_ETHERNET:
        return "itch"
    tcp = udp = 0
    for i in range(min(len(fr), SNIFF_FRAMES)):
        f = fr.frame(i)
        if not isinstance(parse_tcp_frame(f, check_checksums=False), str):
            tcp += 1
        elif not isinstance(parse_udp_frame(f, check_ip_checksum=False, moldudp64=False), str):
            udp += 1
    if tcp and udp:
        raise ValueError(f"{path}: holds both TCP ({tcp}) and UDP ({udp}) frames; say which "
                         "to decode with --protocol ouch or --protocol itch")
    return "ouch" if tcp else "itch"


def _flow(seg) -> tuple:
    return seg.src_ip, seg.src_port, seg.dst_ip, seg.dst_port


class _Stream:
    """One direction of a TCP connection: the next expected sequence number and the bytes
    of a SoupBinTCP packet not yet complete."""

    def __init__(self):
        self.next_seq: int | None = None
        self.reader = soup.PacketReader()


def _jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def _packet_record(ptype: str, payload: bytes, base: dict, drops: Counter,
                   errors: list[str]) -> dict | None:
    where = f"frame {base['frame']}: "
    try:
        d = soup.decode_packet(ptype, payload, where)
    except soup.SoupBinTCPError as e:
        drops["soup_malformed"] += 1
        errors.append(str(e))
        return None
    if ptype not in "US":
        fields = {k: v for k, v in d.items() if k not in ("type", "name")}
        return {**base, "soup": ptype, "message": d["name"], **_jsonable(fields)}
    direction = "client" if ptype == "U" else "server"
    try:
        m = ouch.decode(d["message"], direction, where)
    except ouch.OuchError as e:
        drops["ouch_malformed"] += 1
        errors.append(str(e))
        return None
    t = m.pop("type")
    return {**base, "soup": ptype, "direction": direction, "type": t,
            "message": ouch.MESSAGES[(direction, t)].name, **_jsonable(m)}


def ouch_records(frames: Frames, *, check_checksums: bool = False,
                 drops: Counter | None = None, errors: list[str] | None = None
                 ) -> Iterator[dict]:
    """One record per SoupBinTCP packet of the capture's TCP flows, in capture order.

    ``drops`` (by reason) counts frames that are not IPv4/TCP (``parse_tcp_frame``'s reasons;
    its checksum checks only with ``check_checksums``), sequence gaps (``tcp_gap``: the
    partial packet before one is dropped), segments that only repeat bytes already taken
    (``tcp_retransmit``), packets that do not decode (``soup_malformed``,
    ``ouch_malformed``: their messages go to ``errors``) and flows that end inside a packet
    (``soup_truncated``)."""
    drops = Counter() if drops is None else drops
    errors = [] if errors is None else errors
    if frames.linktype != LINKTYPE_ETHERNET:
        raise ValueError(f"link type {frames.linktype}: OUCH decoding reads Ethernet frames")
    streams: dict[tuple, _Stream] = {}
    for i in range(len(frames)):
        seg = parse_tcp_frame(frames.frame(i), check_checksums=check_checksums)
        if isinstance(seg, str):
            drops[seg] += 1
            continue
        st = streams.setdefault(_flow(seg), _Stream())
        data, seq = seg.payload, seg.seq
        if seg.flags & 0x02:                    # SYN takes one sequence number
            seq = (seq + 1) & 0xFFFFFFFF
            st.next_seq, st.reader = seq, soup.PacketReader()
        if not data:
            continue
        if st.next_seq is None:
            st.next_seq = seq
        ahead = ((seq - st.next_seq + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        if ahead > 0:                           # bytes missing: restart at this segment
            drops["tcp_gap"] += 1
            st.reader = soup.PacketReader()
        elif ahead < 0:                         # a retransmission: skip what was taken
            data = data[-ahead:]
            if not data:
                drops["tcp_retransmit"] += 1
                continue
        st.next_seq = (seq + len(seg.payload)) & 0xFFFFFFFF
        src, dst = f"{seg.src_ip}:{seg.src_port}", f"{seg.dst_ip}:{seg.dst_port}"
        base = {"frame": i, "time_ns": int(frames.timestamps_ns[i]), "src": src, "dst": dst,
                "tcp_seq": seg.seq}
        try:
            packets = st.reader.feed(data)
        except soup.SoupBinTCPError as e:
            drops["soup_malformed"] += 1
            errors.append(f"frame {i}: {e}")
            st.reader = soup.PacketReader()
            continue
        for ptype, payload in packets:
            rec = _packet_record(ptype, payload, base, drops, errors)
            if rec is not None:
                yield rec
    for st in streams.values():
        if st.reader.pending:
            drops["soup_truncated"] += 1


def format_record(rec: dict) -> str:
    """One table line: frame, SoupBinTCP type, OUCH type, message name, then the fields."""
    skip = ("frame", "soup", "type", "message", "direction", "time_ns", "src", "dst", "tcp_seq")
    fields = []
    for k, v in rec.items():
        if k not in skip:
            fields += ([f"{k}.{o}={x}" for o, x in v.items()] if isinstance(v, dict)
                       else [f"{k}={v}"])
    return (f"{rec['frame']:>10} {rec['soup']} {rec.get('type', ' ')} {rec['message']} "
            + " ".join(fields))


def write_ouch(path, fmt: str, limit: int, strict: bool, out) -> tuple[dict, list[str]]:
    """``tickwire decode --protocol ouch``: write ``path``'s records to ``out`` (``jsonl`` or
    ``table``, at most ``limit``: 0 all; ``strict`` checks IPv4 and TCP checksums); returns
    the drops by reason and the decode errors."""
    import json
    from itertools import islice
    drops: Counter = Counter()
    errors: list[str] = []
    recs = ouch_records(read_capture(path), check_checksums=strict, drops=drops,
                        errors=errors)
    for rec in islice(recs, limit or None):
        out.write((json.dumps(rec) if fmt == "jsonl" else format_record(rec)) + "\n")
    return dict(drops), errors
