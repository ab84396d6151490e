"""``python -m tickwire.kernels.check``: compile every kernel for the target GPUs and report.

Each ``kernels/*.cu`` is compiled with nvcc for sm_80 (A100) and sm_90 (H100/H200) into a
temporary directory — cubins by default, PTX with ``--ptx`` — with ptxas' register / spill /
stack report. More checks ride along: the same sources compile with NVRTC (what cupy's
``RawModule`` uses: no libc headers) when ``libnvrtc`` can be loaded, ``feature_spec.cuh`` matches
the Python feature table, and the CPU build of the core (g++) compiles. A check that could
not run (no libnvrtc, no g++) is reported as ``"ok": None`` with ``"not_run"`` naming what is
missing, never as passed. Exit status: 0 every check that ran passed, 1 a check failed, 2 nvcc
is missing.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .cpu_core import KERNEL_DIR

__all__ = ["check", "main", "ARCHS"]

ARCHS = ("sm_80", "sm_90")
FLAGS = {"features.cu": ("--fmad=false",)}  # bit-exact doubles vs the CPU build


def _ptxas_summary(stderr: str) -> dict:
    """{kernel: {registers, spill_stores, spill_loads, stack}} from ``-Xptxas -v`` output."""
    out, cur = {}, None
    for line in stderr.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            cur = out.setdefault(m.group(1), {})
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads",
                      line)
        if m:
            cur.update(stack=int(m.group(1)), spill_stores=int(m.group(2)),
                       spill_loads=int(m.group(3)))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            cur["registers"] = int(m.group(1))
    return out


def _nvrtc():
    """libnvrtc via ctypes, or None: the toolkit's, the system's, or a pip nvidia wheel's."""
    names = [ctypes.util.find_library("nvrtc"), "libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"]
    nvcc = shutil.which("nvcc")
    roots = [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"]
    if nvcc:
        roots.append(str(Path(nvcc).resolve().parents[1]))
    for r in filter(None, roots):
        names += sorted(glob.glob(os.path.join(r, "lib*", "libnvrtc.so*")))
    for site in sys.path:
        names += sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib", "libnvrtc.so*")))
    for n in filter(None, names):
        if "builtins" in n or ".alt." in n:
            continue
        try:
            return ctypes.CDLL(n)
        except OSError:
            continue
    return None


def _nvrtc_compile(lib, cu: Path, arch: str) -> tuple[bool, str]:
    prog = ctypes.c_void_p()
    if lib.nvrtcCreateProgram(ctypes.byref(prog), cu.read_bytes(), cu.name.encode(), 0, None,
                              None) != 0:
        return False, "nvrtcCreateProgram failed"
    opts = [b"-std=c++17", f"-I{KERNEL_DIR}".encode(), f"--gpu-architecture={arch}".encode(),
            *(f.encode() for f in FLAGS.get(cu.name, ()))]
    rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    n = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    log = ctypes.create_string_buffer(max(1, n.value))
    lib.nvrtcGetProgramLog(prog, log)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return rc == 0, log.value.decode(errors="replace").strip()


def check(archs=ARCHS, ptx: bool = False, nvcc: str | None = None) -> dict:
    """Run the checks; returns {"ok": bool, "results": [...]}. Raises FileNotFoundError when
    nvcc is missing."""
    nvcc = nvcc or shutil.which("nvcc")
    if nvcc is None:
        raise FileNotFoundError("nvcc not found on PATH")
    results = []
    with tempfile.TemporaryDirectory(prefix="tickwire-kcheck-") as tmp:
        for cu in sorted(KERNEL_DIR.glob("*.cu")):
            for arch in archs:
                kind = "ptx" if ptx else "cubin"
                target = (f"-arch=compute_{arch[3:]}" if ptx else f"-arch={arch}")
                out = Path(tmp) / f"{cu.stem}.{arch}.{kind}"
                cmd = [nvcc, "-std=c++17", target, f"--{kind}", f"-I{KERNEL_DIR}",
                       *FLAGS.get(cu.name, ()), "-Xptxas", "-v", "-o", str(out), str(cu)]
                if ptx:
                    cmd.remove("-Xptxas")
                    cmd.remove("-v")
                t0 = time.perf_counter()
                r = subprocess.run(cmd, capture_output=True, text=True)
                res = {"check": f"nvcc {cu.name} {arch} {kind}", "ok": r.returncode == 0,
                       "seconds": round(time.perf_counter() - t0, 2)}
                if r.returncode == 0:
                    res["bytes"] = out.stat().st_size
                    res["kernels"] = _ptxas_summary(r.stderr)
                else:
                    res["error"] = (r.stderr or r.stdout).strip()[-4000:]
                results.append(res)
    results += nvrtc_checks(_nvrtc(), archs)
    # the generated header must match the Python feature table it was generated from
    from tickwire.models.features import render_header

    spec = (KERNEL_DIR / "feature_spec.cuh").read_text()
    results.append({"check": "feature_spec.cuh matches models/features.py",
                    "ok": spec == render_header(),
                    **({} if spec == render_header() else {
                        "error": "regenerate: python -m tickwire.models.features --header > "
                                 "kernels/feature_spec.cuh"})})
    from .cpu_core import available, build

    ok, why = available()
    if ok:
        try:
            t0 = time.perf_counter()
            p = build()
            results.append({"check": "g++ CPU core", "ok": True, "path": str(p),
                            "seconds": round(time.perf_counter() - t0, 2)})
        except RuntimeError as e:
            results.append({"check": "g++ CPU core", "ok": False, "error": str(e)})
    else:
        results.append(not_run("g++ CPU core", why))
    return summarize(results, nvcc=nvcc)


def not_run(name: str, why: str) -> dict:
    """The result of a check that could not run: neither passed nor failed."""
    return {"check": name, "ok": None, "not_run": why}


def summarize(results: list[dict], **extra) -> dict:
    """The report: ``ok`` is False when a check failed; checks that did not run are listed
    in ``not_run`` (they do not make the report pass or fail)."""
    return {"ok": not any(r["ok"] is False for r in results),
            "not_run": [r["check"] for r in results if r["ok"] is None],
            **extra, "results": results}


def nvrtc_checks(lib, archs=ARCHS) -> list[dict]:
    """Compile every kernel with NVRTC (``lib``: libnvrtc, or None when it is missing)."""
    out = []
    for cu in sorted(KERNEL_DIR.glob("*.cu")):
        for arch in archs:
            name = f"nvrtc {cu.name} {arch}"
            if lib is None:
                out.append(not_run(name, "libnvrtc not found"))
                continue
            t0 = time.perf_counter()
            try:
                ok, log = _nvrtc_compile(lib, cu, arch)
            except OSError as e:  # builtins library missing next to libnvrtc
                ok, log = False, str(e)
            res = {"check": name, "ok": ok, "seconds": round(time.perf_counter() - t0, 2)}
            if not ok:
                res["error"] = log[-4000:]
            out.append(res)
    return out


def _version(nvcc: str) -> str:
    r = subprocess.run([nvcc, "--version"], capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if "release" in ln]
    return lines[0].strip() if lines else "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickwire.kernels.check",
                                 description="compile every kernel with nvcc and report")
    ap.add_argument("--arch", action="append", help="target(s), default sm_80 and sm_90")
    ap.add_argument("--ptx", action="store_true", help="emit PTX instead of cubins")
    ap.add_argument("--json", action="store_true", help="machine-readable report")
    a = ap.parse_args(argv)
    try:
        rep = check(tuple(a.arch) if a.arch else ARCHS, ptx=a.ptx)
    except FileNotFoundError as e:
        print(f"kernels check: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(rep, indent=1))
    else:
        print(f"nvcc: {rep['nvcc']} ({_version(rep['nvcc'])})")
        for r in rep["results"]:
            mark = {True: "ok     ", False: "FAIL   ", None: "not run"}[r["ok"]]
            extra = ""
            if "kernels" in r:
                extra = "  " + ", ".join(
                    f"{k}: {v.get('registers', '?')} regs, {v.get('spill_stores', 0)}B spill, "
                    f"{v.get('stack', 0)}B stack" for k, v in r["kernels"].items())
            if "not_run" in r:
                extra = f"  ({r['not_run']})"
            print(f"[{mark}] {r['check']}{' %.2fs' % r['seconds'] if 'seconds' in r else ''}"
                  f"{extra}")
            if r["ok"] is False:
                print("          " + r.get("error", "").replace("\n", "\n          "))
        if not rep["ok"]:
            print("kernel check FAILED")
        elif rep["not_run"]:
            print(f"every check that ran passed; {len(rep['not_run'])} not run")
        else:
            print("all kernels compiled")
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
