"""Byte map of the order frame: where each byte of Ethernet [802.1Q] / IPv4 / TCP /
SoupBinTCP / OUCH Enter Order comes from (docs/architecture.md "Order encoding", "Order egress").

The map is plain Python: the gateware turns it into beat multiplexers and checksum adders,
and :func:`reference_frame` turns it into bytes for tests (checked against
``tickwire.host.framing.build_tcp_frame``).

A source is a tuple:

``("k", v)``          constant byte ``v``
``("t", field, i)``   byte ``i`` (0 = most significant) of a SessionTemplate field
``("id", i)``         byte ``i`` of this frame's IPv4 identification
``("seq", i)``        byte ``i`` of this frame's TCP sequence number
``("ipck", i)``       byte ``i`` of the IPv4 header checksum
``("tcpck", i)``      byte ``i`` of the TCP checksum
``("o", field, i)``   byte ``i`` (0 = most significant) of an AcceptedOrder field
``("side",)``         ``B`` or ``S``
``("name", i)``       byte ``i`` of the slot's 8-byte symbol
``("cap",)``          the capacity character
``("dig", k)``        ASCII digit ``k`` of user_ref (k = 0 least significant; k >= DIGITS: ``0``)
"""

from __future__ import annotations

__all__ = ["SOUP_LEN", "OUCH_LEN", "TCP_LEN", "IP_TOTAL", "frame_sources", "ip_header_sources",
           "tcp_segment_sources", "pseudo_header_sources", "frame_length", "reference_frame",
           "CLORD_DIGITS"]

OUCH_LEN = 47
SOUP_LEN = 3 + OUCH_LEN          # 00 30 'U' + Enter Order
TCP_LEN = 20 + SOUP_LEN          # 70
IP_TOTAL = 20 + TCP_LEN          # 90
CLORD_DIGITS = 12


def _be(kind, field, n):
    return [(kind, field, i) for i in range(n)]


def _k(*vals):
    return [("k", v) for v in vals]


def ip_header_sources() -> list[tuple]:
    return (_k(0x45, 0x00, IP_TOTAL >> 8, IP_TOTAL & 0xFF) + [("id", 0), ("id", 1)]
            + _k(0x40, 0x00) + [("t", "ttl", 0)] + _k(6) + [("ipck", 0), ("ipck", 1)]
            + _be("t", "src_ip", 4) + _be("t", "dst_ip", 4))


def ouch_sources() -> list[tuple]:
    out = _k(ord("O")) + _be("o", "user_ref", 4) + [("side",)] + _be("o", "quantity", 4)
    out += [("name", i) for i in range(8)]
    out += _k(0, 0, 0, 0) + _be("o", "price", 4)
    out += _k(ord("3"), ord("Y")) + [("cap",)] + _k(ord("N"), ord("N"), ord("T"), ord("W"))
    out += [("dig", k) for k in reversed(range(CLORD_DIGITS))]
    out += _k(0, 0)
    assert len(out) == OUCH_LEN
    return out


def tcp_segment_sources() -> list[tuple]:
    hdr = (_be("t", "src_port", 2) + _be("t", "dst_port", 2) + [("seq", i) for i in range(4)]
           + _be("t", "ack", 4) + _k(0x50, 0x18) + _be("t", "window", 2)
           + [("tcpck", 0), ("tcpck", 1)] + _k(0, 0))
    soup = _k(SOUP_LEN - 2 >> 8, (SOUP_LEN - 2) & 0xFF, ord("U")) + ouch_sources()
    out = hdr + soup
    assert len(out) == TCP_LEN
    return out


def pseudo_header_sources() -> list[tuple]:
    return _be("t", "src_ip", 4) + _be("t", "dst_ip", 4) + _k(0, 6, TCP_LEN >> 8, TCP_LEN & 0xFF)


def frame_sources(vlan: bool) -> list[tuple]:
    eth = _be("t", "dst_mac", 6) + _be("t", "src_mac", 6)
    if vlan:
        eth += _k(0x81, 0x00) + [("t", "vlan", 0), ("t", "vlan", 1)]
    eth += _k(0x08, 0x00)
    return eth + ip_header_sources() + tcp_segment_sources()


def frame_length(vlan: bool) -> int:
    return len(frame_sources(vlan))


# ------------------------------------------------------------------ Python reference

_WIDTH = {"dst_mac": 6, "src_mac": 6, "vlan": 2, "src_ip": 4, "dst_ip": 4, "src_port": 2,
          "dst_port": 2, "ack": 4, "window": 2, "ttl": 1, "user_ref": 4, "quantity": 4,
          "price": 4}


def _csum(pairs) -> int:
    s = 0
    for off, b in pairs:
        s += b << 8 if off % 2 == 0 else b
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def reference_frame(tmpl: dict, order: dict, *, name: bytes, capacity: int, seq: int,
                    ip_id: int) -> bytes:
    """The frame the byte map describes, in Python (``tmpl`` SessionTemplate fields, ``order``
    with user_ref, side (0 buy), quantity, price)."""
    def val(src, ipck=0, tcpck=0):
        k = src[0]
        if k == "k":
            return src[1]
        if k in ("t", "o"):
            d = tmpl if k == "t" else order
            w = _WIDTH[src[1]]
            return (d[src[1]] >> (8 * (w - 1 - src[2]))) & 0xFF
        if k == "id":
            return (ip_id >> (8 * (1 - src[1]))) & 0xFF
        if k == "seq":
            return (seq >> (8 * (3 - src[1]))) & 0xFF
        if k == "ipck":
            return (ipck >> (8 * (1 - src[1]))) & 0xFF
        if k == "tcpck":
            return (tcpck >> (8 * (1 - src[1]))) & 0xFF
        if k == "side":
            return ord("B") if order["side"] == 0 else ord("S")
        if k == "name":
            return name.ljust(8, b" ")[src[1]]
        if k == "cap":
            return capacity
        if k == "dig":
            return ord("0") + (order["user_ref"] // 10 ** src[1]) % 10
        raise AssertionError(src)

    ipck = _csum((i, val(s)) for i, s in enumerate(ip_header_sources()))
    tcpck = _csum([(i, val(s)) for i, s in enumerate(pseudo_header_sources())]
                  + [(i, val(s)) for i, s in enumerate(tcp_segment_sources())])
    return bytes(val(s, ipck, tcpck) for s in frame_sources(tmpl.get("vlan_en", 0) == 1))
