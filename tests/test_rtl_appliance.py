"""The appliance (hw/appliance.py: AXI4-Lite register file + whole pipeline) in RTL, configured
and read back by the host's own driver (host/driver.py) through the AXI4-Lite master of the
fast Verilator harness: random trigger/limit configurations written through the register map,
before and during the stream; order frames byte-identical to the emulator's; every emulator
counter, the positions, the gross exposure, the session counters and the status read back
through the driver equal to the emulator's state."""

import random

import pytest

from tickwire.host import gen
from tickwire.host.emu.core import G_GROSS
from tickwire.host.framing import FcsError, build_udp_frame

from tickwire.backends import rtl as appliance

from appliance_cases import emulate, host_program, plan_writes
from test_rtl_orders import SAMPLE_NAMES, check_frames, mids, sample_frames

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def built():
    from tickwire.sim import fastsim
    return fastsim.build(appliance.harness())


def test_every_register_file_port_is_wired():
    from tickwire.hw.appliance import unconnected_ports
    assert unconnected_ports() == []


def compare(frames, cfg, limits, plan, *, random_ready=False):
    from tickwire.backends.rtl import BUILD_DEPTH
    r = appliance.run_appliance(frames, host_program(cfg, limits, plan),
                                random_ready=random_ready)
    emu, res = emulate(frames, cfg, limits, plan, BUILD_DEPTH)
    want = res.orders.frames
    for i, (a, b) in enumerate(zip(r.frames, want)):
        assert a == b, f"order frame {i}:\n rtl {a.hex()}\n emu {b.hex()}"
    assert len(r.frames) == len(want)
    drv = r.drv
    drv.check_identity()
    c = drv.counters(hardware=True)
    for k, v in res.counters.items():
        assert c[k] == v, f"{k}: read through the driver {c[k]}, emulator {v}"
    n = len(want)
    assert c["frames_sent"] == n and c["drops"] == 0 and c["overflow"] == 0
    assert c["a_frames"] == len(frames) and c["b_frames"] == 0
    assert c["fast_mismatch"] == 0
    names = list(cfg.symbols)
    assert drv.symbols()[:len(names)] == names
    assert drv.positions()[:len(names)] == emu.state.position[:len(names)].tolist()
    assert drv.gross() == int(emu.state.risk_global[G_GROSS])
    lat = drv.latency()
    assert lat["count"] == n and sum(lat["bins"]) == n
    st = drv.status
    assert st.risk_reject == int(res.counters["risk_rejects"] > 0)
    assert st.gap == int(res.counters["gaps"] > 0) and st.busy == 0
    assert st.fcs_error == int(res.counters["fcs_errors"] > 0)
    assert c["a_fcs_errors"] + c["b_fcs_errors"] == res.counters["fcs_errors"]
    sess = drv.session()
    if n:
        assert sess["next_user_ref"] == int(res.orders.user_ref[-1]) + 1
    check_frames(r.frames)
    return r, res


def test_sample_capture_configured_through_the_driver(built):
    frames = sample_frames()
    mid = mids(frames, SAMPLE_NAMES)
    orders = rejects = 0
    for seed, perm in ((21, True), (22, False), (23, False)):
        cfg, limits, plan = plan_writes(seed, frames, SAMPLE_NAMES, mid, permissive=perm)
        assert any(f > 0 for f, _ in plan)
        r, res = compare(frames, cfg, limits, plan)
        orders += len(r.frames)
        rejects += res.counters["risk_rejects"]
    assert orders > 20 and rejects > 0


def test_bad_fcs_frames_are_counted_and_taken(built):
    """Frames the MAC flags with a bad FCS on their last beat (``user``): their messages were
    taken as they arrived, so the book and the orders are the emulator's for the same frames;
    each is counted (``fcs_errors``, per line too) and STATUS.fcs_error says the book may be
    wrong."""
    frames = sample_frames()[:4000]
    rng = random.Random(5)
    bad = sorted(rng.sample(range(len(frames)), 40)) + [len(frames) - 1]
    for i in bad:
        frames[i] = FcsError(frames[i])
    mid = mids(frames, SAMPLE_NAMES)
    cfg, limits, plan = plan_writes(24, frames, SAMPLE_NAMES, mid, permissive=True)
    r, res = compare(frames, cfg, limits, plan)
    assert res.counters["fcs_errors"] == len(bad) and len(r.frames) > 0
    c = r.drv.counters(hardware=True)
    assert c["a_fcs_errors"] == len(bad) and c["b_fcs_errors"] == 0
    assert r.drv.status.fcs_error == 1


def test_generated_day_configured_through_the_driver(built):
    day = gen.generate_day(symbols=16, messages=60000, seed=31)
    frames = [build_udp_frame(p) for _, p in gen.to_packets(day)]
    names = list(day.symbols)
    mid = mids(frames, names)
    n = 0
    for seed, perm in ((31, True), (32, False)):
        cfg, limits, plan = plan_writes(seed, frames, names, mid, permissive=perm, rewrites=20)
        r, _ = compare(frames, cfg, limits, plan)
        n += len(r.frames)
    assert n > 0


def test_back_pressure_with_mid_stream_writes(built):
    """Random ``ready`` on the order output: same frames, none lost or duplicated."""
    frames = sample_frames()[:3000]
    names = SAMPLE_NAMES[:6]
    mid = mids(frames, names)
    cfg, limits, plan = plan_writes(41, frames, names, mid, permissive=True)
    r, _ = compare(frames, cfg, limits, plan, random_ready=True)
    assert len(r.frames) > 0


def test_identity_mismatch_is_refused(built, monkeypatch):
    """A host whose map differs from the bitstream's refuses it (the gateware's answer is
    checked, not the host's model)."""
    from tickwire.host.driver import IdentityError
    frames = sample_frames()[:50]

    def host(drv, bus):
        drv.check_identity()

    real = appliance.ScriptBus.read32

    def lying(self, addr):   # the host's map expects another hash than the gateware's

        v = real(self, addr)
        if addr == appliance.REGMAP.register("MAP_HASH").offset:
            self.answers[-1] = v ^ 1
        return v
    monkeypatch.setattr(appliance.ScriptBus, "read32", lying)
    with pytest.raises(IdentityError, match="MAP_HASH|0x"):
        appliance.run_appliance(frames, host)


def test_static_strategy_on_the_live_device_matches_emulator(built):
    """The host loop on the live RTL device (the harness as a server: configuration through
    ``apply_config``, then the stream) with a static strategy, disabled and collared
    symbols: the emulator device's orders frame for frame and every counter it has."""
    import copy

    from tickwire.backends.emu import EmuDevice
    from tickwire.backends.rtl import RtlDevice, rtl_config
    from tickwire.host.config import Config
    from tickwire.host.hostloop import run_device
    frames = sample_frames()
    cfg = rtl_config(Config(symbols=list(SAMPLE_NAMES)))
    cfg.strategy.kind = "static"
    cfg.strategy.triggers = {"AAPL": {"buy": 1_900_400, "sell": 1_900_600, "quantity": 10},
                             "MSFT": {"sell": 4_178_000, "rearm": 1},
                             "AMD": {"buy": 1_605_300, "rearm": 1, "ref_price": 1_605_000}}
    cfg.risk.symbol_refill_ns = 1_000_000
    cfg.risk.disabled = ["MSFT"]
    with RtlDevice() as dev:
        res = run_device(dev, frames, copy.deepcopy(cfg))
        assert dev.identity()["hash"] == appliance.REGMAP.hash
    emu = run_device(EmuDevice(copy.deepcopy(cfg)), frames, copy.deepcopy(cfg))
    assert res.orders.frames == emu.orders.frames and len(emu.orders.frames) > 0
    assert res.orders.slot.tolist() == emu.orders.slot.tolist()
    assert res.orders.price.tolist() == emu.orders.price.tolist()
    assert res.orders.user_ref.tolist() == emu.orders.user_ref.tolist()
    diff = {k: (res.counters[k], v) for k, v in emu.counters.items() if res.counters[k] != v}
    assert diff == {}
    assert res.counters["reject_symbol_disabled"] > 0 or emu.counters["risk_rejects"] == 0
    # apply_config wrote the configured rows: the strategy had nothing left to write
    assert len(res.writes) == len(emu.writes) == 0
