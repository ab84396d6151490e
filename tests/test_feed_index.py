"""The numba feed stage on real NASDAQ captures (scapy as the oracle) and on malformed input."""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q
from scapy.utils import rdpcap

from tickwire.host import itch
from tickwire.host import moldudp64 as mold
from tickwire.host.capture import Frames, read_pcap
from tickwire.host.emu.feed import index_frames
from tickwire.host.framing import FRAME_REASONS, FcsError, build_udp_frame, ipv4_checksum

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ITCH_PCAPS = sorted((SHARED / "itch").glob("*.pcap"))
GROUPS = [("233.54.12.111", 26477), ("233.49.196.40", 25475)]
needs_shared = pytest.mark.skipif(not ITCH_PCAPS, reason=f"shared data absent: {SHARED}")


def _is_anonymised(path: Path) -> bool:
    # the .20230822 samples have zeroed IPs, ports, session, sequence and IPv4 checksum
    return ".20230822" in path.name


def _scapy_expected(path: Path, track: bool):
    """[(sequence, frame, message bytes)] from scapy's parse of the UDP payloads, through the
    reference sequence tracker (or none)."""
    out = []
    t = mold.SequenceTracker()
    for fi, p in enumerate(rdpcap(str(path))):
        assert p.haslayer(Dot1Q) and p.haslayer(IP) and p.haslayer(UDP)
        payload = bytes(p[UDP].payload)[:p[UDP].len - 8]
        u = mold.unpack(payload)
        first, n = t.accept(payload[:10], u.sequence, u.count) if track else (0, u.count)
        out += [(u.sequence + i, fi, u.messages[i]) for i in range(first, first + n)]
    return out


@needs_shared
@pytest.mark.parametrize("path", ITCH_PCAPS, ids=lambda p: p.name.split("__")[-1])
def test_real_capture_index_matches_scapy(path):
    frames = read_pcap(path)
    anon = _is_anonymised(path)
    kw = dict(groups=None if anon else GROUPS, check_ip_checksum=not anon)
    for track in ((True, False) if anon else (True,)):
        ix = index_frames(frames, **kw, track_sequence=track)
        got = [(int(ix.sequences[i]), int(ix.frame_index[i]), ix.message(i))
               for i in range(len(ix))]
        assert got == _scapy_expected(path, track)
        c = ix.counters
        assert c["frames"] == len(frames)
        assert all(c[r] == 0 for r in FRAME_REASONS + ("mold_overrun", "unknown_type",
                                                        "bad_length"))
        for i in range(len(ix)):
            o, f = int(ix.offsets[i]), int(ix.frame_index[i])
            assert frames.offsets[f] <= o < frames.offsets[f] + frames.lengths[f]
            d = itch.decode(ix.message(i))
            assert len(ix.message(i)) == itch.LENGTHS[d["type"]]
        if anon and not track:
            # every frame's message is delivered and all have the file's one type
            assert len(ix) == len(frames)
            assert len({ix.message(i)[:1] for i in range(len(ix))}) == 1
        if anon and track:
            # same (session, sequence 0) five times: by the rules, four duplicates
            assert (len(ix), c["dup_packets"]) == (1, len(frames) - 1)
        if anon:
            # the zeroed checksum fails verification when it is on
            on = index_frames(frames, groups=None)
            assert on.counters["ip_checksum"] == len(frames) and len(on) == 0
        else:
            assert ix.session in ("000010059B", "000010059D")


@needs_shared
def test_multiple_packets_capture():
    path = SHARED / "itch" / "Nasdaq.Equities.TotalView.Itch.v5.0__Multiple.Packets.pcap"
    ix = index_frames(read_pcap(path), GROUPS)
    assert len(ix) == 39 and ix.counters["packets"] == 2
    assert ix.sequences.tolist() == [14764496] + list(range(19009117, 19009117 + 38))
    c = ix.counters
    assert (c["gaps"], c["last_gap_first"], c["last_gap_last"], c["gap_messages"]) == (
        1, 14764497, 19009116, 19009117 - 14764497)
    assert itch.decode(ix.message(1))["type"] == "A"


@needs_shared
def test_real_captures_filtered_by_group_table():
    for path in ITCH_PCAPS:
        if _is_anonymised(path):
            continue
        frames = read_pcap(path)
        ix = index_frames(frames, [("233.54.12.111", 1)])
        assert len(ix) == 0 and ix.counters["filtered"] == len(frames)
        ips = np.array([0xE9360C6F, 0xE931C428], np.uint32)
        ports = np.array([26477, 25475], np.uint16)
        assert len(index_frames(frames, (ips, ports))) == len(index_frames(frames))


# --------------------------------------------------------------------------- malformed input

def _msg(i: int) -> bytes:
    return itch.encode("A", stock_locate=1, timestamp=i, order_reference_number=i,
                       buy_sell_indicator="B", shares=100, stock="AAPL", price=1_000_000 + i)


def _fix(b: bytearray, l3: int = 14) -> bytes:
    b[l3 + 10:l3 + 12] = b"\0\0"
    b[l3 + 10:l3 + 12] = struct.pack(">H", ipv4_checksum(bytes(b[l3:l3 + 20])))
    return bytes(b)


def _bad_frames():
    """(counter, frame, sequence numbers it consumes) for each way a frame or packet can be
    malformed. Every bad packet starts at sequence 101 and carries messages other than the
    good ones, so a wrongly accepted packet would show in the index."""
    good = build_udp_frame(mold.pack("S", 101, [_msg(999)]))
    cases = []
    cases.append(("runt", good[:5], 0))
    cases.append(("runt", build_udp_frame(b"x" * 40, vlan=3)[:16], 0))
    b = bytearray(good); b[12:14] = b"\x86\xdd"; cases.append(("not_ipv4", bytes(b), 0))
    b = bytearray(good); b[14] = 0x44; cases.append(("ip_header", _fix(b), 0))
    cases.append(("ip_header", good[:30], 0))
    b = bytearray(good); b[24] ^= 0xFF; cases.append(("ip_checksum", bytes(b), 0))
    b = bytearray(good); b[16:18] = struct.pack(">H", 27)
    cases.append(("ip_length", _fix(b), 0))           # total < IHL*4 + 8
    # cut-through: a frame that ends before its MoldUDP64 header is complete is ip_length
    cases.append(("ip_length", good[:14 + 20 + 8 + 19], 0))
    cases.append(("ip_length", good[:14 + 20 + 5], 0))
    b = bytearray(good); b[23] = 6; cases.append(("not_udp", _fix(b), 0))
    b = bytearray(good); b[20:22] = b"\x20\x00"; cases.append(("ip_fragment", _fix(b), 0))
    b = bytearray(good); b[38:40] = b"\x00\x04"; cases.append(("udp_length", bytes(b), 0))
    cases.append(("filtered", build_udp_frame(mold.pack("S", 101, [_msg(9)]), dst_port=1), 0))
    cases.append(("mold_truncated", build_udp_frame(b"S         \x00\x00"), 0))
    # count says 3, two present: the two are kept (sequences 101, 102)
    two = mold.pack("S", 101, [_msg(1), _msg(2)])
    cases.append(("mold_overrun", build_udp_frame(two[:18] + b"\x00\x03" + two[20:]), 2))
    # a frame that ends before its IPv4 total length keeps the messages it completed
    cases.append(("mold_overrun",
                  build_udp_frame(mold.pack("S", 101, [_msg(3), _msg(2)]))[:-3], 1))
    # the only message is cut short: nothing framed
    cases.append(("mold_overrun", build_udp_frame(mold.pack("S", 101, [_msg(3)])[:-4]), 0))
    # a length prefix cut in half
    cases.append(("mold_overrun", build_udp_frame(mold.pack("S", 101, [_msg(3), b""])[:-1]),
                  1))
    cases.append(("unknown_type", build_udp_frame(mold.pack("S", 101, [b"z" + _msg(4)[1:]])),
                  1))
    cases.append(("bad_length", build_udp_frame(mold.pack("S", 101, [_msg(5)[:-1]])), 1))
    cases.append(("bad_length", build_udp_frame(mold.pack("S", 101, [_msg(6) + b"\0"])), 1))
    cases.append(("bad_length", build_udp_frame(mold.pack("S", 101, [b""])), 1))
    return cases


@pytest.mark.parametrize("reason,bad,consumed", _bad_frames(),
                         ids=lambda x: x if isinstance(x, str) else "")
def test_malformed_frame_counted_and_next_packet_decodes(reason, bad, consumed):
    first = build_udp_frame(mold.pack("S", 100, [_msg(100)]))
    after = build_udp_frame(mold.pack("S", 101 + consumed, [_msg(101)]), vlan=9)
    frames = Frames.from_list([first, bad, after])
    groups = [("233.54.12.111", 26477)]
    ix = index_frames(frames, groups)
    ref = mold.reference_feed(list(frames), groups)
    assert ix.counters == ref.counters
    c = ix.counters
    assert c[reason] == 1 and c["frames"] == 3 and c["gaps"] == 0
    msgs = [ix.message(i) for i in range(len(ix))]
    assert msgs[0] == _msg(100) and int(ix.sequences[0]) == 100
    assert msgs[-1] == _msg(101) and int(ix.sequences[-1]) == 101 + consumed
    if reason in FRAME_REASONS:
        assert len(ix) == 2 and c["packets"] == 2 and ix.frame_outcome(1) == reason
        assert sum(c[r] for r in FRAME_REASONS) == 1
    elif reason == "mold_overrun":
        assert ix.frame_outcome(1) == "mold_overrun" and c["packets"] == 3
        if consumed == 2:
            assert msgs == [_msg(100), _msg(1), _msg(2), _msg(101)]
            assert ix.sequences.tolist() == [100, 101, 102, 103]
        else:
            assert len(ix) == 2 + consumed
            assert msgs[1:1 + consumed] == [_msg(3)][:consumed]
    else:
        assert len(ix) == 2 and c["messages"] == 2 and ix.frame_outcome(1) == "accepted"


def test_overrun_advances_only_past_framed_messages():
    two = mold.pack("S", 5, [_msg(1), _msg(2)])
    over = two[:18] + b"\x00\x03" + two[20:]               # says 3 messages, holds 2
    full = mold.pack("S", 5, [_msg(1), _msg(2), _msg(3)])  # the other line's good copy
    frames = Frames.from_list([build_udp_frame(over), build_udp_frame(full, vlan=2),
                               build_udp_frame(mold.pack("S", 8, [_msg(4)]))])
    ix = index_frames(frames)
    assert ix.sequences.tolist() == [5, 6, 7, 8]
    assert [ix.message(i) for i in range(4)] == [_msg(1), _msg(2), _msg(3), _msg(4)]
    assert ix.counters["mold_overrun"] == 1 and ix.counters["gaps"] == 0
    # without the B copy the lost third message is reported as a gap by the next packet
    ix = index_frames(Frames.from_list([build_udp_frame(over),
                                        build_udp_frame(mold.pack("S", 8, [_msg(4)]))]))
    c = ix.counters
    assert (c["gaps"], c["gap_messages"], c["last_gap_first"], c["last_gap_last"]) == (1, 1, 7, 7)


def test_garbage_never_raises_and_accounts_for_every_frame():
    rng = random.Random(99)
    good = [build_udp_frame(mold.pack("S", 1 + 2 * i, [_msg(2 * i), _msg(2 * i + 1)]),
                            vlan=rng.choice([None, 4])) for i in range(300)]
    frames = []
    for g in good:
        r = rng.random()
        if r < 0.2:
            frames.append(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 120))))
        elif r < 0.5:
            # Flip a few header bytes (Ethernet, IPv4, UDP). Payload corruption is out of scope:
            # a corrupted session or sequence field would (correctly, by the rules) look like
            # a new session or a gap. Half of them come flagged by a cut-through MAC (bad
            # FCS): counted, otherwise taken as they came.
            b = bytearray(g)
            hdr = 46 if g[12:14] == b"\x81\x00" else 42
            for _ in range(rng.randrange(1, 4)):
                b[rng.randrange(hdr)] = rng.getrandbits(8)
            frames.append(FcsError(b) if rng.random() < 0.5 else bytes(b))
        elif r < 0.6:
            frames.append(g[:rng.randrange(len(g))])
        frames.append(g)
    fr = Frames.from_list(frames)
    ix = index_frames(fr)
    ref = mold.reference_feed(list(fr))
    assert ix.counters == ref.counters
    assert [m.data for m in ref.messages] == [ix.message(i) for i in range(len(ix))]
    c = ix.counters
    flagged = sum(isinstance(f, FcsError) for f in frames)
    assert c["fcs_errors"] == flagged > 0
    plain = index_frames(Frames.from_list([bytes(f) for f in frames]))
    assert plain.counters == dict(c, fcs_errors=0)      # nothing else changes
    assert [plain.message(i) for i in range(len(plain))] == [ix.message(i)
                                                             for i in range(len(ix))]
    assert c["frames"] == len(frames)
    assert c["frames"] == (sum(c[r] for r in FRAME_REASONS) + c["packets"] + c["dup_packets"]
                           + c["stale_session"])
    for i in range(len(ix)):
        itch.decode(ix.message(i))
    # every good packet's messages were delivered, once
    good_msgs = [_msg(i) for i in range(600)]
    got = [ix.message(i) for i in range(len(ix))]
    assert all(m in got for m in good_msgs)


def test_linktype_must_be_ethernet():
    f = Frames.from_list([b"\0" * 60], linktype=101)
    with pytest.raises(ValueError, match="link type"):
        index_frames(f)


def test_indexing_a_large_capture(tmp_path):
    """A 64 k-packet synthetic pcap (1.5 M messages) indexes completely: every message, in
    sequence, at its offset. (The rate is printed, not asserted: the suite runs on shared,
    loaded machines.)"""
    n_pkts, per = 65_536, 24
    template = build_udp_frame(mold.pack("000010059B", 1, [_msg(i) for i in range(per)]))
    rec = np.frombuffer(struct.pack("<IIII", 0, 0, len(template), len(template)) + template,
                        np.uint8)
    body = np.tile(rec, n_pkts).reshape(n_pkts, -1)
    seq_at = 16 + 42 + 10
    seqs = (1 + per * np.arange(n_pkts, dtype=np.uint64)).astype(">u8")
    body[:, seq_at:seq_at + 8] = seqs.view(np.uint8).reshape(n_pkts, 8)
    hdr = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)
    p = tmp_path / "big.pcap"
    p.write_bytes(hdr + body.tobytes())
    frames = read_pcap(p)
    index_frames(Frames.from_list([template]))  # JIT warm-up (cached on disk after the first run)
    t0 = time.perf_counter()
    ix = index_frames(frames, GROUPS)
    dt = time.perf_counter() - t0
    assert len(ix) == n_pkts * per and ix.counters["gaps"] == 0
    assert np.array_equal(ix.sequences, np.arange(1, n_pkts * per + 1))
    for i in (0, per - 1, per, len(ix) // 2 + 7, len(ix) - 1):  # first, edges, middle, last
        assert ix.message(i) == _msg(i % per), i
    print(f"indexed {len(ix)} messages in {dt * 1e3:.1f} ms: {len(ix) / dt / 1e6:.1f} M/s")
