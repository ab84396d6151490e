"""From model output to trigger prices, and the live slow-path loop (:class:`SignalEngine`).

Fair value per symbol: ``fair = mid + (p_up − p_down) · move_ticks · tick`` — the expected mid
move over the model's horizon, with ``move_ticks`` the mean absolute move of moving training
labels (saved in the model's metadata).

Trigger prices (ITCH units, multiples of the tick): ``buy = floor((fair − edge)/tick)·tick``,
``sell = ceil((fair + edge)/tick)·tick``, rounded away from fair so the edge is never less than
asked for, then ``sell ≥ buy + tick`` so the pair never crosses or locks. A side without a
sensible price is disabled by its neutral value: ``NO_BUY = 0`` (no ask is ever ≤ 0) and
``NO_SELL = 2**32 − 1`` (no bid is ever ≥ it) — the trigger engine's ``best_ask ≤ buy_price`` /
``best_bid ≥ sell_price`` rules then never fire. A book missing either side disables both.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..spec.values import TICK
from ..spec.capacity import GATEWARE, ROW_DEPTH
from .features import N_FEATURES, FeatureStream
from .mlp import Model, load_model

__all__ = ["NO_BUY", "NO_SELL", "fair_value", "trigger_prices", "SignalEngine", "TriggerWrite",
           "latency_summary", "load_strategy_model"]

NO_BUY = 0
NO_SELL = 0xFFFFFFFF
_EPS = 1e-9  # absorbs float noise when fair ± edge sits on a tick exactly

WriteTriggers = Callable[[int, int, int, int], object]


def fair_value(mid, probs, move_ticks: float, tick: int = TICK) -> np.ndarray:
    """``mid + (p_up − p_down) · move_ticks · tick`` (ITCH units, float64); probs columns are
    (down, flat, up)."""
    p = np.asarray(probs, dtype=np.float64).reshape(-1, 3)
    return np.asarray(mid, dtype=np.float64) + (p[:, 2] - p[:, 0]) * move_ticks * tick


def trigger_prices(fair, edge_ticks: float = 1.0, tick: int = TICK):
    """(buy, sell) int64 arrays: tick-rounded away from ``fair`` by at least ``edge_ticks``,
    ``sell ≥ buy + tick``; NaN fair or out-of-range prices give NO_BUY / NO_SELL."""
    if edge_ticks < 0:
        raise ValueError("edge_ticks must be >= 0")
    f = np.atleast_1d(np.asarray(fair, dtype=np.float64))
    ok = np.isfinite(f)
    fz = np.where(ok, f, 0.0)
    buy = np.floor((fz - edge_ticks * tick) / tick + _EPS).astype(np.int64) * tick
    sell = np.ceil((fz + edge_ticks * tick) / tick - _EPS).astype(np.int64) * tick
    sell = np.maximum(sell, buy + tick)
    buy = np.where(ok & (buy >= tick), buy, NO_BUY)
    sell = np.where(ok & (sell < NO_SELL), sell, NO_SELL)
    return buy, sell


def _trigger_scalar(fair: float, edge_ticks: float, tick: int) -> tuple[int, int]:
    """:func:`trigger_prices` for one price in plain Python (the latency path: numpy's per-call
    overhead dwarfs the arithmetic for a handful of symbols). Same rules, tested equal."""
    if not math.isfinite(fair):
        return NO_BUY, NO_SELL
    buy = math.floor((fair - edge_ticks * tick) / tick + _EPS) * tick
    sell = math.ceil((fair + edge_ticks * tick) / tick - _EPS) * tick
    sell = max(sell, buy + tick)
    return (buy if buy >= tick else NO_BUY), (sell if sell < NO_SELL else NO_SELL)


@dataclass(frozen=True)
class TriggerWrite:
    slot: int
    buy_price: int
    sell_price: int
    quantity: int


def latency_summary(ns) -> dict:
    a = np.asarray(ns, dtype=np.float64)
    if a.size == 0:
        return {"n": 0, "p50_us": None, "p99_us": None, "mean_us": None, "max_us": None}
    return {"n": int(a.size), "p50_us": round(float(np.percentile(a, 50)) / 1e3, 3),
            "p99_us": round(float(np.percentile(a, 99)) / 1e3, 3),
            "mean_us": round(float(a.mean()) / 1e3, 3), "max_us": round(float(a.max()) / 1e3, 3)}


class SignalEngine:
    """Book updates → features → model (one batch over the touched symbols) → trigger prices →
    ``write_triggers(slot, buy_price, sell_price, quantity)`` when a slot's triple changes.

    ``write_triggers`` is the host strategy's trigger write (the register map of any back-end).
    Latency is measured from the call's entry (or the caller's ``t0_ns``, e.g. the update's
    arrival) to each write, with ``time.perf_counter_ns``.
    """

    def __init__(self, model, write_triggers: WriteTriggers, *, backend: str = "auto",
                 runner=None, n_slots: int = GATEWARE["symbols"],
                 depth: int = ROW_DEPTH, edge_ticks: float = 1.0,
                 quantity: int | dict = 100, tick: int = TICK, max_batch: int = 256):
        from tickwire.kernels.runners import make_runner

        self.model = model if isinstance(model, Model) else load_model(Path(model))
        self.runner = runner if runner is not None else make_runner(self.model, backend,
                                                                    max_batch=max_batch)
        self.write = write_triggers
        self.n_slots, self.depth, self.tick = n_slots, depth, tick
        self.edge_ticks = float(edge_ticks)
        self.quantity = quantity
        self.move_ticks = float(self.model.meta.get("move_ticks", 1.0))
        self.window = self.model.window
        self.stream = FeatureStream(n_slots, depth)
        self._hist = (np.zeros((n_slots, self.window, N_FEATURES), np.float32)
                      if self.window > 1 else None)
        self._seen = np.zeros(n_slots, dtype=bool)
        self._last: dict[int, tuple[int, int, int]] = {}
        self.reset_stats()

    def reset_stats(self) -> None:
        self.updates = self.batches = self.model_rows = self.writes = 0
        self._lat: list[int] = []
        self._batch_lat: list[int] = []

    def _qty(self, slot: int) -> int:
        q = self.quantity
        return int(q.get(slot, 0)) if isinstance(q, dict) else int(q)

    def _model_input(self, slots, feats, last_idx):
        if self.window == 1:
            return feats[last_idx]
        h = self._hist
        for r, s in enumerate(slots):
            if not self._seen[s]:  # a slot's first window pads with its first vector
                h[s] = feats[r]
                self._seen[s] = True
            else:
                h[s, :-1] = h[s, 1:]
                h[s, -1] = feats[r]
        return h[slots[last_idx]]

    def on_update(self, slot: int, levels, t0_ns: int | None = None) -> int:
        """One book update (levels (N, 4)); returns the number of trigger writes."""
        lv = np.asarray(levels)
        return self.on_batch(np.array([slot]), lv.reshape(1, *lv.shape[-2:]), t0_ns)

    def on_batch(self, slots, levels, t0_ns: int | None = None) -> int:
        """Book updates in arrival order (levels (B, N, 4)); the model runs once over the
        symbols they touch, on each one's newest features. Returns the number of writes."""
        t0 = time.perf_counter_ns() if t0_ns is None else t0_ns
        slots = np.asarray(slots, dtype=np.int64).reshape(-1)
        lv = np.asarray(levels)
        feats = self.stream.update_many(slots, lv)
        newest: dict[int, int] = {}  # slot -> index of its newest row in this batch
        for i, sl in enumerate(slots.tolist()):
            newest[sl] = i
        touched = sorted(newest)
        last_idx = np.fromiter((newest[sl] for sl in touched), dtype=np.int64,
                               count=len(touched))
        probs = self.runner.predict(self._model_input(slots, feats, last_idx))
        top = lv[last_idx, 0]
        if len(touched) <= 8:
            prices = []
            scale = self.move_ticks * self.tick
            for j, (ask, bid) in enumerate(zip(top[:, 0].tolist(), top[:, 2].tolist())):
                if ask > 0 and bid > 0:
                    fair = (ask + bid) / 2.0 + (float(probs[j, 2]) - float(probs[j, 0])) * scale
                    prices.append(_trigger_scalar(fair, self.edge_ticks, self.tick))
                else:
                    prices.append((NO_BUY, NO_SELL))
        else:
            top = top.astype(np.int64)
            ask, bid = top[:, 0], top[:, 2]
            mid = np.where((ask > 0) & (bid > 0), (ask + bid) / 2.0, np.nan)
            buy, sell = trigger_prices(fair_value(mid, probs, self.move_ticks, self.tick),
                                       self.edge_ticks, self.tick)
            prices = list(zip(buy.tolist(), sell.tolist()))
        n = 0
        for sl, (buy_p, sell_p) in zip(touched, prices):
            trip = (buy_p, sell_p, self._qty(sl))
            # a slot starts disabled (the trigger table's reset state): no write until priced
            if self._last.get(sl, (NO_BUY, NO_SELL, trip[2])) != trip:
                self.write(sl, buy_p, sell_p, trip[2])
                self._lat.append(time.perf_counter_ns() - t0)
                self._last[sl] = trip
                n += 1
        self.updates += len(slots)
        self.batches += 1
        self.model_rows += len(touched)
        self.writes += n
        self._batch_lat.append(time.perf_counter_ns() - t0)
        return n

    def run(self, rows, batch: int = 1) -> dict:
        """Feed ``rows`` (:class:`~tickwire.models.dataset.Rows`) ``batch`` updates at a time;
        returns :meth:`stats`."""
        for i in range(0, len(rows), batch):
            self.on_batch(rows.slot[i:i + batch], rows.levels[i:i + batch])
        return self.stats()

    def current(self, slot: int) -> TriggerWrite | None:
        t = self._last.get(slot)
        return None if t is None else TriggerWrite(slot, *t)

    def stats(self) -> dict:
        return {
            "backend": self.runner.backend, "backend_reason": self.runner.reason,
            "updates": self.updates, "batches": self.batches, "model_rows": self.model_rows,
            "trigger_writes": self.writes,
            "writes_per_update": round(self.writes / self.updates, 4) if self.updates else 0.0,
            "update_to_write": latency_summary(self._lat),
            "batch": latency_summary(self._batch_lat),
        }


# --------------------------------------------------------------------------------------------
# the model a `strategy.kind = "model"` run uses (tickwire.host.strategies.ModelStrategy)


def load_strategy_model(cfg) -> Model:
    """The model at ``cfg.strategy.model`` (a ``.npz``, or an ``.onnx`` with its ``.npz``
    beside it; default the bundled ``models/artifacts/mlp_synthetic.npz``)."""
    from .train import DEFAULT_ARTIFACT

    path = Path(cfg.strategy.model) if cfg.strategy.model else DEFAULT_ARTIFACT
    if path.suffix == ".onnx":
        path = path.with_suffix(".npz")
    if not path.exists():
        raise FileNotFoundError(f"model {path} not found (train one: tickwire model train)")
    return load_model(path)
