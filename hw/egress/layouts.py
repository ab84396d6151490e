"""Session template and output stream of the order egress (docs/architecture.md "Order egress")."""

from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.streams import BEAT_FIELDS

__all__ = ["SessionTemplate", "OrderStreamSignature", "LatencyRecord"]


class LatencyRecord(data.Struct):
    """Per order frame, when its first beat transfers: the cycle-counter stamps of its way
    through the gateware. ``sequence``: the triggering message's; ``t_dec``: the message was
    handed from the ITCH decoder to the book builder (a cut-through order: the strobe);
    ``t_event``: the trigger engine evaluated it (trigger decision); ``t_verdict``: the
    accepted order reached the egress (one cycle after the risk verdict); ``t_order``: the
    frame's first beat transferred; ``fast``: fired on the cut-through path."""
    sequence: 64
    t_dec: 32
    t_event: 32
    t_verdict: 32
    t_order: 32
    fast: 1


class SessionTemplate(data.Struct):
    """The host-maintained order-entry session (config ``[session]``): addresses as
    big-endian integers (MAC byte 0 / IPv4 first octet most significant). ``vlan_en`` 1: an
    802.1Q tag with TCI = ``vlan`` (PCP 0, DEI 0). ``seq`` and ``ip_id`` are the values of
    the next frame after a ``session_load``/``clear``; the egress advances its own copies."""
    dst_mac: 48
    src_mac: 48
    vlan_en: 1
    vlan: 12
    src_ip: 32
    dst_ip: 32
    src_port: 16
    dst_port: 16
    seq: 32
    ack: 32
    window: 16
    ttl: 8
    ip_id: 16


class OrderStreamSignature(wiring.Signature):
    """Egress to the MAC (source side): 64-bit AXI-stream-like beats. Byte 0 of a frame in
    lane 0 (``data[7:0]``); ``keep`` byte enables (all ones except on the last beat, contiguous
    from lane 0); ``first``/``last`` mark the frame's beats; a beat transfers when ``valid``
    and ``ready`` are both high. Once ``valid`` is high, the beat stays until it transfers."""

    def __init__(self):
        # the MAC beat (tickwire.spec.streams), with ready
        super().__init__({**{name: Out(w) for name, w in BEAT_FIELDS}, "valid": Out(1),
                          "ready": In(1)})

    def __eq__(self, other):
        return isinstance(other, OrderStreamSignature)

    def __repr__(self):
        return "OrderStreamSignature()"
