"""``tickwire model train | export | bench``: registered into the host CLI by ``register``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]


def _fail(msg: str) -> None:
    typer.echo(f"tickwire: {msg}", err=True)
    raise typer.Exit(2)


def register(app, hw_app, model_app) -> None:  # noqa: ARG001 - the host passes all three apps
    @model_app.command("train")
    def train_cmd(
        source: str = typer.Argument(..., help="capture (pcap/pcapng/BinaryFILE, replayed by the "
                                     "emulator), LOBSTER *_orderbook_*.csv, 'lobster' (the "
                                     "shared sample) or 'synthetic[:N]'"),
        out_dir: Path = typer.Option(Path("out/models"), "--out", help="output directory"),
        seed: int = typer.Option(0, help="random seed (data split order, init, shuffling)"),
        arch: str = typer.Option("mlp", help="mlp | lstm"),
        horizon: int = typer.Option(10, help="label horizon, book updates of the same symbol"),
        name: Optional[str] = typer.Option(None, help="model name (file stem)"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
    ):
        """Train the signal model; writes <name>.npz, <name>.onnx and the card <name>.md."""
        from .train import train

        try:
            info = train(source, out_dir, seed, arch=arch, horizon=horizon, name=name)
        except (FileNotFoundError, ValueError) as e:
            _fail(str(e))
        if as_json:
            typer.echo(json.dumps(info.to_dict()))
            return
        t = info.metrics[info.source]["test"]
        typer.echo(f"{info.name}: test accuracy {t['model']:.1%} (majority {t['majority']:.1%}, "
                   f"persistence {t['persistence_last']:.1%}) on {t['n']} samples")
        typer.echo(f"model {info.model_path}\nonnx  {info.onnx_path}\ncard  {info.card_path}")

    @model_app.command("export")
    def export_cmd(model_path: Path = typer.Argument(..., help="trained .npz model"),
                   onnx_path: Path = typer.Argument(..., help="output .onnx"),
                   opset: int = typer.Option(18, help="ONNX opset (>= 17)")):
        """Export a trained model to ONNX (dynamic batch)."""
        from .train import export

        try:
            p = export(model_path, onnx_path, opset=opset)
        except (FileNotFoundError, ValueError) as e:
            _fail(str(e))
        typer.echo(str(p))

    @model_app.command("bench")
    def bench_cmd(model_path: Optional[Path] = typer.Option(None, "--model",
                                                             help="model .npz (default: bundled)"),
                  iters: int = typer.Option(2000, help="timed calls per backend and batch size"),
                  updates: int = typer.Option(5000, help="book updates for the slow-path loop"),
                  as_json: bool = typer.Option(False, "--json", help="one JSON object")):
        """Inference latency per backend and slow-path (update → trigger) latency."""
        from .bench import bench

        try:
            rep = bench(model_path, iters=iters, slow_path_updates=updates)
        except (FileNotFoundError, ValueError) as e:
            _fail(str(e))
        if as_json:
            typer.echo(json.dumps(rep))
            return
        typer.echo(f"auto backend: {rep['auto']['backend']} — {rep['auto']['reason']}")
        for name, r in rep["inference"].items():
            if r["status"] != "ok":
                typer.echo(f"{name:12s} {r['status']}")
                continue
            cells = [f"batch {k[6:]}: p50 {v['p50_us']:.1f} µs p99 {v['p99_us']:.1f} µs"
                     for k, v in r.items() if k.startswith("batch_")]
            typer.echo(f"{name:12s} " + "; ".join(cells))
        sp = rep.get("slow_path")
        if sp:
            u = sp["update_to_write"]
            typer.echo(f"slow path ({sp['backend']}): {sp['updates']} updates, "
                       f"{sp['trigger_writes']} trigger writes ({sp['writes_per_update']:.1%}), "
                       f"update→write p50 {u['p50_us']} µs p99 {u['p99_us']} µs")
