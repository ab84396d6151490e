"""BUILD_ID: the register file returns its build parameter, the model and the emulator answer
0, and the digest behind it follows the sources and the build parameters."""

import pytest

from tickwire.host.driver import Driver, FakeBus
from tickwire.hw.board.identity import build_id, gateware_files, rtl_build_id, source_digest
from tickwire.hw.board.targets import RTL, TARGETS
from tickwire.hw.regmap.axil import RegisterFile
from tickwire.sim.regmap.amaranth_harness import simulate
from tickwire.sim.regmap.common import OKAY
from tickwire.spec.regmap import REGMAP

ADDR = REGMAP.register("BUILD_ID").offset


def test_register_file_returns_its_build_id():
    async def body(h):
        assert await h.read(ADDR) == (0x5EED_0001, OKAY)
        assert await h.write(ADDR, 0) != OKAY                # read only: SLVERR
        assert await h.read(ADDR) == (0x5EED_0001, OKAY)
    simulate(body, build_id=0x5EED_0001, symbols=8, groups=4, hist_bins=8)
    with pytest.raises(ValueError, match="build_id"):
        RegisterFile(build_id=1 << 32)


def test_model_and_emulator_answer_zero():
    bus = FakeBus()
    assert Driver(bus).read_raw("BUILD_ID") == 0
    bus.build_id = 0x1234
    assert Driver(bus).read_raw("BUILD_ID") == 0x1234
    from tickwire.backends.emu import EmuDevice
    with EmuDevice() as dev:
        assert dev.driver.read_raw("BUILD_ID") == 0 and dev.build_id() is None


def test_build_id_follows_parameters_and_sources():
    d = source_digest()
    ids = {build_id(t.params(), d) for t in TARGETS.values()}
    assert len(ids) == len(TARGETS) and 0 not in ids        # one per target, never 0
    kv = TARGETS["kv260"]
    assert build_id(kv.params({"symbols": 32}), d) != build_id(kv.params(), d)
    assert build_id(kv.params(), "0" * 64) != build_id(kv.params(), d)
    # the board's own files count for boards only, as the RTL harness's cache key excludes them
    names = {n for n, _ in gateware_files()}
    assert "hw/appliance.py" in names and "spec/regmap.py" in names
    assert not any(n.startswith("hw/board/") for n in names)
    assert any(n.startswith("hw/board/") for n, _ in gateware_files(board=True))
    assert source_digest(board=True) != d
    assert rtl_build_id(10, 64) == build_id(RTL.params({"symbols": 64}) | {"depth": 10}, d)
