"""pytest entry of the order-path cocotb bench (sim/trigger_risk/path_tb.py): trigger engine
+ pre-trade risk + order egress on Verilator against the emulator, over random
configurations and random ITCH streams (one Verilog build for the module)."""

import pickle

import pytest

from tickwire.hw.trigger.path import OrderPath
from tickwire.sim.runner import build, run
from tickwire.sim.trigger_risk.model import make_scenario, run_scenario_full

pytestmark = pytest.mark.rtl

KEEP = ("seed", "config", "steps", "expect", "ready_prob", "fast_p", "gap_p")


def test_order_path_declares_three_cycles():
    """The figure the bench asserts on every order that finds the egress idle (README: trigger
    evaluation -> first order byte) is the path's declared latency."""
    from tickwire.sim.trigger_risk import path_tb
    assert OrderPath.LATENCY == path_tb.LATENCY == 3


@pytest.fixture(scope="module")
def design():
    return build(OrderPath(symbols=64), "order_path")


def scenarios(seeds, n_msgs, **kw):
    out = []
    for i, seed in enumerate(seeds):
        # every third scenario permissive (many orders), the others with random limits
        sc = make_scenario(seed, n_msgs, permissive=kw.get("permissive", False) and i % 3 == 2,
                           n_names=(2, 3, 5)[i % 3])
        full = run_scenario_full(sc)
        # the stepped emulator run the bench is scored against == one Emulator.run
        assert [bytes(f) for f in full.orders.frames] == sc["expect"]["frames"]
        assert {k: full.counters[k] for k in sc["expect"]["counters"]} == \
            sc["expect"]["counters"]
        sc.update(ready_prob=kw.get("ready", (1.0,))[i % len(kw.get("ready", (1.0,)))],
                  fast_p=kw.get("fast_p", 0.8), gap_p=kw.get("gap_p", 0.3))
        out.append({k: sc[k] for k in KEEP})
    return out


def _run(design, tmp_path, scs, tag, seed):
    path = tmp_path / f"{tag}.pkl"
    path.write_bytes(pickle.dumps(scs))
    run(design, "tickwire.sim.trigger_risk.path_tb", env={"TW_SCENARIOS": str(path),
                                                         "TW_SEED": str(seed)},
        tag=tag, seed=seed)


def test_order_path_random_configurations(design, tmp_path):
    """Random risk configurations, trigger writes and ITCH streams, the egress always ready:
    every candidate, decision, order, frame and counter as the emulator's; cut-through
    orders at exactly 3 cycles."""
    scs = scenarios(range(1100, 1118), 800, permissive=True)
    # the set exercises every reject reason (the bench compares each decision)
    for name in scs[0]["expect"]["counters"]:
        assert sum(sc["expect"]["counters"][name] for sc in scs) > 0, name
    _run(design, tmp_path, scs, "random", 7)


def test_order_path_backpressure(design, tmp_path):
    """Random ``ready`` on the frame output (and back-to-back messages): nothing lost,
    duplicated or reordered; no drops."""
    _run(design, tmp_path,
         scenarios(range(2000, 2006), 600, permissive=True, ready=(0.6, 0.3, 0.85),
                   gap_p=0.1), "backpressure", 8)
