"""CPU build of the CUDA arithmetic core (``core.cuh`` via ``core_capi.cpp``), loaded with ctypes.

``CpuCore()`` compiles the shared library with g++ on first use into a build directory
(``$TICKWIRE_BUILD_DIR`` or a per-user temp dir; never the source tree), keyed by a hash of the
sources and flags so a changed header rebuilds. It runs the exact code the GPU kernels run, so
the tests compare it with numpy instead of needing a GPU. Also home of :func:`segments`, the
host-side row layout (CSR by symbol) the feature kernels take.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["KERNEL_DIR", "CpuCore", "build", "available", "segments", "build_dir"]

KERNEL_DIR = Path(__file__).resolve().parent
SOURCES = ("core_capi.cpp", "core.cuh", "feature_spec.cuh")
CXXFLAGS = ("-std=c++17", "-O2", "-shared", "-fPIC", "-ffp-contract=off")

_f32p = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
_i32p = np.ctypeslib.ndpointer(np.int32, flags="C_CONTIGUOUS")
_u32p = np.ctypeslib.ndpointer(np.uint32, flags="C_CONTIGUOUS")
_u8p = np.ctypeslib.ndpointer(np.uint8, flags="C_CONTIGUOUS")


def build_dir() -> Path:
    d = os.environ.get("TICKWIRE_BUILD_DIR")
    return Path(d) if d else Path(tempfile.gettempdir()) / f"tickwire-build-{os.getuid()}"


def _cxx() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def build(force: bool = False) -> Path:
    """Compile the core into a shared library (cached by content hash); returns its path."""
    cxx = _cxx()
    if cxx is None:
        raise RuntimeError("no C++ compiler (g++) found")
    h = hashlib.sha256(" ".join(CXXFLAGS).encode())
    for s in SOURCES:
        h.update((KERNEL_DIR / s).read_bytes())
    out = build_dir() / f"twcore-{h.hexdigest()[:16]}.so"
    if out.exists() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    # compile to a private name, then rename: parallel test workers may build at once
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    cmd = [cxx, *CXXFLAGS, f"-I{KERNEL_DIR}", str(KERNEL_DIR / "core_capi.cpp"), "-o", str(tmp)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"building the CPU core failed:\n{' '.join(cmd)}\n{r.stderr}")
    os.replace(tmp, out)
    return out


def available() -> tuple[bool, str]:
    if _cxx() is None:
        return False, "no C++ compiler (g++) on PATH"
    return True, "g++ found"


def segments(slots: np.ndarray):
    """CSR layout of rows by slot, arrival order kept within a slot.

    Returns (order, seg_off, seg_slot) int32: segment g is rows order[seg_off[g]:seg_off[g+1]]
    of slot seg_slot[g].
    """
    slots = np.asarray(slots).astype(np.int64, copy=False)
    order = np.argsort(slots, kind="stable")
    s = slots[order]
    if len(s) == 0:
        return (np.zeros(0, np.int32), np.zeros(1, np.int32), np.zeros(0, np.int32))
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    seg_off = np.concatenate((starts, [len(s)])).astype(np.int32)
    return order.astype(np.int32), seg_off, s[starts].astype(np.int32)


def _levels_u32(levels) -> np.ndarray:
    lv = np.asarray(levels)
    if lv.dtype.kind == "f":
        lv = np.rint(lv)
    if lv.size and (lv.min() < 0 or lv.max() > 0xFFFFFFFF):
        raise ValueError("book values must fit unsigned 32-bit (ITCH prices and sizes)")
    return np.ascontiguousarray(lv, dtype=np.uint32)


class CpuCore:
    """ctypes front end of the compiled core."""

    def __init__(self, lib_path: str | Path | None = None):
        self.path = Path(lib_path) if lib_path else build()
        lib = ctypes.CDLL(str(self.path))
        lib.tw_n_features.restype = ctypes.c_int
        lib.tw_spec_version.restype = ctypes.c_int
        lib.tw_state_bytes.restype = ctypes.c_int
        lib.tw_features_rows.argtypes = [_u8p, _u32p, _i32p, ctypes.c_longlong, ctypes.c_int,
                                         _f32p]
        lib.tw_features_segments.argtypes = [_u8p, _u32p, _i32p, _i32p, _i32p, ctypes.c_int,
                                             ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        lib.tw_signal_segments.argtypes = [_u8p, _u32p, _i32p, _i32p, _i32p, ctypes.c_int,
                                           ctypes.c_int, ctypes.c_void_p, _f32p, _f32p, _i32p,
                                           ctypes.c_int, _f32p]
        lib.tw_mlp_batch.argtypes = [_f32p, _i32p, ctypes.c_int, _f32p, ctypes.c_longlong, _f32p]
        self.lib = lib
        self.n_features = lib.tw_n_features()
        self.spec_version = lib.tw_spec_version()
        self.state_bytes = lib.tw_state_bytes()

    def new_states(self, n_slots: int) -> np.ndarray:
        """Zeroed per-slot states (zero bytes are the initial state)."""
        return np.zeros(n_slots * self.state_bytes, dtype=np.uint8)

    def features(self, levels, slots, states: np.ndarray | None = None,
                 n_slots: int | None = None) -> np.ndarray:
        """Streaming features of rows in arrival order (advances ``states`` in place)."""
        lv = _levels_u32(levels)
        sl = np.ascontiguousarray(slots, dtype=np.int32)
        if states is None:
            states = self.new_states(n_slots or (int(sl.max()) + 1 if sl.size else 1))
        out = np.zeros((lv.shape[0], self.n_features), dtype=np.float32)
        self.lib.tw_features_rows(states, lv, sl, lv.shape[0], lv.shape[1], out)
        return out

    def features_segments(self, levels, slots, states: np.ndarray):
        """The feature kernel's grid run serially: (features of every row, last per segment,
        seg_slot)."""
        lv = _levels_u32(levels)
        order, off, seg_slot = segments(slots)
        feats = np.zeros((lv.shape[0], self.n_features), dtype=np.float32)
        last = np.zeros((len(seg_slot), self.n_features), dtype=np.float32)
        self.lib.tw_features_segments(states, lv, order, off, seg_slot, len(seg_slot),
                                      lv.shape[1], feats.ctypes.data, last.ctypes.data)
        return feats, last, seg_slot

    def signal_segments(self, levels, slots, states: np.ndarray, params: np.ndarray,
                        dims: np.ndarray):
        """The fused slow-path kernel's grid run serially: (probs per segment, last features,
        seg_slot)."""
        lv = _levels_u32(levels)
        order, off, seg_slot = segments(slots)
        last = np.zeros((len(seg_slot), self.n_features), dtype=np.float32)
        probs = np.zeros((len(seg_slot), int(dims[-1])), dtype=np.float32)
        self.lib.tw_signal_segments(states, lv, order, off, seg_slot, len(seg_slot), lv.shape[1],
                                    None, last, np.ascontiguousarray(params, np.float32),
                                    np.ascontiguousarray(dims, np.int32), len(dims) - 1, probs)
        return probs, last, seg_slot

    def mlp(self, params: np.ndarray, dims: np.ndarray, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, int(dims[0]))
        out = np.zeros((x.shape[0], int(dims[-1])), dtype=np.float32)
        self.lib.tw_mlp_batch(np.ascontiguousarray(params, np.float32),
                              np.ascontiguousarray(dims, np.int32), len(dims) - 1, x,
                              x.shape[0], out)
        return out
