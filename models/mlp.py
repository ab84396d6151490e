"""The signal model: a small MLP (F → 32 → 32 → 3, ReLU, softmax) and an optional small LSTM.

Saved models are ``.npz`` files (weights + a JSON ``meta`` record) that need only numpy to
load and run; PyTorch is imported lazily, for training and ONNX export only. The feature
standardisation learnt in training is folded into the first layer on save, so every backend
(numpy, onnxruntime, TensorRT, the CUDA kernel) runs the plain network on raw features and
returns class probabilities (down, flat, up).

Flat parameter layout shared with the C++/CUDA core (``kernels/core.cuh``): for each layer
``l`` the weight ``W_l`` (out × in, row-major) then the bias ``b_l``; ``dims = (F, H1, ..., C)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .features import DTYPE, N_FEATURES, SPEC_VERSION, spec_dict

__all__ = [
    "Model", "load_model", "save_model", "numpy_forward", "flat_params", "torch_module",
    "export_onnx", "mlp_onnx_proto", "onnx_bytes", "ONNX_INPUT", "ONNX_OUTPUT", "ONNX_OPSET",
    "MAX_WIDTH", "MAX_LAYERS", "random_mlp",
]

ONNX_INPUT = "features"
ONNX_OUTPUT = "probs"
ONNX_OPSET = 18
MAX_WIDTH = 64  # the C/CUDA core keeps activations in fixed arrays of this width
MAX_LAYERS = 4


@dataclass
class Model:
    """A trained model: ``arch`` "mlp" (``layers`` = [(W, b), ...]) or "lstm" (``tensors``)."""

    arch: str
    meta: dict
    layers: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None

    @property
    def n_features(self) -> int:
        return int(self.meta.get("n_features", N_FEATURES))

    @property
    def window(self) -> int:
        return int(self.meta.get("window", 1))

    @property
    def dims(self) -> tuple[int, ...]:
        if self.arch != "mlp":
            raise ValueError("dims are defined for MLPs only")
        return (self.layers[0][0].shape[1],) + tuple(W.shape[0] for W, _ in self.layers)

    @property
    def onnx_path(self) -> Path | None:
        if self.path is None:
            return None
        p = Path(self.meta.get("onnx", "")) if self.meta.get("onnx") else None
        if p is not None and not p.is_absolute():
            p = self.path.parent / p
        cand = p if p is not None and p.exists() else self.path.with_suffix(".onnx")
        return cand if cand.exists() else None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities with numpy (MLP) or PyTorch (LSTM)."""
        if self.arch == "mlp":
            return numpy_forward(self.layers, x)
        import torch

        m = torch_module(self).eval()
        with torch.no_grad():
            return m(torch.from_numpy(np.asarray(x, dtype=DTYPE))).numpy()


def numpy_forward(layers, x: np.ndarray) -> np.ndarray:
    """Reference MLP forward in float32: ReLU between layers, softmax at the end."""
    h = np.asarray(x, dtype=DTYPE)
    for i, (W, b) in enumerate(layers):
        h = h @ W.T + b
        if i < len(layers) - 1:
            np.maximum(h, 0, out=h)
    h = h - h.max(axis=-1, keepdims=True)
    np.exp(h, out=h)
    h /= h.sum(axis=-1, keepdims=True)
    return h


def flat_params(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """(params float32, dims int32) in the C/CUDA core's layout."""
    dims = np.array(model.dims, dtype=np.int32)
    if len(model.layers) > MAX_LAYERS or dims.max() > MAX_WIDTH:
        raise ValueError(f"the C/CUDA core supports <= {MAX_LAYERS} layers of width <= "
                         f"{MAX_WIDTH}, model has dims {tuple(dims)}")
    parts = []
    for W, b in model.layers:
        parts += [np.ascontiguousarray(W, dtype=DTYPE).ravel(), np.asarray(b, dtype=DTYPE)]
    return np.concatenate(parts).astype(DTYPE), dims


def save_model(model: Model, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, (W, b) in enumerate(model.layers):
        arrays[f"W{i}"] = np.asarray(W, dtype=DTYPE)
        arrays[f"b{i}"] = np.asarray(b, dtype=DTYPE)
    for k, v in model.tensors.items():
        arrays[f"t_{k}"] = np.asarray(v)
    meta = dict(model.meta, arch=model.arch)
    np.savez(path, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    model.path = path
    return path


def load_model(path) -> Model:
    """Load a ``.npz`` model; refuses one built for another feature definition."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        layers, tensors = [], {}
        i = 0
        while f"W{i}" in z:
            layers.append((z[f"W{i}"].astype(DTYPE), z[f"b{i}"].astype(DTYPE)))
            i += 1
        for k in z.files:
            if k.startswith("t_"):
                tensors[k[2:]] = z[k]
    spec = meta.get("features", {})
    if spec.get("version") != SPEC_VERSION or spec.get("names") != spec_dict()["names"]:
        raise ValueError(f"{path}: model was trained on feature spec {spec.get('version')} "
                         f"{spec.get('names')}, this build computes {SPEC_VERSION} — retrain")
    return Model(meta["arch"], meta, layers, tensors, path)


# --------------------------------------------------------------------------------------------
# PyTorch (training/export only)


def torch_module(model: Model | None = None, *, arch: str = "mlp", n_features: int = N_FEATURES,
                 hidden=(32, 32), lstm_hidden: int = 16, n_classes: int = 3):
    """A PyTorch module for ``model`` (weights loaded) or a fresh one of the given shape.

    Both return probabilities; training uses ``.logits(x)``.
    """
    import torch
    from torch import nn

    class MLP(nn.Module):
        def __init__(self, dims):
            super().__init__()
            self.register_buffer("mu", torch.zeros(dims[0]))
            self.register_buffer("sd", torch.ones(dims[0]))
            self.net = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

        def logits(self, features):
            h = (features - self.mu) / self.sd
            for i, lin in enumerate(self.net):
                h = lin(h)
                if i < len(self.net) - 1:
                    h = torch.relu(h)
            return h

        def forward(self, features):
            return torch.softmax(self.logits(features), dim=-1)

        def folded_layers(self):
            """Layers with the standardisation folded into the first one."""
            out = []
            for i, lin in enumerate(self.net):
                W = lin.weight.detach().double()
                b = lin.bias.detach().double()
                if i == 0:
                    sd, mu = self.sd.double(), self.mu.double()
                    W = W / sd
                    b = b - W @ mu
                out.append((W.float().numpy().copy(), b.float().numpy().copy()))
            return out

    class LSTM(nn.Module):
        def __init__(self, f, h, c):
            super().__init__()
            self.register_buffer("mu", torch.zeros(f))
            self.register_buffer("sd", torch.ones(f))
            self.lstm = nn.LSTM(f, h, batch_first=True)
            self.head = nn.Linear(h, c)

        def logits(self, features):  # (B, W, F)
            out, _ = self.lstm((features - self.mu) / self.sd)
            return self.head(out[:, -1])

        def forward(self, features):
            return torch.softmax(self.logits(features), dim=-1)

    if model is None:
        if arch == "mlp":
            return MLP((n_features, *hidden, n_classes))
        return LSTM(n_features, lstm_hidden, n_classes)
    if model.arch == "mlp":
        m = MLP(model.dims)
        with torch.no_grad():
            for lin, (W, b) in zip(m.net, model.layers):
                lin.weight.copy_(torch.from_numpy(np.asarray(W)))
                lin.bias.copy_(torch.from_numpy(np.asarray(b)))
        return m
    t = model.tensors
    m = LSTM(model.n_features, int(model.meta["lstm_hidden"]), int(model.meta.get("n_classes", 3)))
    m.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in t.items()})
    return m


def export_onnx(model: Model, onnx_path, opset: int = ONNX_OPSET) -> Path:
    """Export ``model`` to ONNX (input ``features`` (batch, F) or (batch, W, F), output ``probs``
    (batch, 3), dynamic batch) and check the graph."""
    import logging
    import warnings

    import onnx
    import torch

    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    m = torch_module(model).eval()
    shape = (2, model.n_features) if model.arch == "mlp" else (2, model.window, model.n_features)
    x = torch.zeros(shape)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the exporter logs its progress and optional-package notes at WARNING: keep them quiet
        quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo")]
        levels = [lg.level for lg in quiet]
        for lg in quiet:
            lg.setLevel(logging.ERROR)
        try:
            torch.onnx.export(m, (x,), str(onnx_path), input_names=[ONNX_INPUT],
                              output_names=[ONNX_OUTPUT], opset_version=opset, dynamo=True,
                              dynamic_shapes={"features": {0: batch}}, verbose=False,
                              external_data=False)
        except Exception:  # noqa: BLE001 - the TorchScript exporter still handles these graphs
            torch.onnx.export(m, (x,), str(onnx_path), input_names=[ONNX_INPUT],
                              output_names=[ONNX_OUTPUT], opset_version=opset, dynamo=False,
                              dynamic_axes={ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}})
        finally:
            for lg, lv in zip(quiet, levels):
                lg.setLevel(lv)
    proto = onnx.load(str(onnx_path))
    onnx.checker.check_model(proto)
    return onnx_path


def mlp_onnx_proto(model: Model, opset: int = ONNX_OPSET):
    """The MLP as an ONNX graph built directly from the weights (Gemm/Relu/Softmax), for
    runtimes that need ONNX when no exported file is at hand (no PyTorch needed)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if model.arch != "mlp":
        raise ValueError("only MLPs can be built without PyTorch; export LSTMs with export_onnx")
    inits, nodes = [], []
    h = ONNX_INPUT
    for i, (W, b) in enumerate(model.layers):
        inits += [numpy_helper.from_array(np.asarray(W, DTYPE), f"W{i}"),
                  numpy_helper.from_array(np.asarray(b, DTYPE), f"b{i}")]
        z = f"z{i}"
        nodes.append(helper.make_node("Gemm", [h, f"W{i}", f"b{i}"], [z], transB=1))
        if i < len(model.layers) - 1:
            h = f"h{i}"
            nodes.append(helper.make_node("Relu", [z], [h]))
        else:
            nodes.append(helper.make_node("Softmax", [z], [ONNX_OUTPUT], axis=-1))
    dims = model.dims
    graph = helper.make_graph(
        nodes, "tickwire_mlp",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, ["batch", dims[0]])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, ["batch", dims[-1]])],
        inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="tickwire")
    proto.ir_version = min(proto.ir_version, 10)  # readable by older runtimes too
    onnx.checker.check_model(proto)
    return proto


def onnx_bytes(model: Model) -> bytes:
    """The model's ONNX: its exported file when present, else (MLP) built from the weights."""
    p = model.onnx_path
    if p is not None:
        return Path(p).read_bytes()
    return mlp_onnx_proto(model).SerializeToString()


def random_mlp(dims=(N_FEATURES, 32, 32, 3), seed: int = 0, move_ticks: float = 1.0) -> Model:
    """An untrained MLP with He-initialised weights (tests and benchmarks of the runners)."""
    rng = np.random.default_rng(seed)
    layers = [((rng.standard_normal((o, i)) * np.sqrt(2.0 / i)).astype(DTYPE),
               (0.1 * rng.standard_normal(o)).astype(DTYPE)) for i, o in zip(dims[:-1], dims[1:])]
    meta = {"name": f"random_mlp_{seed}", "n_features": dims[0], "n_classes": dims[-1],
            "window": 1, "horizon": 10, "move_ticks": move_ticks, "features": spec_dict()}
    return Model("mlp", meta, layers=layers)
