"""Board back-ends: a PYNQ (Zynq) board and an Alveo card through XRT.

Both are selectable by name (``tickwire.backends.open_device("pynq")``); opening one probes
for the board first and, when none is there, raises
:class:`~tickwire.backends.base.BackendUnavailable` with one line saying what was looked for:

* PYNQ: the FPGA manager in sysfs (``/sys/class/fpga_manager/fpga*``) and the ``pynq``
  package;
* XRT: ``pyxrt.enumerate_devices()`` (no ``pyxrt`` module: no XRT).

With a board present the register bus is the appliance's AXI4-Lite window
(:class:`~tickwire.host.driver.MMIOBus` over ``pynq.MMIO`` or an ``xrt.ip``); loading the
bitstream and the stream DMA come with the boards work, so the market-data calls say so
instead of running anything.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from .base import BackendUnavailable, Device

__all__ = ["PynqDevice", "XrtDevice", "probe_pynq", "probe_xrt", "FPGA_MANAGER"]

#: how a package is looked for (tests put a stand-in here)
_find_spec = importlib.util.find_spec
#: where Linux lists the FPGA managers of a Zynq (one ``fpgaN`` entry per manager)
FPGA_MANAGER = Path("/sys/class/fpga_manager")


def probe_pynq(fpga_manager: Path = FPGA_MANAGER) -> str | None:
    """None when a PYNQ board is usable here, else what is missing (one line)."""
    mgrs = sorted(p.name for p in fpga_manager.glob("fpga*")) if fpga_manager.is_dir() else []
    missing = []
    if not mgrs:
        missing.append(f"no FPGA manager under {fpga_manager}")
    if _find_spec("pynq") is None:
        missing.append("the pynq package is not installed")
    if not missing:
        return None
    return ("pynq back-end: no PYNQ board here (looked for an FPGA manager in "
            f"{fpga_manager} and the pynq package: {'; '.join(missing)})")


def probe_xrt() -> str | None:
    """None when XRT sees at least one device, else what was looked for (one line)."""
    what = "xrt back-end: no XRT device here (looked for devices with pyxrt.enumerate_devices()"
    try:
        pyxrt = importlib.import_module("pyxrt")
    except ImportError as e:
        return f"{what}: the pyxrt module cannot be imported: {e})"
    try:
        n = int(pyxrt.enumerate_devices())
    except Exception as e:   # a broken XRT install reports through many exception types
        return f"{what}: it failed: {type(e).__name__}: {e})"
    if n < 1:
        return f"{what}: it found {n})"
    return None


class _Board(Device):
    """What both boards share: probe on open, the MMIO register bus, no streams yet."""

    kind = "board"

    def __init__(self):
        super().__init__()
        self.opened = False

    def _probe(self) -> str | None:
        raise NotImplementedError

    def _mmio(self):
        raise NotImplementedError

    def open(self) -> "_Board":
        if not self.opened:
            missing = self._probe()
            if missing:
                raise BackendUnavailable(missing)
            from ..host.driver import MMIOBus
            self.bus = MMIOBus(self._mmio(), xrt=self.kind == "xrt")
            self.opened = True
        return self

    @property
    def driver(self):
        self.open()
        return super().driver

    def _streams(self):
        raise BackendUnavailable(
            f"{self.kind} back-end: the market-data and order streams (DMA) of a board are "
            "not built yet; the register bus is available")

    def load(self, frames, **kw) -> None:
        self.open()
        self._streams()

    def advance(self, to=None) -> None:
        self._streams()

    def drain(self):
        self._streams()

    def now(self) -> int:
        self._streams()


class PynqDevice(_Board):
    """A Zynq board running PYNQ; the bus is ``pynq.MMIO(base_address, window)``."""

    kind = "pynq"

    def __init__(self, base_address: int | None = None, *, window: int = 0x10000,
                 fpga_manager: Path = FPGA_MANAGER):
        super().__init__()
        self.base_address, self.window = base_address, window
        self.fpga_manager = Path(fpga_manager)

    def _probe(self) -> str | None:
        return probe_pynq(self.fpga_manager)

    def _mmio(self):
        if self.base_address is None:
            raise BackendUnavailable("pynq back-end: a board is present, but no base_address "
                                     "of the appliance's register window was given "
                                     "(open_device('pynq', base_address=ADDR))")
        import pynq
        return pynq.MMIO(self.base_address, self.window)


class XrtDevice(_Board):
    """An Alveo card through XRT: device ``index``, the appliance's kernel ``ip_name`` of
    the loaded ``xclbin``."""

    kind = "xrt"

    def __init__(self, *, index: int = 0, xclbin: str | None = None,
                 ip_name: str = "appliance"):
        super().__init__()
        self.index, self.xclbin, self.ip_name = index, xclbin, ip_name

    def _probe(self) -> str | None:
        return probe_xrt()

    def _mmio(self):
        import pyxrt
        if self.xclbin is None:
            raise BackendUnavailable("xrt back-end: a device is present, but no xclbin was "
                                     "given (open_device('xrt', xclbin=PATH))")
        dev = pyxrt.device(self.index)
        xb = pyxrt.xclbin(self.xclbin)
        uuid = dev.load_xclbin(xb)
        return pyxrt.ip(dev, uuid, self.ip_name)
