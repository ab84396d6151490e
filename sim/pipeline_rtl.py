"""The RTL back-end: the same replay as the emulator, through the Verilated gateware.

Frames of a capture (or MoldUDP64 packets made from a BinaryFILE) are cut into 64-bit beats
for line A (and, for A/B tests, line B), streamed through :class:`tickwire.hw.top.FeedBookTop`
by the generated C++ harness of :mod:`tickwire.sim.fastsim`, and the top-N updates come back
as the emulator's :class:`~tickwire.host.emu.pipeline.BookRows`.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..host import capture, moldudp64
from ..host.config import Config
from ..host.emu.core import pack_symbol
from ..host.emu.pipeline import BookRows, Orders, RunResult, load_source, replay as emu_replay
from ..host.framing import build_udp_frame
from . import fastsim

#: idle cycles between frames on a line (12-byte IFG + 8-byte preamble at 64 bits per cycle)
FRAME_GAP = 3
#: cycles a packet that would open a gap waits for the other line (FeedFrontEnd.ab_window)
AB_WINDOW = 16
#: the gateware's top-N depth; shallower replays are derived from its rows (below)
BUILD_DEPTH = 10


@lru_cache(maxsize=4)
def harness(depth: int, symbols: int, order_buckets: int, order_ways: int,
            levels: int) -> fastsim.Harness:
    from amaranth.back import verilog
    from ..hw.book.builder import COUNTERS as BOOK_COUNTERS
    from ..hw.book.layouts import book_update_layout
    from ..hw.feed.layouts import FEED_COUNTERS
    from ..hw.report import component_ports
    from ..hw.top import FeedBookTop
    def make_top():
        return FeedBookTop(depth=depth, symbols=symbols, order_buckets=order_buckets,
                           order_ways=order_ways, levels=levels)

    def to_verilog():
        top = make_top()
        return verilog.convert(top, name="feedbook", emit_src=False,
                               ports=component_ports(top))
    rx = [("data", 64), ("keep", 8), ("first", 1), ("last", 1)]
    slot_bits = max(1, (symbols - 1).bit_length())
    return fastsim.Harness(
        "feedbook", to_verilog,
        inputs=[fastsim.StreamPort("rx_a", 74, has_ready=False, fields=rx),
                fastsim.StreamPort("rx_b", 74, has_ready=False, fields=rx)],
        outputs=[fastsim.StreamPort("o", book_update_layout(depth).size)],
        statics={"check_ip_checksum": 1, "track_sequence": 1, "auto": 1, "ab_window": 16},
        pulses=[("sym_we", 1), ("sym_slot", slot_bits), ("sym_name", 64), ("sym_valid", 1)],
        observe=list(FEED_COUNTERS) + list(BOOK_COUNTERS) + ["overflow"],
        key=fastsim.source_key("feedbook", depth, symbols, order_buckets, order_ways, levels,
                               sources=("hw/feed", "hw/book", "hw/top.py", "hw/layouts.py",
                                        "hw/trigger/layouts.py", "hw/report.py")))


def beats(frames: list[bytes], gap: int = FRAME_GAP, gaps: list[int] | None = None) -> bytes:
    """Harness records for one line: 64-bit beats (data, keep, first, last), LSB lane first."""
    recs = []
    for i, f in enumerate(frames):
        n = len(f)
        for b in range(0, n, 8):
            chunk = f[b:b + 8]
            keep = (1 << len(chunk)) - 1
            v = (int.from_bytes(chunk.ljust(8, b"\0"), "little") | keep << 64
                 | int(b == 0) << 72 | int(b + 8 >= n) << 73)
            g = (gaps[i] if gaps is not None else gap) if b == 0 else 0
            recs.append((g, v))
    out = np.zeros((len(recs), 4 + 10), np.uint8)
    if recs:
        out[:, :4] = np.array([g for g, _ in recs], "<u4").view(np.uint8).reshape(-1, 4)
        out[:, 4:] = np.frombuffer(b"".join(v.to_bytes(10, "little") for _, v in recs),
                                   np.uint8).reshape(-1, 10)
    return out.tobytes()


def frames_of(path: str | Path) -> list[bytes]:
    """The Ethernet frames of a capture; a BinaryFILE becomes MoldUDP64/UDP frames whose
    sequence numbers are its record numbers (as the emulator numbers them)."""
    fmt = capture.sniff_format(path)
    if fmt != "binaryfile":
        fr = capture.read_capture(path)
        return [fr.frame(i) for i in range(len(fr))]
    data, offs, lens = capture.read_binaryfile(path)
    frames, batch, size, seq = [], [], 20, 1
    for o, n in zip(offs.tolist(), lens.tolist()):
        if batch and size + 2 + n > 1400:
            frames.append(build_udp_frame(moldudp64.pack("BINARYFILE", seq, batch)))
            seq += len(batch)
            batch, size = [], 20
        batch.append(data[o:o + n].tobytes())
        size += 2 + n
    if batch:
        frames.append(build_udp_frame(moldudp64.pack("BINARYFILE", seq, batch)))
    return frames


def parse_rows(out: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                    np.ndarray]:
    """(sequence, timestamp, slot, levels[N, 4]) of the harness's update records."""
    raw = np.ascontiguousarray(out["payload"])
    n = len(raw)
    pad = np.zeros((n, (raw.shape[1] + 7) // 8 * 8), np.uint8)
    pad[:, :raw.shape[1]] = raw
    seq = pad[:, 0:8].copy().view("<u8")[:, 0]
    ts = (pad[:, 8:16].copy().view("<u8")[:, 0]) & np.uint64((1 << 48) - 1)
    slot = pad[:, 14].astype(np.int32)
    body = np.ascontiguousarray(pad[:, 15:15 + 16 * depth]).view("<u4").reshape(n, depth, 4)
    return seq, ts, slot, body.astype(np.uint32)


def shallower(rows, depth: int):
    """Rows of a top-``depth`` book from the rows of a deeper one: a change of the first
    ``depth`` levels is a change of the deeper top too, so keep the rows whose first ``depth``
    levels differ from the slot's previous row."""
    seq, ts, slot, lv = rows
    keep = np.zeros(len(seq), bool)
    last: dict[int, bytes] = {}
    for i in range(len(seq)):
        key = lv[i, :depth].tobytes()
        s = int(slot[i])
        if last.get(s) != key:
            keep[i] = True
            last[s] = key
    return seq[keep], ts[keep], slot[keep], lv[keep, :depth]


def run_rtl_frames(line_a: list[bytes], line_b: list[bytes] | None = None, *,
                   symbols: list[str] | None = None, depth: int = 10,
                   config: Config | None = None, gaps_a=None, gaps_b=None,
                   random_ready: bool = False, ab_window: int = AB_WINDOW):
    """Stream frames through the gateware; returns (rows tuple, counters dict, cycles, secs).

    The gateware is built once with the default capacities (``rtl_config``) and depth 10."""
    if not 1 <= depth <= BUILD_DEPTH:
        raise ValueError(f"depth={depth}: the RTL back-end supports 1..{BUILD_DEPTH}")
    h = harness(BUILD_DEPTH, 64, 1 << 12, 4, 32)
    pulses = [{"sym_we": 1, "sym_slot": i, "sym_name": pack_symbol(n), "sym_valid": 1}
              for i, n in enumerate(symbols or [])]
    statics = {"check_ip_checksum": 1, "track_sequence": 1, "auto": 0 if symbols else 1,
               "ab_window": ab_window}
    t0 = time.perf_counter()
    outs, cycles = fastsim.run(h, [beats(line_a, gaps=gaps_a), beats(line_b or [], gaps=gaps_b)],
                               statics, pulses=pulses, random_ready=random_ready)
    counters, upd = outs[0], outs[1]
    rows = parse_rows(upd, BUILD_DEPTH)
    if depth < BUILD_DEPTH:
        rows = shallower(rows, depth)
    return rows, counters, cycles, time.perf_counter() - t0


def rtl_config(config: Config | None = None) -> Config:
    """The emulator configuration that matches the gateware's capacities."""
    cfg = config or Config()
    cfg.capacity.symbols = 64
    cfg.capacity.order_buckets = 1 << 12
    cfg.capacity.order_ways = 4
    cfg.capacity.levels = 32
    return cfg


def replay_rtl(path: str | Path, symbols: list[str] | None, depth: int,
               config: Config | None = None) -> RunResult:
    """``tickwire replay --backend rtl``: the book rows of the gateware for ``path``."""
    (seq, ts, slot, lv), counters, cycles, secs = run_rtl_frames(
        frames_of(path), symbols=symbols, depth=depth)
    if symbols:
        names = list(symbols)
    else:  # auto mode: the slots are learned in the documented order, as the emulator does
        names = emu_replay(load_source(path), None, 1, rtl_config()).symbols
    rows = BookRows(seq, ts, slot, np.full(len(seq), -1, np.int64), lv)
    counters = dict(counters, cycles=cycles, sim_seconds=round(secs, 3),
                    cycles_per_second=round(cycles / secs) if secs else 0)
    empty = np.zeros(0, np.int64)
    orders = Orders(empty, empty.astype(np.int32), empty.astype(np.uint8), empty, empty, empty,
                    empty.astype(np.uint64))
    return RunResult("rtl", names, counters, rows, orders, np.zeros((0, 9), np.int64),
                     {"rtl": secs}, depth)
