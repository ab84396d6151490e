"""Which back-end ``--backend auto`` picks: a board when one is usable here, else the emulator."""

from __future__ import annotations

__all__ = ["detect"]


def detect() -> str:
    """``pynq`` when a PYNQ board is usable (an FPGA manager and the pynq package), ``xrt``
    when XRT enumerates a device, else ``emu``. The probes are the board back-ends' own
    (:mod:`tickwire.backends.board`); the RTL simulation is never picked automatically (it is
    slow): ask for ``--backend rtl``."""
    from ..backends.board import probe_pynq, probe_xrt
    if probe_pynq() is None:
        return "pynq"
    if probe_xrt() is None:
        return "xrt"
    return "emu"
