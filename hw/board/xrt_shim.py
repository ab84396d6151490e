"""Build and load ``tickwire_xrt``, the pybind11 module over XRT's ``xrt::ip`` (xrt_shim.cpp):
the registers of the user-managed kernel, the xclbin load and UUIDs, the card's health."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

__all__ = ["SOURCE", "xrt_include", "build_shim", "load_shim", "CACHE"]

SOURCE = Path(__file__).with_name("xrt_shim.cpp")
#: where a built module is kept between runs
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tickwire"
#: Debian's libxrt-dev keeps the headers one folder down (/usr/include/xrt/xrt/xrt_device.h,
#: /usr/include/xrt/experimental/xrt_ip.h); Xilinx's XRT package under /opt/xilinx/xrt
_INCLUDES = (Path("/usr/include"), Path("/usr/include/xrt"), Path("/opt/xilinx/xrt/include"))


def xrt_include() -> Path | None:
    """The include directory holding ``xrt/xrt_device.h`` (libxrt-dev or Xilinx's XRT)."""
    for d in _INCLUDES:
        if (d / "xrt" / "xrt_device.h").exists():
            return d
    return None


def build_shim(out: Path = CACHE) -> Path:
    """Compile the module into ``out``; its path. RuntimeError says what is missing."""
    inc = xrt_include()
    if inc is None:
        raise RuntimeError("XRT headers not found (xrt/xrt_device.h under "
                           f"{' or '.join(map(str, _INCLUDES))}: install libxrt-dev)")
    try:
        import pybind11
    except ImportError:
        raise RuntimeError("pybind11 is not installed (pip install pybind11)") from None
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        raise RuntimeError("no C++ compiler (c++/g++) on PATH")
    out.mkdir(parents=True, exist_ok=True)
    so = out / ("tickwire_xrt" + importlib.machinery.EXTENSION_SUFFIXES[0])
    # the system's own library path serves /usr/include and Debian's /usr/include/xrt
    lib = None if inc.is_relative_to("/usr/include") else inc.parent / "lib"
    cmd = [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", f"-I{inc}",
           f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}",
           str(SOURCE), "-o", str(so)] + ([f"-L{lib}", f"-Wl,-rpath,{lib}"] if lib else []) + [
           "-lxrt_coreutil"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"building tickwire_xrt failed:\n{r.stderr[-4000:]}")
    return so


def load_shim(out: Path = CACHE):
    """The ``tickwire_xrt`` module, built on first use."""
    so = out / ("tickwire_xrt" + importlib.machinery.EXTENSION_SUFFIXES[0])
    if not so.exists() or so.stat().st_mtime < SOURCE.stat().st_mtime:
        build_shim(out)
    spec = importlib.util.spec_from_file_location("tickwire_xrt", so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
