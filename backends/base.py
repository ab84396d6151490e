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
    device clock) or ``"timestamps"`` (the capture's own spacing, times ``speed``)."""
    mode: str = "asap"
    gap: int = 3
    frames_per_second: float = 0.0
    speed: float = 1.0
    clock_hz: float = 322.265625e6

    def gaps(self, lengths: Sequence[int], timestamps_ns: Sequence[int] | None = None
             ) -> list[int]:
        """Idle cycles before each frame."""
        n = len(lengths)
        if self.mode == "asap":
            return [self.gap] * n
        beats = [(int(x) + 7) // 8 for x in lengths]
        if self.mode == "rate":
            if self.frames_per_second <= 0:
                raise ValueError("pacing rate: frames_per_second must be > 0")
            period = self.clock_hz / self.frames_per_second
            return [max(self.gap, round(period) - (beats[i - 1] if i else 0))
                    for i in range(n)]
        if self.mode == "timestamps":
            if timestamps_ns is None:
                raise ValueError("pacing by timestamps needs the capture's timestamps")
            out, prev_end = [], 0.0
            t0 = int(timestamps_ns[0]) if n else 0
            for i in range(n):
                at = (int(timestamps_ns[i]) - t0) / self.speed * self.clock_hz / 1e9
                g = max(self.gap, round(at - prev_end))
                out.append(g)
                prev_end += g + beats[i]
            return out
        raise ValueError(f"pacing mode {self.mode!r}: asap, rate or timestamps")


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
             gaps: Sequence[int] | None = None, gaps_b: Sequence[int] | None = None) -> None:
        """The input to offer: line A's frames (and optionally line B's), with idle cycles
        before each frame for devices with a clock (default: back to back)."""
        self.frames = list(frames)
        self.frames_b = list(line_b or [])
        self.gaps = list(gaps) if gaps is not None else None
        self.gaps_b = list(gaps_b) if gaps_b is not None else None
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
