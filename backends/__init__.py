"""tickwire.backends: the appliance as a :class:`~tickwire.backends.base.Device`, whatever runs
it, and :func:`open_device` to get one by name.

Back-ends are imported when asked for, so a board host that opens ``pynq`` or ``remote`` never
imports the emulator (numba) or the gateware (Amaranth).
"""

from __future__ import annotations

from .base import BackendUnavailable, Device, Outputs, Pacing

__all__ = ["open_device", "KINDS", "Device", "Outputs", "Pacing", "BackendUnavailable"]

#: the names :func:`open_device` takes (``auto`` too: the best board present, else ``emu``)
KINDS = ("emu", "rtl", "pynq", "xrt", "remote")


def open_device(kind: str, config=None, **kw) -> Device:
    """The back-end ``kind``, opened.

    ``config`` (:class:`~tickwire.host.config.Config`) sets the emulator's capacities; the
    other back-ends have theirs built in (the host loop applies the rest of a config through
    the register map on every back-end). ``kw`` go to the back-end's class: ``emu``
    :class:`~.emu.EmuDevice` (``depth``), ``rtl`` :class:`~.rtl.RtlDevice` (``symbols``,
    ``depth``, ``random_ready``), ``pynq`` :class:`~.board.PynqDevice` (``base_address``),
    ``xrt`` :class:`~.board.XrtDevice` (``xclbin``, ``index``), ``remote``
    :class:`~.remote.RemoteDevice` (``host``, ``port``, ``token``).

    Raises :class:`BackendUnavailable` (one line saying what was looked for) when the
    back-end cannot run here, ValueError for an unknown name."""
    if kind == "auto":
        from ..host.devices import detect
        kind = detect()
    if kind == "emu":
        from .emu import EmuDevice
        dev = EmuDevice(config, **kw)
    elif kind == "rtl":
        from .rtl import RtlDevice
        dev = RtlDevice(**kw)
    elif kind == "pynq":
        from .board import PynqDevice
        dev = PynqDevice(**kw)
    elif kind == "xrt":
        from .board import XrtDevice
        dev = XrtDevice(**kw)
    elif kind == "remote":
        from .remote import RemoteDevice
        dev = RemoteDevice(**kw)
    else:
        raise ValueError(f"back-end {kind!r}: one of auto, {', '.join(KINDS)}")
    try:
        return dev.open()
    except BaseException:
        dev.close()
        raise
