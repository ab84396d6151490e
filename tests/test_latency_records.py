"""Latency records: offered-load schedules, and the gateware's per-order stamps on the RTL
appliance — the stages of every order add up to its end-to-end figure, which equals the one
the harness observes independently (port beat taken -> order frame's first beat)."""

import copy

import numpy as np
import pytest

from tickwire.backends.base import Pacing
from tickwire.host.latency import hist
from tickwire.host.latency.records import STAGE_NAMES, STAGES, order_records


def test_rate_schedule_and_gaps():
    lengths = [120, 64, 300, 64, 64, 90] * 5
    p = Pacing("rate", frames_per_second=2e6, clock_hz=322.265625e6)
    due = p.schedule(lengths)
    assert np.allclose(np.diff(due), 322.265625e6 / 2e6)
    starts = p.starts(lengths, p.gaps(lengths))
    # a feasible schedule is kept to the cycle, open-loop (no drift)
    assert np.max(np.abs(starts - due)) <= 0.5


def test_burst_schedule():
    lengths = [64] * 24
    p = Pacing("rate", frames_per_second=1e6, burst=8, gap=3)
    g = p.gaps(lengths)
    starts = p.starts(lengths, g)
    # inside a burst: back to back (64 bytes = 8 beats + 3 idle); bursts 8 periods apart
    assert [g[i] for i in range(24) if i % 8] == [3] * 21
    assert np.allclose(starts[::8] - p.schedule(lengths)[::8], 0, atol=0.5)
    assert starts[8] - starts[0] == round(8 * p.clock_hz / 1e6)


def test_overload_waits_for_the_line():
    """Offered above line rate: frames start late (each as soon as the line is free), and the
    schedule keeps its own time (the corrected figure counts the wait)."""
    lengths = [800] * 10
    p = Pacing("rate", frames_per_second=50e6)
    starts = p.starts(lengths, p.gaps(lengths))
    due = p.schedule(lengths)
    assert np.all(np.diff(starts) == 100 + 3)
    assert np.all(starts[1:] > due[1:])


def test_timestamps_idle_cap():
    ts = [0, 1_000, 2_000, 5_000_000_000, 5_000_001_000]
    p = Pacing("timestamps", max_idle=1000)
    g = p.gaps([64] * 5, ts)
    assert g[3] == 1000 + 3 and g[1] == max(3, round(1000 * p.clock_hz / 1e9) - 8)


def test_hdr_percentile_is_nearest_rank():
    v = np.random.default_rng(3).integers(0, 2000, 777)
    h = hist.record(v)
    for p in hist.PERCENTILES:
        assert h.get_value_at_percentile(p) == hist.nearest_rank(v, p)
    assert hist.decode(hist.encode(h)).get_total_count() == 777


@pytest.mark.rtl
@pytest.mark.parametrize("cut,rate", [(True, 1.5e6), (False, 3e6)],
                         ids=["cut-through", "store-and-forward-overload"])
def test_stages_add_up_on_rtl(cut, rate):
    """1.5M frames/s: every frame of the sample fits its period; 3M: long frames overrun it
    and later frames wait for the line (line_wait, the corrected figure)."""
    from tickwire.backends.emu import EmuDevice
    from tickwire.backends.rtl import RtlDevice, rtl_config
    from tickwire.backends.wire import frames_of, poll_points, trigger_latencies
    from tickwire.hw.trigger.path import OrderPath
    from tickwire.host.cli import SAMPLE
    from tickwire.host.config import load_config
    from tickwire.host.hostloop import run_device
    from tickwire.host.latency_cli import DEFAULT_CONFIG
    from tickwire.spec.capacity import ROW_DEPTH

    cfg = rtl_config(load_config(DEFAULT_CONFIG))
    frames = frames_of(SAMPLE)
    er = run_device(EmuDevice(copy.deepcopy(cfg), ROW_DEPTH), frames, copy.deepcopy(cfg))
    lat = []

    class Dev(RtlDevice):
        def load(self, *a, **kw):
            super().load(*a, **kw)
            self.driver.write("CONTROL", cut_through=int(cut))

    pacing = Pacing("rate", frames_per_second=rate)
    lengths = [len(f) for f in frames]
    with Dev() as dev:
        rr = run_device(dev, frames, copy.deepcopy(cfg), gaps=pacing.gaps(lengths),
                        on_poll=lambda ctx, out: lat.append(out.latency))
    assert rr.orders.frames == er.orders.frames and len(er.orders.frames) > 20
    latency = {k: np.concatenate([x[k] for x in lat if x is not None]) for k in lat[-1]}
    points = poll_points(frames, cfg.strategy.poll_messages)
    due = pacing.schedule(lengths)
    starts = pacing.starts(lengths, pacing.gaps(lengths))
    r = order_records(frames, due, rr.input_times, rr.order_times, latency,
                      er.orders.sequence, chunks=[0] + points[:-1], starts=starts)
    total = sum(r[s] for s in STAGE_NAMES)
    assert np.array_equal(total, r["end_to_end"])
    assert np.array_equal(r["corrected"], r["line_wait"] + r["end_to_end"])
    # the harness's own view of the same orders (no gateware stamp involved)
    from_frame, from_field = trigger_latencies(frames, er.orders.sequence, rr.order_times,
                                               rr.input_times)
    assert np.array_equal(r["end_to_end"], from_frame)
    assert np.array_equal(r["end_to_end"] - r["wire"], from_field)
    for name, a, b in STAGES:
        assert np.all(r[b] >= r[a]), name
    # the order path's fixed pipeline: trigger decision -> egress in OrderPath.LATENCY cycles
    assert r["trigger_risk"].min() == OrderPath.LATENCY
    fast = r["fast"]
    assert fast.any() == cut and np.all(r["book"][fast] == 0)
    # the wait for the line is what the schedule planned (none where every frame fits)
    planned = starts[r["frame"]] - np.floor(due[r["frame"]] + 0.5).astype(np.int64)
    assert np.array_equal(r["line_wait"], planned)
    assert (r["line_wait"].max() > 0) == (rate > 2e6)


def test_emulator_slow_path_records(tmp_path):
    """The emu back-end: per host poll that wrote triggers, book view -> first write ->
    last write in host time; stored like an RTL run."""
    from tickwire.host.cli import SAMPLE
    from tickwire.host.latency.runs import load_run, run
    spec = {"run_id": "sample.asap.band.emu", "backend": "emu",
            "input": {"name": "sample", "path": str(SAMPLE)},
            "load": {"name": "asap", "mode": "asap"},
            "config": {"name": "band", "strategy": "band", "poll_messages": 1024}}
    meta = run(spec, tmp_path)
    assert meta["unit"] == "ns" and meta["orders"] > 0
    _, recs, h = load_run(tmp_path / "runs" / spec["run_id"])
    r = {k: np.asarray(v) for k, v in recs.to_pydict().items()}
    assert len(r["end_to_end"]) > 5 and np.all(r["writes"] > 0)
    assert np.array_equal(r["strategy"] + r["write"], r["end_to_end"])
    rows = {x["figure"]: x for x in h.to_pylist()}
    assert rows["end_to_end"]["max"] == hist.record(r["end_to_end"]).get_max_value()
