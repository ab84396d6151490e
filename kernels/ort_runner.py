"""onnxruntime backend with pre-bound I/O (IOBinding) on preallocated numpy buffers.

Binding the input and output to fixed buffers once per batch size means a call copies the
features in, runs, and copies the probabilities out, with no per-call OrtValue or output
allocation — what a latency-bound batch-1 loop wants. One intra-op thread: a 2-layer MLP is far
too small to gain from more, and thread wake-ups dominate its latency.
"""

from __future__ import annotations

import numpy as np

from tickwire.models.mlp import ONNX_INPUT, ONNX_OUTPUT, Model, onnx_bytes

from .runners import Runner

__all__ = ["OrtRunner"]


class OrtRunner(Runner):
    backend = "onnxruntime"

    def __init__(self, model: Model, max_batch: int = 256, *, providers=None, threads: int = 1,
                 iobinding: bool = True):
        import onnxruntime as ort

        super().__init__(model, max_batch)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        self.providers = list(providers or ["CPUExecutionProvider"])
        self.sess = ort.InferenceSession(onnx_bytes(model), so, providers=self.providers)
        self.in_name = self.sess.get_inputs()[0].name if ONNX_INPUT not in [
            i.name for i in self.sess.get_inputs()] else ONNX_INPUT
        self.out_name = ONNX_OUTPUT if ONNX_OUTPUT in [o.name for o in self.sess.get_outputs()] \
            else self.sess.get_outputs()[0].name
        self.sample_shape = (model.window, self.n_features) if model.window > 1 else (
            self.n_features,)
        self.iobinding = iobinding
        self._in = np.zeros((self.max_batch, *self.sample_shape), dtype=np.float32)
        self._out = np.zeros((self.max_batch, self.n_classes), dtype=np.float32)
        self._bindings: dict[int, object] = {}
        self.reason = f"onnxruntime {ort.__version__} {self.providers[0]}" + (
            " with IOBinding" if iobinding else "")

    def _binding(self, B: int):
        io = self._bindings.get(B)
        if io is None:
            io = self.sess.io_binding()
            io.bind_input(self.in_name, "cpu", 0, np.float32, [B, *self.sample_shape],
                          self._in.ctypes.data)
            io.bind_output(self.out_name, "cpu", 0, np.float32, [B, self.n_classes],
                           self._out.ctypes.data)
            self._bindings[B] = io
        return io

    def predict(self, x) -> np.ndarray:
        x = self._check(x)
        B = x.shape[0]
        if not self.iobinding or B > self.max_batch:
            return self.sess.run([self.out_name], {self.in_name: x})[0]
        self._in[:B] = x
        self.sess.run_with_iobinding(self._binding(B))
        return self._out[:B].copy()
