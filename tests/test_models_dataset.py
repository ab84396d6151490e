"""Datasets: labels, chronological purged splits, row sources (replay adapter, LOBSTER)."""

from __future__ import annotations

import numpy as np
import pytest

from tickwire.models.dataset import (
    DOWN, FLAT, UP, Rows, _windows, build_dataset, default_lobster_path, lobster_dataset,
    lobster_rows, make_labels, rows_from_replay, synthetic_rows,
)
from tickwire.models.features import N_FEATURES

LOBSTER = default_lobster_path()
needs_lobster = pytest.mark.skipif(LOBSTER is None, reason="LOBSTER sample (../shared/data) absent")


def _rows_from_mids(mid2s, slots):
    """One-level books whose ask+bid equals the given mid2 (spread 2 ticks)."""
    m = np.asarray(mid2s, dtype=np.int64)
    lv = np.zeros((len(m), 1, 4), dtype=np.int64)
    lv[:, 0, 0] = m // 2 + 100
    lv[:, 0, 2] = m - lv[:, 0, 0]
    lv[:, 0, 1] = lv[:, 0, 3] = 100
    return Rows(lv, slots, np.arange(len(m)), np.arange(1, len(m) + 1))


def test_labels_per_symbol():
    # slot 0 mids: 100, 102, 102, 98 ; slot 1 mids: 50, 50, 52 (interleaved)
    r = _rows_from_mids([20000, 10000, 20400, 10000, 20400, 10400, 19600],
                        [0, 1, 0, 1, 0, 1, 0])
    y, ok, end = make_labels(r, horizon=2)
    # row 0 (slot 0) looks at its 2nd next update = row 4 (mid 102) -> up
    assert ok[0] and end[0] == 4 and y[0] == UP
    assert ok[1] and end[1] == 5 and y[1] == UP   # slot 1: 50 -> 52
    assert ok[2] and end[2] == 6 and y[2] == DOWN  # 102 -> 98
    assert not ok[3] and not ok[4] and not ok[5] and not ok[6]
    y1, ok1, _ = make_labels(r, horizon=1)
    assert ok1[2] and y1[2] == FLAT  # 102 -> 102


def test_splits_are_chronological_and_purged():
    rows = synthetic_rows(3000, 3, seed=4)
    ds = build_dataset(rows, horizon=10)
    assert ds.X.shape == (len(ds.y), N_FEATURES) and ds.X.dtype == np.float32
    tr, va, te = ds.row[ds.train], ds.row[ds.val], ds.row[ds.test]
    assert tr.max() < va.min() and va.max() < te.min()
    _, _, end = make_labels(rows, 10)
    assert end[tr].max() < va.min()  # no train label looks into validation
    assert end[va].max() < te.min()
    assert abs(len(tr) / len(ds.y) - 0.7) < 0.03
    assert set(ds.baselines) == {"persistence_last", "persistence_h"}
    assert ds.move_ticks > 0


def test_windows_pad_with_first_vector():
    f = np.arange(10, dtype=np.float32).reshape(5, 2)
    w = _windows(f, np.array([0, 1, 0, 0, 1]), 3)
    np.testing.assert_array_equal(w[3], f[[0, 2, 3]])
    np.testing.assert_array_equal(w[0], f[[0, 0, 0]])
    np.testing.assert_array_equal(w[4], f[[1, 1, 4]])


def test_synthetic_is_seeded():
    a, b = synthetic_rows(500, 2, seed=3), synthetic_rows(500, 2, seed=3)
    np.testing.assert_array_equal(a.levels, b.levels)
    assert not np.array_equal(a.levels, synthetic_rows(500, 2, seed=4).levels)
    assert (a.levels[:, 0, 0] > a.levels[:, 0, 2]).all()  # never crossed
    assert (a.levels[:, :, 0] % 100 == 0).all()


class _Result:
    def __init__(self, rows):
        self.rows = rows


def test_rows_from_replay_shapes():
    rows = synthetic_rows(50, 2, depth=5, seed=0)
    ns = type("NS", (), {})()
    ns.levels, ns.slot, ns.timestamp, ns.sequence = rows.levels, rows.slot, rows.timestamp, \
        rows.sequence
    r = rows_from_replay(_Result(ns))
    np.testing.assert_array_equal(r.levels, rows.levels)
    r = rows_from_replay({"rows": {"levels": rows.levels.reshape(50, -1), "slot": rows.slot,
                                   "timestamp": rows.timestamp, "sequence": rows.sequence}},
                         depth=3)
    assert r.levels.shape == (50, 3, 4)
    np.testing.assert_array_equal(r.levels, rows.levels[:, :3])
    # per-level columns in a structured array
    dt = [("slot", "u2"), ("timestamp", "u8"), ("sequence", "u8"), ("ask_price", "u4", 5),
          ("ask_size", "u4", 5), ("bid_price", "u4", 5), ("bid_size", "u4", 5)]
    sa = np.zeros(50, dtype=dt)
    sa["slot"], sa["timestamp"], sa["sequence"] = rows.slot, rows.timestamp, rows.sequence
    for k, name in enumerate(("ask_price", "ask_size", "bid_price", "bid_size")):
        sa[name] = rows.levels[:, :, k]
    r = rows_from_replay(_Result(sa))
    np.testing.assert_array_equal(r.levels, rows.levels)
    np.testing.assert_array_equal(r.slot, rows.slot)
    with pytest.raises(TypeError):
        rows_from_replay(_Result({"levels": rows.levels}))


@needs_lobster
def test_lobster_rows_and_dataset():
    raw = np.loadtxt(LOBSTER, delimiter=",", dtype=np.int64)
    r = lobster_rows(LOBSTER, depth=10, dedupe=False)
    assert r.levels.shape == (raw.shape[0], 10, 4)
    np.testing.assert_array_equal(r.levels.reshape(len(r), -1), raw)  # column order kept
    assert (np.diff(r.timestamp) >= 0).all() and r.timestamp[0] > 34_200 * 10**9
    d = lobster_rows(LOBSTER)
    assert len(d) < len(r)  # hidden executions etc. leave the top 10 unchanged
    assert np.any(d.levels[1:] != d.levels[:-1], axis=(1, 2)).all()
    ds = lobster_dataset(LOBSTER, horizon=10)
    assert len(ds.test) > 100 and ds.move_ticks > 0
    assert d.symbols == ["AAPL"]
