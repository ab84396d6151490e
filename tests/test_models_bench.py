"""bench(): a JSON-ready report of every backend and the slow-path loop."""

from __future__ import annotations

import json

from tickwire.models.bench import bench
from tickwire.models.mlp import random_mlp, save_model


def test_bench_report(tmp_path):
    p = save_model(random_mlp(seed=3), tmp_path / "m.npz")
    rep = bench(p, backends=("numpy", "onnxruntime", "cupy", "tensorrt"), batch_sizes=(1, 8),
                iters=50, warmup=5, slow_path_updates=300)
    json.dumps(rep)
    inf = rep["inference"]
    assert inf["numpy"]["status"] == "ok"
    b1 = inf["numpy"]["batch_1"]
    assert b1["n"] == 50 and 0 < b1["p50_us"] <= b1["p99_us"]
    for name in ("cupy", "tensorrt"):  # on a GPU-less machine: a reason, not an exception
        assert inf[name]["status"] == "ok" or inf[name]["status"].startswith("unavailable")
    assert rep["auto"]["backend"] and rep["auto"]["reason"]
    sp = rep["slow_path"]
    assert sp["updates"] == 300 and sp["trigger_writes"] > 0
    assert sp["update_to_write"]["p50_us"] > 0 and sp["updates_per_s"] > 0
