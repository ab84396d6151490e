"""cocotb bench of tickwire.hw.feed.FrameParser (one line).

Every frame's status (frame_status stream), every payload (reassembled from the output beats)
and the final counters are compared with tickwire.host.framing.parse_udp_frame through
sim.feed_common.expected_parser_output; every frame the MAC flags that passes names its
MoldUDP64 messages on ``fcs_bad``, ``FCS_BAD_LATENCY`` cycles after its last beat.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter

import cocotb

from tickwire.hw.feed.parser import FrameParser
from tickwire.host.framing import FRAME_REASONS, FcsError
from tickwire.sim.feed_common import (GROUPS, capture_frames, captures,
                                      expected_parser_output, group_entries, ipv4_frame,
                                      malformed_frames, mold_packet, packets_from_beats,
                                      random_message)
from tickwire.sim.runner import TB, AxisSource, StreamSink


class ParserTB(TB):
    def __init__(self, dut, *, idle=0.0, gap=0, seed=0):
        super().__init__(dut)
        self.rng = random.Random(seed)
        self.src = AxisSource(self, "rx", idle=idle, gap=gap, rng=random.Random(seed + 1))
        self.out = StreamSink(self, "o")
        self.status = StreamSink(self, "frame_status")
        self.fcs_bad = StreamSink(self, "fcs_bad")
        self.sent: list[tuple[bytes, object, bool]] = []   # frame, groups, csum
        self.last_cycles: list[int] = []

    async def configure(self, groups, check_ip_checksum=True):
        await self.cycles(12)              # host writes happen between frames
        self["groups"].set(group_entries(groups or ()))
        self["check_ip_checksum"].set(1 if check_ip_checksum else 0)
        self.groups = groups
        self.csum = check_ip_checksum

    async def send(self, frame: bytes, gap=None):
        c = await self.src.send(frame, gap=gap)
        self.sent.append((frame, self.groups, self.csum))
        self.last_cycles.append(c)

    async def check(self, label: str = ""):
        await self.cycles(20)
        exp = [expected_parser_output(f, g, c) for f, g, c in self.sent]
        got_status = list(self.status.items)
        assert len(got_status) == len(exp), \
            f"{label}: {len(got_status)} frame statuses for {len(exp)} frames"
        for i, ((code, _), g) in enumerate(zip(exp, got_status)):
            assert g == code, (f"{label}: frame {i}: status {_name(g)}, expected {_name(code)}"
                               f" (frame {self.sent[i][0].hex()})")
        pk = packets_from_beats(self.out.items)
        want = [p for _, p in exp if p is not None]
        assert len(pk) == len(want), f"{label}: {len(pk)} payloads, expected {len(want)}"
        for i, ((p, ln), wp) in enumerate(zip(pk, want)):
            assert p == wp, f"{label}: payload {i}: got {p.hex()} expected {wp.hex()}"
        counts = Counter(code for code, _ in exp)
        for i, name in enumerate(FRAME_REASONS):
            got = self[name].value
            assert got == counts[i], f"{label}: counter {name}={got}, expected {counts[i]}"
        assert self["frames"].value == len(exp)
        bad = sum(isinstance(f, FcsError) for f, _, _ in self.sent)
        assert self["fcs_errors"].value == bad, \
            f"{label}: fcs_errors={self['fcs_errors'].value}, expected {bad}"
        # a flagged frame that passed names its messages; one cut short before its first
        # message is complete delivers none, so it may or may not
        may_bad, must_bad = set(), []
        for (f, _, _), (code, p), end in zip(self.sent, exp, self.last_cycles):
            if isinstance(f, FcsError) and p is not None:
                seq, count = int.from_bytes(p[10:18], "big"), int.from_bytes(p[18:20], "big")
                if count not in (0, 0xFFFF):
                    r = (end + FrameParser.FCS_BAD_LATENCY, seq, (seq + count) % (1 << 64))
                    may_bad.add(r)
                    if len(p) >= 22 and len(p) >= 22 + int.from_bytes(p[20:22], "big"):
                        must_bad.append((r, f))
        got_bad = [(c, r["lo"], r["hi"]) for c, r in zip(self.fcs_bad.cycles, self.fcs_bad.items)]
        for r, f in must_bad:
            assert r in got_bad, f"{label}: no fcs_bad {r} for frame {f.hex()}"
        assert set(got_bad) <= may_bad, f"{label}: fcs_bad {sorted(set(got_bad) - may_bad)} " \
                                        f"for no flagged frame"
        return pk


def _name(code):
    return FRAME_REASONS[code] if code < len(FRAME_REASONS) else "pass"


def _metrics(update: dict):
    path = os.environ.get("TW_METRICS")
    if not path:
        return
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError):
        d = {}
    d.update(update)
    with open(path, "w") as f:
        json.dump(d, f, indent=1)


@cocotb.test()
async def captures_every_frame(dut):
    """Every frame of every shared capture: real ones with the two groups in the table and
    the checksum checked, the anonymised .20230822 ones with the filter and checksum off (and
    also with the table on, where they are `filtered`/`ip_checksum`)."""
    tb = ParserTB(dut, gap=3)
    await tb.reset()
    await tb.configure(GROUPS, True)
    for p in captures(anonymised=False):
        for f in capture_frames(p):
            await tb.send(f)
    await tb.configure(None, False)
    for p in captures(anonymised=True):
        for f in capture_frames(p):
            await tb.send(f)
    await tb.configure(GROUPS, True)
    for p in captures(anonymised=True)[:3]:
        for f in capture_frames(p):
            await tb.send(f)
    pk = await tb.check("captures")
    assert len(pk) >= 80


@cocotb.test()
async def latency(dut):
    """Cut-through latency: cycles from a frame's last beat at the input to its payload's
    last beat at the output (the frames' UDP payloads end at the frame end)."""
    tb = ParserTB(dut, gap=20)
    await tb.reset()
    await tb.configure(GROUPS, True)
    frames = capture_frames(captures(anonymised=False)[0])
    await tb.send(frames[0])
    await tb.cycles(30)
    await tb.check("latency")
    lat = tb.out.cycles[-1] - tb.last_cycles[-1]
    tb.log.info("parser latency: last input beat -> last payload beat = %d cycles", lat)
    _metrics({"parser_latency_cycles": lat})


@cocotb.test()
async def malformed_then_good(dut):
    """Each malformed kind once, each followed by a good packet that must still come out."""
    rng = random.Random(7)
    tb = ParserTB(dut, gap=0)
    await tb.reset()
    await tb.configure(GROUPS, True)

    def good():
        msgs = [random_message(rng) for _ in range(rng.randrange(1, 4))]
        return ipv4_frame(mold_packet(b"SESS", rng.randrange(1 << 40), msgs),
                          vlan=rng.choice([None, 42]))

    for label, f in malformed_frames(rng, good):
        await tb.send(f)
    await tb.check("malformed")
    # the checksum check can be turned off
    await tb.configure(GROUPS, False)
    tb.sent.clear()
    await tb.reset()
    tb.out.items.clear()
    tb.status.items.clear()
    tb.last_cycles.clear()
    tb.fcs_bad.items.clear()
    tb.fcs_bad.cycles.clear()
    for label, f in malformed_frames(rng, good)[:30]:
        await tb.send(f)
    await tb.check("malformed, no checksum check")


@cocotb.test()
async def cut_at_every_byte_back_to_back(dut):
    """A frame cut at each byte from its IPv4 header on, the next frame right behind it (no
    idle cycle), with and without a VLAN tag and IPv4 options: a cut frame's verdict is
    still its own when its payload's first word is gated, whatever comes next."""
    rng = random.Random(11)
    tb = ParserTB(dut, gap=0)
    await tb.reset()
    await tb.configure(GROUPS[:1], True)
    for vlan in (None, 1):
        for ihl in (5, 15):
            f = ipv4_frame(mold_packet(b"CUT", rng.randrange(1 << 40),
                                       [random_message(rng, "A")]),
                           vlan=vlan, ihl=ihl, dst_ip=GROUPS[0][0], dst_port=GROUPS[0][1])
            nxt = ipv4_frame(mold_packet(b"CUT", rng.randrange(1 << 40),
                                         [random_message(rng, "E")]),
                             vlan=vlan, ihl=ihl, dst_ip=GROUPS[0][0], dst_port=GROUPS[0][1])
            for cut in range(14, len(f) + 1):
                await tb.send(f[:cut])
                await tb.send(nxt)
    await tb.check("cut back to back")


@cocotb.test()
async def random_mix(dut):
    """Random good and malformed frames, random IHL/VLAN/sizes, idle cycles inside frames
    and back-to-back frames."""
    seed = int(os.environ.get("COCOTB_RANDOM_SEED", "1"))
    rng = random.Random(seed)
    tb = ParserTB(dut, idle=0.15, gap=0, seed=seed)
    await tb.reset()
    await tb.configure(GROUPS[:1] if rng.random() < 0.5 else GROUPS, True)

    def good():
        msgs = [random_message(rng) for _ in range(rng.randrange(0, 6))]
        return ipv4_frame(mold_packet(b"R", rng.randrange(1 << 60), msgs),
                          vlan=rng.choice([None, 1]), ihl=rng.choice([5, 5, 5, 6, 7, 15]),
                          dst_ip=GROUPS[0][0], dst_port=GROUPS[0][1])

    pool = malformed_frames(rng, good)
    for _ in range(150):
        if rng.random() < 0.5:
            f = good()
        else:
            f = rng.choice(pool)[1]
        if rng.random() < 0.1:            # random truncation anywhere
            f = f[:rng.randrange(1, len(f) + 1)]
        if rng.random() < 0.1:            # the MAC flags it: counted, otherwise as it came
            f = FcsError(f)
        await tb.send(f, gap=rng.choice([0, 0, 0, 1, 5]))
    await tb.check("random")
