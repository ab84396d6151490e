"""TensorRT backend (TensorRT 10 and 11 Python API): engine from ONNX, named-tensor execution.

Build: ``OnnxParser`` into a network from ``create_network()`` (explicit batch in 10.x; strongly
typed in 11.x — the FP32 graph needs no precision flags, which 11.x removed), one optimisation
profile over the dynamic batch (min 1, opt ``opt_batch``, max ``max_batch``),
``build_serialized_network``. Serialized engines are cached in the build directory keyed by the
ONNX bytes, TensorRT version and device, since building takes seconds.

Run: device buffers are bound once with ``set_tensor_address``; a call copies into a pinned
buffer, sets the input shape when the batch size changes, and enqueues H2D copy,
``execute_async_v3`` and D2H copy on one stream. cupy provides device memory and the stream.
"""

from __future__ import annotations

import hashlib

import numpy as np

from tickwire.models.mlp import Model, onnx_bytes

from .cpu_core import build_dir
from .cupy_runner import _pinned, _require_device
from .runners import Runner

__all__ = ["TrtRunner", "build_engine"]


def build_engine(trt, logger, onnx: bytes, sample_shape: tuple, max_batch: int,
                 opt_batch: int = 1) -> bytes:
    """Serialized engine for ``onnx`` with a dynamic-batch profile."""
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse the ONNX graph: {errs}")
    input_name = network.get_input(0).name
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 28)
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, (1, *sample_shape), (max(1, opt_batch), *sample_shape),
                      (max_batch, *sample_shape))
    config.add_optimization_profile(profile)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise RuntimeError("TensorRT engine build failed (see the TensorRT log)")
    return bytes(blob)


class TrtRunner(Runner):
    backend = "tensorrt"

    def __init__(self, model: Model, max_batch: int = 256, *, opt_batch: int = 1,
                 cache: bool = True):
        import tensorrt as trt  # first: "not installed" should name TensorRT itself

        import cupy as cp  # device buffers, pinned memory and the stream

        _require_device(cp)
        super().__init__(model, max_batch)
        self.cp, self.trt = cp, trt
        self.logger = trt.Logger(trt.Logger.WARNING)
        onnx = onnx_bytes(model)
        self.sample_shape = ((model.window, self.n_features) if model.window > 1
                             else (self.n_features,))
        dev = cp.cuda.Device()
        key = hashlib.sha256(onnx + f"{trt.__version__}|{dev.compute_capability}|{max_batch}|"
                             f"{opt_batch}".encode()).hexdigest()[:16]
        path = build_dir() / f"trt-{key}.engine"
        blob = path.read_bytes() if cache and path.exists() else None
        if blob is None:
            blob = build_engine(trt, self.logger, onnx, self.sample_shape, self.max_batch,
                                opt_batch)
            if cache:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(blob)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(blob)
        if self.engine is None:
            raise RuntimeError("TensorRT could not deserialize the engine")
        self.ctx = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        ins = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.in_name, self.out_name = ins[0], outs[0]
        self.h_in = _pinned(cp, (self.max_batch, *self.sample_shape))
        self.h_out = _pinned(cp, (self.max_batch, self.n_classes))
        self.d_in = cp.zeros((self.max_batch, *self.sample_shape), dtype=cp.float32)
        self.d_out = cp.zeros((self.max_batch, self.n_classes), dtype=cp.float32)
        self.ctx.set_tensor_address(self.in_name, self.d_in.data.ptr)
        self.ctx.set_tensor_address(self.out_name, self.d_out.data.ptr)
        self.stream = cp.cuda.Stream(non_blocking=True)
        self._batch = None
        self.reason = f"TensorRT {trt.__version__} on device {dev.id} (sm_{dev.compute_capability})"

    def predict(self, x) -> np.ndarray:
        return self._in_batches(x, self._predict)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        B = x.shape[0]
        rt = self.cp.cuda.runtime
        self.h_in[:B] = x
        if B != self._batch:
            if not self.ctx.set_input_shape(self.in_name, (B, *self.sample_shape)):
                raise RuntimeError(f"TensorRT rejected batch {B}")
            self._batch = B
        nin = B * int(np.prod(self.sample_shape)) * 4
        rt.memcpyAsync(self.d_in.data.ptr, self.h_in.ctypes.data, nin, rt.memcpyHostToDevice,
                       self.stream.ptr)
        if not self.ctx.execute_async_v3(self.stream.ptr):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        rt.memcpyAsync(self.h_out.ctypes.data, self.d_out.data.ptr, B * self.n_classes * 4,
                       rt.memcpyDeviceToHost, self.stream.ptr)
        self.stream.synchronize()
        return self.h_out[:B].copy()

    def close(self) -> None:
        self.ctx = None
        self.engine = None
