"""cocotb bench of tickwire.hw.feed.FeedFrontEnd (frames on lines A and B -> messages).

Oracle: tickwire.host.moldudp64.reference_feed (the executable statement of the feed rules)
run over the frames in the order the gateware took its MoldUDP64 decisions (the tracker's
event stream), plus the frames the parsers dropped. Its messages (as DecodedMessage fields)
and all its counters must equal the gateware's. The A/B tests also check the end-to-end
property directly: every message that at least one line delivered comes out exactly once, in
sequence order, and every range lost on both lines is reported as a gap.
"""

from __future__ import annotations

import os
import random
from collections import Counter

import cocotb

from tickwire.host.moldudp64 import COUNTERS, reference_feed
from tickwire.hw.feed import decoded_fields
from tickwire.hw.feed.layouts import Verdict
from tickwire.sim.feed_common import (GROUPS, capture_frames, captures,
                                      expected_parser_output, group_entries, ipv4_frame,
                                      malformed_frames, mold_packet, random_message)
from tickwire.sim.feed_decoder.decoder_tb import FIELDS
from tickwire.sim.runner import TB, AxisSource, StreamSink


class FeedTB(TB):
    def __init__(self, dut, *, idle=0.0, ready_prob=1.0, seed=0):
        super().__init__(dut)
        self.rng = random.Random(seed)
        self.src = {"a": AxisSource(self, "rx_a", idle=idle, rng=random.Random(seed + 1)),
                    "b": AxisSource(self, "rx_b", idle=idle, rng=random.Random(seed + 2))}
        self.out = StreamSink(self, "o", ready_prob=ready_prob, rng=random.Random(seed + 3))
        self.events = StreamSink(self, "events",
                                 fields=("line", "verdict", "new_session", "gap", "overrun",
                                         "sequence", "count", "framed", "skip", "session"))
        self.sent = {"a": [], "b": []}
        self.groups = None
        self.csum = True
        self.track = True

    async def configure(self, groups=GROUPS, csum=True, track=True, window=0):
        self["groups"].set(group_entries(groups or ()))
        self["check_ip_checksum"].set(int(csum))
        self["track_sequence"].set(int(track))
        self["ab_window"].set(window)
        self.groups, self.csum, self.track = groups, csum, track
        await self.cycles(2)

    async def send(self, line: str, frame: bytes, gap: int = 0):
        await self.src[line].send(frame, gap=gap)
        self.sent[line].append(frame)

    async def drain(self, quiet=600, limit=200000):
        """Wait until neither messages nor events have come out for ``quiet`` cycles."""
        last = (-1, -1)
        still = 0
        for _ in range(limit // 50):
            await self.cycles(50)
            now = (len(self.out.items), len(self.events.items))
            still = still + 50 if now == last else 0
            last = now
            if still >= quiet:
                return

    def hw_order(self):
        """Frames in the gateware's decision (commit) order, then the frames that never
        reached the tracker; checks each event against its frame."""
        reach = {}
        rest = []
        for line in "ab":
            q = []
            for f in self.sent[line]:
                code, pay = expected_parser_output(f, self.groups, self.csum)
                if pay is not None and len(pay) >= 20:
                    q.append((f, pay))
                else:
                    rest.append(f)
            reach[line] = q
        order = []
        pos = {"a": 0, "b": 0}
        for ev in self.events.items:
            line = "ab"[ev["line"]]
            assert pos[line] < len(reach[line]), f"event {ev} without a frame on line {line}"
            f, pay = reach[line][pos[line]]
            pos[line] += 1
            seq = int.from_bytes(pay[10:18], "big")
            cnt = int.from_bytes(pay[18:20], "big")
            assert (ev["sequence"], ev["count"]) == (seq, cnt), \
                f"event {ev} does not match line {line}'s next packet ({seq}, {cnt})"
            order.append(f)
        for line in "ab":
            assert pos[line] == len(reach[line]), \
                f"line {line}: {len(reach[line]) - pos[line]} packets never decided"
        return order + rest

    def check_against_reference(self, label=""):
        frames = self.hw_order()
        ref = reference_feed(frames, self.groups, check_ip_checksum=self.csum,
                             track_sequence=self.track)
        want = [d for d in (decoded_fields(m.data, m.sequence) for m in ref.messages)
                if d is not None]
        got = [{k: g[k] for k in FIELDS} for g in self.out.items]
        assert len(got) == len(want), f"{label}: {len(got)} messages, reference {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert g == w, f"{label}: message {i}: {g}\n reference {w}"
        bad = []
        for k in COUNTERS:
            if self[k].value != ref.counters[k]:
                bad.append(f"{k}: gateware {self[k].value}, reference {ref.counters[k]}")
        assert not bad, f"{label}: counters differ:\n" + "\n".join(bad)
        assert self["overflow"].value == 0
        return ref


def _stream(rng, n, session=b"TWSESS0001", seq0=1, hb=0.05, maxmsg=4):
    """A feed of n packets: (session, seq, messages or None for a heartbeat)."""
    out, seq = [], seq0
    for _ in range(n):
        if rng.random() < hb:
            out.append((session, seq, None))
        else:
            msgs = [random_message(rng) for _ in range(rng.randrange(1, maxmsg + 1))]
            out.append((session, seq, msgs))
            seq += len(msgs)
    return out


def _frame(pkt, line, vlan=None):
    session, seq, msgs = pkt
    pay = mold_packet(session, seq, msgs or [], count=None if msgs else 0)
    ip, port = GROUPS[0] if line == "a" else GROUPS[1]
    return ipv4_frame(pay, dst_ip=ip, dst_port=port, vlan=vlan)


async def _run_lines(tb, plan, skew, gaps):
    """plan[line]: list of frames, or list of slots (lists of frames). With slots both lines
    keep the same schedule (slot k starts at the same cycle on A and ``skew`` cycles later on
    B); with flat lists each line runs on its own random gaps."""
    slotted = plan["a"] and isinstance(plan["a"][0], list)
    if slotted:
        n = len(plan["a"])
        lens = [max(sum((len(f) + 7) // 8 for f in plan[ln][k]) for ln in "ab")
                + tb.rng.choice(gaps) for k in range(n)]

    async def line(name, frames, delay):
        await tb.cycles(delay) if delay else None
        if not slotted:
            for f in frames:
                await tb.send(name, f, gap=tb.rng.choice(gaps))
            return
        for k, slot in enumerate(frames):
            used = 0
            for f in slot:
                await tb.send(name, f)
                used += (len(f) + 7) // 8
            if lens[k] > used:
                await tb.cycles(lens[k] - used)
    ta = cocotb.start_soon(line("a", plan["a"], 0))
    tb_ = cocotb.start_soon(line("b", plan["b"], skew))
    await ta
    await tb_


def _runs(tb, stream, plan_seqs):
    carried = plan_seqs["a"] | plan_seqs["b"]
    allseq = sorted(s + i for _, s, msgs in stream for i in range(len(msgs or [])))
    miss = [s for s in allseq if s not in carried and tb.first_seq <= s <= max(carried)]
    return miss


def _property_check(tb, stream, plan_seqs, label):
    """Every message carried by at least one line comes out once, in order; every range
    missing on both lines is a gap."""
    carried = set()
    for seqs in plan_seqs.values():
        carried |= seqs
    allmsgs = {}
    for session, seq, msgs in stream:
        for i, m in enumerate(msgs or []):
            allmsgs[seq + i] = m
    want = [decoded_fields(allmsgs[s], s) for s in sorted(allmsgs) if s in carried]
    got = [{k: g[k] for k in FIELDS} for g in tb.out.items]
    if got != want:
        i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        s = want[i]["sequence"] if i < len(want) else got[i]["sequence"]
        near = [e for e in tb.events.items if abs(e["sequence"] - s) < 12]
        lines = [ln for ln, seqs in plan_seqs.items() if s in seqs]
        raise AssertionError(
            f"{label}: overflow={tb['overflow'].value} frames={tb['frames'].value} "
            f"events={len(tb.events.items)} {len(got)} messages out, {len(want)} carried; first difference "
            f"at {i}: sequence {s} (carried by {lines}); events near it: "
            + "; ".join(f"{'ab'[e['line']]} {Verdict.NAMES[e['verdict']]} s={e['sequence']} "
                        f"n={e['count']} skip={e['skip']} gap={e['gap']}" for e in near))
    # gaps: maximal runs of missing sequence numbers after the first packet a line carried
    # (a heartbeat too: it starts the session) up to the last carried message; a carried
    # heartbeat whose sequence falls inside a run reports the part before it as a gap of its
    # own (it announces that sequence as the next one), so it splits the run
    lo, hi = tb.first_seq, max(carried)
    missing = [s for s in range(lo, hi + 1) if s not in carried and s in allmsgs]
    hb = getattr(tb, "heartbeats_carried", set())
    runs = sum(1 for i, s in enumerate(missing)
               if i == 0 or missing[i - 1] != s - 1 or s in hb)
    return runs, len(missing)


@cocotb.test()
async def ab_random_drops(dut):
    """Lines A and B carry the same packets with independent random drops and duplicates,
    B skewed behind A; the A/B window covers the skew: no message carried by a line is
    lost, every range lost on both lines is reported as a gap, and everything equals the
    reference run in the gateware's decision order."""
    seed = int(os.environ.get("COCOTB_RANDOM_SEED", "1"))
    rng = random.Random(seed)
    tb = FeedTB(dut, ready_prob=0.8, seed=seed)
    await tb.reset()
    skew = rng.randrange(0, 60)
    await tb.configure(GROUPS, True, True, window=skew + 120)
    stream = _stream(rng, 220)
    plan, plan_seqs = {"a": [], "b": []}, {"a": set(), "b": set()}
    tb.first_seq = None
    tb.heartbeats_carried = set()
    for pkt in stream:
        both_drop = rng.random() < 0.04
        for line in "ab":
            plan[line].append([])
            if both_drop or rng.random() < 0.12:
                continue
            if tb.first_seq is None:
                tb.first_seq = pkt[1]
            f = _frame(pkt, line, vlan=7 if line == "b" else None)
            plan[line][-1].append(f)
            if rng.random() < 0.05:
                plan[line][-1].append(f)                 # duplicate on the same line
            if pkt[2]:
                plan_seqs[line] |= set(range(pkt[1], pkt[1] + len(pkt[2])))
            else:
                tb.heartbeats_carried.add(pkt[1])
    await _run_lines(tb, plan, skew=skew, gaps=[0, 2, 5, 10, 20])
    await tb.drain()
    runs, missing = _property_check(tb, stream, plan_seqs, "ab")
    gap_events = [(("ab"[e["line"]]), e["sequence"], e["count"]) for e in tb.events.items
                  if e["gap"] and e["verdict"] == Verdict.ACCEPTED]
    assert tb["gaps"].value == runs, (f"gaps {tb['gaps'].value}, injected {runs}: "
                                      f"{gap_events}; missing {_runs(tb, stream, plan_seqs)}")
    assert tb["gap_messages"].value == missing, \
        f"gap_messages {tb['gap_messages'].value}, injected {missing}"
    tb.check_against_reference("ab")
    tb.log.info("A/B: %d packets, %d messages out, %d gaps (%d messages) all reported, "
                "dup_packets %d", len(stream), len(tb.out.items), runs, missing,
                tb["dup_packets"].value)


@cocotb.test()
async def ab_no_window(dut):
    """Without the A/B window, with B far behind A and random drops: the gateware still
    equals the reference in its decision order (gaps and late packets included)."""
    seed = int(os.environ.get("COCOTB_RANDOM_SEED", "1")) + 17
    rng = random.Random(seed)
    tb = FeedTB(dut, ready_prob=0.5, idle=0.05, seed=seed)
    await tb.reset()
    await tb.configure(GROUPS, True, True, window=0)
    stream = _stream(rng, 150, hb=0.1)
    plan = {"a": [], "b": []}
    for pkt in stream:
        for line in "ab":
            if rng.random() < 0.2:
                continue
            plan[line].append(_frame(pkt, line))
    await _run_lines(tb, plan, skew=rng.randrange(50, 400), gaps=[0, 2, 20])
    await tb.drain()
    tb.check_against_reference("no window")


@cocotb.test()
async def sessions_and_overlap(dut):
    """Session changes with the lagging line still on the old session (stale), end of
    session, heartbeats, partial overlaps (packets re-cut differently on the two lines),
    mold_overrun, truncated frames and malformed frames, against the reference."""
    seed = int(os.environ.get("COCOTB_RANDOM_SEED", "1")) + 31
    rng = random.Random(seed)
    tb = FeedTB(dut, ready_prob=0.7, seed=seed)
    await tb.reset()
    await tb.configure(GROUPS, True, True, window=0)
    msgs = {s: random_message(rng) for s in range(1, 400)}

    def pkt(session, seq, n, line, count=None, cut=None):
        pay = mold_packet(session, seq, [msgs[s] for s in range(seq, seq + n)], count=count)
        if cut:
            pay = pay[:len(pay) - cut]
        ip, port = GROUPS[0] if line == "a" else GROUPS[1]
        return ipv4_frame(pay, dst_ip=ip, dst_port=port)

    s1, s2, s3 = b"SESSION_01", b"SESSION_02", b"SESSION_03"
    a = [pkt(s1, 1, 3, "a"), pkt(s1, 4, 5, "a"), pkt(s1, 9, 2, "a"),
         pkt(s1, 11, 0, "a", count=0),                        # heartbeat
         pkt(s1, 11, 4, "a", cut=3),                          # overrun: 3 framed
         pkt(s1, 15, 2, "a"),                                 # gap 14 if B does not fill
         pkt(s1, 17, 0, "a", count=0xFFFF),                   # end of session
         pkt(s2, 1, 3, "a"), pkt(s2, 4, 3, "a"),
         pkt(s2, 7, 3, "a")[:-6],                             # frame cut short: 2 kept
         pkt(s2, 10, 2, "a"), pkt(s3, 100, 2, "a"), pkt(s3, 102, 1, "a")]
    b = [pkt(s1, 1, 2, "b"), pkt(s1, 3, 4, "b"),              # overlap with A's 1..3, 4..8
         pkt(s1, 7, 4, "b"), pkt(s1, 11, 4, "b"),             # 11..14 fills A's overrun
         pkt(s1, 15, 2, "b"), pkt(s1, 17, 0, "b", count=0xFFFF),
         pkt(s1, 5, 2, "b"),                                  # late: duplicate
         pkt(s2, 1, 5, "b"), pkt(s1, 17, 0, "b", count=0),    # stale heartbeat
         pkt(s2, 6, 6, "b"), pkt(s2, 12, 1, "b", count=3),    # overrun (count > present)
         pkt(s3, 100, 3, "b")]
    good = lambda: pkt(s3, 300, 1, "a")  # noqa: E731
    mal = [f for label, f in malformed_frames(rng, good) if "good" not in label][:12]
    for f in mal:
        a.insert(rng.randrange(len(a) + 1), f)
    await _run_lines(tb, {"a": a, "b": b}, skew=rng.randrange(0, 200), gaps=[0, 5, 30])
    await tb.drain()
    tb.check_against_reference("sessions")
    ev = Counter(Verdict.NAMES[e["verdict"]] for e in tb.events.items)
    tb.log.info("verdicts: %s; counters: %s", dict(ev),
                {k: tb[k].value for k in COUNTERS if tb[k].value})


@cocotb.test()
async def captures_end_to_end(dut):
    """The shared captures through line A (real ones: groups and checksum on, sequence
    tracking on; a copy on line B with drops) and the anonymised ones with the filter,
    checksum and tracking off: messages and counters equal the reference."""
    tb = FeedTB(dut, ready_prob=0.9)
    await tb.reset()
    await tb.configure(GROUPS, True, True, window=0)
    rng = random.Random(3)
    for p in captures(anonymised=False):
        for f in capture_frames(p):
            await tb.send("a", f, gap=2)
            if rng.random() < 0.7:
                await tb.send("b", f, gap=0)
    await tb.drain()
    ref = tb.check_against_reference("real captures")
    assert len(tb.out.items) >= 40, len(tb.out.items)

    tb.sent = {"a": [], "b": []}
    tb.out.items.clear()
    tb.events.items.clear()
    await tb.reset()
    await tb.configure(None, False, False, window=0)
    for p in captures(anonymised=True):
        for f in capture_frames(p):
            await tb.send("a", f, gap=1)
    await tb.drain()
    tb.check_against_reference("anonymised captures")
    assert len(tb.out.items) >= 50, len(tb.out.items)


@cocotb.test()
async def latency_and_rate(dut):
    """Latency of one 1-message packet through the idle feed (last frame beat in -> message
    out) and the sustained rate of back-to-back packets (one line, and both lines with the
    duplicate copies), no output backpressure."""
    from tickwire.sim.feed_parser.parser_tb import _metrics
    rng = random.Random(9)
    tb = FeedTB(dut)
    await tb.reset()
    await tb.configure(GROUPS, True, True, window=0)
    res = {}
    f = _frame((b"LAT", 1, [random_message(rng, "A")]), "a")
    c = await tb.src["a"].send(f)
    tb.sent["a"].append(f)
    await tb.drain(100)
    res["frame_last_beat_to_message_cycles"] = tb.out.cycles[0] - c
    tb.check_against_reference("latency")

    async def burst(label, nmsg, lines, npk=40, seq0=100):
        tb.out.items.clear(); tb.out.cycles.clear(); tb.events.items.clear()
        tb.sent = {"a": [], "b": []}
        await tb.reset()
        await tb.configure(GROUPS, True, True, window=0)
        stream = []
        seq = seq0
        for _ in range(npk):
            msgs = [random_message(rng, "A") for _ in range(nmsg)]
            stream.append((b"RATE", seq, msgs))
            seq += nmsg
        plan = {ln: ([[_frame(p, ln)] for p in stream] if ln in lines else
                     [[] for _ in stream]) for ln in "ab"}
        start = tb.cycle
        await _run_lines(tb, plan, skew=0, gaps=[0])
        end_in = tb.cycle
        await tb.drain(200)
        tb.check_against_reference(label)
        t = tb.out.cycles
        beats = sum((len(p[0]) + 7) // 8 for p in plan["a"])
        per_pkt = (t[-1] - t[nmsg - 1]) / (npk - 1)
        res[label] = {"input_cycles_per_packet": round(beats / npk, 2),
                      "output_cycles_per_packet": round(per_pkt, 2),
                      "messages_per_cycle": round(nmsg / per_pkt, 3),
                      "overflow": tb["overflow"].value}
    await burst("1 msg/packet, line A", 1, "a")
    await burst("1 msg/packet, lines A+B", 1, "ab")
    await burst("10 msg/packet, lines A+B", 10, "ab", npk=12)
    tb.log.info("feed latency and rate: %s", res)
    _metrics({"feed": res})
