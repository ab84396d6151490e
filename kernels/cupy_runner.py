"""cupy backend: the fused CUDA kernels of ``mlp.cu`` / ``features.cu`` via ``cupy.RawModule``.

Latency path per call: features are written into a pinned host buffer, and one CUDA graph per
batch size — captured on first use — replays H2D copy, kernel and D2H copy with a single launch;
the host then waits on the stream. Weights stay on the device. The kernels are compiled with
NVRTC from the same sources nvcc checks (``python -m tickwire.kernels.check``); if NVRTC fails,
an nvcc-built cubin for the device's architecture is loaded instead.

:class:`CupySlowPath` runs the whole slow path on the GPU — per-symbol feature state resident in
device memory, features of a batch of book updates and the MLP on each touched symbol's newest
row in one kernel (``tw_signal_kernel``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tickwire.models.features import EHIST, HIST, N_FEATURES
from tickwire.models.mlp import MAX_WIDTH, Model, flat_params
from tickwire.spec.capacity import GATEWARE, ROW_DEPTH

from .cpu_core import KERNEL_DIR, _levels_u32, segments
from .runners import Runner

__all__ = ["CupyRunner", "CupySlowPath", "load_module"]

_FLAGS = {"mlp.cu": (), "features.cu": ("--fmad=false",)}
_modules: dict = {}


def _require_device(cp) -> None:
    n = cp.cuda.runtime.getDeviceCount()  # raises CUDARuntimeError without a driver
    if n < 1:
        raise RuntimeError("no CUDA device")


def load_module(cp, name: str):
    """RawModule for kernels/<name>: NVRTC first, an nvcc cubin as the fallback."""
    if name in _modules:
        return _modules[name]
    src = (KERNEL_DIR / name).read_text()
    opts = ("-std=c++17", f"-I{KERNEL_DIR}", *_FLAGS[name])
    try:
        mod = cp.RawModule(code=src, options=opts, backend="nvrtc")
        mod.compile()
    except Exception as nvrtc_err:  # noqa: BLE001
        nvcc = shutil.which("nvcc")
        if nvcc is None:
            raise RuntimeError(f"NVRTC failed and nvcc is missing: {nvrtc_err}") from nvrtc_err
        arch = f"sm_{cp.cuda.Device().compute_capability}"  # e.g. "90"
        out = Path(tempfile.mkdtemp(prefix="tickwire-cubin-")) / f"{name}.{arch}.cubin"
        cmd = [nvcc, "-std=c++17", f"-arch={arch}", "-cubin", f"-I{KERNEL_DIR}",
               *_FLAGS[name], "-o", str(out), str(KERNEL_DIR / name)]
        subprocess.run(cmd, check=True, capture_output=True)
        mod = cp.RawModule(path=str(out))
    _modules[name] = mod
    return mod


def _pinned(cp, shape, dtype=np.float32) -> np.ndarray:
    n = int(np.prod(shape))
    mem = cp.cuda.alloc_pinned_memory(max(1, n * np.dtype(dtype).itemsize))
    return np.frombuffer(mem, dtype, n).reshape(shape)


class CupyRunner(Runner):
    """The fused MLP kernel; batch ≤ ``warp_max`` uses the warp-per-sample kernel (latency),
    larger batches one thread per sample (throughput)."""

    backend = "cupy"

    def __init__(self, model: Model, max_batch: int = 256, *, graphs: bool = True,
                 warp_max: int = 64, warps_per_block: int = 4):
        import cupy as cp

        if model.arch != "mlp":
            raise RuntimeError("the CUDA kernel runs MLPs only")
        _require_device(cp)
        super().__init__(model, max_batch)
        self.cp = cp
        params, dims = flat_params(model)
        mod = load_module(cp, "mlp.cu")
        self.k_warp = mod.get_function("tw_mlp_warp_kernel")
        self.k_thread = mod.get_function("tw_mlp_kernel")
        self.n_params = np.int32(params.size)
        self.n_layers = np.int32(len(dims) - 1)
        self.d_params = cp.asarray(params)
        self.d_dims = cp.asarray(dims)
        F, C = int(dims[0]), int(dims[-1])
        self.h_in = _pinned(cp, (self.max_batch, F))
        self.h_out = _pinned(cp, (self.max_batch, C))
        self.d_in = cp.zeros((self.max_batch, F), dtype=cp.float32)
        self.d_out = cp.zeros((self.max_batch, C), dtype=cp.float32)
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.use_graphs = graphs
        self.warp_max = warp_max
        self.wpb = warps_per_block
        self._graphs: dict[int, object] = {}
        dev = cp.cuda.Device()
        self.reason = (f"cupy {cp.__version__} on device {dev.id} (sm_{dev.compute_capability})"
                       + (", CUDA graphs" if graphs else ""))

    def _enqueue(self, B: int) -> None:
        cp = self.cp
        rt = cp.cuda.runtime
        F, C = self.h_in.shape[1], self.h_out.shape[1]
        rt.memcpyAsync(self.d_in.data.ptr, self.h_in.ctypes.data, B * F * 4,
                       rt.memcpyHostToDevice, self.stream.ptr)
        args = (self.d_params, self.n_params, self.d_dims, self.n_layers, self.d_in, self.d_out,
                np.int32(B))
        with self.stream:
            if B <= self.warp_max:
                wpb = min(self.wpb, B)
                shm = (int(self.n_params) + wpb * 2 * MAX_WIDTH) * 4
                self.k_warp(((B + wpb - 1) // wpb,), (32 * wpb,), args, shared_mem=shm)
            else:
                tpb = 128
                self.k_thread(((B + tpb - 1) // tpb,), (tpb,), args,
                              shared_mem=int(self.n_params) * 4)
        rt.memcpyAsync(self.h_out.ctypes.data, self.d_out.data.ptr, B * C * 4,
                       rt.memcpyDeviceToHost, self.stream.ptr)

    def predict(self, x) -> np.ndarray:
        return self._in_batches(x, self._predict)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        B = x.shape[0]
        self.h_in[:B] = x
        if self.use_graphs:
            g = self._graphs.get(B)
            if g is None:
                self.stream.synchronize()
                self.stream.begin_capture()
                try:
                    self._enqueue(B)
                finally:
                    g = self.stream.end_capture()
                self._graphs[B] = g
            g.launch(stream=self.stream)
        else:
            self._enqueue(B)
        self.stream.synchronize()
        return self.h_out[:B].copy()

    def close(self) -> None:
        self._graphs.clear()


class CupySlowPath:
    """GPU-resident slow path for ``n_slots`` symbols: feature state on the device;
    ``step(slots, levels)`` → (touched slots, their newest features, class probabilities)."""

    def __init__(self, model: Model, n_slots: int = GATEWARE["symbols"],
                 depth: int = ROW_DEPTH):
        import cupy as cp

        _require_device(cp)
        self.cp = cp
        mod = load_module(cp, "features.cu")
        self.k_feat = mod.get_function("tw_features_kernel")
        self.k_signal = mod.get_function("tw_signal_kernel")
        self.state_bytes = 8 * (HIST + EHIST + 8)  # TW_STATE_BYTES in core.cuh
        self.n_slots, self.depth = n_slots, depth
        self.d_state = cp.zeros(n_slots * self.state_bytes, dtype=cp.uint8)
        params, dims = flat_params(model)
        self.d_params, self.d_dims = cp.asarray(params), cp.asarray(dims)
        self.n_layers = np.int32(len(dims) - 1)
        self.n_classes = int(dims[-1])

    def reset(self) -> None:
        self.d_state.fill(0)

    def features(self, levels, slots) -> np.ndarray:
        """Streaming features of rows in arrival order (advances the device state)."""
        cp = self.cp
        lv = _levels_u32(levels)
        order, off, seg_slot = segments(slots)
        feats = cp.zeros((lv.shape[0], N_FEATURES), dtype=cp.float32)
        n = len(seg_slot)
        if n:
            self.k_feat(((n + 63) // 64,), (64,),
                        (self.d_state, cp.asarray(lv), cp.asarray(order), cp.asarray(off),
                         cp.asarray(seg_slot), np.int32(n), np.int32(lv.shape[1]), feats,
                         np.uint64(0)))
        return cp.asnumpy(feats)

    def step(self, slots, levels):
        cp = self.cp
        lv = _levels_u32(levels)
        order, off, seg_slot = segments(slots)
        n = len(seg_slot)
        last = cp.zeros((n, N_FEATURES), dtype=cp.float32)
        probs = cp.zeros((n, self.n_classes), dtype=cp.float32)
        if n:
            self.k_signal(((n + 63) // 64,), (64,),
                          (self.d_state, cp.asarray(lv), cp.asarray(order), cp.asarray(off),
                           cp.asarray(seg_slot), np.int32(n), np.int32(lv.shape[1]),
                           np.uint64(0), last, self.d_params, self.d_dims, self.n_layers, probs))
        return seg_slot, cp.asnumpy(last), cp.asnumpy(probs)
