"""End to end in RTL: Ethernet frames in on lines A/B → the appliance (feed handler → book
builder, configured through its register map) → top-N rows, equal to the emulator's row for
row, and every counter equal (the Verilated gateware through the fast harness)."""

import random

import numpy as np
import pytest

from tickwire.host import gen, itch, lobster, moldudp64
from tickwire.host.capture import Frames
from tickwire.host.config import Config
from tickwire.host.emu import feed
from tickwire.host.emu.pipeline import Emulator, messages_buffer, replay, load_source
from tickwire.host.framing import build_udp_frame
from tickwire.backends import rtl
from tickwire.backends.wire import FRAME_GAP

pytestmark = pytest.mark.rtl


def emulate_frames(frames, symbols=None, depth=10):
    """The emulator on the same frames (lines merged in arrival order)."""
    data = np.frombuffer(b"".join(frames), np.uint8).copy()
    lens = np.array([len(f) for f in frames], np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    fr = Frames(data, offs, lens, np.arange(len(frames), dtype=np.int64), 1)
    idx = feed.index_frames(fr)
    cfg = rtl.rtl_config(Config(symbols=list(symbols or [])))
    cfg.strategy.kind = "none"
    res = Emulator(cfg, depth).run(idx.data, idx.offsets, idx.sequences, idx.counters)
    return res


def packets(msgs, per_packet=8, session="TWTEST0001", first=1):
    out, seq = [], first
    for i in range(0, len(msgs), per_packet):
        batch = msgs[i:i + per_packet]
        out.append(build_udp_frame(moldudp64.pack(session, seq, batch)))
        seq += len(batch)
    return out


def assert_same_counters(counters, emu):
    """Every counter the emulator has, equal on the RTL."""
    diff = {k: (counters.get(k), v) for k, v in emu.counters.items() if counters.get(k) != v}
    assert diff == {}, diff


def assert_same_rows(rtl_rows, emu_rows):
    seq, ts, slot, lv = rtl_rows
    assert len(seq) == len(emu_rows)
    assert np.array_equal(seq, emu_rows.sequence)
    assert np.array_equal(ts, emu_rows.timestamp)
    assert np.array_equal(slot, emu_rows.slot)
    assert np.array_equal(lv, emu_rows.levels)


@pytest.fixture(scope="module")
def day_frames():
    day = gen.generate_day(symbols=64, messages=100_000, seed=21)
    pk = gen.to_packets(day)
    return [build_udp_frame(p) for _, p in pk]


def test_generated_day_100k_64_symbols(day_frames):
    rows, counters, names, cycles, secs = rtl.run_frames(day_frames, depth=10)
    emu = emulate_frames(day_frames)
    assert len(emu.rows) > 50_000 and len(emu.symbols) == 64
    assert names == emu.symbols
    assert_same_rows(rows, emu.rows)
    assert_same_counters(counters, emu)
    assert counters["overflow"] == 0
    # the input is the bottleneck: the pipeline keeps up with the line (beats + gaps)
    line = sum((len(f) + 7) // 8 + FRAME_GAP for f in day_frames)
    assert counters["stream_cycles"] < line + 1000


def test_lobster_ten_levels_after_every_event(shared_data):
    d = shared_data / "lobster"
    sample = lobster.load(d / "AAPL_2012-06-21_34200000_57600000_message_10.csv",
                          d / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv")
    msgs, event_index, _ = lobster.to_itch(sample)
    frames = packets(msgs, per_packet=1)  # one message per packet: sequence = message index + 1
    (seq, ts, slot, lv), counters, _, _, _ = rtl.run_frames(frames, symbols=["AAPL"])
    want = sample.book_rows()
    cur, j = np.zeros((10, 4), np.int64), 0
    bad = []
    for e, m in enumerate(event_index):
        while j < len(seq) and seq[j] <= m + 1:
            cur = lv[j].astype(np.int64)
            j += 1
        if not np.array_equal(cur, want[e]):
            bad.append(e)
    assert bad == [] and counters["level_overflow"] == 0 and counters["unknown_ref"] == 0


def ten_gig_gap(frame: bytes) -> int:
    """Idle cycles after a frame so that a 64-bit, 322 MHz stream carries 10 Gb/s: a frame and
    its 20 bytes of preamble and inter-frame gap take (len + 20) / 3.9 cycles on the wire."""
    return max(1, round((len(frame) + 20) / 3.9) - (len(frame) + 7) // 8)


def test_ab_lines_with_independent_drops(day_frames):
    """The same packets on lines A and B at 10 Gb/s, each losing 10% independently; the lines
    stay in step (a lost frame leaves its time slot idle) and B lags A by a few cycles."""
    rnd = random.Random(5)
    frames = day_frames[:3000]
    lines = {"a": ([], []), "b": ([], [])}
    idle = {"a": 0, "b": 5}   # B lags A by 5 cycles
    merged, lost = [], 0
    for f in frames:
        gap = ten_gig_gap(f)
        slot_cycles = (len(f) + 7) // 8 + gap
        drop = {k: rnd.random() < 0.1 for k in "ab"}
        lost += drop["a"] and drop["b"]
        for k in "ab":
            if drop[k]:
                idle[k] += slot_cycles
            else:
                lines[k][0].append(f)
                lines[k][1].append(idle[k] + gap)
                idle[k] = 0
                merged.append(f)   # arrival order: A's copy, then B's
    (fa, ga), (fb, gb) = lines["a"], lines["b"]
    rows, counters, _, _, _ = rtl.run_frames(fa, fb, depth=5, gaps_a=ga, gaps_b=gb,
                                             ab_window=64)
    emu = emulate_frames(merged, depth=5)
    assert_same_rows(rows, emu.rows)
    # counters at the gateware's row depth (book_updates counts changes of its top 10)
    assert_same_counters(counters, emulate_frames(merged))
    assert counters["dup_packets"] > 1500 and counters["overflow"] == 0
    # every packet lost on both lines is inside a reported gap, and only those
    assert lost > 0 and 1 <= counters["gaps"] <= lost


def test_single_line_gaps_are_reported(day_frames):
    rnd = random.Random(9)
    frames = [f for f in day_frames[:3000] if rnd.random() >= 0.1]
    rows, counters, _, _, _ = rtl.run_frames(frames, depth=5)
    emu = emulate_frames(frames, depth=5)
    assert_same_rows(rows, emu.rows)
    assert_same_counters(counters, emulate_frames(frames))
    assert counters["gaps"] > 100 and counters["overflow"] == 0


def test_malformed_frames_are_dropped_and_counted(day_frames):
    good = day_frames[:400]
    bad_ck = bytearray(good[1])
    bad_ck[24] ^= 0xFF                       # IPv4 header checksum
    wrong_type = bytearray(good[2])
    wrong_type[12:14] = b"\x86\xdd"          # IPv6 ethertype
    trunc_mold = build_udp_frame(b"TWTEST0001\x00\x00")  # 12-byte MoldUDP64 header
    p = moldudp64.pack("TWTEST0001", 10**6, [itch.encode("D", order_reference_number=1)])
    overrun = bytearray(build_udp_frame(p))
    overrun[42 + 20:42 + 22] = b"\x00\x40"   # message length past the payload
    runt = good[3][:10]
    garbage = bytes(random.Random(1).randrange(256) for _ in range(90))
    frames = []
    for i, f in enumerate(good):
        frames.append(f)
        if i % 50 == 7:
            frames += [runt, bytes(bad_ck), bytes(wrong_type), trunc_mold, garbage]
    frames.append(bytes(overrun))
    rows, counters, _, _, _ = rtl.run_frames(frames, depth=5)
    emu = emulate_frames(frames, depth=5)
    assert_same_rows(rows, emu.rows)
    assert_same_counters(counters, emulate_frames(frames))
    assert counters["runt"] >= 8 and counters["ip_checksum"] >= 8 and counters["not_ipv4"] >= 8


def test_replay_backend_rtl_writes_the_emulators_csv(tmp_path):
    from typer.testing import CliRunner
    from tickwire.host.cli import app
    day = gen.generate_day(symbols=4, messages=4000, seed=3)
    cap = tmp_path / "d.pcap"
    gen.write_capture(day, cap)
    sym = ",".join(day.symbols[:3])
    a, b = tmp_path / "emu.csv", tmp_path / "rtl.csv"
    r1 = CliRunner().invoke(app, ["replay", str(cap), "--symbols", sym, "--depth", "4",
                                  "--book-out", str(a)])
    r2 = CliRunner().invoke(app, ["replay", str(cap), "--symbols", sym, "--depth", "4",
                                  "--book-out", str(b), "--backend", "rtl"])
    assert r1.exit_code == 0 and r2.exit_code == 0, r2.output
    assert a.read_text() == b.read_text() and len(a.read_text().splitlines()) > 100
