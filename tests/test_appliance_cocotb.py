"""The appliance's cocotb bench (sim/appliance/appliance_tb.py): the generated Verilog of
hw/appliance.py on Verilator, the bundled capture in, the host's own AsyncDriver writing a
random configuration through cocotbext-axi before and during the stream, order frames under
random back-pressure byte-identical to the emulator's, counters read back through the driver."""

import pickle

import pytest

from appliance_cases import emulate, host_steps, plan_writes
from test_rtl_orders import SAMPLE_NAMES, mids, sample_frames

pytestmark = pytest.mark.rtl

#: frames of the bundled capture streamed (cocotb runs a cycle at a time from Python)
FRAMES = 700


def design_top():
    """The appliance as built here (its table off chip at the default capacities)."""
    from tickwire.backends.rtl import BUILD_DEPTH
    from tickwire.hw.appliance import Appliance
    top = Appliance(depth=BUILD_DEPTH)
    top._MustUse__silence = True
    return top


@pytest.fixture(scope="module")
def design():
    from tickwire.hw.appliance import Appliance
    from tickwire.backends.rtl import BUILD_DEPTH
    from tickwire.sim.runner import build
    return build(Appliance(depth=BUILD_DEPTH), "appliance")


@pytest.mark.parametrize("seed,permissive,ready", [(51, True, 0.6), (58, False, 1.0)])
def test_appliance_end_to_end(design, tmp_path, seed, permissive, ready):
    from tickwire.backends.rtl import BUILD_DEPTH
    from tickwire.backends.wire import FRAME_GAP
    from tickwire.sim.runner import run
    frames = sample_frames()[:FRAMES]
    names = SAMPLE_NAMES[:6]
    mid = mids(frames, names)
    cfg, limits, plan = plan_writes(seed, frames, names, mid, permissive=permissive,
                                    rewrites=4)
    assert any(f > 0 for f, _ in plan)
    _, res = emulate(frames, cfg, limits, plan, BUILD_DEPTH)
    assert len(res.orders.frames) > 0 and (permissive or res.counters["risk_rejects"] > 0)
    sc = {"frames": frames, "steps": host_steps(cfg, limits, plan),
          "order_frames": res.orders.frames, "counters": dict(res.counters),
          "ready_prob": ready, "seed": seed, "gap": FRAME_GAP, "settle": 1024,
          "order_memory_bytes": getattr(design_top(), "order_memory_bytes", 0)}
    path = tmp_path / "scenario.pkl"
    path.write_bytes(pickle.dumps(sc))
    run(design, "tickwire.sim.appliance.appliance_tb", testcase="end_to_end",
        tag=f"end_to_end-{seed}", env={"TW_SCENARIO": str(path)})
