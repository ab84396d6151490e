"""Training (beats the naive baselines, deterministic), ONNX export vs PyTorch, model cards."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import torch  # noqa: E402,F401  (dev dependencies: `make setup` installs them)
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from tickwire.models.dataset import (  # noqa: E402
    build_dataset, default_lobster_path, synthetic_rows,
)
from tickwire.models.mlp import (  # noqa: E402
    load_model, mlp_onnx_proto, save_model, torch_module,
)
from tickwire.models.train import ModelInfo, evaluate, export, train  # noqa: E402

# ONNX Runtime and PyTorch run the same float32 graph with different kernels (summation order,
# exp): probabilities agree to a few ulps; 1e-5 absolute leaves margin and still catches any
# wrong weight, transpose or folded normalisation (those err by >1e-2).
ONNX_ATOL = 1e-5


def _train_reference(out):
    rows = synthetic_rows(12000, 3, seed=11)
    return train(rows, out, seed=0, name="syn", eval_on=None), rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One trained + exported model per test run, shared by the xdist workers (a fit and an
    ONNX export cost seconds each; two workers would otherwise both pay)."""
    uid = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    try:
        from filelock import FileLock
    except ImportError:
        uid = None
    if not uid:
        return _train_reference(tmp_path_factory.mktemp("model"))
    root = tmp_path_factory.getbasetemp().parent / f"tickwire-model-{uid}"
    with FileLock(str(root) + ".lock"):
        meta = root / "info.json"
        if meta.exists():
            return ModelInfo(**json.loads(meta.read_text())), synthetic_rows(12000, 3, seed=11)
        info, rows = _train_reference(root)
        meta.write_text(json.dumps(info.to_dict()))
        return info, rows


def test_beats_majority_baseline(trained):
    info, _ = trained
    test = info.metrics[info.source]["test"]
    assert test["n"] > 1000
    assert test["model"] > test["majority"] + 0.10
    assert test["model"] > test["persistence_last"] and test["model"] > test["persistence_h"]


def test_no_signal_no_edge(tmp_path):
    # sanity of the harness: on an unpredictable walk the model cannot beat majority by much
    info = train(synthetic_rows(6000, 2, seed=3, signal=0.0), tmp_path, seed=0, onnx=False,
                 eval_on=None, epochs=5)
    t = info.metrics[info.source]["test"]
    assert t["model"] < t["majority"] + 0.05


def test_training_is_deterministic(tmp_path):
    rows = synthetic_rows(3000, 2, seed=1)
    a = train(rows, tmp_path / "a", seed=3, onnx=False, eval_on=None, epochs=4)
    b = train(rows, tmp_path / "b", seed=3, onnx=False, eval_on=None, epochs=4)
    ma, mb = load_model(a.model_path), load_model(b.model_path)
    for (wa, ba), (wb, bb) in zip(ma.layers, mb.layers):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)


def test_onnx_matches_pytorch(trained):
    info, rows = trained
    model = load_model(info.model_path)
    proto = onnx.load(info.onnx_path)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch
    sess = ort.InferenceSession(info.onnx_path, providers=["CPUExecutionProvider"])
    import torch

    m = torch_module(model).eval()
    ds = build_dataset(rows, 10)
    for B in (1, 37, 1000):
        x = ds.X[:B]
        got = sess.run(None, {"features": x})[0]
        with torch.no_grad():
            ref = m(torch.from_numpy(x)).numpy()
        assert got.shape == (B, 3)
        np.testing.assert_allclose(got, ref, rtol=0, atol=ONNX_ATOL)
        np.testing.assert_allclose(model.predict(x), ref, rtol=0, atol=ONNX_ATOL)  # numpy
    # the torch-free graph built from the weights is the same function
    hand = ort.InferenceSession(mlp_onnx_proto(model).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(hand.run(None, {"features": ds.X[:500]})[0],
                               sess.run(None, {"features": ds.X[:500]})[0], atol=ONNX_ATOL)


def test_folded_normalisation_equals_training_module(trained):
    info, rows = trained
    model = load_model(info.model_path)
    assert np.allclose(model.predict(np.zeros((1, 12), np.float32)).sum(), 1.0)
    ev = evaluate(model, build_dataset(rows, 10))
    assert ev["test"]["model"] == pytest.approx(info.metrics[info.source]["test"]["model"])


def test_export_function(trained, tmp_path):
    info, _ = trained  # train() exported through export(); here: its argument checks
    onnx.checker.check_model(onnx.load(info.onnx_path))
    with pytest.raises(ValueError):
        export(info.model_path, tmp_path / "y.onnx", opset=13)


def test_card_and_info(trained):
    info, _ = trained
    card = open(info.card_path).read()
    assert "| dataset | split |" in card and "majority" in card and "persistence" in card
    assert "`spread`" in card and "`vol`" in card
    json.dumps(info.to_dict())


@pytest.mark.skipif(default_lobster_path() is None, reason="LOBSTER sample absent")
def test_card_includes_lobster(tmp_path):
    info = train(synthetic_rows(3000, 2, seed=2), tmp_path, seed=0, onnx=False, epochs=3)
    assert any("LOBSTER" in k for k in info.metrics)
    assert "LOBSTER" in open(info.card_path).read()
    lob = train("lobster", tmp_path, seed=0, onnx=False, epochs=3, name="lob")
    t = lob.metrics[lob.source]["test"]
    assert t["n"] > 100 and 0.0 <= t["model"] <= 1.0


def test_spec_mismatch_is_refused(trained, tmp_path):
    info, _ = trained
    model = load_model(info.model_path)
    model.meta["features"] = dict(model.meta["features"], version=-1)
    p = save_model(model, tmp_path / "old.npz")
    with pytest.raises(ValueError, match="retrain"):
        load_model(p)


def test_lstm_trains_and_exports(tmp_path):
    rows = synthetic_rows(3000, 2, seed=6)
    info = train(rows, tmp_path, seed=0, arch="lstm", window=4, epochs=2, eval_on=None)
    model = load_model(info.model_path)
    assert model.arch == "lstm" and model.window == 4
    ds = build_dataset(rows, 10, window=4)
    assert ds.X.shape[1:] == (4, 12)
    sess = ort.InferenceSession(info.onnx_path, providers=["CPUExecutionProvider"])
    x = ds.X[:64]
    np.testing.assert_allclose(sess.run(None, {"features": x})[0], model.predict(x),
                               atol=ONNX_ATOL)
