"""The RTL back-end: the Verilated :class:`~tickwire.hw.appliance.Appliance`.

One top, the appliance (register file + whole pipeline), serves every use:

* :class:`RtlDevice`, the live device: the generated Verilator harness runs as a server
  process (:class:`tickwire.sim.fastsim.Server`) that keeps the model's state between calls,
  so the host drives it as it would a board: register reads and writes over AXI4-Lite (writes
  are posted and go out with the next read or the next frames), frames fed in, order frames
  and book rows drained;
* :func:`run_appliance`, the batch path for long replays: the host's operations are recorded
  against a register model at stream positions (:class:`ScriptBus`) and performed by the
  harness in one run; afterwards every readable word is read back once and served to a
  second driver (:class:`SnapshotBus`). :func:`run_frames` (book rows) and
  :func:`run_orders` (order frames) build on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..host.config import Config
from ..host.driver import BusError, Driver, FakeBus, IdentityError
from ..sim import fastsim
from ..spec.capacity import GATEWARE, ROW_DEPTH, gateware_capacity
from ..spec.regmap import REGMAP
from ..spec.streams import BEAT_BITS, BEAT_FIELDS
from .base import Device, Outputs, empty_rows
from .wire import FRAME_GAP, beats, gather_frames, parse_latency, parse_rows, shallower

__all__ = ["BUILD_DEPTH", "AB_WINDOW", "harness", "RtlDevice", "ScriptBus", "SnapshotBus",
           "ApplianceRun", "run_appliance", "run_frames", "run_orders", "order_setup",
           "rtl_config",
           "frame_first_messages", "readable_words", "IDENTITY_WORDS"]

#: the gateware's top-N depth (book rows); shallower books are derived from its rows
BUILD_DEPTH = ROW_DEPTH
#: cycles a packet that would open a gap waits for the other line (FEED_CONFIG.ab_window)
AB_WINDOW = 16
#: addresses of the Identity block (checked against the gateware)
IDENTITY_WORDS = range(0x0000, 0x0040, 4)
#: idle cycles that end a run once nothing moves, and the pause before host operations
#: (the pipeline drains first, so a write lands after every earlier frame's effects)
IDLE_CYCLES = 512
SETTLE = 256


@lru_cache(maxsize=2)
def harness(depth: int = BUILD_DEPTH, symbols: int = GATEWARE["symbols"]) -> fastsim.Harness:
    """The appliance's harness: lines A and B in, order beats and book rows out, the
    AXI4-Lite port driven by the harness's bus master."""
    from amaranth.back import verilog
    from amaranth.lib import data

    from ..hw.appliance import Appliance
    from ..hw.book.layouts import book_update_layout
    from ..hw.egress.layouts import LatencyRecord
    from ..hw.pipeline import OrderBeat
    from ..hw.report import component_ports

    def to_verilog():
        from ..hw.board.identity import rtl_build_id
        top = Appliance(depth=depth, symbols=symbols, build_id=rtl_build_id(depth, symbols))
        return verilog.convert(top, name="appliance", emit_src=False,
                               ports=component_ports(top))

    rx = list(BEAT_FIELDS)
    probe = Appliance(depth=depth, symbols=symbols)
    probe._MustUse__silence = True          # asked for its memory port only
    axi = []
    if "mem" in probe.signature.members:
        sig = probe.signature.members["mem"].signature
        axi = [fastsim.AxiPort("mem", sig.addr_width, sig.data_width, sig.id_width,
                               probe.order_memory_bytes)]
    return fastsim.Harness(
        "appliance", to_verilog,
        inputs=[fastsim.StreamPort("rx_a", BEAT_BITS, has_ready=False, fields=rx),
                fastsim.StreamPort("rx_b", BEAT_BITS, has_ready=False, fields=rx)],
        outputs=[fastsim.StreamPort("o", data.Layout.cast(OrderBeat).size),
                 fastsim.StreamPort("updates", book_update_layout(depth).size),
                 fastsim.StreamPort("lat", LatencyRecord.as_shape().size, has_ready=False)],
        axil="axi", axi=axi, key=fastsim.source_key("appliance", depth, symbols))


def rtl_config(config: Config | None = None) -> Config:
    """The emulator configuration at the gateware's capacities (the RTL's scoreboard)."""
    cfg = config or Config()
    for k in ("symbols", "order_buckets", "order_ways", "levels"):
        setattr(cfg.capacity, k, GATEWARE[k])
    return cfg


def _check(done, ops) -> list[int | None]:
    """Read data of completed bus operations (None for writes); raise on an error."""
    out = []
    for (kind, addr, value, resp) in done:
        if resp:
            raise BusError("write" if kind == "w" else "read", addr, resp)
        out.append(value if kind == "r" else None)
    return out


# ------------------------------------------------------------------------------ live device

class _ServerBus:
    """The live device's register bus: writes are posted, reads run them and the read."""

    def __init__(self, dev: "RtlDevice"):
        self.dev = dev

    def write32(self, addr: int, value: int) -> None:
        self.dev._pending.append(("w", addr & 0xFFFFFFFF, value & 0xFFFFFFFF))

    def read32(self, addr: int) -> int:
        return self.dev._execute([], [("r", addr & 0xFFFFFFFF, 0)])[-1]


class RtlDevice(Device):
    """The Verilated appliance as a live device (see the module doc). ``symbols``/``depth``
    are its build parameters; ``random_ready`` lets the order and row streams see random
    back-pressure."""

    kind = "rtl"

    def __init__(self, symbols: int = GATEWARE["symbols"], depth: int = BUILD_DEPTH, *,
                 random_ready: bool = False):
        super().__init__()
        self.depth, self.symbols, self.random_ready = depth, symbols, random_ready
        self.capacity = gateware_capacity(symbols=symbols)
        self.bus = _ServerBus(self)
        self.server = None
        self._pending: list[tuple[str, int, int]] = []
        self._o: list[np.ndarray] = []
        self._u: list[np.ndarray] = []
        self._lat: list[np.ndarray] = []

    def open(self) -> "RtlDevice":
        if self.server is None:
            self.server = fastsim.Server(harness(self.depth, self.symbols))
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def _execute(self, inputs: list[bytes], ops: list[tuple[str, int, int]],
                 first_beats: list[int] | None = None) -> list:
        """One harness run: the posted writes and ``ops`` before the ``inputs`` (line A,
        line B beat records); returns the operations' read data. ``first_beats``: record
        indices of line A's frame starts, whose taken cycles go to ``input_times``."""
        self.open()
        todo = self._pending + ops
        self._pending = []
        ins = (inputs + [b"", b""])[:2]
        outs, _ = self.server.run(ins, bus_ops=[(0, k, a, v) for k, a, v in todo],
                                  idle_cycles=IDLE_CYCLES, settle=SETTLE,
                                  random_ready=self.random_ready)
        o, u, lat, done = outs[:4]
        if len(lat):
            self._lat.append(lat)
        if first_beats:
            taken = fastsim.taken_cycles(self.server.dir, 0)
            self.input_times += taken[first_beats].tolist()
        if len(o):
            self._o.append(o)
        if len(u):
            self._u.append(u)
        return _check(done, todo)

    def advance(self, to: int | None = None) -> None:
        to = len(self.frames) if to is None else min(int(to), len(self.frames))
        lo = self.position
        g = self.gaps[lo:to] if self.gaps is not None else None
        part = self.frames[lo:to]
        ins = [beats(part, FRAME_GAP, g)]
        if self.frames_b:
            # line B: frame i of B goes with frame i of A (a copy, or its own packets)
            if len(self.frames_b) != len(self.frames):
                raise ValueError(f"line B has {len(self.frames_b)} frames, line A "
                                 f"{len(self.frames)}: the live device offers them in pairs")
            gb = list(self.gaps_b[lo:to] if self.gaps_b is not None else
                      (g if g is not None else [FRAME_GAP] * (to - lo)))
            if gb:
                gb[0] += self.skew_b
            ins.append(beats(self.frames_b[lo:to], FRAME_GAP, gb))
        self._execute(ins, [], frame_beat_index(part))
        self.position = to

    def drain(self) -> Outputs:
        o = np.concatenate(self._o) if self._o else np.zeros(0, _rec_dtype(harness(
            self.depth, self.symbols).outputs[0].nbytes))
        frames, firsts, _ = gather_frames(o)
        rows = parse_rows(np.concatenate(self._u), self.depth) if self._u else \
            empty_rows(self.depth)
        lat = parse_latency(np.concatenate(self._lat)) if self._lat else None
        self._o, self._u, self._lat = [], [], []
        return Outputs(frames, firsts, rows=rows, latency=lat)

    def now(self) -> int:
        self.open()
        return self.server.cycles

    def build_id(self) -> int:
        """The BUILD_ID register of the Verilated appliance."""
        return int(self.driver.read_raw("BUILD_ID"))


def _rec_dtype(nbytes: int):
    return np.dtype([("cycle", "<u8"), ("payload", np.uint8, (nbytes,))])


# ------------------------------------------------------------------------------ batch path

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
    rows: tuple = field(default_factory=lambda: empty_rows(BUILD_DEPTH))
    row_cycles: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    #: cycle each beat of line A was taken
    beat_cycles: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    #: the gateware's latency record of each order frame (:func:`wire.parse_latency`)
    latency: dict | None = None
    #: CPU time of the harness process (user + system): the rate on a shared machine
    sim_cpu_seconds: float = 0.0
    #: the order table's memory traffic (fastsim AXI_STATS), None for an on-chip table
    memory: dict | None = None


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


def run_appliance(frames: list[bytes], host, *, symbols: int = GATEWARE["symbols"],
                  random_ready: bool = False, gap: int = FRAME_GAP, settle: int = 2048,
                  line_b: list[bytes] | None = None, gaps_a: list[int] | None = None,
                  gaps_b: list[int] | None = None, exe=None,
                  profiled: bool = False) -> ApplianceRun:
    """Stream ``frames`` on line A (``line_b`` on B) through the appliance; ``host(drv, bus)``
    makes the host's operations with ``drv`` (a :class:`Driver` over a :class:`ScriptBus`),
    calling ``bus.seek(f)`` to place later ones before frame ``f``. Then every readable word
    is read back; the result's ``drv`` reads them. ``exe``: the harness executable to run;
    ``profiled``: run the profile-guided build (:func:`train`)."""
    cap = gateware_capacity(symbols=symbols)
    bus = ScriptBus(frame_beat_index(frames), cap)
    host(Driver(bus), bus)
    snap = readable_words(cap)
    ops = list(bus.ops) + [(1 << 62, "r", a, 0) for a in snap]
    h = harness(symbols=symbols)
    # cached; a (re)build is not part of the simulation time
    exe = exe or fastsim.build(h, train if profiled else None)
    import resource
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    taken: list = []
    outs, cycles = fastsim.run(h, [beats(frames, gap, gaps_a), beats(line_b or [], gap, gaps_b)],
                               idle_cycles=IDLE_CYCLES, random_ready=random_ready,
                               bus_ops=ops, settle=settle, taken=taken, exe=exe)
    secs = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    o, u, lat, done = outs[:4]
    bus.check(done[:len(bus.ops)])
    words = {}
    for kind, addr, value, resp in done[len(bus.ops):]:
        if resp:
            raise BusError("read", addr, resp)
        words[addr] = value
    got, firsts, _ = gather_frames(o)
    return ApplianceRun(got, firsts, Driver(SnapshotBus(words)), cycles, secs,
                        parse_rows(u, BUILD_DEPTH), u["cycle"].copy(), taken[0],
                        parse_latency(lat), sim_cpu_seconds=cpu,
                        memory=outs[4]["mem"] if len(outs) > 4 else None)


def _counters(r: ApplianceRun) -> dict:
    """Every counter read through the driver, the latency statistics and the run's cycles."""
    c = dict(r.drv.counters(hardware=True))
    lat = r.drv.latency()
    c.update({f"lat_{k}": lat[k] for k in ("count", "sum", "min", "max")})
    c["cycles"] = r.cycles
    # the order table's memory traffic (AXI model statistics), as "mem_<stat>"
    c.update({f"mem_{k}": v for k, v in (r.memory or {}).items()})
    c["sim_seconds"] = round(r.sim_seconds, 3)
    c["cycles_per_second"] = round(r.cycles / r.sim_seconds) if r.sim_seconds else 0
    c["sim_cpu_seconds"] = round(r.sim_cpu_seconds, 3)
    c["cycles_per_cpu_second"] = (round(r.cycles / r.sim_cpu_seconds) if r.sim_cpu_seconds
                                  else 0)
    return c


def run_frames(line_a: list[bytes], line_b: list[bytes] | None = None, *,
               symbols: list[str] | None = None, depth: int = BUILD_DEPTH,
               gaps_a=None, gaps_b=None, random_ready: bool = False,
               ab_window: int = AB_WINDOW, track_sequence: bool = True,
               check_ip_checksum: bool = True, exe=None, profiled: bool = False):
    """The book alone (no strategy): frames through the appliance, configured by the host
    driver for ``symbols`` (auto mode when none). Returns (rows (sequence, timestamp, slot,
    levels[N, depth, 4]), counters, names of the slots, cycles, seconds)."""
    if not 1 <= depth <= BUILD_DEPTH:
        raise ValueError(f"depth={depth}: the RTL back-end supports 1..{BUILD_DEPTH}")
    cfg = rtl_config(Config(symbols=list(symbols or [])))
    cfg.strategy.kind = "none"

    def host(drv, bus):
        drv.apply_config(cfg, check_ip_checksum=check_ip_checksum,
                         track_sequence=track_sequence)
        drv.write("FEED_CONFIG", ab_window=ab_window)

    r = run_appliance(line_a, host, random_ready=random_ready, line_b=line_b, gaps_a=gaps_a,
                      gaps_b=gaps_b, exe=exe, profiled=profiled)
    rows = r.rows if depth == BUILD_DEPTH else shallower(r.rows, depth)
    c = _counters(r)
    # the stream's own cycles: first beat of line A taken -> last book row out
    c["stream_cycles"] = (int(r.row_cycles[-1]) - int(r.beat_cycles[0]) + 1
                          if len(r.row_cycles) and len(r.beat_cycles) else 0)
    return rows, c, r.drv.symbols(), r.cycles, r.sim_seconds


def order_setup(config: Config, writes=(), limits: dict | None = None, *, fast: bool = True,
                ab_window: int = AB_WINDOW):
    """The host's set-up of an order run, as a function of a driver: ``config`` applied,
    FEED_CONFIG.ab_window, CONTROL.cut_through = ``fast``, per-slot ``limits`` (slot ->
    (max_long, max_short)), then ``writes`` (trigger rows as ``Emulator.write_trigger``
    keyword arguments), then the order path enabled. The same calls configure every
    back-end (the emulator scoreboard of a test too)."""
    def host(drv, bus=None):
        drv.apply_config(config, enable=False)
        drv.write("FEED_CONFIG", ab_window=ab_window)
        drv.write("CONTROL", cut_through=int(fast))
        for s, (ml, ms) in (limits or {}).items():
            drv.write_entry("RISK_SLOTS", s, max_long=ml, max_short=ms)
        for w in writes:
            drv.set_trigger(int(w["slot"]), int(w["buy_price"]), int(w["sell_price"]),
                            int(w["quantity"]), bool(w["enable_buy"]),
                            bool(w["enable_sell"]), int(w["rearm"]),
                            int(w.get("ref_price", -1)))
        drv.set_enable(True)
    return host


def run_orders(frames: list[bytes], config: Config, writes=(), *,
               limits: dict | None = None, random_ready: bool = False, gap: int = FRAME_GAP,
               fast: bool = True, line_b: list[bytes] | None = None,
               gaps_a: list[int] | None = None, gaps_b: list[int] | None = None,
               ab_window: int = AB_WINDOW, settle: int = 2048):
    """Frames through the whole appliance set up by :func:`order_setup` (the gateware's
    capacities); ``settle``: cycles the pipeline is given after the last frame. Returns (order frames, counters plus ``first_cycles``, the cycle of each
    order frame's first beat, and ``frame_cycles``, the cycle each frame of line A began to
    be taken)."""
    cfg = rtl_config(config)
    r = run_appliance(frames, order_setup(cfg, writes, limits, fast=fast, ab_window=ab_window),
                      random_ready=random_ready, gap=gap, line_b=line_b, gaps_a=gaps_a,
                      gaps_b=gaps_b, settle=settle)
    c = _counters(r)
    c["first_cycles"] = r.first_cycles
    c["frame_cycles"] = r.beat_cycles[frame_beat_index(frames)].tolist() if frames else []
    return r.frames, c


def train(exe) -> None:
    """The profile-guided build's training run (``fastsim.build``'s ``train``): a synthetic
    64-symbol day and a short deep day (deep levels) through ``exe``, as ``replay`` runs them."""
    import os
    import tempfile

    from ..host import gen
    from .wire import frames_of
    days = [gen.generate_day(symbols=64, messages=20_000, seed=7),
            gen.generate_deep_day(symbols=8, messages=6_000, seed=7, deep_sides=2,
                                  deep_levels=200)]
    with tempfile.TemporaryDirectory() as d:
        for k, day in enumerate(days):
            path = os.path.join(d, f"train{k}.pcap")
            gen.write_capture(day, path)
            run_frames(frames_of(path), exe=exe)


def replay(path, symbols: list[str] | None, depth: int):
    """``tickwire replay --backend rtl``: the book rows of the gateware for a capture (a
    BinaryFILE is packed into MoldUDP64 frames), as the emulator's ``RunResult``."""
    from ..host.emu.pipeline import BookRows, RunResult
    from ..host.hostloop import orders_from_frames
    from .wire import frames_of
    (seq, ts, slot, lv), counters, names, cycles, secs = run_frames(
        frames_of(path), symbols=symbols, depth=depth, profiled=True)
    rows = BookRows(seq, ts, slot, np.full(len(seq), -1, np.int64), lv)
    return RunResult("rtl", names, counters, rows, orders_from_frames([], names),
                     np.zeros((0, 9), np.int64), {"rtl": secs}, depth)
