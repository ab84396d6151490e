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
