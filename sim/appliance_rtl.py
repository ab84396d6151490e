"""The appliance in RTL, driven by the host's own driver over AXI4-Lite.

:class:`tickwire.hw.appliance.Appliance` (register file + whole pipeline) runs in the generated
Verilator harness of :mod:`tickwire.sim.fastsim`, whose AXI4-Lite master performs the bus
operations of a :class:`tickwire.host.driver.Driver`:

* set-up and mid-stream writes: the driver runs against a :class:`ScriptBus`, which records
  every operation at the current stream position (:meth:`ScriptBus.seek` to a frame) and
  answers reads from the register model (:class:`tickwire.host.driver.FakeBus`); the harness
  pauses the feed before the frame, lets the pipeline settle, performs the operations with full
  handshakes, and resumes. Reads of the Identity block are then checked against what the
  gateware answered (the host refuses a bitstream whose map differs);
* read-back: after the stream the harness reads every readable word of the map once, and a
  :class:`SnapshotBus` serves those words to a second driver, so counters, positions, status,
  the latency histogram... are read through the same driver code as on a board.

Emulator writes ``write_trigger(msg, ...)`` land before message ``msg``; here a write made
after ``seek(f)`` lands before frame ``f``'s messages, i.e. before message
``first_message(f)`` (:func:`frame_first_messages`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..host.driver import BusError, Driver, FakeBus, IdentityError
from ..spec.regmap import REGMAP
from . import fastsim
from .pipeline_full import gather_frames
from .pipeline_rtl import BUILD_DEPTH, FRAME_GAP, beats

__all__ = ["harness", "ScriptBus", "SnapshotBus", "ApplianceRun", "run_appliance",
           "frame_first_messages", "readable_words", "run_rtl", "SYMBOLS", "IDENTITY_WORDS"]

#: slots of the built gateware (as rtl_config)
SYMBOLS = 64
#: addresses of the Identity block (checked against the gateware after a run)
IDENTITY_WORDS = range(0x0000, 0x0040, 4)


@lru_cache(maxsize=2)
def harness(depth: int = BUILD_DEPTH, symbols: int = SYMBOLS) -> fastsim.Harness:
    from amaranth.back import verilog

    from ..hw.appliance import Appliance
    from ..hw.pipeline import OrderBeat
    from ..hw.report import component_ports
    from amaranth.lib import data

    def to_verilog():
        top = Appliance(depth=depth, symbols=symbols)
        return verilog.convert(top, name="appliance", emit_src=False,
                               ports=component_ports(top))

    rx = [("data", 64), ("keep", 8), ("first", 1), ("last", 1)]
    return fastsim.Harness(
        "appliance", to_verilog,
        inputs=[fastsim.StreamPort("rx_a", 74, has_ready=False, fields=rx),
                fastsim.StreamPort("rx_b", 74, has_ready=False, fields=rx)],
        outputs=[fastsim.StreamPort("o", data.Layout.cast(OrderBeat).size)],
        drains=["updates"], axil="axi",
        key=fastsim.source_key("appliance", depth, symbols))


def capacity(symbols: int = SYMBOLS) -> dict[str, int]:
    from ..spec.regmap import CAPACITY_DEFAULTS
    return dict(CAPACITY_DEFAULTS, symbols=symbols)


def readable_words(cap: dict[str, int]) -> list[int]:
    """Every word of the map with a readable bit, registers then table entries in order
    (low word first, as the driver reads multi-word values)."""
    out = []
    for r in REGMAP.registers.values():
        for k in range(r.words):
            if r.word_mask(k, ("rw", "ro", "w1c")):
                out.append(r.offset + 4 * k)
    for t in REGMAP.tables.values():
        for i in range(cap[t.size]):
            for k in range(t.words):
                if t.word_mask(k, ("rw", "ro")):
                    out.append(t.address(i, k))
    return out


class ScriptBus:
    """Records a driver's operations for the harness, each at the current stream position.

    Reads are answered by a register model (so the driver's logic runs on); the gateware
    performs them too, and :meth:`check` compares the Identity block's answers."""

    def __init__(self, frame_beats: list[int], cap: dict[str, int]):
        self.model = FakeBus(**cap)
        self.frame_beats = frame_beats
        self.at = 0
        self.ops: list[tuple[int, str, int, int]] = []
        self.answers: list[int | None] = []

    def seek(self, frame: int) -> None:
        """Later operations happen before ``frame`` (``len(frames)``: after the last)."""
        at = self.frame_beats[frame] if frame < len(self.frame_beats) else 1 << 62
        if at < self.at:
            raise ValueError(f"seek to frame {frame}: operations go in stream order")
        self.at = at

    def read32(self, addr: int) -> int:
        v = self.model.read32(addr)
        self.ops.append((self.at, "r", addr, 0))
        self.answers.append(v)
        return v

    def write32(self, addr: int, value: int) -> None:
        self.model.write32(addr, value)
        self.ops.append((self.at, "w", addr, value))
        self.answers.append(None)

    def check(self, done: list[tuple[str, int, int, int]]) -> None:
        """Raise on an error response or an Identity word that differs from the model."""
        for (kind, addr, value, resp), want in zip(done, self.answers):
            if resp:
                raise BusError("write" if kind == "w" else "read", addr, resp)
            if kind == "r" and addr in IDENTITY_WORDS and value != want:
                raise IdentityError(f"gateware answered 0x{value:08x} at 0x{addr:04x}, the "
                                    f"host's register map expects 0x{want:08x}")


class SnapshotBus:
    """Serves words read from the gateware after a run (read-only)."""

    def __init__(self, words: dict[int, int]):
        self.words = words

    def read32(self, addr: int) -> int:
        if addr not in self.words:
            raise BusError("read", addr)
        return self.words[addr]

    def write32(self, addr: int, value: int) -> None:
        raise BusError("write", addr)


@dataclass
class ApplianceRun:
    frames: list[bytes]          # order frames on ``o``
    first_cycles: list[int]      # cycle of each order frame's first beat
    drv: Driver                  # driver over the read-back snapshot
    cycles: int
    sim_seconds: float


def frame_beat_index(frames: list[bytes]) -> list[int]:
    """Beat (harness record) index of each frame's first beat."""
    n = np.array([(len(f) + 7) // 8 for f in frames], np.int64)
    return np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64).tolist()


def frame_first_messages(frames: list[bytes]) -> np.ndarray:
    """Per frame, the emulator's index of its first message (or of the next frame's when it
    has none): a host write before frame f is the emulator's write before that message."""
    from ..host.capture import Frames
    from ..host.emu import feed
    data = np.frombuffer(b"".join(frames), np.uint8).copy()
    lens = np.array([len(f) for f in frames], np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    idx = feed.index_frames(Frames(data, offs, lens, np.arange(len(frames), dtype=np.int64), 1))
    return np.searchsorted(idx.frame_index, np.arange(len(frames)), side="left")


def run_appliance(frames: list[bytes], host, *, symbols: int = SYMBOLS,
                  random_ready: bool = False, gap: int = FRAME_GAP,
                  settle: int = 2048) -> ApplianceRun:
    """Stream ``frames`` on line A through the appliance; ``host(drv, bus)`` makes the host's
    operations with ``drv`` (a :class:`Driver` over a :class:`ScriptBus`), calling
    ``bus.seek(f)`` to place later ones before frame ``f``. Then every readable word is read
    back; the result's ``drv`` reads them."""
    cap = capacity(symbols)
    bus = ScriptBus(frame_beat_index(frames), cap)
    host(Driver(bus), bus)
    snap = readable_words(cap)
    ops = list(bus.ops) + [(1 << 62, "r", a, 0) for a in snap]
    h = harness(symbols=symbols)
    fastsim.build(h)
    t0 = time.perf_counter()
    outs, cycles = fastsim.run(h, [beats(frames, gap), b""], idle_cycles=512,
                               random_ready=random_ready, bus_ops=ops, settle=settle)
    secs = time.perf_counter() - t0
    o, done = outs[0], outs[1]
    bus.check(done[:len(bus.ops)])
    words = {}
    for kind, addr, value, resp in done[len(bus.ops):]:
        if resp:
            raise BusError("read", addr, resp)
        words[addr] = value
    got, firsts, _ = gather_frames(o)
    return ApplianceRun(got, firsts, Driver(SnapshotBus(words)), cycles, secs)


def run_rtl(src_path, config=None):
    """``tickwire run --backend rtl``: the capture through the appliance, configured by the
    host driver's ``apply_config`` and read back through it.

    The trigger rows are those ``apply_config`` writes: a "static" strategy's (or none) gives
    a like-for-like run with the emulator; a "band" or "model" strategy writes its rows from
    the host loop, which this back-end does not run (its rows stay disabled). Needs
    ``config.symbols`` (they name the slots of book and egress). Returns the emulator's
    RunResult shape: the RTL's order frames (``orders.frames``, ``orders.ouch``;
    slot/side/price/quantity/user_ref parsed back from the OUCH; ``msg`` -1 and ``sequence``
    0: the gateware does not report them), every counter read through the driver (the
    hardware-only ones too) plus cycles, sim_seconds, cycles_per_second; no book rows."""
    from ..host import ouch
    from ..host.config import Config
    from ..host.emu.pipeline import Orders, RunResult, WRITE_COLUMNS
    from ..host.framing import parse_tcp_frame
    from .pipeline_full import startup_writes
    from .pipeline_rtl import frames_of, rtl_config
    cfg = rtl_config(config or Config())
    if not cfg.symbols:
        raise ValueError("the RTL order path needs explicit symbols (config.symbols)")
    frames = frames_of(src_path)
    r = run_appliance(frames, lambda drv, bus: drv.apply_config(cfg))
    names = list(cfg.symbols)
    segs, fields = [], []
    for f in r.frames:
        seg = parse_tcp_frame(f)
        body = seg.payload if not isinstance(seg, str) else b""
        segs.append(body)
        m = ouch.decode(body[3:], "client") if len(body) > 3 else {}
        fields.append((names.index(m["symbol"]) if m.get("symbol") in names else -1,
                       0 if m.get("side") == "B" else 1, m.get("price", 0),
                       m.get("quantity", 0), m.get("user_ref_num", 0)))
    a = np.array(fields, np.int64).reshape(-1, 5)
    n = len(a)
    orders = Orders(np.full(n, -1, np.int64), a[:, 0].astype(np.int32),
                    a[:, 1].astype(np.uint8), a[:, 2], a[:, 3], a[:, 4],
                    np.zeros(n, np.uint64), segs, r.frames)
    counters = dict(r.drv.counters(hardware=True))
    lat = r.drv.latency()
    counters.update({f"lat_{k}": lat[k] for k in ("count", "sum", "min", "max")})
    counters["cycles"] = r.cycles
    counters["sim_seconds"] = round(r.sim_seconds, 3)
    counters["cycles_per_second"] = round(r.cycles / r.sim_seconds) if r.sim_seconds else 0
    writes = startup_writes(cfg)
    wlog = np.array([[w[k] for k in WRITE_COLUMNS] for w in writes],
                    np.int64).reshape(-1, len(WRITE_COLUMNS))
    return RunResult("rtl", names, counters, None, orders, wlog, {"rtl": r.sim_seconds}, 0)
