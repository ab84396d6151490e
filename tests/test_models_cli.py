"""`tickwire model train | export | bench` (registered by tickwire.models.cli)."""

from __future__ import annotations

import json

import pytest

import typer.testing as typer_testing  # noqa: E402

import tickwire.host.cli as cli  # noqa: E402


@pytest.fixture(scope="module")
def run():
    cli._register_optional()
    runner = typer_testing.CliRunner()
    return lambda *args: runner.invoke(cli.app, list(args))


def test_model_commands_registered(run):
    r = run("model", "--help")
    assert r.exit_code == 0
    for c in ("train", "export", "bench"):
        assert c in r.output


def test_bench_json(run):
    r = run("model", "bench", "--json", "--iters", "20", "--updates", "200")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output.strip().splitlines()[-1])
    assert rep["inference"]["numpy"]["status"] == "ok" and rep["slow_path"]["updates"] == 200


def test_export_missing_model(run, tmp_path):
    r = run("model", "export", str(tmp_path / "none.npz"), str(tmp_path / "x.onnx"))
    assert r.exit_code == 2
