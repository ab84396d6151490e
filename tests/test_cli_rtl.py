"""`tickwire run --backend rtl` works like `--backend emu`; `tickwire latency` measures it."""

import json

import pytest
from typer.testing import CliRunner

from tickwire.host.cli import _register_optional, app
from tickwire.host.latency_cli import DEFAULT_CONFIG

pytest.importorskip("tickwire.sim.pipeline_full")
pytestmark = pytest.mark.rtl
_register_optional()


def test_run_rtl_equals_emu():
    r = CliRunner()
    emu = json.loads(r.invoke(app, ["run", "--json", "--config", str(DEFAULT_CONFIG),
                                    "--backend", "emu"]).stdout)
    out = r.invoke(app, ["run", "--json", "--config", str(DEFAULT_CONFIG), "--backend", "rtl"])
    assert out.exit_code == 0, out.output
    rtl = json.loads(out.stdout)
    assert rtl["backend"] == "rtl" and emu["orders"] > 20
    for k in ("messages", "packets", "gaps", "orders", "triggers_fired", "risk_rejects"):
        assert rtl[k] == emu[k], k


def test_run_rtl_needs_symbols():
    out = CliRunner().invoke(app, ["run", "--backend", "rtl"])
    assert out.exit_code == 2 and "symbols" in out.output


def test_latency_json():
    out = CliRunner().invoke(app, ["latency", "--backend", "rtl", "--json"])
    assert out.exit_code == 0, out.output
    r = json.loads(out.stdout)
    assert r["orders"] > 20
    f, t = r["from_frame_first_byte"]["cycles"], r["from_trigger_field"]["cycles"]
    assert 0 < t["min"] <= t["p50"] <= t["p99"] <= t["max"]
    assert f["min"] >= t["min"] and f["p50"] >= t["p50"]
    assert r["from_trigger_field"]["ns"]["min"] == pytest.approx(t["min"] * 1000 / 322.265625,
                                                                 abs=0.1)
