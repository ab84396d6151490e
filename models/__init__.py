"""tickwire.models — the slow path: book rows → features → model → fair value → triggers.

Entry points for the CLI (``tickwire model train|export|bench``):

- ``from tickwire.models.train import train, export``
  ``train(capture_or_rows, out_dir, seed=0, ...) -> ModelInfo``;
  ``export(model_path, onnx_path, opset=18) -> Path``
- ``from tickwire.models.bench import bench``: ``bench(model_path=None, ...) -> dict``
- ``from tickwire.models.signal import SignalEngine``

The names below are importable from the package too, lazily, so that ``import tickwire.models``
stays cheap (PyTorch loads only when training or exporting). ``train`` and ``bench`` are left
out on purpose: they are also submodule names, and a submodule import would shadow them.
"""

from tickwire.host.lazy import lazy_exports

_LAZY = {
    "export": "train", "ModelInfo": "train", "evaluate": "train",
    "SignalEngine": "signal", "trigger_prices": "signal", "fair_value": "signal",
    "features_batch": "features", "FeatureStream": "features", "FEATURES": "features",
    "FEATURE_NAMES": "features",
    "Rows": "dataset", "build_dataset": "dataset", "rows_from_replay": "dataset",
    "lobster_rows": "dataset", "synthetic_rows": "dataset", "load_rows": "dataset",
    "load_model": "mlp", "Model": "mlp",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
