"""pytest entry of the register file's cocotb bench (sim/regmap/regfile_tb.py): the generated
Verilog on Verilator, driven over AXI4-Lite by cocotbext-axi and by the host's AsyncDriver."""

import pytest

from tickwire.hw.regmap.axil import RegisterFile
from tickwire.sim.runner import build, run

pytestmark = pytest.mark.rtl

#: Build parameters of the bench's register file (the tables shrink, the map does not).
CAPACITY = {"symbols": 16, "groups": 4, "hist_bins": 16}


@pytest.fixture(scope="module")
def design():
    return build(RegisterFile(**CAPACITY), "regmap")


def _env(**extra):
    env = {f"TW_CAP_{k.upper()}": str(v) for k, v in CAPACITY.items()}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def test_regfile_against_model(design):
    run(design, "tickwire.sim.regmap.regfile_tb", testcase="model_random",
        env=_env(TW_SEED=11, TW_OPS=1500))


def test_regfile_host_driver(design):
    run(design, "tickwire.sim.regmap.regfile_tb",
        testcase=["driver_identity", "driver_config", "driver_counters"], tag="driver",
        env=_env())
