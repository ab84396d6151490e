"""The CUDA arithmetic core (core.cuh) built for the CPU with g++, against numpy.

The GPU kernels are thin index computations around these same functions, so this checks the
GPU arithmetic without a GPU (the GPU run itself is in test_kernels_runners, marked gpu).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tickwire.kernels.cpu_core import CpuCore, segments
from tickwire.models.dataset import default_lobster_path, lobster_rows, synthetic_rows
from tickwire.models.features import EHIST, HIST, N_FEATURES, SPEC_VERSION, features_batch
from tickwire.models.mlp import flat_params, numpy_forward, random_mlp

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")

# MLP: float32 with a different summation order than numpy's BLAS: a few ulps of the
# probabilities. Features: identical (same double-precision operations, -ffp-contract=off).
MLP_ATOL = 2e-6


@pytest.fixture(scope="module")
def core():
    return CpuCore()


def test_core_constants(core):
    assert core.n_features == N_FEATURES
    assert core.spec_version == SPEC_VERSION
    assert core.state_bytes == 8 * (HIST + EHIST + 8)  # TW_STATE_BYTES, no padding


def _books():
    rows = synthetic_rows(5000, 5, seed=21)
    lv = rows.levels.copy()
    lv[50:60, 0, :2] = 0
    lv[70:75, 0, 2:] = 0
    lv[80, :, :] = 0  # an empty book
    lv[90, 4:, :] = 0  # a shallow one
    return rows, lv


def test_features_bit_exact(core):
    rows, lv = _books()
    ref = features_batch(lv, rows.slot)
    np.testing.assert_array_equal(core.features(lv, rows.slot, n_slots=8), ref)


@pytest.mark.skipif(default_lobster_path() is None, reason="LOBSTER sample absent")
def test_features_bit_exact_lobster(core):
    r = lobster_rows()
    np.testing.assert_array_equal(core.features(r.levels, r.slot), features_batch(r.levels))


def test_segments_layout():
    order, off, seg_slot = segments(np.array([3, 1, 3, 0, 1, 3]))
    assert seg_slot.tolist() == [0, 1, 3]
    assert off.tolist() == [0, 1, 3, 6]
    assert order.tolist() == [3, 1, 4, 0, 2, 5]  # arrival order kept within a slot


def test_kernel_grid_in_chunks(core):
    # the feature kernel's grid over successive batches (state resident between launches)
    rows, lv = _books()
    ref = features_batch(lv, rows.slot)
    states = core.new_states(8)
    got = np.zeros_like(ref)
    for i in range(0, len(rows), 333):
        feats, last, seg_slot = core.features_segments(lv[i:i + 333], rows.slot[i:i + 333],
                                                       states)
        got[i:i + 333] = feats
        sl = rows.slot[i:i + 333]
        for g, s in enumerate(seg_slot):
            np.testing.assert_array_equal(last[g], feats[np.flatnonzero(sl == s)[-1]])
    np.testing.assert_array_equal(got, ref)


def test_mlp_matches_numpy(core):
    for dims in ((N_FEATURES, 32, 32, 3), (N_FEATURES, 64, 3), (N_FEATURES, 16, 8, 8, 3)):
        m = random_mlp(dims, seed=len(dims))
        params, d = flat_params(m)
        x = np.random.default_rng(0).standard_normal((500, N_FEATURES)).astype(np.float32) * 3
        got = core.mlp(params, d, x)
        np.testing.assert_allclose(got, numpy_forward(m.layers, x), rtol=0, atol=MLP_ATOL)
        np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-6)


def test_fused_signal_grid(core):
    rows, lv = _books()
    m = random_mlp(seed=4)
    params, dims = flat_params(m)
    states = core.new_states(8)
    ref = features_batch(lv, rows.slot)
    for i in range(0, 1000, 100):
        sl = rows.slot[i:i + 100]
        probs, last, seg_slot = core.signal_segments(lv[i:i + 100], sl, states, params, dims)
        newest = [i + np.flatnonzero(sl == s)[-1] for s in seg_slot]
        np.testing.assert_array_equal(last, ref[newest])
        np.testing.assert_allclose(probs, numpy_forward(m.layers, ref[newest]), atol=MLP_ATOL)


def test_too_wide_for_core():
    with pytest.raises(ValueError):
        flat_params(random_mlp((N_FEATURES, 128, 3)))


def test_rejects_out_of_range_books(core):
    with pytest.raises(ValueError):
        core.features(np.full((1, 1, 4), -1), np.zeros(1))
