"""Device back-ends: which pipeline runs the job (a board, the RTL simulation, or the emulator)."""

from __future__ import annotations

import importlib.util
import os

__all__ = ["detect", "BACKENDS"]

BACKENDS = ("emu", "rtl", "pynq", "xrt")


def detect() -> str:
    """The best back-end present: a PYNQ (Zynq) board, an Alveo card through XRT, else ``emu``.

    A board counts only when its driver stack is importable *and* a device is visible
    (``/dev/xclmgmt*``/``/dev/dri/renderD*`` for XRT, ``/dev/uio*`` with PYNQ); the RTL
    simulation is never picked automatically (it is slow) — ask for ``--backend rtl``.
    """
    if importlib.util.find_spec("pynq") is not None and any(
            n.startswith("uio") for n in _dev()):
        return "pynq"
    if importlib.util.find_spec("pyxrt") is not None and any(
            n.startswith("xclmgmt") for n in _dev()):
        return "xrt"
    return "emu"


def _dev() -> list[str]:
    try:
        return os.listdir("/dev")
    except OSError:
        return []
