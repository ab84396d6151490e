"""Train, evaluate and export the signal model; write its model card.

``train(source, out_dir, seed)`` → :class:`ModelInfo`: builds the dataset (features and
horizon labels, chronological purged splits), fits the MLP (or LSTM) with PyTorch on the CPU
(seeded, deterministic, one thread, early stopping on validation loss), saves
``<out_dir>/<name>.npz``, exports ``<name>.onnx`` and writes the card ``<name>.md`` with held-out
accuracy against the naive baselines (majority class, last-move persistence), on the LOBSTER
sample too.

``python -m tickwire.models.train cards`` regenerates the committed cards (``models/cards``)
and default model (``models/artifacts``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .dataset import (
    CLASSES, FLAT, Dataset, Rows, build_dataset, default_lobster_path, load_rows,
)
from .features import FEATURES, spec_dict
from ..spec.capacity import ROW_DEPTH
from .mlp import Model, export_onnx, load_model, save_model, torch_module

__all__ = ["ModelInfo", "train", "export", "evaluate", "write_card", "fit_dataset",
           "DEFAULT_ARTIFACT"]

PKG_DIR = Path(__file__).resolve().parent
DEFAULT_ARTIFACT = PKG_DIR / "artifacts" / "mlp_synthetic.npz"


@dataclass
class ModelInfo:
    """What :func:`train` produced (paths) and how well it does (metrics per dataset/split)."""

    name: str
    arch: str
    model_path: str
    onnx_path: str | None
    card_path: str | None
    source: str
    horizon: int
    window: int
    seed: int
    n_train: int
    n_val: int
    n_test: int
    epochs_run: int
    train_seconds: float
    move_ticks: float
    metrics: dict = field(default_factory=dict)  # dataset -> split -> {model, majority, ...}

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# evaluation


def _accuracy(pred, y) -> float:
    return float(np.mean(pred == y)) if len(y) else float("nan")


def _scores(probs: np.ndarray, ds: Dataset, idx: np.ndarray, majority: int) -> dict:
    y = ds.y[idx]
    p = probs[idx] if len(idx) else np.zeros((0, 3))
    pred = p.argmax(1) if len(idx) else np.zeros(0, dtype=np.int64)
    eps = 1e-7
    return {
        "n": int(len(idx)),
        "model": _accuracy(pred, y),
        "majority": _accuracy(np.full(len(y), majority), y),
        "persistence_last": _accuracy(ds.baselines["persistence_last"][idx], y),
        "persistence_h": _accuracy(ds.baselines["persistence_h"][idx], y),
        "log_loss": float(-np.mean(np.log(p[np.arange(len(y)), y] + eps))) if len(y) else None,
        "balance": [float(np.mean(y == c)) if len(y) else 0.0 for c in range(len(CLASSES))],
    }


def evaluate(model: Model | str | Path, ds: Dataset, parts=("val", "test")) -> dict:
    """Accuracy of ``model`` and the naive baselines on ``ds``'s splits.

    majority = the most frequent class of ``ds``'s train split; persistence_last = the sign of
    the last update's mid move; persistence_h = the sign of the mid move over the previous
    ``horizon`` updates.
    """
    m = load_model(model) if not isinstance(model, Model) else model
    if (m.window > 1) != (ds.window > 1) or (m.window > 1 and ds.X.shape[1] != m.window):
        raise ValueError("dataset window does not match the model's")
    probs = m.predict(ds.X) if len(ds.y) else np.zeros((0, 3), np.float32)
    ytr = ds.y[ds.train]
    majority = int(np.bincount(ytr, minlength=3).argmax()) if len(ytr) else FLAT
    return {p: _scores(probs, ds, getattr(ds, p), majority) for p in parts}


# --------------------------------------------------------------------------------------------
# training


class _TorchSettings:
    """Single-threaded torch for the duration of a fit, restored afterwards.

    One thread makes CPU float reductions run in a fixed order, so a seeded fit is
    bit-reproducible (tested). ``torch.use_deterministic_algorithms`` is not used: it imports
    the inductor compiler (~3 s) and only constrains GPU/scatter kernels this model never hits.
    """

    def __enter__(self):
        import torch

        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny nets: threads cost more than they give
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.threads)


def fit_dataset(ds: Dataset, seed: int = 0, *, arch: str = "mlp", hidden=(32, 32),
                lstm_hidden: int = 16, epochs: int = 40, batch_size: int = 256,
                lr: float = 3e-3, weight_decay: float = 1e-4, patience: int = 6):
    """Fit a fresh module on ``ds.train`` (early stopping on ``ds.val``); returns
    (module, epochs_run)."""
    import torch

    with _TorchSettings():
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        m = torch_module(arch=arch, n_features=ds.n_features, hidden=hidden,
                         lstm_hidden=lstm_hidden)
        Xtr = torch.from_numpy(ds.X[ds.train])
        ytr = torch.from_numpy(ds.y[ds.train])
        Xva = torch.from_numpy(ds.X[ds.val])
        yva = torch.from_numpy(ds.y[ds.val])
        flat = Xtr.reshape(-1, ds.n_features).double()
        with torch.no_grad():
            m.mu.copy_(flat.mean(0).float())
            m.sd.copy_(flat.std(0).clamp_min(1e-6).float())
        opt = torch.optim.Adam(m.parameters(), lr=lr, weight_decay=weight_decay)
        loss_fn = torch.nn.CrossEntropyLoss()
        best, best_state, bad, run = float("inf"), None, 0, 0
        n = len(ytr)
        for ep in range(epochs):
            run = ep + 1
            m.train()
            perm = torch.from_numpy(rng.permutation(n))
            for i in range(0, n, batch_size):
                b = perm[i:i + batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(m.logits(Xtr[b]), ytr[b])
                loss.backward()
                opt.step()
            m.eval()
            with torch.no_grad():
                vl = float(loss_fn(m.logits(Xva), yva)) if len(yva) else -float(ep)
            if vl < best - 1e-5:
                best, bad = vl, 0
                best_state = {k: v.detach().clone() for k, v in m.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    break
        if best_state is not None:
            m.load_state_dict(best_state)
        m.eval()
        return m, run


def _to_model(m, arch: str, meta: dict) -> Model:
    if arch == "mlp":
        return Model("mlp", meta, layers=m.folded_layers())
    tensors = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
    return Model("lstm", meta, tensors=tensors)


def train(capture_or_rows, out_dir, seed: int = 0, *, name: str | None = None,
          arch: str = "mlp", horizon: int = 10, hidden=(32, 32), lstm_hidden: int = 16,
          window: int = 16, epochs: int = 40, batch_size: int = 256, lr: float = 3e-3,
          weight_decay: float = 1e-4, patience: int = 6, depth: int = ROW_DEPTH, symbols=None,
          splits=(0.7, 0.15, 0.15), onnx: bool = True, card_dir=None,
          eval_on="auto") -> ModelInfo:
    """Train a model on ``capture_or_rows`` and save it under ``out_dir``.

    ``capture_or_rows``: :class:`Rows`, a :class:`Dataset`, a capture path (emulator replay),
    a LOBSTER ``*_orderbook_*.csv``, ``"lobster"`` or ``"synthetic[:N]"``. ``eval_on``: extra
    {label: source} datasets to score in the card; ``"auto"`` adds the LOBSTER sample when it
    is found and is not the training data. Returns a :class:`ModelInfo`.
    """
    if arch not in ("mlp", "lstm"):
        raise ValueError("arch must be 'mlp' or 'lstm'")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    win = window if arch == "lstm" else 1
    if isinstance(capture_or_rows, Dataset):
        ds = capture_or_rows
        if ds.window != win:
            raise ValueError(f"dataset window {ds.window} != model window {win}")
    else:
        rows = load_rows(capture_or_rows, symbols=symbols, depth=depth, seed=seed)
        ds = build_dataset(rows, horizon=horizon, splits=splits, window=win)
    if len(ds.train) == 0:
        raise ValueError("no labelled training rows: need more than `horizon` updates per symbol")
    name = name or f"{arch}_{_slug(ds.source)}"
    m, run = fit_dataset(ds, seed, arch=arch, hidden=hidden, lstm_hidden=lstm_hidden,
                         epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         patience=patience)
    meta = {
        "name": name, "n_features": ds.n_features, "n_classes": 3, "classes": list(CLASSES),
        "horizon": ds.horizon, "window": ds.window, "move_ticks": ds.move_ticks, "seed": seed,
        "source": ds.source, "features": spec_dict(), "hidden": list(hidden),
        "lstm_hidden": lstm_hidden,
    }
    model = _to_model(m, arch, meta)
    model_path = save_model(model, out_dir / f"{name}.npz")
    onnx_path = None
    if onnx:
        onnx_path = export(model_path, out_dir / f"{name}.onnx")
    metrics = {ds.source or "train data": evaluate(model, ds)}
    for label, src in _extra_evals(eval_on, ds, depth, horizon, win).items():
        metrics[label] = evaluate(model, src, parts=("test",))
    info = ModelInfo(
        name=name, arch=arch, model_path=str(model_path),
        onnx_path=str(onnx_path) if onnx_path else None, card_path=None, source=ds.source,
        horizon=ds.horizon, window=ds.window, seed=seed, n_train=len(ds.train),
        n_val=len(ds.val), n_test=len(ds.test), epochs_run=run,
        train_seconds=round(time.perf_counter() - t0, 3), move_ticks=ds.move_ticks,
        metrics=metrics)
    card = Path(card_dir) if card_dir is not None else out_dir
    info.card_path = str(write_card(info, model, ds, card / f"{name}.md"))
    return info


def _slug(s: str) -> str:
    base = s.split(":")[0].split("(")[0] or "model"
    return "".join(c if c.isalnum() else "_" for c in base)


def _extra_evals(eval_on, ds: Dataset, depth: int, horizon: int, window: int) -> dict:
    if eval_on is None:
        return {}
    if eval_on == "auto":
        p = default_lobster_path()
        if p is None or ds.source.startswith("lobster"):
            return {}
        eval_on = {"LOBSTER sample (AAPL)": str(p)}
    out = {}
    for label, src in dict(eval_on).items():
        if isinstance(src, Dataset):
            out[label] = src
        else:
            rows = src if isinstance(src, Rows) else load_rows(src, depth=depth)
            out[label] = build_dataset(rows, horizon=horizon, window=window)
    return out


def export(model_path, onnx_path, opset: int = 18) -> Path:
    """Export a saved ``.npz`` model to ONNX (opset ``opset`` ≥ 17, dynamic batch)."""
    if opset < 17:
        raise ValueError("opset must be >= 17")
    model = load_model(model_path)
    return export_onnx(model, onnx_path, opset=opset)


# --------------------------------------------------------------------------------------------
# model card


def _pct(x) -> str:
    return "—" if x is None or x != x else f"{100 * x:.1f}%"


def write_card(info: ModelInfo, model: Model, ds: Dataset, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if model.arch == "mlp":
        shape = " → ".join(map(str, model.dims)) + " (ReLU, softmax)"
        n_params = sum(W.size + b.size for W, b in model.layers)
    else:
        shape = (f"LSTM({model.n_features} → {model.meta['lstm_hidden']}) over {model.window} "
                 f"updates → linear → 3 (softmax)")
        n_params = sum(v.size for k, v in model.tensors.items() if k not in ("mu", "sd"))
    lines = [
        f"# Model card: `{info.name}`",
        "",
        "Generated by `tickwire.models.train` — do not edit by hand; retrain to refresh.",
        "",
        "| | |", "|---|---|",
        f"| architecture | {shape} |",
        f"| parameters | {n_params} |",
        f"| task | sign of the mid move over the next {info.horizon} book updates of the same "
        f"symbol: down / flat / up |",
        f"| training data | `{info.source}` |",
        f"| samples | train {info.n_train}, val {info.n_val}, test {info.n_test} "
        f"(chronological 70/15/15, purged at the split boundaries) |",
        f"| training | Adam, seed {info.seed}, {info.epochs_run} epochs (early stopping on val "
        f"loss), {info.train_seconds:.1f} s on one CPU thread |",
        f"| expected move | {info.move_ticks:.3f} ticks (mean \\|Δmid\\| of moving train labels; "
        f"scales the fair value) |",
        f"| files | `{Path(info.model_path).name}` (numpy weights + metadata)"
        + (f", `{Path(info.onnx_path).name}` (ONNX opset 18, dynamic batch)" if info.onnx_path
           else "") + " |",
        "",
        "## Held-out accuracy vs naive baselines",
        "",
        "majority = most frequent class of the dataset's train split; persistence (last) = sign "
        "of the last update's mid move; persistence (H) = sign of the mid move over the previous "
        "H updates.",
        "",
        "| dataset | split | n | model | majority | persistence (last) | persistence (H) | "
        "log-loss | balance down/flat/up |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for dsname, parts in info.metrics.items():
        for part, s in parts.items():
            bal = "/".join(f"{100 * b:.0f}" for b in s["balance"])
            ll = "—" if s["log_loss"] is None else f"{s['log_loss']:.3f}"
            lines.append(
                f"| {dsname} | {part} | {s['n']} | **{_pct(s['model'])}** | "
                f"{_pct(s['majority'])} | {_pct(s['persistence_last'])} | "
                f"{_pct(s['persistence_h'])} | {ll} | {bal} |")
    lines += [
        "",
        "## Features (float32, this order; `models/features.py`)",
        "",
        "| # | name | unit | definition |", "|---:|---|---|---|",
        *(f"| {i} | `{f.name}` | {f.unit} | {f.doc} |" for i, f in enumerate(FEATURES)),
        "",
        "## Limitations",
        "",
        "- Small model, small data: accuracy on the 1k-event LOBSTER sample has a standard error "
        "of several points; treat it as a smoke test of the pipeline on real books, not as "
        "evidence of an edge.",
        "- Labels ignore latency, fees and queue position; a direction forecast is not a "
        "profitable strategy.",
        "- Synthetic data is generated with a known imbalance → move relation, which the model "
        "is expected to find.",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


# --------------------------------------------------------------------------------------------
# CLI: regenerate the committed cards and default model


def make_cards(cards_dir=PKG_DIR / "cards", artifacts_dir=PKG_DIR / "artifacts",
               seed: int = 0) -> list[ModelInfo]:
    """Train the reference models (synthetic MLP → artifacts; LOBSTER MLP and LSTM → cards)."""
    import tempfile

    infos = [train("synthetic:40000", artifacts_dir, seed, name="mlp_synthetic",
                   card_dir=cards_dir)]
    if default_lobster_path() is not None:
        with tempfile.TemporaryDirectory() as tmp:
            infos.append(train("lobster", tmp, seed, name="mlp_lobster", card_dir=cards_dir))
            infos.append(train("lobster", tmp, seed, name="lstm_lobster", arch="lstm",
                               window=8, card_dir=cards_dir))
    return infos


def main(argv=None) -> int:  # pragma: no cover - thin CLI
    ap = argparse.ArgumentParser(prog="python -m tickwire.models.train")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cards", help="regenerate models/cards and models/artifacts")
    c.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("train", help="train on a capture, LOBSTER csv, 'lobster' or 'synthetic'")
    t.add_argument("source")
    t.add_argument("out_dir")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--arch", default="mlp", choices=("mlp", "lstm"))
    t.add_argument("--horizon", type=int, default=10)
    t.add_argument("--name")
    a = ap.parse_args(argv)
    if a.cmd == "cards":
        infos = make_cards(seed=a.seed)
    else:
        infos = [train(a.source, a.out_dir, a.seed, arch=a.arch, horizon=a.horizon, name=a.name)]
    print(json.dumps([i.to_dict() for i in infos], indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
