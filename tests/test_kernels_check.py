"""Every kernel compiles with nvcc for sm_80 and sm_90 (skipped only where nvcc is missing)."""

from __future__ import annotations

import json
import shutil

import pytest

from tickwire.kernels import check as kcheck
from tickwire.kernels.cpu_core import KERNEL_DIR

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")]


@pytest.fixture(scope="module")
def report():
    return kcheck.check()


def test_every_kernel_compiles_for_both_archs(report):
    failed = [r for r in report["results"] if not r["ok"]]
    assert not failed, failed
    names = {r["check"] for r in report["results"]}
    for cu in KERNEL_DIR.glob("*.cu"):
        for arch in kcheck.ARCHS:
            assert f"nvcc {cu.name} {arch} cubin" in names
    assert len(list(KERNEL_DIR.glob("*.cu"))) >= 2


def test_kernels_do_not_spill(report):
    kernels = {k: v for r in report["results"] for k, v in r.get("kernels", {}).items()}
    assert {"tw_features_kernel", "tw_signal_kernel", "tw_mlp_kernel",
            "tw_mlp_warp_kernel"} <= set(kernels)
    assert all(v.get("spill_stores", 0) == 0 for v in kernels.values()), kernels


def test_cli_ptx_json(capsys):
    assert kcheck.main(["--ptx", "--arch", "sm_90", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] and any(r["check"].endswith("sm_90 ptx") for r in rep["results"])


def test_cli_reports_failure(monkeypatch, tmp_path, capsys):
    bad = tmp_path / "kernels"
    bad.mkdir()
    for f in KERNEL_DIR.glob("*.cuh"):
        (bad / f.name).write_text(f.read_text())
    (bad / "broken.cu").write_text("__global__ void k() { this is not C++; }\n")
    monkeypatch.setattr(kcheck, "KERNEL_DIR", bad)
    assert kcheck.main(["--arch", "sm_90"]) == 1
    assert "FAIL" in capsys.readouterr().out
