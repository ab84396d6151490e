"""Board back-ends: selectable by name, one clear line saying what was looked for when no
board is there; with a board's Python stack present, the register bus goes through its MMIO."""

import sys
import types

import pytest
from typer.testing import CliRunner

from tickwire.backends import BackendUnavailable, open_device
from tickwire.backends import board
from tickwire.host.driver import FakeBus


def one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


def test_pynq_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(board, "_find_spec", lambda name: None)
    with pytest.raises(BackendUnavailable) as e:
        open_device("pynq", fpga_manager=tmp_path / "fpga_manager")
    msg = one_line(e)
    assert msg.startswith("pynq back-end: no PYNQ board here")
    assert f"no FPGA manager under {tmp_path / 'fpga_manager'}" in msg
    assert "the pynq package is not installed" in msg


def test_pynq_manager_without_package(tmp_path, monkeypatch):
    (tmp_path / "fpga0").mkdir()
    monkeypatch.setattr(board, "_find_spec", lambda name: None)
    msg = one_line(pytest.raises(BackendUnavailable, open_device, "pynq",
                                 fpga_manager=tmp_path))
    assert "the pynq package is not installed" in msg and "no FPGA manager" not in msg


def test_pynq_default_path_here():
    """On this machine (no board), the factory's pynq refuses naming the sysfs path."""
    if board.probe_pynq() is None:
        pytest.skip("a PYNQ board is present here")
    msg = one_line(pytest.raises(BackendUnavailable, open_device, "pynq"))
    assert "/sys/class/fpga_manager" in msg and "pynq package" in msg


def test_cli_run_pynq_fails_clearly():
    from tickwire.host.cli import app
    if board.probe_pynq() is None:
        pytest.skip("a PYNQ board is present here")
    out = CliRunner().invoke(app, ["run", "--backend", "pynq"])
    assert out.exit_code != 0
    assert "/sys/class/fpga_manager" in out.output


def test_xrt_not_importable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyxrt", None)        # import pyxrt raises ImportError
    msg = one_line(pytest.raises(BackendUnavailable, open_device, "xrt"))
    assert msg.startswith("xrt back-end: no XRT device here")
    assert "pyxrt.enumerate_devices()" in msg and "cannot be imported" in msg


def test_xrt_no_devices(monkeypatch):
    fake = types.ModuleType("pyxrt")
    fake.enumerate_devices = lambda: 0
    monkeypatch.setitem(sys.modules, "pyxrt", fake)
    msg = one_line(pytest.raises(BackendUnavailable, open_device, "xrt"))
    assert "pyxrt.enumerate_devices(): it found 0" in msg


def test_pynq_with_board_uses_mmio(tmp_path, monkeypatch):
    """A board's stack present (stand-ins): the Driver reads the identity through
    pynq.MMIO at the given base; the streams say they are not built instead of running."""
    (tmp_path / "fpga0").mkdir()
    regs = FakeBus()
    opened = []

    class MMIO:
        def __init__(self, base, length):
            opened.append((base, length))

        def read(self, off):
            return regs.read32(off)

        def write(self, off, value):
            regs.write32(off, value)

    fake = types.ModuleType("pynq")
    fake.MMIO = MMIO
    monkeypatch.setitem(sys.modules, "pynq", fake)
    monkeypatch.setattr(board, "_find_spec", lambda name: object())
    with pytest.raises(BackendUnavailable, match="no base_address"):
        open_device("pynq", fpga_manager=tmp_path)
    dev = open_device("pynq", fpga_manager=tmp_path, base_address=0x4000_0000)
    assert opened == [(0x4000_0000, 0x10000)]
    dev.driver.check_identity()
    dev.driver.write("CONTROL", kill=1)
    assert regs.outputs()["control_kill"] == 1
    with pytest.raises(BackendUnavailable, match="streams"):
        dev.load([b""])


def test_unknown_kind():
    with pytest.raises(ValueError, match="one of auto, emu, rtl, pynq, xrt, remote"):
        open_device("fpga")


# ----------------------------------------------------------- the off-chip order table

def _table_driver(**capacity):
    from tickwire.host.driver import Driver
    regs = FakeBus(**capacity)
    return regs, Driver(regs)


class _PynqBuffer:
    """Stand-in for a ``pynq.allocate`` buffer: a numpy array with a physical address,
    starting dirty (CMA memory is not zeroed), recording flushes and frees."""

    def __init__(self, shape, dtype, address):
        import numpy as np
        self.array = np.full(shape, 0xA5, dtype=dtype)
        self.physical_address = address
        self.flushed = self.freed = 0

    def __setitem__(self, key, value):
        self.array[key] = value

    def flush(self):
        self.flushed += 1

    def freebuffer(self):
        self.freed += 1


def _allocator(address, made):
    def allocate(shape, dtype):
        made.append(_PynqBuffer(shape, dtype, address))
        return made[-1]
    return allocate


def test_pynq_order_table_zeroed_flushed_and_written():
    """Off chip (2^15 buckets here): one buffer of the table's size, zeroed and flushed to
    DDR, its physical address in ORDER_TABLE_BASE; releasing it clears the register first."""
    from tickwire.spec.capacity import ORDER_LINE_BYTES
    regs, drv = _table_driver(order_buckets=1 << 15)
    made = []
    t = board.pynq_order_table(drv, allocate=_allocator(0x7000_0000, made),
                               windows=[["0x0", "0x80000000"]])
    (buf,) = made
    assert t.nbytes == buf.array.size == (1 << 15) * ORDER_LINE_BYTES
    assert not buf.array.any() and buf.flushed == 1
    assert t.address == 0x7000_0000 == regs.outputs()["order_table_base"]
    assert drv.read_raw("ORDER_TABLE_BASE") == 0x7000_0000
    t.release()
    assert regs.outputs()["order_table_base"] == 0 and buf.freed == 1
    t.release()                         # once only
    assert buf.freed == 1


def test_pynq_order_table_on_chip_and_refusals():
    """An on-chip table (ONCHIP_ORDER_BUCKETS) allocates nothing; a misaligned buffer, one
    outside the master's windows, or an enabled order path is refused, the register left."""
    from tickwire.spec.capacity import ONCHIP_ORDER_BUCKETS
    regs, drv = _table_driver(order_buckets=ONCHIP_ORDER_BUCKETS)
    made = []
    assert board.pynq_order_table(drv, allocate=_allocator(0x1000, made)) is None
    assert made == []
    regs, drv = _table_driver(order_buckets=1 << 15)
    with pytest.raises(board.DeployError, match="not aligned"):
        board.pynq_order_table(drv, allocate=_allocator(0x1000_0040, made))
    with pytest.raises(board.DeployError, match="outside what the kernel's master reaches"):
        board.pynq_order_table(drv, allocate=_allocator(0x7FFF_F000, made),
                               windows=[["0x0", "0x80000000"]])
    drv.write("CONTROL", enable=1)
    with pytest.raises(board.DeployError, match="before anything is enabled"):
        board.pynq_order_table(drv, allocate=_allocator(0x1000_0000, made))
    assert regs.outputs()["order_table_base"] == 0


def _fake_pyxrt(address):
    """A pyxrt stand-in: ``bo`` records its bank, writes and syncs."""
    fake = types.ModuleType("pyxrt")

    class bo:
        class flags:
            normal = "normal"

        def __init__(self, device, size, flags, bank):
            self.device, self.size, self.bank = device, size, bank
            self.data = bytearray(b"\xa5" * size)
            self.syncs = []
            fake.bos.append(self)

        def write(self, data, offset):
            assert offset + len(data) <= self.size
            self.data[offset:offset + len(data)] = data

        def sync(self, direction, size, offset):
            self.syncs.append((direction, size, offset))

        def address(self):
            return address

    fake.bo, fake.bos = bo, []
    fake.xclBOSyncDirection = types.SimpleNamespace(XCL_BO_SYNC_BO_TO_DEVICE="to_device")
    return fake


def test_xrt_order_table_in_its_bank():
    """Alveo: an xrt.bo of the table's size in the given bank, zeroed in chunks, synced to
    the device whole, its device address in ORDER_TABLE_BASE."""
    regs, drv = _table_driver(order_buckets=1 << 18)          # 32 MiB: two zeroing chunks
    fake = _fake_pyxrt(0x40_0000_0000)
    t = board.xrt_order_table(drv, "dev0", 3, pyxrt=fake)
    (bo,) = fake.bos
    assert (bo.device, bo.bank, bo.size) == ("dev0", 3, t.nbytes) and t.nbytes == 32 << 20
    assert not any(bo.data)
    assert bo.syncs == [("to_device", t.nbytes, 0)]
    assert regs.outputs()["order_table_base"] == 0x40_0000_0000 == t.address
    from tickwire.spec.capacity import ONCHIP_ORDER_BUCKETS
    _, drv = _table_driver(order_buckets=ONCHIP_ORDER_BUCKETS)
    assert board.xrt_order_table(drv, "dev0", 3, pyxrt=fake) is None and len(fake.bos) == 1


def test_pynq_board_prepare_makes_or_keeps_the_table(tmp_path, monkeypatch):
    """PynqBoard.prepare (deploy's step after the identity checks): after a load the table
    is made; on a build found running, a table set by another process is kept and a missing
    one made."""
    (tmp_path / "fpga0").mkdir()
    monkeypatch.setattr(board, "_find_spec", lambda name: object())
    made = []
    fake = types.ModuleType("pynq")
    fake.allocate = _allocator(0x6000_0000, made)
    monkeypatch.setitem(sys.modules, "pynq", fake)
    b = board.PynqBoard(fpga_manager=tmp_path)
    man = {"order_table": {"windows": [["0x0", "0x80000000"]]}}
    regs, drv = _table_driver(order_buckets=1 << 15)
    dev = types.SimpleNamespace(driver=drv, order_table=None)
    drv.write_raw("ORDER_TABLE_BASE", 0x1234_5600)             # another process's table
    b.prepare(dev, tmp_path, man, loaded=False)
    assert dev.order_table is None and made == []
    assert regs.outputs()["order_table_base"] == 0x1234_5600
    b.prepare(dev, tmp_path, man, loaded=True)
    assert dev.order_table.address == 0x6000_0000 == regs.outputs()["order_table_base"]
    dev.order_table.release()
    b.prepare(dev, tmp_path, man, loaded=False)                # unset: made here
    assert len(made) == 2 and regs.outputs()["order_table_base"] == 0x6000_0000


def test_xrt_board_table_in_the_manifests_bank(tmp_path, monkeypatch):
    """XrtBoard: the table goes to the bank the manifest links m_axi_book to, looked up in
    the xclbin's memory topology; a bank the xclbin does not use, or a manifest without
    one, is a clear error."""
    from tickwire.hw.board import xrt_shim
    monkeypatch.setattr(board, "probe_xrt", lambda: None)
    monkeypatch.setattr(xrt_shim, "load_shim", lambda: types.SimpleNamespace())
    fake = _fake_pyxrt(0x10_0000_0000)

    class Mem:
        def __init__(self, tag, index, used=True):
            self.tag, self.index, self.used = tag, index, used

        def get_tag(self):
            return self.tag

        def get_index(self):
            return self.index

        def get_used(self):
            return self.used
    fake.xclbin = lambda path: types.SimpleNamespace(get_mems=lambda: [
        Mem("HBM[0]", 0), Mem("HBM[1]", 1), Mem("HBM[2]", 2, used=False)])
    fake.device = lambda index: f"device{index}"
    monkeypatch.setitem(sys.modules, "pyxrt", fake)
    (tmp_path / "tickwire.xclbin").write_bytes(b"")
    man = {"artifacts": {"xclbin": "tickwire.xclbin"}, "order_table": {"bank": "HBM[1]"}}
    b = board.XrtBoard(index=2)
    regs, drv = _table_driver(order_buckets=1 << 15)
    t = b._table(drv, tmp_path, man)
    assert (fake.bos[0].bank, fake.bos[0].device) == (1, "device2")
    assert regs.outputs()["order_table_base"] == t.address
    with pytest.raises(board.DeployError, match=r"no memory bank HBM\[2\] in use"):
        b._table(drv, tmp_path, {**man, "order_table": {"bank": "HBM[2]"}})
    with pytest.raises(board.DeployError, match="names no memory bank"):
        b._table(drv, tmp_path, {**man, "order_table": None})
