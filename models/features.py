"""Order-book features: the one definition shared by every backend.

The table :data:`FEATURES` fixes the feature vector's order; :data:`DTYPE` (float32) its type.
Everything else — the vectorised batch builder for datasets (:func:`features_batch`), the
streaming per-update builder for the live slow path (:class:`FeatureStream`), and the C++/CUDA
core in ``kernels/core.cuh`` (whose constants are generated from this module into
``kernels/feature_spec.cuh``, see :func:`render_header`) — computes exactly these quantities in
exactly this order, with the same float64 intermediate arithmetic, so the backends agree to the
last float32 bit on the CPU.

Input rows are top-N books in ITCH units: ``levels[t, k] = (ask_price, ask_size, bid_price,
bid_size)`` for level ``k`` (0 = best), price 1/10000 USD, 0 = empty level. Prices stay integers
until the final division so that nothing depends on the price's magnitude.

Per-symbol streaming state (all zeros is the initial state, so a fresh GPU buffer is a memset):
a ring of the last :data:`HIST` mids (for returns), a ring of the last OFI increments, the previous
best bid/ask price and size, the running OFI window sum, the EWMA variance and an update counter.

Feature semantics (``mid2 = ask1 + bid1``, twice the mid, an exact integer):

- a row is *valid* when both best prices are non-zero; an invalid row carries the last valid mid
  forward, and the mid history before a symbol's first valid mid reads as that first mid (so no
  return is ever measured against "no price");
- ``spread`` = (ask1 − bid1) / tick; 0 on invalid rows;
- ``imb_k`` = (B_k − A_k) / (B_k + A_k) with B_k, A_k the bid/ask sizes summed over the first
  min(k, N) levels (0 when both are 0);
- ``wmid_off`` = weighted mid − mid, in ticks: (ask·bid_size + bid·ask_size)/(bid_size+ask_size)
  − mid = spread/2 · imb_1. Stoikov (2017) calls this the weighted mid: a noisy first-order
  micro-price;
- ``micro_off`` = spread/2 · imb_3, in ticks: the imbalance-adjusted price mid + g(I, S) of
  Stoikov (2017) with the fitted adjustment g replaced by its linear form over a 3-level
  imbalance, which flickers less than the level-1 weighted mid (the model learns the rest of g);
- ``ofi`` = order-flow imbalance of Cont, Kukanov & Stoikov (2014): per update
  e = 1{Pb≥Pb'}·qb − 1{Pb≤Pb'}·qb' − 1{Pa≤Pa'}·qa + 1{Pa≥Pa'}·qa' (primes: previous update of
  the same symbol; an empty ask is +∞, an empty bid 0; e = 0 on a symbol's first update), summed
  over the last :data:`OFI_WINDOW` updates and divided by the current level-1 depth
  max(1, (qb+qa)/2);
- ``ret_k`` = (mid_t − mid_{t−k}) / tick over k updates of the same symbol (clamped to the
  symbol's first update);
- ``vol`` = sqrt of the EWMA (α = 2/(span+1)) of squared 1-update mid changes in ticks.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Feature", "FEATURES", "FEATURE_NAMES", "N_FEATURES", "DTYPE", "TICK", "IMB_LEVELS",
    "RET_LAGS", "OFI_WINDOW", "VOL_SPAN", "VOL_ALPHA", "HIST", "EHIST", "SPEC_VERSION",
    "features_batch", "FeatureStream", "render_header", "spec_dict",
]

DTYPE = np.float32
from ..spec.values import TICK  # noqa: E402  (ITCH price units per cent)
from ..spec.capacity import GATEWARE, ROW_DEPTH  # noqa: E402
IMB_LEVELS = (1, 3, 5, 10)
RET_LAGS = (1, 5, 20)
OFI_WINDOW = 10
VOL_SPAN = 50
VOL_ALPHA = 2.0 / (VOL_SPAN + 1)
HIST = 32  # mid ring (power of two, > max(RET_LAGS))
EHIST = 16  # OFI ring (power of two, > OFI_WINDOW)
ASK_EMPTY = 1 << 40  # an empty ask compares as +infinity in the OFI rule
SPEC_VERSION = 1  # bump when a definition changes: saved models record it


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    doc: str


FEATURES: tuple[Feature, ...] = (
    Feature("spread", "ticks", "best ask − best bid"),
    *(Feature(f"imb_{k}", "[-1,1]", f"(bid−ask)/(bid+ask) size over the top {k} levels")
      for k in IMB_LEVELS),
    Feature("wmid_off", "ticks", "level-1 size-weighted mid − mid (Stoikov weighted mid)"),
    Feature("micro_off", "ticks", "spread/2 · imb_3 (linear Stoikov micro-price adjustment)"),
    Feature("ofi", "depth", f"Cont–Kukanov–Stoikov OFI over {OFI_WINDOW} updates / level-1 depth"),
    *(Feature(f"ret_{k}", "ticks", f"mid change over the last {k} updates") for k in RET_LAGS),
    Feature("vol", "ticks", f"sqrt EWMA (span {VOL_SPAN}) of squared 1-update mid changes"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)
_IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}

assert max(RET_LAGS) < HIST and OFI_WINDOW < EHIST
assert HIST & (HIST - 1) == 0 and EHIST & (EHIST - 1) == 0


def spec_dict() -> dict:
    """The feature specification as plain data (saved into every model's metadata)."""
    return {
        "version": SPEC_VERSION, "names": list(FEATURE_NAMES), "tick": TICK,
        "imb_levels": list(IMB_LEVELS), "ret_lags": list(RET_LAGS), "ofi_window": OFI_WINDOW,
        "vol_span": VOL_SPAN, "dtype": "float32",
    }


# --------------------------------------------------------------------------------------------
# batch (datasets)


def _as_levels(levels) -> np.ndarray:
    lv = np.asarray(levels)
    if lv.ndim != 3 or lv.shape[2] != 4:
        raise ValueError(f"levels must have shape (T, N, 4), got {lv.shape}")
    if lv.dtype.kind == "f":
        lv = np.rint(lv)
    return lv.astype(np.int64, copy=False)


def _level_parts(lv: np.ndarray):
    """Split (.., N, 4) int64 books into price/size arrays, zeroing sizes of empty levels."""
    ap, aq, bp, bq = lv[..., 0], lv[..., 1], lv[..., 2], lv[..., 3]
    aq = np.where(ap > 0, aq, 0)
    bq = np.where(bp > 0, bq, 0)
    return ap, aq, bp, bq


def _imbalance(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    tot = b + a
    return np.where(tot > 0, (b - a).astype(np.float64) / np.maximum(tot, 1), 0.0)


def _half_spread_times(spread_units, b, a, valid) -> np.ndarray:
    # ((ask−bid)·(B−A)) / (2·(B+A)·tick) — the operation order the C core uses too
    tot = b + a
    ok = valid & (tot > 0)
    num = spread_units.astype(np.float64) * (b - a).astype(np.float64)
    den = 2.0 * tot.astype(np.float64) * TICK
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def _group_layout(slots: np.ndarray):
    """Stable order by slot, the start of each row's group in that order, and prev-row index."""
    order = np.argsort(slots, kind="stable")
    s = slots[order]
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] != s[:-1]
    starts = np.maximum.accumulate(np.where(new, np.arange(len(s)), 0))
    return order, new, starts


def _make_ewma():
    # the one sequential piece of the batch path: a recurrence, compiled rather than looped
    from numba import njit

    @njit(cache=True)
    def ewma(d, new, alpha):  # pragma: no cover - compiled
        out = np.empty_like(d)
        var = 0.0
        for i in range(d.shape[0]):
            if new[i]:
                var = 0.0
            var = (1.0 - alpha) * var + alpha * (d[i] * d[i])
            out[i] = var
        return out

    return ewma


_ewma_sq = _make_ewma()


def features_batch(levels, slots=None) -> np.ndarray:
    """Features of every row, rows in chronological order; ``slots`` separates symbols.

    Returns a (T, N_FEATURES) float32 array equal to feeding the rows one by one through a fresh
    :class:`FeatureStream`.
    """
    lv = _as_levels(levels)
    T, N = lv.shape[0], lv.shape[1]
    slots = np.zeros(T, dtype=np.int64) if slots is None else np.asarray(slots, dtype=np.int64)
    if slots.shape != (T,):
        raise ValueError("slots must have one entry per row")
    out = np.zeros((T, N_FEATURES), dtype=DTYPE)
    if T == 0:
        return out
    ap, aq, bp, bq = _level_parts(lv)
    ap1, aq1, bp1, bq1 = ap[:, 0], aq[:, 0], bp[:, 0], bq[:, 0]
    valid = (ap1 > 0) & (bp1 > 0)
    spread_units = np.where(valid, ap1 - bp1, 0)

    cum_b = np.cumsum(bq, axis=1)
    cum_a = np.cumsum(aq, axis=1)
    f = np.zeros((T, N_FEATURES), dtype=np.float64)
    f[:, _IDX["spread"]] = spread_units.astype(np.float64) / TICK
    for k in IMB_LEVELS:
        L = min(k, N) - 1
        f[:, _IDX[f"imb_{k}"]] = _imbalance(cum_b[:, L], cum_a[:, L])
    f[:, _IDX["wmid_off"]] = _half_spread_times(spread_units, bq1, aq1, valid)
    L3 = min(3, N) - 1
    f[:, _IDX["micro_off"]] = _half_spread_times(spread_units, cum_b[:, L3], cum_a[:, L3], valid)

    # per-symbol sequences, in stable slot order
    order, new, starts = _group_layout(slots)
    pos = np.arange(T)

    # order-flow imbalance increments
    pb, qb, qa = bp1[order], bq1[order], aq1[order]
    pa = np.where(ap1 > 0, ap1, ASK_EMPTY)[order]
    prev = np.maximum(pos - 1, 0)
    pb0, qb0, pa0, qa0 = pb[prev], qb[prev], pa[prev], qa[prev]
    e = (np.where(pb >= pb0, qb, 0) - np.where(pb <= pb0, qb0, 0)
         - np.where(pa <= pa0, qa, 0) + np.where(pa >= pa0, qa0, 0))
    e[new] = 0
    cs = np.concatenate(([0], np.cumsum(e)))
    ofi_sum = cs[pos + 1] - cs[np.maximum(pos + 1 - OFI_WINDOW, starts)]
    depth = np.maximum(1.0, 0.5 * (qb + qa).astype(np.float64))
    ofi = np.empty(T)
    ofi[order] = ofi_sum.astype(np.float64) / depth
    f[:, _IDX["ofi"]] = ofi

    # mid: carry the last valid mid forward, history before the first valid mid reads as it
    m2 = np.where(valid, ap1 + bp1, 0)[order]
    v = valid[order]
    last_valid = np.maximum.accumulate(np.where(v, pos, -1))
    have = last_valid >= starts
    # first valid position of each symbol's group (T if it never has a mid)
    grp_id = np.cumsum(new) - 1
    gfirst = np.full(grp_id[-1] + 1, T, dtype=np.int64)
    np.minimum.at(gfirst, grp_id, np.where(v, pos, T))
    first_valid = gfirst[grp_id]
    src = np.where(have, last_valid, np.minimum(first_valid, T - 1))
    mid2 = np.where(have | (first_valid < T), m2[src], 0)
    for k in RET_LAGS:
        lag = np.maximum(pos - k, starts)
        r = (mid2 - mid2[lag]).astype(np.float64) / (2.0 * TICK)
        col = np.empty(T)
        col[order] = r
        f[:, _IDX[f"ret_{k}"]] = col
    d = (mid2 - mid2[np.maximum(pos - 1, starts)]).astype(np.float64) / (2.0 * TICK)
    var = _ewma_sq(d, new, VOL_ALPHA)
    vol = np.empty(T)
    vol[order] = np.sqrt(var)
    f[:, _IDX["vol"]] = vol
    out[:] = f
    return out


# --------------------------------------------------------------------------------------------
# streaming (live slow path)


def _make_stream_step():
    from numba import njit

    H, EH, W, A = HIST, EHIST, OFI_WINDOW, VOL_ALPHA
    IMB = np.array(IMB_LEVELS, dtype=np.int64)
    LAGS = np.array(RET_LAGS, dtype=np.int64)
    NI, NL = len(IMB_LEVELS), len(RET_LAGS)
    I_SPREAD, I_IMB, I_WMID, I_MICRO = _IDX["spread"], _IDX["imb_1"], _IDX["wmid_off"], _IDX[
        "micro_off"]
    I_OFI, I_RET, I_VOL = _IDX["ofi"], _IDX["ret_1"], _IDX["vol"]
    BIG = ASK_EMPTY

    @njit(cache=True)
    def sizes(lv, r, n):  # pragma: no cover
        """(bid, ask) shares over the first ``n`` levels of row ``r`` (empty levels: 0)."""
        bs = 0
        as_ = 0
        for i in range(n):
            if lv[r, i, 2] > 0:
                bs += lv[r, i, 3]
            if lv[r, i, 0] > 0:
                as_ += lv[r, i, 1]
        return bs, as_

    @njit(cache=True)
    def offset(valid, su, b, a):  # pragma: no cover
        """Size-weighted offset from the mid, in ticks, of ``b`` bid and ``a`` ask shares."""
        t = b + a
        if valid and t > 0:
            return np.float32((float(su) * float(b - a)) / (2.0 * float(t) * TICK))
        return np.float32(0.0)

    @njit(cache=True)
    def step(mid, ering, prev, ofis, var, n, have, slots, lv, out):  # pragma: no cover
        depth = lv.shape[1]
        for r in range(slots.shape[0]):
            s = slots[r]
            ap1 = lv[r, 0, 0]
            bp1 = lv[r, 0, 2]
            aq1 = lv[r, 0, 1] if ap1 > 0 else 0
            bq1 = lv[r, 0, 3] if bp1 > 0 else 0
            valid = ap1 > 0 and bp1 > 0
            su = ap1 - bp1 if valid else 0
            o = out[r]
            o[I_SPREAD] = np.float32(su / TICK)
            for j in range(NI):
                bs, as_ = sizes(lv, r, min(IMB[j], depth))
                tot = bs + as_
                o[I_IMB + j] = np.float32((bs - as_) / tot) if tot > 0 else np.float32(0.0)
            b3, a3 = sizes(lv, r, min(3, depth))
            o[I_WMID] = offset(valid, su, bq1, aq1)
            o[I_MICRO] = offset(valid, su, b3, a3)
            # OFI
            k = n[s]
            e = 0
            if k > 0:
                pb0 = prev[s, 2]
                qb0 = prev[s, 3]
                pa0 = prev[s, 0] if prev[s, 0] > 0 else BIG
                qa0 = prev[s, 1]
                pa = ap1 if ap1 > 0 else BIG
                e = ((bq1 if bp1 >= pb0 else 0) - (qb0 if bp1 <= pb0 else 0)
                     - (aq1 if pa <= pa0 else 0) + (qa0 if pa >= pa0 else 0))
            prev[s, 0] = ap1
            prev[s, 1] = aq1
            prev[s, 2] = bp1
            prev[s, 3] = bq1
            if k >= W:
                ofis[s] -= ering[s, (k - W) % EH]
            ofis[s] += e
            ering[s, k % EH] = e
            o[I_OFI] = np.float32(float(ofis[s]) / max(1.0, 0.5 * float(bq1 + aq1)))
            # mid history
            if valid:
                m2 = ap1 + bp1
                if not have[s]:
                    for i in range(H):
                        mid[s, i] = m2
                    have[s] = True
            elif have[s]:
                m2 = mid[s, (k - 1) % H]
            else:
                m2 = 0
            mid[s, k % H] = m2
            for j in range(NL):
                o[I_RET + j] = np.float32(float(m2 - mid[s, (k + H - LAGS[j]) % H]) / (2.0 * TICK))
            d = float(m2 - mid[s, (k + H - 1) % H]) / (2.0 * TICK)
            var[s] = (1.0 - A) * var[s] + A * (d * d)
            o[I_VOL] = np.float32(np.sqrt(var[s]))
            n[s] = k + 1

    return step


_stream_step = _make_stream_step()


class FeatureStream:
    """Streaming per-update features for ``n_slots`` symbols (state per slot, zero-initialised).

    ``update(slot, levels_row)`` and ``update_many(slots, levels)`` process updates in the order
    given and return their feature vectors; a slot's state only sees its own updates.
    """

    def __init__(self, n_slots: int = GATEWARE["symbols"], depth: int = ROW_DEPTH):
        self.n_slots = int(n_slots)
        self.depth = int(depth)
        self.reset()

    def reset(self, slot: int | None = None) -> None:
        if slot is None:
            S = self.n_slots
            self._mid = np.zeros((S, HIST), dtype=np.int64)
            self._ering = np.zeros((S, EHIST), dtype=np.int64)
            self._prev = np.zeros((S, 4), dtype=np.int64)
            self._ofis = np.zeros(S, dtype=np.int64)
            self._var = np.zeros(S, dtype=np.float64)
            self._n = np.zeros(S, dtype=np.int64)
            self._have = np.zeros(S, dtype=np.bool_)
        else:
            for a in (self._mid, self._ering, self._prev, self._ofis, self._var, self._n,
                      self._have):
                a[slot] = 0

    def updates_seen(self, slot: int) -> int:
        return int(self._n[slot])

    def update_many(self, slots, levels, out: np.ndarray | None = None) -> np.ndarray:
        lv = _as_levels(levels)
        sl = np.asarray(slots, dtype=np.int64).reshape(-1)
        if sl.shape[0] != lv.shape[0]:
            raise ValueError("one slot per row")
        if sl.size and (sl.min() < 0 or sl.max() >= self.n_slots):
            raise ValueError(f"slot out of range [0, {self.n_slots})")
        if out is None:
            out = np.empty((lv.shape[0], N_FEATURES), dtype=DTYPE)
        _stream_step(self._mid, self._ering, self._prev, self._ofis, self._var, self._n,
                     self._have, sl, lv, out)
        return out

    def update(self, slot: int, levels_row) -> np.ndarray:
        lv = np.asarray(levels_row)
        return self.update_many(np.array([slot]), lv.reshape(1, *lv.shape[-2:]))[0]


# --------------------------------------------------------------------------------------------
# C/CUDA header generation


def render_header() -> str:
    """``kernels/feature_spec.cuh``: the constants of this table for the C++/CUDA core."""
    lines = [
        "// GENERATED by `python -m tickwire.models.features --header` from models/features.py.",
        "// Do not edit: change the table there and regenerate (a test checks they agree).",
        "#pragma once",
        f"#define TW_SPEC_VERSION {SPEC_VERSION}",
        f"#define TW_N_FEATURES {N_FEATURES}",
        f"#define TW_TICK {TICK}",
        f"#define TW_HIST {HIST}",
        f"#define TW_EHIST {EHIST}",
        f"#define TW_OFI_WINDOW {OFI_WINDOW}",
        f"#define TW_VOL_ALPHA {VOL_ALPHA!r}",
        f"#define TW_ASK_EMPTY {ASK_EMPTY}LL",
        f"#define TW_N_IMB {len(IMB_LEVELS)}",
        "#define TW_IMB_LEVELS {" + ", ".join(map(str, IMB_LEVELS)) + "}",
        f"#define TW_N_LAGS {len(RET_LAGS)}",
        "#define TW_RET_LAGS {" + ", ".join(map(str, RET_LAGS)) + "}",
    ]
    for i, name in enumerate(FEATURE_NAMES):
        lines.append(f"#define TW_F_{name.upper()} {i}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    if "--header" in sys.argv:
        sys.stdout.write(render_header())
    else:
        for i, f in enumerate(FEATURES):
            print(f"{i:2d} {f.name:10s} {f.unit:7s} {f.doc}")
