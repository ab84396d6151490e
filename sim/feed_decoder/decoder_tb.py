"""cocotb bench of tickwire.hw.feed.ItchDecoder.

Packets (MoldUDP64 payloads) are fed as the tracker would (payload bytes 16.. with the
header's sequence and count and an overlap skip); every emitted DecodedMessage must equal
decoded_fields() of the reference (tickwire.host.itch.decode), in order, and the counters and
`done` reports must equal what tickwire.host.moldudp64.unpack / reference_feed imply.
"""

from __future__ import annotations

import os
import random
import struct

import cocotb

from tickwire.host import itch
from tickwire.host.framing import parse_udp_frame
from tickwire.host.moldudp64 import unpack
from tickwire.hw.feed import EMITTED_TYPES, decoded_fields
from tickwire.sim.feed_common import (capture_frames, captures, mold_packet, random_message)
from tickwire.sim.feed_parser.parser_tb import _metrics
from tickwire.sim.runner import TB, StreamSink, StreamSource

FIELDS = ("type", "locate", "timestamp", "sequence", "ref", "new_ref", "side", "shares",
          "price", "stock", "state")


def beats(payload: bytes, skip: int = 0) -> list[dict]:
    seq, count = struct.unpack_from(">QH", payload, 10)
    body = payload[16:]
    n = max(1, (len(body) + 7) // 8)
    out = []
    for q in range(n):
        chunk = body[8 * q:8 * q + 8]
        out.append({"data": int.from_bytes(chunk.ljust(8, b"\0"), "little"),
                    "nbytes": len(chunk), "first": q == 0, "last": q == n - 1,
                    "sequence": seq, "count": count,
                    "skip": skip})
    return out


def expected(payload: bytes, skip: int = 0):
    """(emitted DecodedMessage dicts, counter increments, done dict) of one packet."""
    pkt = unpack(payload, strict=False)
    c = dict(messages=0, unknown_type=0, bad_length=0, mold_overrun=0, ignored_types=0)
    out = []
    for i in range(min(skip, len(pkt.messages)), len(pkt.messages)):
        m = pkt.messages[i]
        want = itch.LENGTH_BY_BYTE[m[0]] if m else -1
        if want == 0:
            c["unknown_type"] += 1
        elif want != len(m):
            c["bad_length"] += 1
        else:
            c["messages"] += 1
            d = decoded_fields(m, pkt.sequence + i)
            if d is None:
                c["ignored_types"] += 1
            else:
                out.append(d)
    c["mold_overrun"] = int(pkt.overrun is not None)
    done = {"framed": len(pkt.messages), "overrun": int(pkt.overrun is not None)}
    return out, c, done


class DecoderTB(TB):
    def __init__(self, dut, *, valid_prob=1.0, ready_prob=1.0, seed=0):
        super().__init__(dut)
        self.src = StreamSource(self, "i", valid_prob=valid_prob, rng=random.Random(seed))
        self.out = StreamSink(self, "o", ready_prob=ready_prob, rng=random.Random(seed + 1))
        self.done = StreamSink(self, "done")
        self.want: list[dict] = []
        self.want_done: list[dict] = []
        self.want_c = dict(messages=0, unknown_type=0, bad_length=0, mold_overrun=0,
                           ignored_types=0)
        self.first_beat_cycle = None
        self.last_beat_cycle = None
        self.early: dict[int, dict] = {}
        cocotb.start_soon(self._watch_early())

    async def _watch_early(self):
        """Latest snapshot of the early port per sequence number while it is active."""
        from cocotb.triggers import ReadOnly, RisingEdge
        port = self["early"]
        names = ["msg." + f for f in FIELDS] + ["fields." + f for f in FIELDS]
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            v = port.value
            if (v >> port.fields["active"][0]) & 1:
                d = port.unpack(v, names)
                self.early[d["msg.sequence"]] = d

    def check_early(self, label=""):
        """Every emitted message was shown on the early port, all its fields valid and equal,
        before it was emitted (the port is registered: one cycle behind the assemblers)."""
        from tickwire.hw.feed import FIELD_MAP
        for w in self.want:
            e = self.early.get(w["sequence"])
            assert e is not None, f"{label}: message {w['sequence']} never on the early port"
            t = chr(w["type"])
            for f in FIELDS:
                if f in ("type", "locate", "timestamp", "sequence") or t in FIELD_MAP.get(f, {}):
                    assert e["fields." + f], f"{label}: early {f} of {w['sequence']} not valid"
                    assert e["msg." + f] == w[f], \
                        f"{label}: early {f} of {w['sequence']}: {e['msg.' + f]} != {w[f]}"

    async def packet(self, payload: bytes, skip: int = 0):
        out, c, done = expected(payload, skip)
        count = struct.unpack_from(">H", payload, 18)[0]
        if count in (0, 0xFFFF):
            return        # the tracker never streams heartbeats / end of session
        self.want += out
        self.want_done.append(done)
        for k, v in c.items():
            self.want_c[k] += v
        for b in beats(payload, skip):
            if self.first_beat_cycle is None:
                self.first_beat_cycle = self.cycle
            await self.src.send(b)
        self.last_beat_cycle = self.cycle

    async def check(self, label=""):
        for _ in range(2000):
            if len(self.done.items) >= len(self.want_done) and len(self.out.items) >= len(self.want):
                break
            await self.cycles(10)
        await self.cycles(20)
        got = self.out.items
        assert len(got) == len(self.want), f"{label}: {len(got)} messages, expected {len(self.want)}"
        for i, (g, w) in enumerate(zip(got, self.want)):
            g = {k: g[k] for k in FIELDS}
            assert g == w, f"{label}: message {i}: got {g}\n expected {w}"
        assert self.done.items == self.want_done, \
            f"{label}: done {self.done.items[:20]} expected {self.want_done[:20]}"
        for k, v in self.want_c.items():
            assert self[k].value == v, f"{label}: counter {k}={self[k].value}, expected {v}"


@cocotb.test()
async def capture_messages(dut):
    """Every message of every shared capture decodes to tickwire.host.itch.decode's fields."""
    tb = DecoderTB(dut, ready_prob=0.7)
    await tb.reset()
    n = 0
    for p in captures():
        for f in capture_frames(p):
            d = parse_udp_frame(f, check_ip_checksum=False)
            assert not isinstance(d, str), f"{p.name}: {d}"
            await tb.packet(d.payload)
            n += len(unpack(d.payload).messages)
    await tb.check("captures")
    tb.log.info("decoded %d messages of %d capture packets", len(tb.want), len(tb.want_done))
    assert n >= 100 and len(tb.want) >= 90


def _malformed(rng: random.Random, seq: int) -> tuple[bytes, int]:
    """A random packet, possibly malformed; returns (payload, skip)."""
    alltypes = "".join(itch.MESSAGES)
    msgs = []
    for _ in range(rng.randrange(0, 8)):
        r = rng.random()
        if r < 0.7:
            msgs.append(random_message(rng, alltypes if rng.random() < 0.3 else EMITTED_TYPES))
        elif r < 0.8:      # unknown type, random length
            msgs.append(bytes([rng.choice(b"abcdGMTZ\x00\xff")])
                        + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))))
        elif r < 0.9:      # bad length for a known type
            m = random_message(rng)
            cut = rng.randrange(1, len(m) + 6)
            msgs.append((m + bytes(8))[:cut] if cut != len(m) else m + b"\0")
        else:              # zero length / tiny
            msgs.append(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 3))))
    count = len(msgs)
    r = rng.random()
    if r < 0.08:
        count += rng.randrange(1, 3)             # claims more than present: overrun
    elif r < 0.12:
        count = max(1, count - 1)                # trailing bytes ignored
    pay = mold_packet(b"DEC", seq, msgs, count=count if count else 1)
    if rng.random() < 0.08 and len(pay) > 22:    # cut inside the last message: overrun
        pay = pay[:rng.randrange(21, len(pay))]
    if rng.random() < 0.05:                      # a length prefix that runs far past
        pay = pay + b"\xff\xf0" + bytes(5)
        pay = pay[:10] + struct.pack(">QH", seq, count + 1 if count else 1) + pay[20:]
    skip = rng.choice([0, 0, 0, 1, 2, 5]) if rng.random() < 0.3 else 0
    return pay, skip


@cocotb.test()
async def random_packets(dut):
    """Random packets of all message types with unknown types, bad / zero lengths, prefixes
    across words, overruns, trailing bytes, overlap skips, frames cut short (the payload ends
    early: the messages completed are kept), random input gaps and output backpressure."""
    seed = int(os.environ.get("COCOTB_RANDOM_SEED", "1"))
    rng = random.Random(seed)
    tb = DecoderTB(dut, valid_prob=0.8, ready_prob=0.6, seed=seed)
    await tb.reset()
    seq = 1
    for _ in range(250):
        pay, skip = _malformed(rng, seq)
        seq += 10
        if rng.random() < 0.05:
            pay = pay[:rng.randrange(20, len(pay) + 1)]
        await tb.packet(pay, skip)
    await tb.check("random")
    tb.check_early("random")


async def _throughput(tb, types: str, nmsg: int, label: str, rng):
    per_packet = []
    size = 0
    msgs = [random_message(rng, types) for _ in range(nmsg)]
    # MTU-sized packets: 1500 - 20 - 8 - 20 bytes of message blocks
    cur = []
    for m in msgs:
        if size + len(m) + 2 > 1452:
            per_packet.append(cur)
            cur, size = [], 0
        cur.append(m)
        size += len(m) + 2
    per_packet.append(cur)
    start_out = len(tb.out.items)
    tb.first_beat_cycle = None
    seq = 1
    for p in per_packet:
        await tb.packet(mold_packet(b"T", seq, p))
        seq += len(p)
    await tb.check(label)
    cycles = tb.out.cycles[-1] - tb.first_beat_cycle + 1
    rate = (len(tb.out.items) - start_out) / cycles
    framed = sum(len(m) + 2 for m in msgs)
    tb.log.info("%s: %d messages (%d packets) in %d cycles: %.3f messages/cycle, "
                "%.2f payload bytes/cycle", label, nmsg, len(per_packet), cycles, rate,
                framed / cycles)
    return rate, framed / cycles


@cocotb.test()
async def latency(dut):
    """Latency of the idle decoder: cycles from a packet's last word in to its message out,
    for a one-message packet of every emitted type (the message ends in the last word)."""
    rng = random.Random(11)
    tb = DecoderTB(dut)
    await tb.reset()
    lat = {}
    for seq, t in enumerate(EMITTED_TYPES, 1):
        await tb.packet(mold_packet(b"LAT", seq, [random_message(rng, t)]))
        await tb.cycles(30)
        lat[t] = tb.out.cycles[-1] - tb.last_beat_cycle
    await tb.check("latency")
    assert len(tb.out.items) == len(EMITTED_TYPES)
    tb.log.info("decoder latency: last word in -> message out: %s cycles", lat)
    _metrics({"decoder_latency_cycles": lat})


@cocotb.test()
async def throughput(dut):
    """Back-to-back minimum-size messages in MTU-sized packets, no output backpressure."""
    rng = random.Random(5)
    tb = DecoderTB(dut)
    await tb.reset()
    res = {}
    for label, types in (("S (12 B)", "S"), ("D (19 B)", "D"), ("A (36 B)", "A"),
                         ("mix AFECXDUPQHRS", EMITTED_TYPES)):
        tb.want.clear(); tb.want_done.clear(); tb.out.items.clear(); tb.out.cycles.clear()
        tb.done.items.clear()
        tb.want_c = dict.fromkeys(tb.want_c, 0)
        await tb.reset()
        rate, bpc = await _throughput(tb, types, 600, label, rng)
        res[label] = {"messages_per_cycle": round(rate, 4), "bytes_per_cycle": round(bpc, 3)}
    _metrics({"decoder_throughput": res})
