"""MoldUDP64 codec and sequence rules: the Python tracker by hand, then the numba feed against
it on random A/B streams with drops, duplicates, reorders and session changes."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.host import itch
from tickwire.host import moldudp64 as mold
from tickwire.host.capture import Frames
from tickwire.host.emu.feed import FRAME_STATUS, index_frames
from tickwire.host.framing import build_udp_frame


def _msg(i: int) -> bytes:
    kind = i % 4
    if kind == 0:
        return itch.encode("A", stock_locate=i % 50, timestamp=i, order_reference_number=i,
                           buy_sell_indicator="S", shares=i % 1000, stock="MSFT", price=i)
    if kind == 1:
        return itch.encode("D", order_reference_number=i, timestamp=i)
    if kind == 2:
        return itch.encode("X", order_reference_number=i, canceled_shares=3, timestamp=i)
    return itch.encode("E", order_reference_number=i, executed_shares=1, match_number=i)


# --------------------------------------------------------------------------- codec

def test_pack_unpack_roundtrip():
    msgs = [_msg(i) for i in range(5)]
    p = mold.pack("000010059B", 14757721, msgs)
    assert p[:10] == b"000010059B" and struct.unpack(">QH", p[10:20]) == (14757721, 5)
    u = mold.unpack(p)
    assert (u.session, u.sequence, u.count, u.messages) == ("000010059B", 14757721, 5, msgs)
    assert [p[o:o + len(m)] for o, m in zip(u.offsets, msgs)] == msgs
    assert u.overrun is None
    # short sessions are space padded on the wire, stripped in text form
    assert mold.pack("AB", 1, [])[:10] == b"AB        "
    assert mold.unpack(mold.pack("AB", 1, [])).session == "AB"
    # trailing bytes after the count-th message are padding
    assert mold.unpack(p + b"\0" * 7).messages == msgs


def test_heartbeat_and_end_of_session():
    h = mold.unpack(mold.heartbeat("S1", 42))
    assert (h.sequence, h.count, h.messages, h.is_heartbeat) == (42, 0, [], True)
    e = mold.unpack(mold.end_of_session("S1", 43))
    assert (e.sequence, e.count, e.messages, e.is_end_of_session) == (43, 0xFFFF, [], True)
    assert mold.end_of_session("S1", 43)[18:20] == b"\xff\xff"
    assert len(mold.heartbeat("S1", 1)) == 20


def test_unpack_errors_name_offsets():
    with pytest.raises(mold.MoldError, match="offset 0"):
        mold.unpack(b"x" * 19)
    msgs = [_msg(0), _msg(1)]
    p = mold.pack("S", 1, msgs)
    over = p[:18] + struct.pack(">H", 3) + p[20:]          # claims 3, holds 2
    with pytest.raises(mold.MoldError, match=f"offset {len(p)}"):
        mold.unpack(over)
    lax = mold.unpack(over, strict=False)
    assert lax.messages == msgs and lax.overrun == len(p)
    cut = p[:-1]                                            # second message one byte short
    second = 20 + 2 + len(msgs[0])
    with pytest.raises(mold.MoldError, match=f"offset {second}: message 2 of 2: length"):
        mold.unpack(cut)
    assert mold.unpack(cut, strict=False).messages == msgs[:1]
    with pytest.raises(mold.MoldError):
        mold.pack("ELEVENCHARS", 1, [])
    with pytest.raises(mold.MoldError):
        mold.pack("S", 1, [b"x"] * 0xFFFF)


# --------------------------------------------------------------------------- tracker by hand

def test_tracker_rules_by_hand():
    t = mold.SequenceTracker()
    assert t.accept("S1", 10, 3) == (0, 3)                  # first packet: no gap before it
    assert (t.expected, t.gaps) == (13, 0)
    assert t.accept("S1", 15, 2) == (0, 2)                  # gap 13..14
    assert (t.gaps, t.gap_messages, t.last_gap_first, t.last_gap_last) == (1, 2, 13, 14)
    assert t.accept("S1", 13, 2) == (0, 0) and t.last_status == "duplicate"
    assert t.accept("S1", 16, 3) == (1, 2)                  # partial overlap: skip 16
    assert t.expected == 19
    assert t.accept("S1", 19, 0) == (0, 0) and t.last_status == "accepted"
    assert (t.heartbeats, t.gaps) == (1, 1)
    assert t.accept("S1", 22, 0) == (0, 0)                  # heartbeat reveals gap 19..21
    assert (t.heartbeats, t.gaps, t.gap_messages, t.last_gap_first, t.last_gap_last,
            t.expected) == (2, 2, 5, 19, 21, 22)
    assert t.accept("S1", 18, 0) == (0, 0)                  # an old heartbeat: counted only
    assert (t.heartbeats, t.dup_packets, t.expected) == (3, 1, 22)
    assert t.accept("S1", 24, 0xFFFF) == (0, 0)             # end of session, with a gap
    assert (t.end_of_session, t.gaps, t.last_gap_first, t.last_gap_last, t.expected) == (
        1, 3, 22, 23, 24)
    assert t.accept("S2", 1, 2) == (0, 2)                   # new session: reset, no gap
    assert (t.session_changes, t.expected, t.gaps) == (1, 3, 3)
    assert t.accept("S1", 25, 5) == (0, 0) and t.last_status == "stale_session"
    assert t.accept("S1", 24, 0xFFFF) == (0, 0) and t.stale_session == 2
    assert t.accept("S2", 3, 4, framed=2) == (0, 2)         # overrun: only 2 of 4 framed
    assert t.expected == 5
    assert t.accept("S2", 3, 4) == (2, 2)                   # the B copy fills the rest
    assert (t.expected, t.gaps) == (7, 3)
    assert t.accept("S3", 100, 1) == (0, 1)
    # only the previous session is remembered: S1 now counts as a new session again
    assert t.accept("S1", 1, 1) == (0, 1) and t.session_changes == 3
    assert t.packets == 12 and t.dup_packets == 1
    assert [g[1:] for g in t.gap_ranges] == [(13, 14), (19, 21), (22, 23)]


def _frames_of(packets, vlan_b=2):
    """packets: list of (line, payload) -> Frames (line 'A' untagged, 'B' VLAN-tagged)."""
    out = []
    for i, (line, payload) in enumerate(packets):
        if line == "A":
            out.append(build_udp_frame(payload, src_ip="206.200.1.1", ip_id=i & 0xFFFF))
        else:
            out.append(build_udp_frame(payload, src_ip="206.200.2.1", vlan=vlan_b,
                                       ip_id=i & 0xFFFF))
    return Frames.from_list(out)


def _agree(frames: Frames, **kw):
    ix = index_frames(frames, **kw)
    ref = mold.reference_feed(list(frames), **kw)
    assert ix.counters == ref.counters
    got = [(int(s), int(f), int(o) - int(frames.offsets[f]), ix.message(i))
           for i, (s, f, o) in enumerate(zip(ix.sequences, ix.frame_index, ix.offsets))]
    assert got == [(m.sequence, m.frame_index, m.offset, m.data) for m in ref.messages]
    assert [FRAME_STATUS[s] for s in ix.frame_status] == ref.frame_status
    assert ix.session == (ref.session or "")
    return ix, ref


def test_feed_rules_by_hand():
    P = mold.pack
    pk = [("A", P("S1", 10, [_msg(0), _msg(1), _msg(2)])),
          ("A", P("S1", 15, [_msg(5), _msg(6)])),
          ("B", P("S1", 13, [_msg(3), _msg(4)])),
          ("B", P("S1", 16, [_msg(6), _msg(7), _msg(8)])),
          ("A", mold.heartbeat("S1", 22)),
          ("A", mold.end_of_session("S1", 22)),
          ("A", P("S2", 1, [_msg(100)])),
          ("B", P("S1", 19, [_msg(9)])),
          ("B", P("S2", 1, [_msg(100)]))]
    ix, ref = _agree(_frames_of(pk))
    c = ix.counters
    assert ix.sequences.tolist() == [10, 11, 12, 15, 16, 17, 18, 1]
    assert (c["gaps"], c["gap_messages"], c["last_gap_first"], c["last_gap_last"]) == (2, 5, 19, 21)
    assert (c["dup_packets"], c["stale_session"], c["heartbeats"], c["end_of_session"],
            c["session_changes"], c["packets"], c["messages"]) == (2, 1, 1, 1, 1, 6, 8)
    assert ix.session == "S1"
    assert [ix.frame_outcome(i) for i in range(len(pk))] == [
        "accepted", "accepted", "duplicate", "accepted", "accepted", "accepted", "accepted",
        "stale_session", "duplicate"]


# --------------------------------------------------------------------------- random streams

def _stream(rng: random.Random, *, sessions=1, bad_messages=False, loss=0.15, dup=0.05,
            swap=0.1):
    """A random A/B packet stream. Returns (arrival-ordered [(line, payload)], sent packets)."""
    sent = []  # (session, seq, [messages]) in send order
    mid = 0
    for s in range(sessions):
        name = f"SESS{s:06d}"
        seq = rng.choice([1, 1000, 2 ** 40])
        for _ in range(rng.randrange(5, 40)):
            n = rng.choice([0, 1, 1, 2, 3, 5, 8])
            msgs = []
            for _ in range(n):
                m = _msg(mid)
                mid += 1
                if bad_messages and rng.random() < 0.05:
                    m = rng.choice([b"Z" + m[1:], m[:-1], m + b"\0", b""])
                msgs.append(m)
            sent.append((name, seq, msgs))
            seq += n
        if rng.random() < 0.5:
            sent.append((name, seq, None))  # end of session
    lines = {}
    for line, delay in (("A", 0.0), ("B", rng.uniform(0, 6))):
        out = []
        for i, (name, seq, msgs) in enumerate(sent):
            if rng.random() < loss:
                continue
            payload = (mold.end_of_session(name, seq) if msgs is None
                       else mold.pack(name, seq, msgs))
            t = i + delay + rng.uniform(0, 0.5)
            out.append((t, line, payload))
            if rng.random() < dup:
                out.append((t + rng.uniform(0, 3), line, payload))
        for j in range(len(out) - 1):  # local reorders within a line
            if rng.random() < swap:
                out[j], out[j + 1] = (out[j + 1][0], *out[j][1:]), (out[j][0], *out[j + 1][1:])
        lines[line] = out
    merged = sorted(lines["A"] + lines["B"], key=lambda x: x[0])
    return [(line, p) for _, line, p in merged], sent


def test_random_streams_numba_matches_reference():
    rng = random.Random(20240601)
    totals = dict.fromkeys(["gaps", "dup_packets", "stale_session", "session_changes",
                            "unknown_type", "bad_length", "end_of_session", "heartbeats"], 0)
    for _ in range(150):
        pk, _ = _stream(rng, sessions=rng.choice([1, 1, 2, 3]), bad_messages=True)
        ix, _ = _agree(_frames_of(pk))
        for k in totals:
            totals[k] += ix.counters[k]
    # the streams really exercised every rule
    assert all(v > 0 for v in totals.values()), totals


def test_every_injected_gap_is_reported():
    rng = random.Random(7)
    lost_total = 0
    for _ in range(150):
        pk, sent = _stream(rng, loss=0.3, dup=0.1, swap=0.2)
        # make the last packet arrive on both lines so no loss is at the (undetectable) tail
        name, seq, msgs = sent[-1]
        last = mold.end_of_session(name, seq) if msgs is None else mold.pack(name, seq, msgs)
        pk += [("A", last), ("B", last)]
        frames = _frames_of(pk)
        ix, _ = _agree(frames)
        t = mold.SequenceTracker()
        for line, p in pk:
            u = mold.unpack(p)
            t.accept(p[:10], u.sequence, u.count)
        delivered = ix.sequences.tolist()
        assert delivered == sorted(set(delivered))          # in order, never twice
        first = mold.unpack(pk[0][1]).sequence  # the rules report no gap before the first
        end = seq + (len(msgs) if msgs else 0)
        universe = set(range(first, end))
        in_gaps = set()
        for _, a, b in t.gap_ranges:
            rng_ = set(range(a, b + 1))
            assert not (rng_ & in_gaps)                     # gap ranges never overlap
            in_gaps |= rng_
        missing = universe - set(delivered)
        assert missing == in_gaps                           # 100% of losses reported, no false ones
        assert ix.counters["gap_messages"] == len(missing)
        assert ix.counters["gaps"] == len(t.gap_ranges)
        lost_total += len(missing)
    assert lost_total > 50  # the test injected real losses


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.sampled_from([0, 1, 2, 3, 5, 0xFFFF])),
                min_size=1, max_size=40))
def test_tracker_properties(packets):
    """Any arrival order: each sequence is delivered at most once, in increasing order, and
    every sequence between the first and the last expected is delivered or in a reported gap."""
    t = mold.SequenceTracker()
    delivered = []
    start = packets[0][0]
    for seq, count in packets:
        first, n = t.accept("S", seq, count)
        assert 0 <= first and 0 <= n
        delivered += list(range(seq + first, seq + first + n))
    assert delivered == sorted(set(delivered))
    gaps = set()
    for _, a, b in t.gap_ranges:
        gaps |= set(range(a, b + 1))
    assert not gaps & set(delivered)
    assert set(range(start, t.expected)) == gaps | set(delivered)
    assert t.gap_messages == len(gaps)
