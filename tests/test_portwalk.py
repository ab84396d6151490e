"""The port walker alone (hw/trigger/portwalk.py), against the host's reference feed: every
entry it pushes and every add it presents is a message the MoldUDP64 rules deliver, in
delivered order, with the decoder's fields -- on the impaired feed (cut frames, duplicates,
stale sessions, gaps, a session change) with 802.1Q tags and IPv4 options mixed in, so that
the payload starts at both lane alignments. The tracker's side of the tap is the reference
tracker's state before each frame, offered as idle during long gaps."""

import random
import struct

from amaranth.sim import Simulator

from tickwire.hw.feed.decoder import EVENT_TYPES
from tickwire.hw.trigger.portwalk import PortWalker
from tickwire.host import framing, itch, moldudp64

from test_rtl_cut_through import impaired_case


def with_options(frame: bytes, words: int, vlan: bool) -> bytes:
    """``frame`` with an 802.1Q tag and/or ``words`` 32-bit IPv4 option words (NOPs)."""
    eth, ip, rest = frame[:14], bytearray(frame[14:34]), frame[34:]
    if vlan:
        eth = eth[:12] + b"\x81\x00\x00\x05" + eth[12:]
    ip[0] = 0x40 | (5 + words)
    struct.pack_into(">H", ip, 2, struct.unpack_from(">H", ip, 2)[0] + 4 * words)
    struct.pack_into(">H", ip, 10, 0)
    hdr = bytes(ip) + b"\x01" * (4 * words)
    s = sum(struct.unpack(f">{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    hdr = hdr[:10] + struct.pack(">H", ~s & 0xFFFF) + hdr[12:]
    return eth + hdr + rest


def reference(frames):
    """Per frame the tracker state before it; the delivered A F E C X D U H messages as
    (sequence, message), in delivered order."""
    tr = moldudp64.SequenceTracker()
    states, delivered = [], []
    for f in frames:
        states.append((tr.session, tr.previous, tr.expected))
        d = framing.parse_udp_frame(f)
        if isinstance(d, str):
            continue
        pk = moldudp64.unpack(d.payload, strict=False)
        first, n = tr.accept(pk.session, pk.sequence, pk.count, len(pk.messages))
        for i in range(first, first + n):
            msg = pk.messages[i]
            if msg and chr(msg[0]) in EVENT_TYPES and len(msg) == itch.LENGTHS[chr(msg[0])]:
                delivered.append((pk.sequence + i, msg))
    return states, delivered


def _sess(s):
    # the tracker keeps a session as the line buffer captures it: byte 0 lowest
    return int.from_bytes(moldudp64.session_bytes(s), "little") if s is not None else 0


def test_port_walker_follows_the_reference_feed():
    frames, gaps, _, _ = impaired_case(44)
    rnd = random.Random(44)
    frames = [with_options(f, rnd.choice((0, 0, 1, 2, 5)), rnd.random() < 0.3)
              for f in frames[:300]]
    gaps = gaps[:300]
    states, delivered = reference(frames)
    dut = PortWalker(symbols=2, slot_bits=1)
    entries, strobes = [], []

    async def tb(ctx):
        for sig, v in ((dut.tap.verdict_a, 1), (dut.tap.desc_room_a, 1),
                       (dut.tap.track_sequence, 1), (dut.enable, 1), (dut.downstream_quiet, 1),
                       (dut.entries.ready, 1), (dut.tap.pop_a, 1)):
            ctx.set(sig, v)

        async def step():
            addr = ctx.get(dut.loc.addr)
            if ctx.get(dut.entries.valid):
                entries.append(ctx.get(dut.entries.payload))
            if ctx.get(dut.fast.valid):
                strobes.append(ctx.get(dut.fast.payload))
            await ctx.tick()
            # the locate map: locate k is slot k & 1, one cycle later
            ctx.set(dut.loc.valid, 1)
            ctx.set(dut.loc.slot, addr & 1)

        for k, (f, g) in enumerate(zip(frames, gaps)):
            cur, prev, exp = states[k]
            ctx.set(dut.tap.session, _sess(cur))
            ctx.set(dut.tap.prev_session, _sess(prev))
            ctx.set(dut.tap.have_session, cur is not None)
            ctx.set(dut.tap.have_prev, prev is not None)
            ctx.set(dut.tap.expected, exp)
            ctx.set(dut.tap.idle, g >= 12)
            for _ in range(g):
                await step()
            ctx.set(dut.tap.idle, 0)
            nb = (len(f) + 7) // 8
            for i in range(nb):
                chunk = f[8 * i:8 * i + 8]
                ctx.set(dut.rx.data, int.from_bytes(chunk.ljust(8, b"\0"), "little"))
                ctx.set(dut.rx.keep, (1 << len(chunk)) - 1)
                ctx.set(dut.rx.first, i == 0)
                ctx.set(dut.rx.last, i == nb - 1)
                ctx.set(dut.rx.valid, 1)
                await step()
                ctx.set(dut.rx.valid, 0)
        for _ in range(40):
            await step()

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(tb)
    sim.run()

    # every entry is a delivered message's, in delivered order; every strobe is an entry's
    # add, with the decoder's fields
    j = 0
    walked = []
    for e in entries:
        while j < len(delivered) and delivered[j][0] & 0xFFFF != e.seq:
            j += 1
        assert j < len(delivered), f"entry {e.seq}: no such message delivered after the last"
        walked.append(delivered[j])
        j += 1
    assert len(entries) > len(delivered) // 3, (len(entries), len(delivered))
    assert len(strobes) > 20
    adds = iter([(seq, msg) for seq, msg in walked if chr(msg[0]) in "AF"])
    for s in strobes:
        seq, msg = next((q, m) for q, m in adds if q == s.sequence)
        d = itch.decode(msg)
        assert s.price == d["price"] and s.timestamp == d["timestamp"]
        assert s.side == (0 if d["buy_sell_indicator"] == "B" else 1)
        assert s.slot == d["stock_locate"] & 1
    # the engine took none here: the adds, replaces and trading states are hazards
    assert [e.hazard for e in entries] == [chr(m[0]) in "AFUH" for _, m in walked]
