"""tickwire.kernels — CUDA kernels (``features.cu``, ``mlp.cu`` over the ``core.cuh`` arithmetic
core), their CPU build, and the inference runners.

``make_runner(model, backend="auto")`` picks TensorRT, then cupy, then onnxruntime, then numpy,
and says which and why (:mod:`.runners`). ``python -m tickwire.kernels.check`` compiles every
kernel with nvcc for sm_80 and sm_90.
"""

from tickwire.host.lazy import lazy_exports

_LAZY = {"make_runner": "runners", "probe_backends": "runners", "cuda_available": "runners",
         "Runner": "runners", "CpuCore": "cpu_core"}

__all__ = sorted(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
