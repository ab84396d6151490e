"""Every kernel compiles with nvcc for sm_80 and sm_90 (skipped only where nvcc is missing);
a check that cannot run is reported as not run, never as passed."""

from __future__ import annotations

import json
import shutil

import pytest

from tickwire.kernels import check as kcheck
from tickwire.kernels.cpu_core import KERNEL_DIR

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")


@pytest.fixture(scope="module")
def report():
    return kcheck.check()


def test_missing_libnvrtc_is_not_run_not_passed():
    res = kcheck.nvrtc_checks(None)
    assert len(res) == len(list(KERNEL_DIR.glob("*.cu"))) * len(kcheck.ARCHS) > 0
    assert all(r["ok"] is None and r["not_run"] == "libnvrtc not found" for r in res)
    rep = kcheck.summarize(res + [{"check": "x", "ok": True}])
    assert rep["ok"] and rep["not_run"] == [r["check"] for r in res]
    rep = kcheck.summarize(res + [{"check": "x", "ok": False}])
    assert rep["ok"] is False


def test_cli_prints_not_run(monkeypatch, capsys):
    def fake_check(archs, ptx):
        return kcheck.summarize([{"check": "nvcc a.cu sm_90 cubin", "ok": True},
                                 *kcheck.nvrtc_checks(None, archs)], nvcc="nvcc")

    monkeypatch.setattr(kcheck, "check", fake_check)
    monkeypatch.setattr(kcheck, "_version", lambda nvcc: "test")
    assert kcheck.main(["--arch", "sm_90"]) == 0
    out = capsys.readouterr().out
    assert "[not run] nvrtc" in out and "(libnvrtc not found)" in out
    assert "not run" in out.splitlines()[-1] and "all kernels compiled" not in out


@needs_nvcc
@pytest.mark.slow
def test_every_kernel_compiles_for_both_archs(report):
    assert report["ok"], [r for r in report["results"] if r["ok"] is False]
    ran = {r["check"] for r in report["results"] if r["ok"] is True}
    assert {"g++ CPU core", "feature_spec.cuh matches models/features.py"} <= ran
    for cu in KERNEL_DIR.glob("*.cu"):
        for arch in kcheck.ARCHS:
            assert f"nvcc {cu.name} {arch} cubin" in ran
    assert len(list(KERNEL_DIR.glob("*.cu"))) >= 2


@needs_nvcc
@pytest.mark.slow
def test_nvrtc_compiles_every_kernel(report):
    res = [r for r in report["results"] if r["check"].startswith("nvrtc ")]
    assert len(res) == len(list(KERNEL_DIR.glob("*.cu"))) * len(kcheck.ARCHS)
    if all(r["ok"] is None for r in res):
        pytest.skip("libnvrtc not installed")
    assert all(r["ok"] is True for r in res), res


@needs_nvcc
@pytest.mark.slow
def test_kernels_do_not_spill(report):
    kernels = {k: v for r in report["results"] for k, v in r.get("kernels", {}).items()}
    assert {"tw_features_kernel", "tw_signal_kernel", "tw_mlp_kernel",
            "tw_mlp_warp_kernel"} <= set(kernels)
    assert all(v.get("spill_stores", 0) == 0 for v in kernels.values()), kernels


@needs_nvcc
@pytest.mark.slow
def test_cli_ptx_json(capsys):
    assert kcheck.main(["--ptx", "--arch", "sm_90", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] and any(r["check"].endswith("sm_90 ptx") for r in rep["results"])


@needs_nvcc
@pytest.mark.slow
def test_cli_reports_failure(monkeypatch, tmp_path, capsys):
    bad = tmp_path / "kernels"
    bad.mkdir()
    for f in KERNEL_DIR.glob("*.cuh"):
        (bad / f.name).write_text(f.read_text())
    (bad / "broken.cu").write_text("__global__ void k() { this is not C++; }\n")
    monkeypatch.setattr(kcheck, "KERNEL_DIR", bad)
    assert kcheck.main(["--arch", "sm_90"]) == 1
    assert "FAIL" in capsys.readouterr().out
