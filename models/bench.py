"""Latency benchmarks of the slow path: model inference per backend and the whole loop.

``bench()`` returns a JSON-ready dict (``tickwire model bench --json``):

- ``inference[backend]``: p50/p99/mean single-call latency at each batch size (1 = a single
  inference), or why the backend is unavailable;
- ``slow_path``: :class:`~tickwire.models.signal.SignalEngine` over book updates one at a time
  (update → features → model → trigger write), with how often triggers were rewritten;
- ``auto``: which backend ``"auto"`` picks here and why.

Timings are wall-clock ``perf_counter_ns`` around each call after a warm-up, on whatever else
the machine is doing; p99 on a shared machine mostly measures the neighbours.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from .dataset import Rows, load_rows, synthetic_rows
from .features import features_batch
from .mlp import Model, load_model
from .signal import SignalEngine, latency_summary

__all__ = ["bench", "default_model"]


def default_model(seed: int = 0) -> Model:
    """The packaged reference model, or (if missing or built for other features) a quick one
    trained on synthetic books in a temp dir."""
    from .train import DEFAULT_ARTIFACT, train

    if DEFAULT_ARTIFACT.exists():
        try:
            return load_model(DEFAULT_ARTIFACT)
        except ValueError:
            pass
    tmp = Path(tempfile.mkdtemp(prefix="tickwire-bench-"))
    info = train("synthetic:20000", tmp, seed, name="mlp_bench", eval_on=None)
    return load_model(info.model_path)


def _time_calls(fn, x, iters: int, warmup: int) -> dict:
    for _ in range(warmup):
        fn(x)
    ts = np.empty(iters, dtype=np.int64)
    for i in range(iters):
        t = time.perf_counter_ns()
        fn(x)
        ts[i] = time.perf_counter_ns() - t
    return latency_summary(ts)


def _machine() -> dict:
    from tickwire.kernels.runners import cuda_available

    ok, why = cuda_available()
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "cuda": why}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def bench(model_path=None, *, backends=None, batch_sizes=(1, 64), iters: int = 2000,
          warmup: int = 200, slow_path: bool = True, rows=None, slow_path_updates: int = 5000,
          slow_path_backend: str = "auto", seed: int = 0) -> dict:
    """Latency of every available backend and of the slow-path loop; returns a dict.

    ``model_path``: a saved ``.npz`` (default: :func:`default_model`). ``backends``: names to
    try (default all, see ``tickwire.kernels.runners.BACKENDS``). ``rows``: book rows (or a
    source accepted by ``load_rows``) for features and the slow path (default: synthetic).
    """
    from tickwire.kernels.runners import BACKENDS, make_runner

    model = load_model(model_path) if model_path is not None else default_model(seed)
    if rows is None:
        rows = synthetic_rows(max(slow_path_updates, 1000), 4, depth=10, seed=seed + 1)
    elif not isinstance(rows, Rows):
        rows = load_rows(rows)
    feats = features_batch(rows.levels, rows.slot)
    if model.window > 1:
        from .dataset import _windows

        feats = _windows(feats, rows.slot, model.window)
    out: dict = {"model": {"path": str(model.path) if model.path else None, "arch": model.arch,
                           "name": model.meta.get("name")},
                 "machine": _machine(), "iters": iters, "inference": {}}
    if model.arch == "mlp":
        out["model"]["dims"] = list(model.dims)
    for name in backends or BACKENDS:
        try:
            r = make_runner(model, name, max_batch=max(batch_sizes))
        except Exception as e:  # noqa: BLE001 - report and move on
            out["inference"][name] = {"status": f"unavailable: {type(e).__name__}: {e}"}
            continue
        res = {"status": "ok", "detail": r.reason}
        try:
            for b in batch_sizes:
                x = np.ascontiguousarray(feats[:b])
                res[f"batch_{b}"] = _time_calls(r.predict, x, iters, warmup)
        finally:
            r.close()
        out["inference"][name] = res
    try:
        a = make_runner(model, "auto")
        out["auto"] = {"backend": a.backend, "reason": a.reason}
        a.close()
    except RuntimeError as e:
        out["auto"] = {"backend": None, "reason": str(e)}
    if slow_path:
        n = min(slow_path_updates, len(rows))
        sub = rows.take(np.arange(n))
        writes = []
        eng = SignalEngine(model, lambda *a: writes.append(a), backend=slow_path_backend,
                           n_slots=int(rows.slot.max()) + 1, depth=rows.depth)
        warm = min(200, n)
        eng.run(sub.take(np.arange(warm)))  # warm-up: JIT and runner buffers
        eng.reset_stats()
        eng.stream.reset()
        t0 = time.perf_counter()
        st = eng.run(sub)
        st["updates_per_s"] = round(n / (time.perf_counter() - t0), 1)
        st["rows_source"] = rows.source
        out["slow_path"] = st
    return out


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(bench(), indent=1))
