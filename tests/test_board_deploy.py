"""`tickwire board deploy` and `board status` end to end against the RTL back-end served as a
board (RtlBoard: the Verilated appliance started on load, reached through the remote
back-end): the first deploy loads, the second reuses the loaded build, a build of another map
is refused before the board is touched, a board that does not run the artifact's BUILD_ID
after a load is an error; status reads identity, STATUS, counters and the clock, and matches
the manifest. The XRT shim is compiled where XRT's headers are installed."""

import json
import shutil
import struct
import uuid

import pytest
from typer.testing import CliRunner

from tickwire.backends.board import (DeployError, RtlBoard, deploy, load_manifest,
                                     status)
from tickwire.backends.emu import EmuDevice
from tickwire.backends.remote import serve_device
from tickwire.hw.board.project import build_project
from tickwire.spec.regmap import COUNTER_NAMES, REGMAP

TOKEN = "board-test-token"


def project(tmp_path, target="rtl", where=None, **edit):
    """A `board build` project of ``target`` in ``tmp_path/where`` (no appliance Verilog:
    deploy reads the manifest), with ``edit`` applied to its manifest."""
    d = tmp_path / (where or target)
    build_project(target, d, verilog=False, run_tools=False)
    if edit:
        f = d / "manifest.json"
        f.write_text(json.dumps(dict(json.loads(f.read_text()), **edit)))
    return d


def cli(*args):
    from tickwire.host.cli import _register_optional, app
    _register_optional()
    return CliRunner().invoke(app, list(args))


def test_wrong_map_is_refused_before_the_board(tmp_path):
    art = project(tmp_path, map_hash=f"0x{REGMAP.hash ^ 1:08x}")
    board = RtlBoard()
    with pytest.raises(DeployError, match="refused: the artifact's register map"):
        deploy(art, board)
    assert board.programs == 0 and board.loaded() is None
    with pytest.raises(DeployError, match="refused"):
        deploy(project(tmp_path, where="v", version=[REGMAP.version[0] + 1, 0]), board)
    r = cli("board", "deploy", str(art / "manifest.json"), "--board", "remote", "--device",
            "127.0.0.1:1")
    assert r.exit_code == 2 and "refused" in r.output
    # a file of the project finds its manifest above it
    (art / "overlay").mkdir()
    (art / "overlay" / "tickwire.bit").write_bytes(b"")
    assert load_manifest(art / "overlay" / "tickwire.bit")[0] == art


def test_served_device_of_another_build(tmp_path, monkeypatch):
    """A served device is loaded where it runs: an artifact it does not run is refused, with
    what it runs said (the emulator has no BUILD_ID)."""
    art = project(tmp_path, "kv260")
    with serve_device(EmuDevice(), token=TOKEN) as srv:
        monkeypatch.setenv("TICKWIRE_TOKEN", TOKEN)
        host, port = srv.address
        r = cli("board", "deploy", str(art), "--board", "remote", "--device", f"{host}:{port}")
        assert r.exit_code == 2 and "runs another build" in r.output, r.output
        r = cli("board", "status", "--device", f"{host}:{port}", "--manifest", str(art),
                "--json", "--interval", "0.05")
        assert r.exit_code == 0, r.output
        s = json.loads(r.output)
        assert s["identity"]["map_hash"] == f"0x{REGMAP.hash:08x}"
        assert s["identity"]["build_id"] is None and s["counters"]
        assert s["manifest"]["checks"]["map_hash"] and not s["manifest"]["checks"]["build_id"]
        assert not s["manifest"]["matches"]


@pytest.mark.rtl
def test_deploy_reuse_status_and_identity(tmp_path, monkeypatch):
    from tickwire.backends.rtl import harness
    from tickwire.sim import fastsim
    # the Verilated appliance first (cached), then the manifest from the same sources (a
    # source edited in between would rightly make the BUILD_IDs differ)
    fastsim.build(harness())
    art = project(tmp_path)
    man = json.loads((art / "manifest.json").read_text())
    board = RtlBoard(token=TOKEN)
    try:
        first = deploy(art, board)
        assert first["action"] == "loaded" and first["previous_build_id"] is None
        dev = first.pop("dev")
        assert dev.build_id() == int(man["build_id"], 16)
        second = deploy(art, board)
        assert second["action"] == "reused" and second["dev"] is dev
        assert second["previous_build_id"] == man["build_id"] and board.programs == 1
        s = status(dev, man, interval=0.05, board=board)
        assert s["manifest"]["matches"], s["manifest"]
        assert s["identity"]["build_id"] == man["build_id"]
        assert set(COUNTER_NAMES) <= set(s["counters"])
        assert s["status"]["busy"] == 0 and s["clock"]["cycles"] > 0
        assert s["capacity"] == dict(s["capacity"], **man["capacity"])
        # the same board through the CLI, as any served device (its own client closed first:
        # the server takes one client at a time)
        board.dev.close()
        monkeypatch.setenv("TICKWIRE_TOKEN", TOKEN)
        where = "%s:%d" % board.server.address
        r = cli("board", "deploy", str(art), "--device", where)
        assert r.exit_code == 0 and r.output.startswith("reused:"), r.output
        r = cli("board", "status", "--device", where, "--manifest", str(art), "--interval",
                "0.05")
        assert r.exit_code == 0 and f"manifest rtl {man['build_id']}: matches" in r.output, \
            r.output
        # forced: loaded again; an artifact whose BUILD_ID the loaded gateware does not
        # report is an error after the load
        assert deploy(art, board, force=True)["action"] == "loaded" and board.programs == 2
        other = project(tmp_path, where="other", build_id="0x00000001")
        with pytest.raises(DeployError, match="reports BUILD_ID"):
            deploy(other, board)
    finally:
        board.close()


def test_xrt_shim_builds_against_libxrt(tmp_path):
    from tickwire.hw.board.xrt_shim import build_shim, load_shim, xrt_include
    if xrt_include() is None:
        pytest.skip("XRT headers not installed (Debian: apt install libxrt-dev): the "
                    "tickwire_xrt shim was not compiled")
    pytest.importorskip("pybind11", reason="pybind11 not installed")
    if shutil.which("c++") is None:
        pytest.skip("no C++ compiler")
    so = build_shim(tmp_path)
    assert so.exists() and so.stat().st_size > 0
    mod = load_shim(tmp_path)
    assert {"Kernel", "load", "loaded_uuid", "xclbin_uuid", "info"} <= set(dir(mod))
    # an xclbin's UUID read by XRT's own parser: a minimal axlf (xclbin.h: 496-byte header,
    # the UUID in axlf_header after the platform VBNV), no sections
    uid = uuid.UUID("0123abcd-4567-89ab-cdef-0123456789ab")
    header = struct.pack("<QQQHBBHH16s64s16s16sI", 496, 0, 0, 0, 2, 1, 0, 0, b"",
                         b"xilinx_u55c_gen3x16_xdma_3_202210_1", uid.bytes, b"", 0)
    axlf = (b"xclbin2\0" + struct.pack("<i", -1) + b"\xff" * 28 + bytes(256)
            + struct.pack("<Q", 0) + header.ljust(152, b"\0")).ljust(496, b"\0")
    (tmp_path / "k.xclbin").write_bytes(axlf)
    assert mod.xclbin_uuid(str(tmp_path / "k.xclbin")) == str(uid)
    (tmp_path / "not.xclbin").write_bytes(b"not an xclbin")
    with pytest.raises(RuntimeError):
        mod.xclbin_uuid(str(tmp_path / "not.xclbin"))
    # no card here: XRT's error comes back as a Python exception, not a crash
    with pytest.raises(RuntimeError):
        mod.loaded_uuid(0)


def test_pynq_driver_binds_to_the_vlnv():
    """Where pynq installs (a board, or an environment with numpy < 2 that pynq pins), the
    driver class registers for the IP's VLNV."""
    pynq = pytest.importorskip("pynq", reason="pynq is not installed here (it pins numpy < 2 "
                               "and targets the boards): the driver's registration was not "
                               "checked")
    from tickwire.backends.board import pynq_driver
    from tickwire.hw.board.identity import VLNV
    cls = pynq_driver()
    assert VLNV in cls.bindto and issubclass(cls, pynq.DefaultIP)
    assert pynq.overlay._ip_drivers[VLNV] is cls
