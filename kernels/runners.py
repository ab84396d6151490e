"""One inference interface over every backend, and ``backend="auto"``.

``make_runner(model, backend)`` returns a :class:`Runner` whose ``predict(x)`` maps float32
features (B, F) — or windows (B, W, F) for an LSTM — to class probabilities (B, 3).

Backends, in the order ``"auto"`` tries them:

==============  ==============================================================================
``tensorrt``    TensorRT engine built from the ONNX graph (``trt_runner``): GPU
``cupy``        the fused CUDA MLP kernel (``mlp.cu``) with pinned buffers and CUDA graphs: GPU
``onnxruntime`` onnxruntime on the CPU with pre-bound I/O buffers (``ort_runner``)
``numpy``       the float32 reference forward (MLP only)
==============  ==============================================================================

plus ``cpp`` (the g++ build of the CUDA core, ``cpu_core``), never picked automatically since
it compiles at first use. Every import is attempted lazily; a backend that cannot run says why
in ``runner.tried``, and the chosen one in ``runner.reason``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

import numpy as np

from tickwire.models.mlp import Model, load_model

__all__ = ["Runner", "NumpyRunner", "CppRunner", "make_runner", "probe_backends",
           "cuda_available", "AUTO_ORDER", "BACKENDS"]

AUTO_ORDER = ("tensorrt", "cupy", "onnxruntime", "numpy")
BACKENDS = AUTO_ORDER + ("cpp",)


class Runner:
    """Base: ``predict(x) -> probs``; ``backend``, ``reason`` (why it was chosen), ``tried``."""

    backend = "?"

    def __init__(self, model: Model, max_batch: int = 256):
        self.model = model
        self.max_batch = int(max_batch)
        self.reason = ""
        self.tried: list[tuple[str, str]] = []
        self.n_features = model.n_features
        self.n_classes = int(model.meta.get("n_classes", 3))

    def _check(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.shape[-1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {x.shape[-1]}")
        return np.ascontiguousarray(x)

    def _in_batches(self, x, run) -> np.ndarray:
        """``run`` (one batch of at most ``max_batch`` rows → probabilities) over ``x``,
        checked, in slices of ``max_batch`` rows."""
        x = self._check(x)
        if x.shape[0] <= self.max_batch:
            return run(x)
        return np.concatenate([run(x[i:i + self.max_batch])
                               for i in range(0, x.shape[0], self.max_batch)])

    def predict(self, x) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        return {"backend": self.backend, "reason": self.reason,
                "skipped": {b: r for b, r in self.tried}}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NumpyRunner(Runner):
    """The float32 numpy reference (weights pre-transposed once)."""

    backend = "numpy"

    def __init__(self, model: Model, max_batch: int = 256):
        if model.arch != "mlp":
            raise RuntimeError(f"numpy runs MLPs only (model is {model.arch})")
        super().__init__(model, max_batch)
        self._layers = [(np.ascontiguousarray(W.T), b) for W, b in model.layers]

    def predict(self, x) -> np.ndarray:
        h = self._check(x)
        last = len(self._layers) - 1
        for i, (WT, b) in enumerate(self._layers):
            h = h @ WT
            h += b
            if i < last:
                np.maximum(h, 0, out=h)
        h -= h.max(axis=-1, keepdims=True)
        np.exp(h, out=h)
        h /= h.sum(axis=-1, keepdims=True)
        return h


class CppRunner(Runner):
    """The CUDA core's CPU build (``core.cuh`` via g++ and ctypes)."""

    backend = "cpp"

    def __init__(self, model: Model, max_batch: int = 256):
        if model.arch != "mlp":
            raise RuntimeError("the C++ core runs MLPs only")
        super().__init__(model, max_batch)
        from tickwire.models.mlp import flat_params

        from .cpu_core import CpuCore

        self.core = CpuCore()
        self.params, self.dims = flat_params(model)

    def predict(self, x) -> np.ndarray:
        return self.core.mlp(self.params, self.dims, self._check(x))


def cuda_available() -> tuple[bool, str]:
    """Whether a CUDA device is usable, and why not (checked without importing a framework
    when none is installed)."""
    try:
        import cupy

        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # noqa: BLE001 - cupy raises CUDARuntimeError without a driver
            return False, f"no CUDA device ({type(e).__name__}: {e})"
        return (n > 0), (f"{n} CUDA device(s)" if n else "no CUDA device")
    except ImportError:
        pass
    name = ctypes.util.find_library("cudart")
    cands = [name] if name else []
    cands += ["libcudart.so", "libcudart.so.13", "libcudart.so.12",
              "/usr/local/cuda/lib64/libcudart.so"]
    for c in cands:
        try:
            lib = ctypes.CDLL(c)
        except OSError:
            continue
        n = ctypes.c_int(0)
        rc = lib.cudaGetDeviceCount(ctypes.byref(n))
        if rc != 0:
            return False, f"no CUDA device (cudaGetDeviceCount error {rc}: no driver or no GPU)"
        return (n.value > 0), f"{n.value} CUDA device(s)"
    return False, "no CUDA runtime found (libcudart) and cupy not installed"


def _construct(name: str, model: Model, max_batch: int, **kw) -> Runner:
    if name == "numpy":
        return NumpyRunner(model, max_batch)
    if name == "cpp":
        return CppRunner(model, max_batch)
    if name == "onnxruntime":
        from .ort_runner import OrtRunner

        return OrtRunner(model, max_batch, **kw)
    if name == "cupy":
        from .cupy_runner import CupyRunner

        return CupyRunner(model, max_batch, **kw)
    if name == "tensorrt":
        from .trt_runner import TrtRunner

        return TrtRunner(model, max_batch, **kw)
    raise ValueError(f"unknown backend {name!r}; choose from {BACKENDS} or 'auto'")


def _why(e: BaseException) -> str:
    if isinstance(e, ImportError):
        return f"not installed ({e})"
    return f"{type(e).__name__}: {e}".strip()


def make_runner(model, backend: str = "auto", *, max_batch: int = 256, **kw) -> Runner:
    """A runner for ``model`` (a :class:`Model` or a saved ``.npz`` path).

    ``backend="auto"`` tries TensorRT, cupy, onnxruntime, numpy in turn and returns the first
    that constructs; ``runner.reason`` says which and ``runner.tried`` why the others were
    passed over. A named backend raises if it cannot run.
    """
    if not isinstance(model, Model):
        model = load_model(Path(model))
    if backend != "auto":
        r = _construct(backend, model, max_batch, **kw)
        r.reason = r.reason or f"{backend}: requested"
        return r
    tried: list[tuple[str, str]] = []
    for name in AUTO_ORDER:
        try:
            r = _construct(name, model, max_batch, **kw)
        except Exception as e:  # noqa: BLE001 - any failure means "not this backend"
            tried.append((name, _why(e)))
            continue
        skipped = "; ".join(f"{n}: {w}" for n, w in tried)
        r.reason = f"auto picked {name}" + (f" (skipped {skipped})" if skipped else "")
        r.tried = tried
        return r
    raise RuntimeError("no backend can run this model: " + "; ".join(f"{n}: {w}" for n, w in tried))


def probe_backends(model) -> dict[str, str]:
    """{backend: "ok" or why not} for every backend (constructs and closes each)."""
    if not isinstance(model, Model):
        model = load_model(Path(model))
    out = {}
    for name in BACKENDS:
        try:
            r = _construct(name, model, 16)
            r.close()
            out[name] = "ok"
        except Exception as e:  # noqa: BLE001
            out[name] = _why(e)
    return out
