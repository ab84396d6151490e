"""Datasets: book rows → (features, label), chronological splits, and the row sources.

Row sources, all returning :class:`Rows` (top-N books in ITCH units, chronological):

- :func:`rows_from_replay` — the emulator's ``replay(...)`` result (the only place that knows its
  shape; see the function for what it accepts);
- :func:`lobster_rows` — a LOBSTER ``*_orderbook_N.csv`` (with its ``*_message_N.csv`` for
  timestamps when present);
- :func:`synthetic_rows` — random-walk books whose level-1 imbalance predicts the next mid move,
  for tests and benchmarks.

Labels: the sign of the mid move over the next ``horizon`` updates of the same symbol, as class
0 = down, 1 = flat, 2 = up. Rows without ``horizon`` later updates, or without a mid at either
end, get no label. Splits are chronological by row position, and a row whose label looks past
its split's end is purged so no label peeks into the next split.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .features import DTYPE, features_batch
from ..spec.capacity import ROW_DEPTH

__all__ = [
    "CLASSES", "Rows", "Dataset", "rows_from_replay", "replay_rows", "lobster_rows",
    "default_lobster_path", "synthetic_rows", "make_labels", "build_dataset", "lobster_dataset",
    "load_rows",
]

CLASSES = ("down", "flat", "up")
DOWN, FLAT, UP = 0, 1, 2


@dataclass
class Rows:
    """Top-N book rows: ``levels`` (T, N, 4) int64 = (ask_p, ask_q, bid_p, bid_q) per level."""

    levels: np.ndarray
    slot: np.ndarray
    timestamp: np.ndarray
    sequence: np.ndarray
    symbols: list[str] | None = None
    source: str = ""

    def __post_init__(self):
        self.levels = np.asarray(self.levels)
        if self.levels.ndim != 3 or self.levels.shape[2] != 4:
            raise ValueError(f"levels must be (T, N, 4), got {self.levels.shape}")
        if self.levels.dtype.kind == "f":
            self.levels = np.rint(self.levels)
        self.levels = self.levels.astype(np.int64, copy=False)
        T = self.levels.shape[0]
        self.slot = np.broadcast_to(np.asarray(self.slot, dtype=np.int64), (T,)).copy()
        self.timestamp = np.broadcast_to(np.asarray(self.timestamp, dtype=np.int64), (T,)).copy()
        self.sequence = np.broadcast_to(np.asarray(self.sequence, dtype=np.int64), (T,)).copy()

    def __len__(self) -> int:
        return self.levels.shape[0]

    @property
    def depth(self) -> int:
        return self.levels.shape[1]

    def take(self, idx) -> "Rows":
        return Rows(self.levels[idx], self.slot[idx], self.timestamp[idx], self.sequence[idx],
                    self.symbols, self.source)


# --------------------------------------------------------------------------------------------
# sources


def _get(obj, name):
    if isinstance(obj, dict):
        return obj.get(name)
    if getattr(obj, "dtype", None) is not None and getattr(obj.dtype, "names", None):
        return obj[name] if name in obj.dtype.names else None
    return getattr(obj, name, None)


def rows_from_replay(result, depth: int | None = None) -> Rows:
    """Adapt the emulator's ``replay(path, symbols, depth)`` result to :class:`Rows`.

    Kept in one place because the emulator is being written concurrently. Accepts
    ``result.rows`` (or ``result`` itself) as an object, mapping or structured array with
    ``levels`` (T, N, 4) — or flat per-level columns ``ask_price``/``ask_size``/``bid_price``/
    ``bid_size`` of shape (T, N) — plus ``slot``, ``timestamp``, ``sequence``.
    """
    rows = _get(result, "rows")
    rows = result if rows is None else rows
    levels = _get(rows, "levels")
    if levels is None:
        cols = [_get(rows, c) for c in ("ask_price", "ask_size", "bid_price", "bid_size")]
        if any(c is None for c in cols):
            raise TypeError("replay result has neither `levels` nor per-level price/size columns")
        levels = np.stack([np.asarray(c) for c in cols], axis=-1)
    levels = np.asarray(levels)
    if levels.ndim == 2:  # (T, 4N) flat
        levels = levels.reshape(levels.shape[0], -1, 4)
    if depth is not None:
        levels = levels[:, :depth]
    slot = _get(rows, "slot")
    if slot is None:
        slot = _get(rows, "symbol")
    if slot is None or np.asarray(slot).dtype.kind not in "iu":
        raise TypeError("replay rows need an integer `slot` per row")
    ts = _get(rows, "timestamp")
    seq = _get(rows, "sequence")
    n = levels.shape[0]
    symbols = _get(result, "symbols")
    return Rows(levels, slot, np.zeros(n) if ts is None else ts,
                np.arange(1, n + 1) if seq is None else seq,
                list(symbols) if symbols is not None else None, source="replay")


def replay_rows(path, symbols=None, depth: int = ROW_DEPTH) -> Rows:
    """Replay a capture through the emulator (``tickwire.host.emu.pipeline.replay``)."""
    from tickwire.host.emu.pipeline import replay  # the emulator: imported only when used

    rows = rows_from_replay(replay(path, symbols=symbols, depth=depth), depth=depth)
    rows.source = f"replay:{Path(path).name}"
    return rows


# LOBSTER marks empty levels with these dummy prices (size 0)
_LOBSTER_EMPTY = 9999999999


def default_lobster_path() -> Path | None:
    """The shared AAPL sample (``$TICKWIRE_DATA`` or ../shared/data next to the checkout)."""
    roots = [os.environ.get("TICKWIRE_DATA", ""),
             str(Path(__file__).resolve().parents[2] / "shared" / "data"),
             str(Path(__file__).resolve().parents[1] / "shared" / "data")]
    for root in roots:
        if root:
            hits = sorted(glob.glob(os.path.join(root, "lobster", "*_orderbook_*.csv")))
            if hits:
                return Path(hits[0])
    return None


def lobster_rows(orderbook_csv=None, depth: int = ROW_DEPTH, slot: int = 0,
                 dedupe: bool = True) -> Rows:
    """Rows from a LOBSTER order-book file (ask p, ask s, bid p, bid s per level).

    Timestamps come from the matching ``*_message_N.csv`` when it sits beside the file. With
    ``dedupe`` (default) an event that leaves the top ``depth`` unchanged (hidden executions,
    deep orders) yields no row — the emulator's top-N row rule.
    """
    path = Path(orderbook_csv) if orderbook_csv is not None else default_lobster_path()
    if path is None or not path.exists():
        raise FileNotFoundError(f"LOBSTER order-book file not found: {orderbook_csv}")
    book = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    lv = book.reshape(book.shape[0], -1, 4)[:, :depth].copy()
    empty = (np.abs(lv[..., 0]) >= _LOBSTER_EMPTY) | (lv[..., 0] <= 0)
    lv[..., 0][empty] = 0
    lv[..., 1][empty] = 0
    empty = (np.abs(lv[..., 2]) >= _LOBSTER_EMPTY) | (lv[..., 2] <= 0)
    lv[..., 2][empty] = 0
    lv[..., 3][empty] = 0
    T = lv.shape[0]
    ts = np.zeros(T, dtype=np.int64)
    msg = Path(str(path).replace("_orderbook_", "_message_"))
    if msg.exists():
        t = np.loadtxt(msg, delimiter=",", usecols=0, dtype=np.float64, ndmin=1)
        if t.shape[0] == T:
            ts = np.rint(t * 1e9).astype(np.int64)
    seq = np.arange(1, T + 1, dtype=np.int64)
    if dedupe and T > 1:
        keep = np.ones(T, dtype=bool)
        keep[1:] = np.any(lv[1:] != lv[:-1], axis=(1, 2))
        lv, ts, seq = lv[keep], ts[keep], seq[keep]
    sym = path.name.split("_")[0]
    return Rows(lv, np.full(lv.shape[0], slot), ts, seq, [sym], source=f"lobster:{path.name}")


def synthetic_rows(n_updates: int = 20000, n_symbols: int = 4, depth: int = ROW_DEPTH, seed: int = 0,
                   signal: float = 2.0, p_move: float = 0.25, base_price: int = 500_000) -> Rows:
    """Random-walk top-N books with a learnable signal.

    Each update picks a symbol; with probability ``p_move`` its best quote moves one tick, up
    with probability sigmoid(3·signal·imb_1) (a thin ask queue tends to be consumed first, as
    in real books), otherwise a level's size changes. ``signal=0`` gives an unpredictable walk.
    Levels sit on consecutive ticks; the spread is 1 or 2 ticks.
    """
    rng = np.random.default_rng(seed)
    tick = 100
    S, N = n_symbols, depth
    bid = base_price + tick * rng.integers(-500, 500, size=S)
    spread = np.ones(S, dtype=np.int64)
    bq = rng.integers(1, 20, size=(S, N)) * 100
    aq = rng.integers(1, 20, size=(S, N)) * 100
    out = np.zeros((n_updates, N, 4), dtype=np.int64)
    slots = rng.integers(0, S, size=n_updates)
    u = rng.random((n_updates, 4))
    sizes = rng.integers(1, 20, size=(n_updates, 2)) * 100
    lvl = np.minimum(rng.geometric(0.5, size=n_updates) - 1, N - 1)
    ar = np.arange(N)
    for t in range(n_updates):
        s = slots[t]
        if u[t, 0] < p_move:
            imb = (bq[s, 0] - aq[s, 0]) / (bq[s, 0] + aq[s, 0])
            p_up = 1.0 / (1.0 + np.exp(-3.0 * signal * imb))
            up = u[t, 1] < p_up
            if spread[s] == 2:  # fill the gap on the side the price is moving to
                if up:
                    bid[s] += tick
                    bq[s] = np.concatenate(([sizes[t, 0]], bq[s, :-1]))
                else:
                    aq[s] = np.concatenate(([sizes[t, 1]], aq[s, :-1]))
                spread[s] = 1
            elif up:  # best ask consumed: ask book shifts away, maybe a new bid steps up
                aq[s] = np.concatenate((aq[s, 1:], [sizes[t, 1]]))
                if u[t, 2] < 0.5:
                    spread[s] = 2
                else:
                    bid[s] += tick
                    bq[s] = np.concatenate(([sizes[t, 0]], bq[s, :-1]))
            else:  # best bid consumed
                bid[s] -= tick
                bq[s] = np.concatenate((bq[s, 1:], [sizes[t, 0]]))
                if u[t, 2] < 0.5:
                    spread[s] = 2
                else:
                    aq[s] = np.concatenate(([sizes[t, 1]], aq[s, :-1]))
        else:  # size change at a (mostly shallow) level of one side
            k = lvl[t]
            q = bq if u[t, 1] < 0.5 else aq
            if u[t, 2] < 0.5:
                q[s, k] += sizes[t, 0]
            else:
                q[s, k] = max(100, q[s, k] - sizes[t, 1])
        ask = bid[s] + spread[s] * tick
        out[t, :, 0] = ask + ar * tick
        out[t, :, 1] = aq[s]
        out[t, :, 2] = bid[s] - ar * tick
        out[t, :, 3] = bq[s]
    ts = 34_200_000_000_000 + np.cumsum(rng.exponential(50_000, size=n_updates)).astype(np.int64)
    return Rows(out, slots, ts, np.arange(1, n_updates + 1), [f"SYN{i}" for i in range(S)],
                source=f"synthetic(n={n_updates},S={S},seed={seed},signal={signal})")


def load_rows(source, symbols=None, depth: int = ROW_DEPTH, seed: int = 0) -> Rows:
    """Rows from a :class:`Rows`, a LOBSTER csv, a capture path (emulator replay) or
    ``"synthetic"`` / ``"synthetic:N"`` (N updates) / ``"lobster"`` (the shared sample)."""
    if isinstance(source, Rows):
        return source
    if not isinstance(source, (str, os.PathLike)):
        return rows_from_replay(source, depth=depth)
    s = str(source)
    if s.startswith("synthetic"):
        n = int(s.split(":", 1)[1]) if ":" in s else 20000
        return synthetic_rows(n_updates=n, depth=depth, seed=seed)
    if s == "lobster":
        return lobster_rows(None, depth=depth)
    if s.endswith(".csv"):
        return lobster_rows(s, depth=depth)
    return replay_rows(s, symbols=symbols, depth=depth)


# --------------------------------------------------------------------------------------------
# labels and splits


def _mid2(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ap, bp = levels[:, 0, 0], levels[:, 0, 2]
    valid = (ap > 0) & (bp > 0)
    return np.where(valid, ap + bp, 0), valid


def make_labels(rows: Rows, horizon: int):
    """Per row: (label in {0,1,2}, labelled mask, index of the row the label looks at)."""
    T = len(rows)
    m2, valid = _mid2(rows.levels)
    order = np.argsort(rows.slot, kind="stable")
    s = rows.slot[order]
    fut = np.arange(T) + horizon
    ok_sorted = fut < T
    fut_c = np.minimum(fut, T - 1)
    ok_sorted &= s[fut_c] == s
    end_sorted = np.where(ok_sorted, order[fut_c], -1)
    end = np.empty(T, dtype=np.int64)
    end[order] = end_sorted
    ok = (end >= 0)
    ok &= valid & valid[np.maximum(end, 0)]
    d = m2[np.maximum(end, 0)] - m2
    y = np.where(d > 0, UP, np.where(d < 0, DOWN, FLAT)).astype(np.int64)
    y[~ok] = FLAT
    return y, ok, end


def _prev_move(rows: Rows, lag: int) -> np.ndarray:
    """Sign class of the mid move over the previous ``lag`` updates of the same symbol."""
    T = len(rows)
    m2, valid = _mid2(rows.levels)
    order = np.argsort(rows.slot, kind="stable")
    s = rows.slot[order]
    back = np.arange(T) - lag
    ok = back >= 0
    back_c = np.maximum(back, 0)
    ok &= s[back_c] == s
    src = np.empty(T, dtype=np.int64)
    src[order] = np.where(ok, order[back_c], -1)
    has = (src >= 0) & valid & valid[np.maximum(src, 0)]
    d = np.where(has, m2 - m2[np.maximum(src, 0)], 0)
    return np.where(d > 0, UP, np.where(d < 0, DOWN, FLAT)).astype(np.int64)


@dataclass
class Dataset:
    """Features ``X`` (n, F) float32 (or windows (n, W, F)), labels ``y`` and split indices."""

    X: np.ndarray
    y: np.ndarray
    row: np.ndarray  # index of each sample's row in the source Rows
    slot: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    horizon: int
    move_ticks: float  # mean |mid move| in ticks over the horizon, among moving train rows
    baselines: dict = field(default_factory=dict)  # name -> predicted class per sample
    source: str = ""
    window: int = 1

    @property
    def n_features(self) -> int:
        return self.X.shape[-1]

    def part(self, name: str):
        idx = getattr(self, name)
        return self.X[idx], self.y[idx]

    def class_balance(self, name: str = "train") -> list[float]:
        y = self.y[getattr(self, name)]
        return [float(np.mean(y == c)) if len(y) else 0.0 for c in range(len(CLASSES))]


def _windows(feats: np.ndarray, slots: np.ndarray, window: int) -> np.ndarray:
    """(T, W, F): each row's last W feature vectors of its own symbol (oldest first, padded with
    the symbol's first vector)."""
    T = feats.shape[0]
    order = np.argsort(slots, kind="stable")
    s = slots[order]
    new = np.ones(T, dtype=bool)
    new[1:] = s[1:] != s[:-1]
    starts = np.maximum.accumulate(np.where(new, np.arange(T), 0))
    pos = np.arange(T)
    fs = feats[order]
    out_sorted = np.empty((T, window, feats.shape[1]), dtype=feats.dtype)
    for j in range(window):
        lag = window - 1 - j
        out_sorted[:, j] = fs[np.maximum(pos - lag, starts)]
    out = np.empty_like(out_sorted)
    out[order] = out_sorted
    return out


def build_dataset(rows: Rows, horizon: int = 10, splits=(0.7, 0.15, 0.15),
                  window: int = 1) -> Dataset:
    """Features and labels of ``rows`` with chronological train/val/test splits (purged)."""
    if abs(sum(splits) - 1.0) > 1e-9 or len(splits) != 3:
        raise ValueError("splits must be three fractions summing to 1")
    T = len(rows)
    feats = features_batch(rows.levels, rows.slot)
    y, ok, end = make_labels(rows, horizon)
    b1 = int(round(T * splits[0]))
    b2 = int(round(T * (splits[0] + splits[1])))
    idx = np.arange(T)
    part = np.where(idx < b1, 0, np.where(idx < b2, 1, 2))
    bound = np.array([b1, b2, T])
    ok &= end < bound[part]  # purge: the label's row must lie in the sample's own split
    rows_idx = idx[ok]
    X = _windows(feats, rows.slot, window)[ok] if window > 1 else feats[ok]
    yy = y[ok]
    p = part[ok]
    n = len(rows_idx)
    pos = np.arange(n)
    train, val, test = pos[p == 0], pos[p == 1], pos[p == 2]
    # expected move size for the fair value: mean |Δmid| (ticks) of the moving train labels
    m2, _ = _mid2(rows.levels)
    dm = np.abs(m2[np.maximum(end[rows_idx], 0)] - m2[rows_idx]) / (2.0 * 100)
    mv = dm[train][yy[train] != FLAT]
    move_ticks = float(mv.mean()) if mv.size else 1.0
    baselines = {
        "persistence_last": _prev_move(rows, 1)[rows_idx],
        "persistence_h": _prev_move(rows, horizon)[rows_idx],
    }
    return Dataset(X.astype(DTYPE, copy=False), yy, rows_idx, rows.slot[rows_idx], train, val,
                   test, horizon, move_ticks, baselines, rows.source, window)


def lobster_dataset(orderbook_csv=None, horizon: int = 10, depth: int = ROW_DEPTH,
                    splits=(0.7, 0.15, 0.15), window: int = 1) -> Dataset:
    """:func:`build_dataset` on a LOBSTER order-book file (default: the shared AAPL sample)."""
    return build_dataset(lobster_rows(orderbook_csv, depth=depth), horizon, splits, window)


