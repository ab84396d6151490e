"""Runners: numpy vs onnxruntime, auto selection; GPU backends (marked gpu) vs numpy."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tickwire.kernels.runners import (
    AUTO_ORDER, NumpyRunner, cuda_available, make_runner, probe_backends,
)
from tickwire.models.dataset import synthetic_rows
from tickwire.models.features import N_FEATURES, features_batch
from tickwire.models.mlp import Model, random_mlp, save_model

CUDA_OK, CUDA_WHY = cuda_available()
HAS_CUPY = importlib.util.find_spec("cupy") is not None
HAS_TRT = importlib.util.find_spec("tensorrt") is not None
needs_cupy = pytest.mark.skipif(not HAS_CUPY, reason="cupy not installed (pip install .[gpu])")
needs_trt = pytest.mark.skipif(not HAS_TRT, reason="tensorrt not installed (pip install .[gpu])")

# float32 MLP, same graph, different kernels (MLAS / BLAS / CUDA): probabilities agree to a
# few ulps; 1e-5 absolute would still catch a wrong weight or layout by orders of magnitude.
ATOL = 1e-5


@pytest.fixture(scope="module")
def model():
    return random_mlp(seed=7)


@pytest.fixture(scope="module")
def feats():
    rows = synthetic_rows(3000, 3, seed=2)
    return features_batch(rows.levels, rows.slot), rows


def test_numpy_runner_is_the_reference(model, feats):
    x, _ = feats
    r = NumpyRunner(model)
    np.testing.assert_allclose(r.predict(x), model.predict(x), atol=1e-6)
    assert r.predict(x[0]).shape == (1, 3)  # a single feature vector is batch 1
    with pytest.raises(ValueError):
        r.predict(np.zeros((1, N_FEATURES + 1), np.float32))


def test_batches_past_max_batch_are_sliced(model, feats):
    """The GPU runners' split of a large input into ``max_batch`` slices (Runner._in_batches):
    every slice at most ``max_batch`` rows, results in input order."""
    x, _ = feats
    r = NumpyRunner(model, max_batch=64)
    sizes = []

    def run(b):
        sizes.append(b.shape[0])
        return NumpyRunner.predict(r, b)

    got = r._in_batches(x[:150], run)
    assert sizes == [64, 64, 22]
    np.testing.assert_array_equal(got, r.predict(x[:150]))
    assert r._in_batches(x[0], run).shape == (1, 3) and sizes[-1] == 1


@pytest.mark.parametrize("iobinding", [True, False])
def test_onnxruntime_matches_numpy(model, feats, iobinding):
    x, _ = feats
    r = make_runner(model, "onnxruntime", max_batch=64, iobinding=iobinding)
    ref = NumpyRunner(model)
    for B in (1, 2, 64, 65, 3000):  # 65, 3000: beyond the bound buffers -> plain run()
        np.testing.assert_allclose(r.predict(x[:B]), ref.predict(x[:B]), rtol=0, atol=ATOL)
    a = r.predict(x[:4])
    r.predict(x[4:8])
    np.testing.assert_allclose(a, ref.predict(x[:4]), atol=ATOL)  # results are not aliased


def test_onnxruntime_from_saved_file(tmp_path, model, feats):
    # a saved model with no .onnx beside it: the graph is built from the weights
    p = save_model(Model("mlp", dict(model.meta), layers=model.layers), tmp_path / "m.npz")
    x, _ = feats
    r = make_runner(p, "onnxruntime")
    np.testing.assert_allclose(r.predict(x[:10]), model.predict(x[:10]), atol=ATOL)


def test_auto_says_what_it_picked_and_why(model):
    r = make_runner(model, "auto")
    assert r.backend in AUTO_ORDER and r.reason.startswith(f"auto picked {r.backend}")
    skipped = dict(r.tried)
    assert list(skipped) == list(AUTO_ORDER[:AUTO_ORDER.index(r.backend)])
    if not CUDA_OK:
        assert r.backend in ("onnxruntime", "numpy")
        assert "tensorrt" in skipped and "cupy" in skipped
    if not CUDA_OK:
        assert r.backend == "onnxruntime"
    probe = probe_backends(model)
    assert probe["numpy"] == "ok" and set(probe) >= set(AUTO_ORDER)


def test_backend_errors(model):
    with pytest.raises(ValueError):
        make_runner(model, "tpu")
    lstm = Model("lstm", dict(model.meta, window=4))
    with pytest.raises(RuntimeError):
        make_runner(lstm, "numpy")
    if not CUDA_OK:
        with pytest.raises(Exception):
            make_runner(model, "cupy")


def test_cuda_probe_is_graceful():
    ok, why = cuda_available()
    assert isinstance(ok, bool) and isinstance(why, str) and why


# ---------------------------------------------------------------------------------------------
# GPU: skipped (with the reason) where there is no CUDA device


@pytest.mark.parametrize("graphs", [True, False])
@needs_cupy
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason=f"needs a CUDA GPU: {CUDA_WHY}")
def test_cupy_mlp_matches_numpy(model, feats, graphs):
    x, _ = feats
    r = make_runner(model, "cupy", max_batch=512, graphs=graphs)
    ref = NumpyRunner(model)
    for B in (1, 3, 64, 65, 512, 3000):  # warp kernel, thread kernel, chunked
        np.testing.assert_allclose(r.predict(x[:B]), ref.predict(x[:B]), atol=ATOL)
        np.testing.assert_allclose(r.predict(x[B:2 * B]), ref.predict(x[B:2 * B]), atol=ATOL)


@needs_cupy
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason=f"needs a CUDA GPU: {CUDA_WHY}")
def test_cupy_features_and_fused_slow_path(model, feats):
    from tickwire.kernels.cupy_runner import CupySlowPath

    ref, rows = feats
    sp = CupySlowPath(model, n_slots=8, depth=rows.depth)
    # compiled with --fmad=false: the double-precision features match numpy exactly
    np.testing.assert_array_equal(sp.features(rows.levels, rows.slot), ref)
    sp.reset()
    for i in range(0, 600, 50):
        sl = rows.slot[i:i + 50]
        seg_slot, last, probs = sp.step(sl, rows.levels[i:i + 50])
        newest = [i + np.flatnonzero(sl == s)[-1] for s in seg_slot]
        np.testing.assert_array_equal(last, ref[newest])
        np.testing.assert_allclose(probs, model.predict(ref[newest]), atol=ATOL)


@needs_trt
@needs_cupy
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason=f"needs a CUDA GPU: {CUDA_WHY}")
def test_tensorrt_matches_numpy(model, feats):
    x, _ = feats
    r = make_runner(model, "tensorrt", max_batch=256)
    for B in (1, 7, 256, 1000):
        # TensorRT may pick TF32 tactics for FP32 GEMMs: allow their 10-bit mantissa
        np.testing.assert_allclose(r.predict(x[:B]), model.predict(x[:B]), atol=2e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason=f"needs a CUDA GPU: {CUDA_WHY}")
def test_auto_prefers_gpu_when_present(model):
    r = make_runner(model, "auto")
    if HAS_TRT and HAS_CUPY:
        assert r.backend == "tensorrt"
    elif HAS_CUPY:
        assert r.backend == "cupy"


