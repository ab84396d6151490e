"""The served replay: a capture through a device in a background thread, followed live.

:class:`Replay` owns the device: only its thread touches it. It runs the host loop
(:func:`~tickwire.host.hostloop.run_device`) pass after pass (a fresh device each pass, so the
book starts empty), and at every poll point its hook

* publishes the device's new outputs: book rows (the newest top-N of each slot that moved)
  and the orders that left, decoded from their OUCH Enter Order frames;
* applies the operator writes queued since (:meth:`Replay.submit`), through the strategy
  context's driver, so each lands before the next frame at a stream position the audit log
  records;
* reads the device's state back through the driver (counters, status, risk, per-symbol
  limits, positions, gross exposure, the latency histogram) when due, and raises alerts for
  counters that mean trouble (risk rejects, book loss, feed gaps, a tripped kill switch);
* paces the replay (:class:`Speed`) by sleeping until the next frame is due, applying writes
  that arrive meanwhile at the same position.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..backends.base import BackendUnavailable
from ..backends.wire import mold_counts
from ..host.hostloop import orders_from_frames, run_device
from ..spec.counters import BOOK_LOSS_COUNTERS, RISK_REASONS
from .audit import AuditLog
from .hub import Hub
from .strategy import OperatedStrategy
from .writes import Write, WriteError

__all__ = ["Speed", "Replay", "open_backend"]

log = logging.getLogger("tickwire.control")

#: recent orders and alerts a snapshot carries
KEEP_ORDERS = 200
KEEP_ALERTS = 100
KEEP_AUDIT = 100


class _Stopped(Exception):
    """The service is shutting down: leave the host loop."""


@dataclass(frozen=True)
class Speed:
    """How fast frames are offered: ``max`` (as fast as the device takes them), ``N``
    (ITCH messages per second) or ``Nx`` (the capture's own timing times N)."""
    rate: float | None = None          # messages per second
    factor: float | None = None        # multiple of capture time

    @classmethod
    def parse(cls, text: str) -> "Speed":
        t = str(text).strip().lower()
        try:
            if t == "max":
                return cls()
            if t.endswith("x"):
                v = float(t[:-1])
                if v > 0:
                    return cls(factor=v)
            else:
                v = float(t)
                if v > 0:
                    return cls(rate=v)
        except ValueError:
            pass
        raise ValueError(f"--speed {text!r}: 'max', messages per second (e.g. 2000) or a "
                         "multiple of the capture's own timing (e.g. 10x)")

    def __str__(self) -> str:
        if self.rate:
            return f"{self.rate:g} msg/s"
        return f"{self.factor:g}x capture time" if self.factor else "max"


def open_backend(kind: str, config, **kw):
    """The device of back-end ``kind``, opened (:func:`tickwire.backends.open_device` where
    the package has it)."""
    try:
        from ..backends import open_device
    except ImportError:                      # an older tree: the two local back-ends
        if kind == "emu":
            from ..backends.emu import EmuDevice
            return EmuDevice(config, **kw).open()
        if kind == "rtl":
            from ..backends.rtl import RtlDevice
            return RtlDevice(**kw).open()
        raise ValueError(f"unknown back-end {kind!r} (known: emu, rtl)") from None
    return open_device(kind, config, **kw)


def _levels(lv: np.ndarray) -> dict:
    """A slot's top-N row as ``{"asks": [[price, shares], ...], "bids": [...]}``, best first,
    empty levels left out."""
    ask = lv[:, 0:2][lv[:, 0] > 0]
    bid = lv[:, 2:4][lv[:, 2] > 0]
    return {"asks": ask.tolist(), "bids": bid.tolist()}


class Replay:
    """A capture's ``frames`` replayed through a ``backend`` device under ``config``
    (mutated by operator writes, so the next pass starts from them)."""

    def __init__(self, backend: str, frames: list[bytes], config, *, hub: Hub,
                 audit: AuditLog, speed: Speed = Speed(), loop: bool = True,
                 timestamps_ns: np.ndarray | None = None, capture: str = "",
                 device_options: dict | None = None, state_interval: float = 0.1):
        if speed.factor and (timestamps_ns is None or len(timestamps_ns) != len(frames)):
            raise ValueError("--speed Nx needs the capture's frame timestamps (a pcap/pcapng)")
        self.backend, self.frames, self.config = backend, frames, config
        self.hub, self.audit, self.speed, self.loop = hub, audit, speed, loop
        self.capture = capture
        self.device_options = dict(device_options or {})
        self.state_interval = state_interval
        self.msg_before = np.concatenate([[0], np.cumsum(mold_counts(frames))]).astype(np.int64)
        ts = np.asarray(timestamps_ns if timestamps_ns is not None else [], np.int64)
        self.frame_offset_s = (ts - ts[0]) / 1e9 if len(ts) else None
        self.strategy = OperatedStrategy(config, on_start=self._before_first_frame)
        #: per-symbol risk rows the operator set: re-applied whenever the symbol has a slot
        self.slot_overrides: dict[str, dict[str, int]] = {}
        self.device = None
        self.ctx = None
        self.passes = 0
        self.orders_total = 0
        self.messages_done = 0               # ITCH messages offered, over every pass
        self.error: str | None = None
        self.started = threading.Event()     # the first pass has published its state
        self._writes: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="tickwire-replay", daemon=True)
        self._state_due = 0.0
        self._state_cost = 0.0
        self._prev: dict[str, int] = {}
        self._sent: dict[str, int] = {}
        self._state: dict | None = None
        self._lat_count = -1
        self._tripped = 0
        self._applied: set[str] = set()
        self._pos = 0
        self._t0 = 0.0
        hub.update(self._init_state)

    # ---------------------------------------------------------------- life cycle
    def _init_state(self, st: dict) -> None:
        st.update(backend=self.backend, capture=self.capture, speed=str(self.speed),
                  loop=self.loop, frames=len(self.frames),
                  messages=int(self.msg_before[-1]), identity=None, symbols=[], book={},
                  orders=deque(maxlen=KEEP_ORDERS), orders_total=0,
                  alerts=deque(maxlen=KEEP_ALERTS), audit=deque(maxlen=KEEP_AUDIT),
                  counters={}, risk={}, slots={}, positions={}, control={}, status={},
                  gross=0, latency=None, strategy=self.strategy.describe(),
                  strategy_params={}, running=False, finished=False, error=None,
                  # the counters the page marks as a book that lost state (one list: spec's)
                  loss_counters=list(BOOK_LOSS_COUNTERS) + ["gaps", "gap_messages"])
        st.update(self._where())

    def _where(self) -> dict:
        return {"pass": self.passes, "position": self._pos,
                "messages_done": self.messages_done}

    def start(self) -> "Replay":
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def progress(self) -> tuple[float, int]:
        """(now, ITCH messages offered so far): the replay's throughput over an interval."""
        return time.perf_counter(), self.messages_done

    # ---------------------------------------------------------------- writes
    def submit(self, write: Write | Callable) -> cf.Future:
        """Queue an operator write (or, for tests and tools, a callable ``fn(ctx)`` that runs
        in the replay thread unlogged); the future's result is the audit entries (or the
        callable's result)."""
        fut: cf.Future = cf.Future()
        if not self.alive and self.started.is_set():
            fut.set_exception(WriteError(503, "device", "device: the replay has stopped: "
                                         f"{self.error or 'shut down'}"))
            return fut
        self._writes.put((write, fut))
        return fut

    def call(self, fn: Callable, timeout: float = 60.0) -> Any:
        """Run ``fn(ctx)`` in the replay thread (at the next poll point) and return its result."""
        return self.submit(fn).result(timeout)

    def _apply(self, ctx, item) -> None:
        write, fut = item
        if not fut.set_running_or_notify_cancel():
            return
        if not isinstance(write, Write):
            try:
                fut.set_result(write(ctx))
            except Exception as e:          # noqa: BLE001 - handed to the caller
                fut.set_exception(e)
            return
        error = None
        try:
            changes = write.apply(self, ctx)
        except WriteError as e:
            changes, error = getattr(e, "changes", []), e
        except Exception as e:               # noqa: BLE001 - reported, the replay goes on
            changes, error = [], WriteError(500, "device", f"device: {type(e).__name__}: {e}")
        entries = [self.audit.record(write.who, what, old, new, position=ctx.position,
                                     **{"pass": self.passes})
                   for what, old, new in changes]
        for e in entries:
            self.hub.publish("audit", {"entry": e}, lambda st, e=e: st["audit"].append(e))
        self._refresh(ctx, force=True)
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(entries)

    def _apply_pending(self, ctx) -> None:
        while True:
            try:
                item = self._writes.get_nowait()
            except queue.Empty:
                return
            self._apply(ctx, item)

    def _fail_pending(self) -> None:
        while True:
            try:
                _, fut = self._writes.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                fut.set_exception(WriteError(503, "device", "device: the replay has stopped: "
                                             f"{self.error or 'shut down'}"))

    # ---------------------------------------------------------------- the thread
    def _main(self) -> None:
        try:
            while not self._stop.is_set():
                self._close_device()
                self.device = open_backend(self.backend, self.config, **self.device_options)
                self.passes += 1
                self._begin_pass()
                try:
                    run_device(self.device, self.frames, self.config, strategy=self.strategy,
                               on_poll=self._on_poll)
                except _Stopped:
                    break
                self._refresh(self.ctx, force=True)
                self.hub.publish("pass", {"event": "end", **self._where()})
                if not self.loop:
                    self.hub.update(lambda st: st.update(finished=True))
                    self._idle()
                    break
        except Exception as e:                # noqa: BLE001 - the service reports it
            if not isinstance(e, BackendUnavailable):
                log.exception("replay stopped")
            self.error = f"{type(e).__name__}: {e}"
            self.hub.publish("alert", self._alert("replay_stopped", self.error),
                             lambda st: st.update(error=self.error, running=False))
        finally:
            self.started.set()
            self._fail_pending()
            self._close_device()

    def _close_device(self) -> None:
        if self.device is not None:
            try:
                self.device.close()
            finally:
                self.device = None

    def _idle(self) -> None:
        """After a single pass: the device stays open and writes still apply, at the end."""
        while not self._stop.is_set():
            try:
                item = self._writes.get(timeout=0.2)
            except queue.Empty:
                continue
            self._apply(self.ctx, item)

    def _begin_pass(self) -> None:
        self._pos = 0
        self._prev, self._lat_count, self._tripped = {}, -1, 0
        self._sent, self._state = {}, None
        self._applied = set()
        ident = self.device.identity()
        ident = {"id": f"0x{ident['id']:08x}", "version": list(ident["version"]),
                 "hash": f"0x{ident['hash']:08x}", "build_id": ident.get("build_id"),
                 "time_unit": self.device.time_unit}
        self.hub.publish("pass", {"event": "start", **self._where()},
                         lambda st: st.update(identity=ident, book={}, running=True,
                                              finished=False, **self._where()))

    def _before_first_frame(self, ctx) -> None:
        """Pass start (the configuration applied, the strategy started): the operator's
        per-symbol rows and the writes queued since the last pass land before frame 0."""
        self.ctx = ctx
        self._t0 = time.perf_counter()
        self._reapply_overrides(ctx, ctx.symbols())
        self._apply_pending(ctx)
        self._refresh(ctx, force=True)
        self.started.set()

    def _on_poll(self, ctx, out) -> None:
        self.ctx = ctx
        p = int(ctx.position)
        self.messages_done += int(self.msg_before[p] - self.msg_before[self._pos])
        self._pos = p
        names = ctx.symbols()
        self._reapply_overrides(ctx, names)
        self._publish_outputs(ctx, out, names)
        self._apply_pending(ctx)
        due = self._due(p)
        now = time.perf_counter()
        # read the state when due, or now if the replay is about to wait anyway
        if now >= self._state_due or (due is not None and due - now >= self.state_interval):
            self._refresh(ctx)
        self._pace(due)
        if self._stop.is_set():
            raise _Stopped()

    def _due(self, p: int) -> float | None:
        """When frame ``p`` is due (None: as fast as the device goes)."""
        if p >= len(self.frames):
            return None
        if self.speed.rate:
            return self._t0 + self.msg_before[p] / self.speed.rate
        if self.speed.factor:
            return self._t0 + self.frame_offset_s[p] / self.speed.factor
        return None

    def _pace(self, due: float | None) -> None:
        """Sleep until ``due``, applying the writes that arrive meanwhile (they land at this
        poll point, before the next frame)."""
        if due is None:
            return
        while not self._stop.is_set():
            wait = due - time.perf_counter()
            if wait <= 0:
                return
            try:
                item = self._writes.get(timeout=min(wait, 0.25))
            except queue.Empty:
                continue
            self._apply(self.ctx, item)

    def _reapply_overrides(self, ctx, names: list[str]) -> None:
        """The operator's per-symbol risk rows, on the slots named since the pass began."""
        for sym, vals in self.slot_overrides.items():
            if sym not in self._applied and sym in names:
                ctx.driver.write_entry("RISK_SLOTS", names.index(sym), **vals)
                self._applied.add(sym)

    # ---------------------------------------------------------------- publishing
    def _publish_outputs(self, ctx, out, names: list[str]) -> None:
        where = self._where()
        if out.n_rows:
            slots = np.unique(ctx.book.slots)
            rows = {names[s]: _levels(ctx.book.levels[s]) for s in slots.tolist()
                    if s < len(names)}
            if rows:
                self.hub.publish("book", {"symbols": rows, **where},
                                 lambda st: (st["book"].update(rows),
                                             st.update(symbols=names, **where)))
        if out.frames:
            o = orders_from_frames(out.frames, names)
            times = list(out.frame_times) + [None] * len(out.frames)
            items = []
            for k in range(len(o)):
                s = int(o.slot[k])
                self.orders_total += 1
                items.append({"n": self.orders_total, "pass": self.passes, "position": where[
                    "position"], "time": times[k], "symbol": names[s] if s >= 0 else None,
                    "side": "B" if int(o.side[k]) == 0 else "S", "price": int(o.price[k]),
                    "quantity": int(o.quantity[k]), "user_ref": int(o.user_ref[k])})
            total = self.orders_total
            self.hub.publish("orders", {"orders": items, "total": total, **where},
                             lambda st: (st["orders"].extend(items),
                                         st.update(orders_total=total)))

    def _alert(self, kind: str, message: str, **data) -> dict:
        return {"alert": {"kind": kind, "message": message, "time": time.time(), **data,
                          **self._where()}}

    def _refresh(self, ctx, force: bool = False) -> None:
        """Read the device's state through the driver and publish what changed."""
        if ctx is None:
            return
        t = time.perf_counter()
        drv, dev = ctx.driver, self.device
        names = ctx.symbols()
        counters = {k: int(v) for k, v in dev.counters().items()}
        control = drv.read("CONTROL").fields()
        status = drv.read("STATUS").fields()
        risk = {k: int(v) for k, v in drv.risk().items()}
        slots, positions = {}, {}
        bid, ask = ctx.book.bbo()
        for i, n in enumerate(names):
            slots[n] = drv.read_entry("RISK_SLOTS", i)
            pos = int(drv.position(i))
            b, a = int(bid[i]), int(ask[i])
            mid = (a + b) // 2 if a and b else (a or b)
            positions[n] = {"position": pos, "mid": mid, "exposure": pos * mid}
        gross = int(drv.gross())
        lat_count = int(drv.read_raw("LAT_COUNT"))
        latency = None
        if lat_count != self._lat_count:
            latency = {k: (list(map(int, v)) if isinstance(v, list) else int(v))
                       for k, v in drv.latency().items()}
            self._lat_count = lat_count
        self._alerts(counters, status)
        strategy = self.strategy.describe()
        params = {k: getattr(self.config.strategy, k) for k in ("band_bps", "quantity",
                                                               "rearm", "poll_messages")}
        where = self._where()
        now = int(dev.now())
        # counters: only those that changed since the last message (a snapshot has all)
        changed = {k: v for k, v in counters.items() if self._sent.get(k) != v}
        self._sent = counters
        if changed or force:
            self.hub.publish("counters", {"counters": changed, "device_time": now, **where},
                             lambda st: st.update(counters=counters, device_time=now))
        state = {"risk": risk, "slots": slots, "positions": positions, "control": control,
                 "status": status, "gross": gross, "strategy": strategy,
                 "strategy_params": params, "symbols": names}
        if state != self._state or force:
            self._state = state
            self.hub.publish("state", {**state, **where}, lambda st: st.update(state, **where))
        if latency is not None:
            self.hub.publish("latency", {"latency": latency, **where},
                             lambda st: st.update(latency=latency))
        cost = time.perf_counter() - t
        # a slow bus (the RTL's) reads the state less often, so the replay keeps moving
        self._state_due = time.perf_counter() + max(self.state_interval, 4 * cost)
        self._state_cost = cost

    def _alerts(self, counters: dict[str, int], status: dict) -> None:
        prev, self._prev = self._prev, counters
        for r in RISK_REASONS:
            k = "reject_" + r
            d = counters.get(k, 0) - prev.get(k, 0)
            if d > 0:
                self._raise("risk_reject", f"{d} order(s) rejected by risk check '{r}'",
                            reason=r, count=d, total=counters[k])
        for k in BOOK_LOSS_COUNTERS:
            d = counters.get(k, 0) - prev.get(k, 0)
            if d > 0:
                self._raise("book_loss", f"book lost state: {k} +{d}", counter=k, count=d,
                            total=counters[k])
        d = counters.get("gap_messages", 0) - prev.get("gap_messages", 0)
        if d > 0:
            self._raise("feed_gap", f"feed gap: {d} message(s) missed", count=d,
                        total=counters["gap_messages"])
        tripped = int(status.get("kill_tripped", 0))
        if tripped and not self._tripped:
            self._raise("kill_tripped", "the kill switch tripped on kill_after_rejects")
        self._tripped = tripped

    def _raise(self, kind: str, message: str, **data) -> None:
        a = self._alert(kind, message, **data)
        self.hub.publish("alert", a, lambda st: st["alerts"].append(a["alert"]))
