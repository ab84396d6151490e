"""Board back-ends: a PYNQ (Zynq) board and an Alveo card through XRT.

Both are selectable by name (``tickwire.backends.open_device("pynq")``); opening one probes
for the board first and, when none is there, raises
:class:`~tickwire.backends.base.BackendUnavailable` with one line saying what was looked for:

* PYNQ: the FPGA manager in sysfs (``/sys/class/fpga_manager/fpga*``) and the ``pynq``
  package;
* XRT: ``pyxrt.enumerate_devices()`` (no ``pyxrt`` module: no XRT).

With a board present the register bus is the appliance's AXI4-Lite window
(:class:`~tickwire.host.driver.MMIOBus` over ``pynq.MMIO`` or the XRT shim's kernel). Book
rows come to the host through :func:`pynq_book_rows` (PYNQ: the book DMA's S2MM channel) and
:class:`XrtBookRing` (Alveo: the book mover's ring in HBM). The device interface's stream
calls (``load``/``advance``/``drain``) are not driven on a board yet: they say so instead of
running anything (the PYNQ notebook replays captures through the feed DMA itself).

Deploying a build (``tickwire board deploy``) and reading a loaded one (``board status``) go
through a :class:`Board`, a place a build can be loaded: :class:`PynqBoard` (``pynq.Overlay``,
the IP's driver bound to its VLNV), :class:`XrtBoard` (xclbin load with its UUID checked, the
registers through the ``tickwire_xrt`` shim, hw/board/xrt_shim.cpp), :class:`RemoteBoard` (a
device served by ``tickwire device serve``: loaded where it runs) and :class:`RtlBoard` (the
Verilated appliance started on load and served on loopback: what the tests deploy to).
:func:`deploy` refuses an artifact whose register map differs from the host's, skips the load
when the board already runs the artifact's BUILD_ID, and checks the identity after a load.

A build whose order table is off chip (CAPACITY1.order_buckets_log2 above
``ONCHIP_ORDER_BUCKETS``: the default) reads and writes it in the board's memory through its
AXI4 master, at ORDER_TABLE_BASE. The host owns that memory: on a load, :class:`PynqBoard`
allocates it with ``pynq.allocate`` (physically contiguous, :func:`pynq_order_table`) and
:class:`XrtBoard` as an ``xrt.bo`` in the bank its master is linked to
(:func:`xrt_order_table`), zeroed (every way empty), and writes its address before anything
is enabled. The buffer lives as long as the device object (``dev.order_table``); the table's
memory of a build reused by another process is that process's (left as it is when
ORDER_TABLE_BASE is set).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import time
import weakref
from pathlib import Path

from .base import BackendUnavailable, Device

__all__ = ["PynqDevice", "XrtDevice", "probe_pynq", "probe_xrt", "FPGA_MANAGER", "Board",
           "PynqBoard", "XrtBoard", "RemoteBoard", "RtlBoard", "DeployError", "load_manifest",
           "check_manifest", "deploy", "status", "pynq_driver", "XrtBookRing", "pynq_book_rows",
           "OrderTable", "pynq_order_table", "xrt_order_table"]

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
        #: the off-chip order table's buffer where this host allocated it (:class:`OrderTable`)
        self.order_table = None

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

    def build_id(self) -> int:
        return int(self.driver.read_raw("BUILD_ID"))

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
                 fpga_manager: Path = FPGA_MANAGER, mmio=None):
        super().__init__()
        self.base_address, self.window = base_address, window
        self.fpga_manager = Path(fpga_manager)
        self.mmio = mmio        # the overlay's IP driver's MMIO, when it made one

    def _probe(self) -> str | None:
        return probe_pynq(self.fpga_manager)

    def _mmio(self):
        if self.mmio is not None:
            return self.mmio
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
                 ip_name: str = "appliance", ip=None):
        super().__init__()
        self.index, self.xclbin, self.ip_name = index, xclbin, ip_name
        self.ip = ip            # a register handle (read_register/write_register) from the shim

    def _probe(self) -> str | None:
        return probe_xrt() if self.ip is None else None

    def _mmio(self):
        if self.ip is not None:
            return self.ip
        import pyxrt
        if self.xclbin is None:
            raise BackendUnavailable("xrt back-end: a device is present, but no xclbin was "
                                     "given (open_device('xrt', xclbin=PATH))")
        dev = pyxrt.device(self.index)
        xb = pyxrt.xclbin(self.xclbin)
        uuid = dev.load_xclbin(xb)
        return pyxrt.ip(dev, uuid, self.ip_name)


# ------------------------------------------------------------------------------ deploy

class DeployError(RuntimeError):
    """An artifact that cannot go on this board, or a board that does not run it."""


def load_manifest(artifact) -> tuple[Path, dict]:
    """(project directory, manifest) of ``artifact``: a project directory, its
    ``manifest.json``, or a file of the project (``overlay/tickwire.bit``,
    ``tickwire.xclbin``): the manifest is looked for beside it and above."""
    p = Path(artifact).resolve()
    if p.is_file() and p.name == "manifest.json":
        f = p
    else:
        start = p if p.is_dir() else p.parent
        f = next((d / "manifest.json" for d in [start, *start.parents][:3]
                  if (d / "manifest.json").is_file()), start / "manifest.json")
    d = f.parent
    if not f.exists():
        raise DeployError(f"{artifact}: no manifest.json there or above (a `tickwire board "
                          "build` project)")
    return d, json.loads(f.read_text())


def check_manifest(man: dict) -> None:
    """Refuse a build whose register map is not this host's (ID, VERSION, MAP_HASH)."""
    from ..spec.regmap import REGMAP
    want = (f"0x{REGMAP.map_id:08x}", list(REGMAP.version), f"0x{REGMAP.hash:08x}")
    got = (man.get("id"), list(man.get("version") or []), man.get("map_hash"))
    if got != want:
        raise DeployError(
            f"refused: the artifact's register map (ID {got[0]}, v{'.'.join(map(str, got[1]))},"
            f" MAP_HASH {got[2]}) is not this host's (ID {want[0]}, "
            f"v{'.'.join(map(str, want[1]))}, MAP_HASH {want[2]}); rebuild the artifact or use "
            "the host software that matches it")


class Board:
    """A place a build can be loaded (see the module doc)."""

    kind = "?"

    def loaded(self, man: dict | None = None, project: Path | None = None):
        """The device of the build loaded now, opened, or None when nothing of this
        project's is loaded (a board must never be read at an address it does not map).
        ``man``/``project``: the artifact deploy compares with, where one is given."""
        raise NotImplementedError

    def program(self, project: Path, man: dict):
        """Load the build of ``project``; the device, opened."""
        raise NotImplementedError

    def prepare(self, dev, project: Path, man: dict, *, loaded: bool) -> None:
        """After the identity checks, before anything is enabled: what a build needs from the
        host (the off-chip order table); ``loaded``: this deploy loaded it."""

    def health(self) -> dict:
        """What the board's stack says of its health (rails, temperatures), where it can."""
        return {}

    def close(self) -> None:
        pass


def pynq_driver():
    """The PYNQ driver of the tickwire IP: a ``pynq.DefaultIP`` bound to the IP's VLNV, so
    ``pynq.Overlay`` gives ``overlay.tickwire_0`` as one; ``.device()`` is a
    :class:`PynqDevice` over the IP's MMIO. Created on first call (needs pynq)."""
    global _PYNQ_DRIVER
    if _PYNQ_DRIVER is None:
        from pynq import DefaultIP

        from ..hw.board.identity import VLNV

        class TickwireIP(DefaultIP):
            bindto = [VLNV]

            def device(self) -> PynqDevice:
                return PynqDevice(mmio=self.mmio).open()

        _PYNQ_DRIVER = TickwireIP
    return _PYNQ_DRIVER


_PYNQ_DRIVER = None


class PynqBoard(Board):
    """A PYNQ board: the overlay (``tickwire.bit`` + ``.hwh``) loaded with ``pynq.Overlay``."""

    kind = "pynq"

    def __init__(self, fpga_manager: Path = FPGA_MANAGER, ip: str = "tickwire_0"):
        self.fpga_manager, self.ip = Path(fpga_manager), ip
        missing = probe_pynq(self.fpga_manager)
        if missing:
            raise BackendUnavailable(missing)

    @staticmethod
    def _state():
        """(name of the loaded bitstream, its IP dictionary) as PYNQ records them."""
        import pynq
        try:                                   # PYNQ 3: the global state file
            from pynq.pl_server.global_state import load_global_state
            st = load_global_state()
            return Path(str(st.bitfile_name or "")).name, None
        except Exception:                      # PYNQ 2.x: the PL server
            return (Path(str(getattr(pynq.PL, "bitfile_name", "") or "")).name,
                    getattr(pynq.PL, "ip_dict", None))

    def loaded(self, man=None, project=None):
        name, ip_dict = self._state()
        if name != "tickwire.bit":
            return None
        if man and self.ip in (man.get("address_map") or {}):
            at = man["address_map"][self.ip]
            base, window = int(at["offset"], 16), int(at["range"], 16)
        elif ip_dict and self.ip in ip_dict:
            base, window = int(ip_dict[self.ip]["phys_addr"]), int(ip_dict[self.ip]["addr_range"])
        else:
            return None
        return PynqDevice(base, window=window).open()

    def prepare(self, dev, project, man, *, loaded: bool) -> None:
        _table_of(dev, loaded, lambda drv: pynq_order_table(
            drv, windows=(man.get("order_table") or {}).get("windows")))

    def program(self, project, man):
        import pynq
        pynq_driver()
        bit = project / man["artifacts"]["bit"]
        if not bit.exists():
            raise DeployError(f"{bit} does not exist: run {project / 'build.sh'} first")
        ov = pynq.Overlay(str(bit))
        return getattr(ov, self.ip).device()

    def health(self) -> dict:
        try:
            import pynq
            rails = pynq.get_rails()
        except Exception as e:        # boards without PMBus sensors
            return {"rails": f"unavailable: {type(e).__name__}: {e}"}
        out = {}
        for name, rail in rails.items():
            out[name] = {k: float(getattr(rail, k).value) for k in ("voltage", "current",
                                                                     "power")
                         if getattr(rail, k, None) is not None}
        return {"rails": out}


class XrtBoard(Board):
    """An Alveo card: xclbin loaded through XRT, its UUID checked; registers through the
    ``tickwire_xrt`` shim (pybind11 over ``xrt::ip``, hw/board/xrt_shim.cpp)."""

    kind = "xrt"

    def __init__(self, index: int = 0, kernel: str = "tickwire_1"):
        self.index, self.kernel = index, kernel
        missing = probe_xrt()
        if missing:
            raise BackendUnavailable(missing)
        from ..hw.board.xrt_shim import load_shim
        self.shim = load_shim()

    def _xclbin(self, project, man) -> Path:
        x = Path(project) / man["artifacts"]["xclbin"]
        if not x.exists():
            raise DeployError(f"{x} does not exist: run {Path(project) / 'build.sh'} first")
        return x

    def loaded(self, man=None, project=None):
        loaded = self.shim.loaded_uuid(self.index)
        if not man or not project or loaded != self.shim.xclbin_uuid(
                str(self._xclbin(project, man))):
            return None
        return XrtDevice(ip=self.shim.Kernel(self.index, loaded, self.kernel)).open()

    def program(self, project, man):
        x = self._xclbin(project, man)
        want = self.shim.xclbin_uuid(str(x))
        got = self.shim.load(self.index, str(x))
        if got != want:
            raise DeployError(f"xclbin load: the device reports UUID {got}, {x.name} is {want}")
        return XrtDevice(ip=self.shim.Kernel(self.index, got, self.kernel)).open()

    def prepare(self, dev, project, man, *, loaded: bool) -> None:
        _table_of(dev, loaded, lambda drv: self._table(drv, project, man))

    def _bank(self, project, man, tag: str, what: str, pyxrt) -> int:
        """Index of memory bank ``tag`` (``HBM[1]``) in the xclbin's memory topology."""
        mems = {m.get_tag(): m.get_index() for m in pyxrt.xclbin(
            str(self._xclbin(project, man))).get_mems() if m.get_used()}
        if tag not in mems:
            raise DeployError(f"the xclbin has no memory bank {tag} in use ({what}); it has "
                              f"{sorted(mems)}")
        return mems[tag]

    def _table(self, drv, project, man) -> OrderTable | None:
        """The order table in the bank the manifest links the kernel's master to."""
        if not _table_bytes(drv):
            return None
        import pyxrt
        order = man.get("order_table") or {}
        if "bank" not in order:
            raise DeployError("the loaded build's order table is off chip, but its manifest "
                              "names no memory bank for it (rebuild the project)")
        bank = self._bank(project, man, order["bank"], "the order table's", pyxrt)
        return xrt_order_table(drv, pyxrt.device(self.index), bank, pyxrt=pyxrt)

    def health(self) -> dict:
        return dict(self.shim.info(self.index))

    def book_ring(self, project, man, *, size: int = 1 << 24) -> "XrtBookRing":
        """The book rows of the loaded build: a ring of ``size`` bytes allocated with pyxrt
        in the mover's bank (the manifest's ``book_mover``), started."""
        import pyxrt
        mv = man["book_mover"]
        uuid = self.shim.loaded_uuid(self.index)
        regs = self.shim.Kernel(self.index, uuid, mv["instance"])
        dev = pyxrt.device(self.index)
        bank = self._bank(project, man, mv["bank"], "the book mover's", pyxrt)
        bo = pyxrt.bo(dev, size, pyxrt.bo.flags.normal, bank)
        from ..host.driver import MMIOBus
        ring = XrtBookRing(MMIOBus(regs, xrt=True), bo, size, int(man["depth"]))
        ring.start()
        return ring


class XrtBookRing:
    """The host's side of the book mover's ring (hw/board/book_ring.py): ``bo`` a pyxrt
    buffer object in the mover's bank, ``bus`` the mover's registers. :meth:`read` takes the
    rows written since the last call, decoded, and hands their slots back."""

    def __init__(self, bus, bo, size: int, depth: int):
        from ..hw.board.book_ring import MOVER_MAP
        from ..host.driver import Driver
        self.drv, self.bo, self.size, self.depth = Driver(bus, MOVER_MAP), bo, size, depth
        self.rd = 0

    def start(self) -> None:
        from ..hw.board.book_ring import MOVER_ID, MOVER_MAP, check_ring
        d = self.drv
        if (d.read_raw("ID"), d.read_raw("MAP_HASH")) != (MOVER_ID, MOVER_MAP.hash):
            raise DeployError("the book mover's registers are not this host's MOVER_MAP")
        g = d.read("GEOMETRY")
        self.row_beats, slot = int(g.row_beats), 1 << int(g.slot_log2)
        check_ring(self.bo.address(), self.size, slot)
        d.write("CONTROL", enable=0)
        while d.read("STATUS").busy:
            time.sleep(1e-3)
        d.write_raw("RING_BASE", self.bo.address())
        d.write_raw("RING_SIZE", self.size)
        d.write_raw("RD_OFFSET", 0)
        d.write("CONTROL", enable=1)
        st = d.read("STATUS")
        if not st.running:
            raise DeployError(f"the book mover did not start: {st!r}")
        self.rd = 0

    def _read(self, offset: int, nbytes: int) -> bytes:
        import pyxrt
        self.bo.sync(pyxrt.xclBOSyncDirection.XCL_BO_SYNC_BO_FROM_DEVICE, nbytes, offset)
        return bytes(self.bo.read(nbytes, offset))

    def read(self):
        """(sequence, timestamp, slot, levels) of the rows written since the last call."""
        from ..hw.board.book_ring import take_rows
        d = self.drv
        if d.read("STATUS").error:
            raise RuntimeError(f"book mover: a ring write failed ({d.read_raw('WRITE_ERRORS')} "
                               "error responses); restart it with start()")
        rows, self.rd = take_rows(self._read, self.rd, d.read_raw("WR_OFFSET"), self.size,
                                  self.row_beats, self.depth)
        d.write_raw("RD_OFFSET", self.rd)
        return rows


def pynq_book_rows(dma, depth: int, rows: int, *, allocate=None, timeout: float = 1.0):
    """Up to ``rows`` book rows from the book DMA's S2MM channel on a PYNQ board (the block
    design's ``dma_book``, a ``pynq`` ``AxiDMA`` in simple mode: one transfer per packet, so
    one row per transfer), decoded by :func:`tickwire.backends.wire.book_packet_rows`.

    Stops early, with the rows read so far, when no row arrives within ``timeout`` seconds
    (the channel is then left with its transfer pending, to be completed by the next row);
    ``allocate``: ``pynq.allocate`` (given by tests)."""
    from ..spec.streams import BOOK_BEAT, book_beats
    from .wire import book_packet_rows
    if allocate is None:
        from pynq import allocate
    import numpy as np
    size = book_beats(depth) * BOOK_BEAT // 8
    buf = allocate(shape=(size,), dtype=np.uint8)
    ch = dma.recvchannel
    packets: list[bytes] = []
    try:
        for _ in range(rows):
            ch.transfer(buf)
            end = time.monotonic() + timeout
            while not ch.idle:
                if time.monotonic() > end:
                    return book_packet_rows(packets, depth)
                time.sleep(0.0005)
            if hasattr(buf, "invalidate"):      # the CPU's cached view of the DMA buffer
                buf.invalidate()
            packets.append(bytes(buf))
    finally:
        if hasattr(buf, "freebuffer") and len(packets) == rows:
            buf.freebuffer()
    return book_packet_rows(packets, depth)


# ------------------------------------------------------------------------ order table

class OrderTable:
    """The host's buffer of an off-chip order table: ``buffer`` (a ``pynq`` buffer or an
    ``xrt.bo``: kept referenced, so the memory stays the table's), its device ``address``
    (what ORDER_TABLE_BASE holds) and size.

    The memory is this process's: when the table is released (:meth:`release`, the object
    collected, or the process exiting) ORDER_TABLE_BASE is cleared first where it still
    holds this table, so the next host to deploy sees no table and makes its own rather than
    adopting freed memory."""

    def __init__(self, drv, buffer, address: int, nbytes: int, where: str):
        self.buffer, self.address, self.nbytes, self.where = buffer, address, nbytes, where
        self._release = weakref.finalize(self, _release_table, drv, buffer, address)

    def release(self) -> None:
        self._release()

    def __repr__(self):
        return (f"OrderTable({self.nbytes:,} bytes at 0x{self.address:x} in {self.where})")


def _release_table(drv, buffer, address: int) -> None:
    try:
        if drv.read_raw("ORDER_TABLE_BASE") == address:
            drv.write_raw("ORDER_TABLE_BASE", 0)
    finally:
        if hasattr(buffer, "freebuffer"):       # pynq; an xrt.bo is freed when collected
            buffer.freebuffer()


def _table_bytes(drv) -> int:
    """Bytes of the loaded build's off-chip order table (0: on chip), from its CAPACITY1."""
    from ..hw.board.targets import order_table_bytes
    return order_table_bytes(drv.capacity()["order_buckets"])


def _set_table(drv, buffer, address: int, nbytes: int, where: str,
               windows=None) -> OrderTable:
    """Check the table's address (line-aligned; inside one of ``windows``, the (base, bytes)
    the kernel's master reaches, where given) and write it to ORDER_TABLE_BASE, the order
    path disabled (the table is set before anything is enabled)."""
    from ..spec.capacity import ORDER_LINE_BYTES
    if address % ORDER_LINE_BYTES:
        raise DeployError(f"the order table's buffer at 0x{address:x} is not aligned to "
                          f"{ORDER_LINE_BYTES}-byte lines")
    if windows and not any(int(b, 0) <= address and address + nbytes <= int(b, 0) + int(n, 0)
                           for b, n in windows):
        raise DeployError(f"the order table's buffer 0x{address:x}+{nbytes:#x} lies outside "
                          f"what the kernel's master reaches ({windows})")
    if drv.read("CONTROL").enable:
        raise DeployError("the order path is enabled: the order table is set before anything "
                          "is enabled (clear CONTROL.enable first)")
    drv.write_raw("ORDER_TABLE_BASE", address)
    return OrderTable(drv, buffer, address, nbytes, where)


def pynq_order_table(drv, *, allocate=None, windows=None) -> OrderTable | None:
    """The loaded build's order table on a PYNQ board: ``pynq.allocate`` of its size
    (physically contiguous), zeroed and flushed from the CPU's caches (the PL reads DDR
    through a non-coherent HP port), its physical address in ORDER_TABLE_BASE. None where
    the build keeps its table on chip. ``allocate``: ``pynq.allocate`` (given by tests);
    ``windows``: the manifest's ``order_table.windows``."""
    n = _table_bytes(drv)
    if not n:
        return None
    if allocate is None:
        from pynq import allocate
    import numpy as np
    buf = allocate(shape=(n,), dtype=np.uint8)
    buf[:] = 0
    buf.flush()
    return _set_table(drv, buf, int(buf.physical_address), n, "PS DDR", windows)


#: bytes zeroed per write into an xrt.bo (the host copy stays small)
_ZERO_CHUNK = 1 << 24


def xrt_order_table(drv, device, bank: int, *, pyxrt=None) -> OrderTable | None:
    """The loaded build's order table on an Alveo card: an ``xrt.bo`` of its size in memory
    bank ``bank`` (the index of the bank the kernel's ``m_axi_book`` is linked to),
    zeroed, synced to the device, its device address in ORDER_TABLE_BASE. None where the
    build keeps its table on chip. ``pyxrt``: the module (given by tests)."""
    n = _table_bytes(drv)
    if not n:
        return None
    if pyxrt is None:
        import pyxrt
    bo = pyxrt.bo(device, n, pyxrt.bo.flags.normal, bank)
    zeros = bytes(min(n, _ZERO_CHUNK))
    for off in range(0, n, len(zeros)):
        bo.write(zeros[:min(len(zeros), n - off)], off)
    bo.sync(pyxrt.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE, n, 0)
    return _set_table(drv, bo, int(bo.address()), n, f"memory bank {bank}")


def _table_of(dev, loaded: bool, make) -> None:
    """Give the device of a build with an off-chip order table its table (``make(driver)``):
    always after a load; for a build found running, only where ORDER_TABLE_BASE is unset
    (a set one is the loading process's table, which this host must not move under it)."""
    drv = dev.driver
    if _table_bytes(drv) and (loaded or not drv.read_raw("ORDER_TABLE_BASE")):
        dev.order_table = make(drv)


class RemoteBoard(Board):
    """A device served by ``tickwire device serve`` (any back-end): what it runs was loaded
    where it runs, so this board only reads."""

    kind = "remote"

    def __init__(self, host: str, port: int, token: str | None = None):
        self.host, self.port, self.token = host, int(port), token
        self.dev = None

    def loaded(self, man=None, project=None):
        if self.dev is None:
            from .remote import RemoteDevice
            self.dev = RemoteDevice(self.host, self.port, self.token).open()
        return self.dev

    def program(self, project, man):
        raise DeployError(f"remote device {self.host}:{self.port} runs another build; a served "
                          "device is loaded where it runs (deploy there, then serve it)")

    def close(self) -> None:
        if self.dev is not None:
            self.dev.close()
            self.dev = None


class RtlBoard(Board):
    """The Verilated appliance as a board: nothing is loaded until :meth:`program` starts it
    (an RTL build of the project's parameters, from the sources here) and serves it on
    loopback; the host then talks to it through the remote back-end, as to a board on the
    network."""

    kind = "rtl"

    def __init__(self, token: str = "tickwire-rtl-board"):
        self.token = token
        self.rtl = self.server = self.dev = None
        self.programs = 0

    def loaded(self, man=None, project=None):
        return self.dev

    def program(self, project, man):
        from .remote import RemoteDevice, serve_device
        from .rtl import RtlDevice
        if man.get("flow") != "rtl":
            raise DeployError(f"the RTL board runs rtl-target builds, not {man.get('target')!r}"
                              " (tickwire board build --target rtl)")
        self.close()
        self.rtl = RtlDevice(symbols=int(man["capacity"]["symbols"]), depth=int(man["depth"]))
        self.rtl.open()
        self.server = serve_device(self.rtl, token=self.token)
        self.dev = RemoteDevice(*self.server.address, token=self.token).open()
        self.programs += 1
        return self.dev

    def close(self) -> None:
        for x in (self.dev, self.server, self.rtl):
            if x is not None:
                x.close()
        self.rtl = self.server = self.dev = None


def _hex(v) -> str | None:
    return None if v is None else f"0x{int(v):08x}"


def deploy(artifact, board: Board, *, force: bool = False) -> dict:
    """Load ``artifact`` onto ``board`` unless it already runs the same BUILD_ID (``force``:
    load anyway); then check the identity. Returns what happened and the device (``dev``)."""
    project, man = load_manifest(artifact)
    check_manifest(man)
    want = int(man["build_id"], 16)
    dev = board.loaded(man, project)
    before = None
    if dev is not None:
        try:
            dev.driver.check_identity()
            before = dev.build_id()
        except Exception:          # something else is loaded: program over it
            before = None
    if before == want and not force:
        action = "reused"
    else:
        dev = board.program(project, man)
        action = "loaded"
    dev.driver.check_identity()
    got = dev.build_id()
    if got != want:
        raise DeployError(f"after the load the board reports BUILD_ID {_hex(got)}, the artifact "
                          f"is {man['build_id']} (built from other sources?)")
    board.prepare(dev, project, man, loaded=action == "loaded")
    table = getattr(dev, "order_table", None)
    return {"action": action, "board": board.kind, "target": man["target"],
            "build_id": man["build_id"], "previous_build_id": _hex(before),
            "project": str(project), "order_table": None if table is None else repr(table),
            "dev": dev}


def status(dev, man: dict | None = None, *, interval: float = 0.5, board: Board | None = None
           ) -> dict:
    """Identity, STATUS, counters, the fabric clock measured from CYCLES over ``interval``
    seconds of host time, board health, and the match with ``man`` (a manifest)."""
    drv = dev.driver
    ident = drv.identity()
    bid = dev.build_id()
    st = drv.read("STATUS")
    c0, t0 = int(drv.read_raw("CYCLES")), time.monotonic()
    time.sleep(interval)
    c1, t1 = int(drv.read_raw("CYCLES")), time.monotonic()
    from ..spec.regmap import REGMAP
    out = {
        "identity": {"id": f"0x{ident['id']:08x}", "version": list(ident["version"]),
                     "map_hash": f"0x{ident['hash']:08x}", "build_id": _hex(bid),
                     "host_map_hash": f"0x{REGMAP.hash:08x}"},
        "capacity": dict(drv.capacity()),
        "status": {k: int(v) for k, v in st.fields().items()},
        "counters": {k: int(v) for k, v in dev.counters().items()},
        # on a board the fabric clock; on the RTL the simulated cycles per host second
        "clock": {"cycles": c1 - c0, "seconds": round(t1 - t0, 6),
                  "hz": round((c1 - c0) / (t1 - t0)) if t1 > t0 else None,
                  "of": "fabric clock" if getattr(dev, "remote_kind", dev.kind) in
                  ("pynq", "xrt") else "simulation"},
        "health": board.health() if board is not None else {},
    }
    if man is not None:
        checks = {"map_hash": out["identity"]["map_hash"] == man.get("map_hash"),
                  "version": out["identity"]["version"] == list(man.get("version") or []),
                  "build_id": out["identity"]["build_id"] == man.get("build_id"),
                  "capacity": all(out["capacity"].get(k) == v
                                  for k, v in (man.get("capacity") or {}).items())}
        out["manifest"] = {"target": man.get("target"), "build_id": man.get("build_id"),
                           "clock_mhz": man.get("clock_mhz"), "checks": checks,
                           "matches": all(checks.values())}
    return out
