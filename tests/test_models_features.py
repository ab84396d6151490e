"""Feature definitions: hand-computed values, batch == streaming, the generated C header."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tickwire.models import features as F
from tickwire.models.dataset import synthetic_rows
from tickwire.models.features import FEATURE_NAMES, FeatureStream, features_batch

KERNELS = Path(F.__file__).resolve().parents[1] / "kernels"


def col(name):
    return FEATURE_NAMES.index(name)


def test_table_order_and_dtype():
    assert F.N_FEATURES == len(F.FEATURES) == len(set(FEATURE_NAMES))
    assert FEATURE_NAMES[:2] == ("spread", "imb_1") and FEATURE_NAMES[-1] == "vol"
    out = features_batch(np.zeros((3, 2, 4), dtype=np.int64))
    assert out.dtype == np.float32 and out.shape == (3, F.N_FEATURES)


def test_generated_header_in_sync():
    # kernels/feature_spec.cuh is generated from the table; regenerate with
    # python -m tickwire.models.features --header > kernels/feature_spec.cuh
    assert (KERNELS / "feature_spec.cuh").read_text() == F.render_header()


def _book(rows):
    """rows of ((ask_p, ask_q, bid_p, bid_q) level 1, level 2)."""
    return np.array(rows, dtype=np.int64)


def test_hand_computed_sequence():
    lv = _book([
        [(10200, 300, 10000, 100), (10300, 100, 9900, 100)],
        [(10200, 300, 10000, 200), (10300, 100, 9900, 100)],  # bid queue +100
        [(10100, 50, 10000, 200), (10200, 300, 9900, 100)],   # ask improves, 50 shares
        [(10100, 50, 0, 0), (10200, 300, 0, 0)],              # bid side empties
    ])
    f = features_batch(lv)
    a = F.VOL_ALPHA
    # row 0: spread 2 ticks; imbalances; weighted mid = spread/2 * imb_1
    assert f[0, col("spread")] == 2.0
    assert f[0, col("imb_1")] == pytest.approx(-0.5)
    assert f[0, col("imb_3")] == pytest.approx(-1 / 3)  # only 2 levels: uses both
    assert f[0, col("wmid_off")] == pytest.approx(-0.5)
    assert f[0, col("micro_off")] == pytest.approx(-1 / 3)
    assert f[0, col("ofi")] == 0.0
    # OFI increments: +100 (bid queue), -50 (ask improves: -q_new), -200 (bid leaves: -q_old)
    assert f[1, col("ofi")] == pytest.approx(100 / 250)
    assert f[2, col("ofi")] == pytest.approx(50 / 125)
    assert f[3, col("ofi")] == pytest.approx(-150 / 25)
    # mid: 101.00 -> 100.50 (ret -0.5 ticks); the empty-bid row carries the mid
    assert f[2, col("ret_1")] == pytest.approx(-0.5)
    assert f[2, col("ret_20")] == pytest.approx(-0.5)  # clamped to the first update
    assert f[3, col("ret_1")] == 0.0 and f[3, col("ret_5")] == pytest.approx(-0.5)
    assert f[3, col("spread")] == 0.0 and f[3, col("wmid_off")] == 0.0
    assert f[3, col("imb_1")] == pytest.approx(-1.0)
    assert f[2, col("vol")] == pytest.approx(math.sqrt(a * 0.25), rel=1e-6)
    assert f[3, col("vol")] == pytest.approx(math.sqrt((1 - a) * a * 0.25), rel=1e-6)


def test_history_before_first_valid_mid_reads_as_it():
    lv = _book([[(0, 0, 10000, 10)], [(10100, 10, 10000, 10)], [(10300, 10, 10100, 10)]])
    f = features_batch(lv)
    assert np.all(f[:2, col("ret_1"):col("vol") + 1] == 0)  # no return against "no price"
    assert f[2, col("ret_1")] == 1.5 and f[2, col("ret_20")] == 1.5


def _with_holes(rows):
    lv = rows.levels.copy()
    lv[100:105, 0, 0:2] = 0  # ask side gone
    lv[200:203, 0, 2:4] = 0  # bid side gone
    lv[0:3, 0, 0] = 0
    lv[300, 3, :] = 0  # a hole deeper in the book
    return lv


def test_batch_equals_streaming_exactly():
    rows = synthetic_rows(4000, 3, seed=5)
    lv = _with_holes(rows)
    fb = features_batch(lv, rows.slot)
    fs = FeatureStream(4, lv.shape[1])
    # mixed call sizes: state must carry across calls
    parts = [fs.update_many(rows.slot[i:i + n], lv[i:i + n])
             for i, n in ((0, 1), (1, 999), (1000, 3000))]
    np.testing.assert_array_equal(np.concatenate(parts), fb)
    one = FeatureStream(4, lv.shape[1])
    np.testing.assert_array_equal(
        np.stack([one.update(int(s), lv[i]) for i, s in enumerate(rows.slot[:200])]), fb[:200])


def test_symbols_are_independent():
    rows = synthetic_rows(2000, 2, seed=7)
    fb = features_batch(rows.levels, rows.slot)
    for s in (0, 1):
        m = rows.slot == s
        np.testing.assert_array_equal(features_batch(rows.levels[m]), fb[m])


def test_shallow_books_and_float_input():
    rows = synthetic_rows(500, 2, depth=2, seed=1)
    f = features_batch(rows.levels.astype(np.float64), rows.slot)
    np.testing.assert_array_equal(f[:, col("imb_3")], f[:, col("imb_10")])  # both use 2 levels
    assert np.isfinite(f).all()


def test_reset_slot():
    rows = synthetic_rows(300, 1, seed=2)
    fs = FeatureStream(2)
    a = fs.update_many(rows.slot, rows.levels)
    fs.reset(0)
    np.testing.assert_array_equal(fs.update_many(rows.slot, rows.levels), a)
    with pytest.raises(ValueError):
        fs.update(5, rows.levels[0])
