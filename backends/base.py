"""The device interface every back-end implements.

A :class:`Device` is the appliance as the host sees it, whatever runs it: the emulator, the
Verilated gateware, a board, or any of those in another machine. The host

* opens it and checks its identity (ID, VERSION, MAP_HASH, a build id where it has one);
* configures and reads it through its register bus (``device.driver``: the generated
  :class:`~tickwire.host.driver.Driver`, the same calls on every back-end);
* gives it market data: :meth:`Device.load` a capture's frames, then :meth:`Device.advance`
  through them (as fast as the device takes them, or paced: :class:`Pacing`);
* drains its outputs (:meth:`Device.drain`): order frames, top-N book rows, each stamped
  with the device's time.

Time: :meth:`Device.now` is the device's own clock (``time_unit``: fabric cycles for the RTL
and boards, messages processed for the emulator); the host loop runs at poll points in
stream position (frames), which every back-end reaches at the same input, so a replay is
deterministic and the same on all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..spec.regmap import REGMAP

__all__ = ["Device", "Outputs", "Pacing", "BackendUnavailable", "empty_rows"]


class BackendUnavailable(RuntimeError):
    """The back-end cannot run here; the message says what was looked for."""


@dataclass
class Pacing:
    """How frames are offered to a device that has a clock.

    ``mode``: ``"asap"`` (back to back, ``gap`` idle cycles between frames: 3 = the
    inter-frame gap and preamble of a 64-bit MAC), ``"rate"`` (``frames_per_second`` at the
    device clock; with ``burst`` N > 1, N frames back to back, the bursts spaced so the
    average stays ``frames_per_second``: microbursts at line rate) or ``"timestamps"`` (the
    capture's own spacing, times ``speed``; ``max_idle`` > 0 shortens longer idle stretches
    to that many cycles, so a capture with seconds between packets runs in a simulation).

    The offered schedule is open-loop: frame ``i`` is due at ``schedule()[i]`` cycles after
    the first, whatever the device does (the feed port has no back-pressure); a frame starts
    late only when the previous one is still on the line (a rate above line rate)."""
    mode: str = "asap"
    gap: int = 3
    frames_per_second: float = 0.0
    speed: float = 1.0
    clock_hz: float = 322.265625e6
    burst: int = 1
    max_idle: int = 0

    def schedule(self, lengths: Sequence[int], timestamps_ns: Sequence[int] | None = None
                 ) -> np.ndarray:
        """Cycle (after the first frame's) at which each frame is due (float64)."""
        n = len(lengths)
        beats = np.array([(int(x) + 7) // 8 for x in lengths], np.int64)
        if self.mode == "asap":
            return self.starts(lengths, [self.gap] * n).astype(np.float64)
        if self.mode == "rate":
            if self.frames_per_second <= 0:
                raise ValueError("pacing rate: frames_per_second must be > 0")
            if self.burst < 1:
                raise ValueError(f"pacing burst={self.burst}: must be >= 1")
            period = self.clock_hz / self.frames_per_second
            i = np.arange(n)
            head = (i // self.burst) * self.burst
            # within a burst: back to back after the burst's first frame
            back = np.concatenate([[0], np.cumsum(beats + self.gap)])
            return head * period + (back[i] - back[head])
        if self.mode == "timestamps":
            if timestamps_ns is None:
                raise ValueError("pacing by timestamps needs the capture's timestamps")
            if self.speed <= 0:
                raise ValueError("pacing speed must be > 0")
            t = np.asarray(timestamps_ns, np.int64)
            dt = np.diff(t).astype(np.float64) / self.speed * self.clock_hz / 1e9
            if self.max_idle > 0:
                dt = np.minimum(dt, self.max_idle + beats[:-1] + self.gap)
            return np.concatenate([[0.0], np.cumsum(np.maximum(dt, 0))]) if n else np.zeros(0)
        raise ValueError(f"pacing mode {self.mode!r}: asap, rate or timestamps")

    def gaps(self, lengths: Sequence[int], timestamps_ns: Sequence[int] | None = None
             ) -> list[int]:
        """Idle cycles before each frame: the schedule's, at least ``gap`` after the previous
        frame (a late frame goes as soon as the line is free; later ones keep their time)."""
        due = self.schedule(lengths, timestamps_ns)
        out, free = [], 0          # free: the cycle the line is free again (frame 0 at 0)
        for i, x in enumerate(lengths):
            # (half up: the records round the schedule the same way)
            g = self.gap if i == 0 else max(self.gap, int(np.floor(due[i] + 0.5)) - free)
            out.append(g)
            free += (g if i else 0) + (int(x) + 7) // 8
        return out

    def starts(self, lengths: Sequence[int], gaps: Sequence[int]) -> np.ndarray:
        """Cycle (after the first frame's) at which each frame starts, given its ``gaps``."""
        b = np.array([(int(x) + 7) // 8 for x in lengths], np.int64)
        g = np.asarray(gaps, np.int64)
        if not len(b):
            return np.zeros(0, np.int64)
        return np.concatenate([[0], np.cumsum(b[:-1] + g[1:])])


def empty_rows(depth: int):
    """(sequence, timestamp, slot, levels[N, depth, 4]) with no rows."""
    return (np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.int32),
            np.zeros((0, depth, 4), np.uint32))


@dataclass
class Outputs:
    """What a device produced since the last drain."""
    #: order frames as they left (Ethernet, no FCS), in order
    frames: list[bytes] = field(default_factory=list)
    #: device time of each order frame's first byte
    frame_times: list[int] = field(default_factory=list)
    #: MoldUDP64 sequence of the message that triggered each order, where the device
    #: reports it (the emulator; the gateware's order frames do not carry it)
    sequences: list[int] | None = None
    #: top-N book rows: sequence, ITCH timestamp, slot, levels [N, depth, 4] (ask price,
    #: ask size, bid price, bid size)
    rows: tuple = field(default_factory=lambda: empty_rows(1))
    #: the gateware's latency record of each order frame (columns of
    #: :func:`tickwire.backends.wire.parse_latency`), where the device has them
    latency: dict | None = None

    @property
    def n_rows(self) -> int:
        return len(self.rows[2])


class Device:
    """Base of every back-end. Subclasses set ``kind``, ``bus`` (``read32``/``write32``),
    ``depth`` (levels per book row) and implement :meth:`load`, :meth:`advance`,
    :meth:`drain` and :meth:`now`."""

    kind = "?"
    time_unit = "cycles"
    #: what a device is built to hold (the CAPACITY registers say it too)
    depth = 10

    def __init__(self):
        self.bus = None
        self._driver = None
        self.frames: list[bytes] = []
        self.position = 0          # frames of the loaded input already offered
        #: device time at which each offered frame of line A began to be taken
        self.input_times: list[int] = []

    # ---------------------------------------------------------------- life cycle
    def open(self) -> "Device":
        return self

    def close(self) -> None:
        pass

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    # ---------------------------------------------------------------- control
    @property
    def driver(self):
        """The register driver over this device's bus."""
        if self._driver is None:
            from ..host.driver import Driver
            self._driver = Driver(self.bus, REGMAP)
        return self._driver

    def identity(self) -> dict:
        """ID, VERSION, MAP_HASH as the device answers them, and ``build_id`` (None where
        the device has none)."""
        d = self.driver
        ident = dict(d.identity())
        ident["build_id"] = self.build_id()
        return ident

    def build_id(self) -> int | None:
        """The BUILD_ID register where the device is a build (gateware), else None."""
        return None

    # ---------------------------------------------------------------- market data
    def load(self, frames: Sequence[bytes], *, line_b: Sequence[bytes] | None = None,
             gaps: Sequence[int] | None = None, gaps_b: Sequence[int] | None = None,
             skew_b: int = 0) -> None:
        """The input to offer: line A's frames (and optionally line B's), with idle cycles
        before each frame for devices with a clock (default: back to back). ``skew_b``:
        cycles line B starts after line A at every :meth:`advance` (a B line that lags)."""
        if skew_b < 0:
            raise ValueError(f"skew_b={skew_b}: line B lags line A (>= 0)")
        self.frames = list(frames)
        self.frames_b = list(line_b or [])
        self.gaps = list(gaps) if gaps is not None else None
        self.gaps_b = list(gaps_b) if gaps_b is not None else None
        self.skew_b = int(skew_b)
        self.position = 0
        self.input_times = []

    def advance(self, to: int | None = None) -> None:
        """Offer frames ``position .. to`` (default: all) and let the device settle; host
        writes made before the call take effect before those frames."""
        raise NotImplementedError

    def drain(self) -> Outputs:
        raise NotImplementedError

    def now(self) -> int:
        raise NotImplementedError

    def counters(self) -> dict[str, int]:
        """Every counter the device has, by name, through the register map."""
        return dict(self.driver.counters(hardware=True))
