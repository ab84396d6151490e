"""Tick to trade in RTL: Ethernet frames on line A -> the appliance (feed -> book -> trigger ->
risk -> order egress, set up through its register map; the fast Verilator harness, cut-through
trigger path on), order frames byte-identical to the emulator's and every counter equal.
tests/test_rtl_cut_through.py: the cut-through path on and off, impaired feeds."""

import random

import numpy as np
import pytest

from tickwire.host import gen
from tickwire.host.config import Config
from tickwire.host.framing import build_udp_frame, parse_tcp_frame
from tickwire.backends import rtl
from tickwire.backends.wire import frames_of, trigger_latencies
from tickwire.sim.trigger_risk import model

from emu_helpers import emulate_orders

pytestmark = pytest.mark.rtl

from tickwire.spec.values import TICK  # noqa: E402
from tickwire.spec.counters import COUNTER_NAMES, FEED_COUNTERS  # noqa: E402

#: every counter the emulator has
CHECKED = FEED_COUNTERS + COUNTER_NAMES


@pytest.fixture(scope="module")
def built():
    from tickwire.sim import fastsim
    return fastsim.build(rtl.harness())


def sample_frames():
    from pathlib import Path
    import tickwire.host
    path = Path(tickwire.host.__file__).parent / "data" / "sample.pcap"
    return frames_of(path)


def day_frames(seed):
    day = gen.generate_day(symbols=8, messages=20000, seed=seed)
    return [build_udp_frame(p) for _, p in gen.to_packets(day)]


def mids(frames, names):
    """Median mid price per named slot (from the emulator's top-of-book rows)."""
    from tickwire.host.emu.pipeline import Emulator
    from tickwire.host.capture import Frames
    from tickwire.host.emu import feed
    from tickwire.backends.rtl import rtl_config
    data = np.frombuffer(b"".join(frames), np.uint8).copy()
    lens = np.array([len(f) for f in frames], np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    idx = feed.index_frames(Frames(data, offs, lens, np.arange(len(frames), dtype=np.int64), 1))
    cfg = rtl_config(Config(symbols=list(names)))
    cfg.strategy.kind = "none"
    res = Emulator(cfg, 1).run(idx.data, idx.offsets, idx.sequences, idx.counters)
    out = []
    for s in range(len(names)):
        lv = res.rows.levels[res.rows.slot == s][:, 0]
        ok = (lv[:, 0] > 0) & (lv[:, 2] > 0)
        m = (lv[ok, 0].astype(np.int64) + lv[ok, 2]) // 2
        out.append(int(np.median(m)) // TICK * TICK if len(m) else 1_000_000)
    return out


def case(seed, names, mid, *, permissive=False):
    """A random configuration (risk, session, capacity: the order-path bench's), trigger rows
    around each symbol's median mid, and a few per-slot limit overrides."""
    rng = random.Random(seed)
    cfg = model.random_config(rng, list(names), int(np.median(mid)), permissive=permissive)
    writes = []
    for s, m in enumerate(mid):
        if rng.random() < 0.9:
            writes.append(dict(msg=0, slot=s, buy_price=m + rng.randint(-4, 2) * TICK,
                               sell_price=m + rng.randint(-2, 4) * TICK,
                               quantity=rng.choice((1, 100, 100, 250, rng.randint(1, 500))),
                               enable_buy=int(rng.random() < 0.8),
                               enable_sell=int(rng.random() < 0.8),
                               rearm=int(rng.random() < 0.7),
                               ref_price=rng.choice((-1, 0, m + rng.randint(-40, 40) * TICK))))
    limits = {s: (rng.randint(0, 800), rng.randint(0, 800))
              for s in rng.sample(range(len(names)), 2)} if not permissive else {}
    return cfg, writes, limits


def check_frames(frames):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    for i, f in enumerate(frames):
        seg = parse_tcp_frame(f)
        assert not isinstance(seg, str), f"frame {i}: {seg}"
        pkt = Ether(f)
        assert IP in pkt and TCP in pkt and pkt[TCP].flags == "PA"
        del pkt[IP].chksum, pkt[TCP].chksum
        assert bytes(Ether(bytes(pkt))) == f, f"frame {i}: scapy checksums differ"


def compare(frames, cfg, writes, limits, **kw):
    """RTL (cut-through trigger path on unless ``fast=False``) against the emulator."""
    import copy
    got, c = rtl.run_orders(frames, copy.deepcopy(cfg), writes, limits=limits, **kw)
    emu = emulate_orders(frames, copy.deepcopy(cfg), writes, limits=limits,
                         fast=kw.get("fast", True))
    want = emu.orders.frames
    for i, (a, b) in enumerate(zip(got, want)):
        assert a == b, f"frame {i}:\n rtl {a.hex()}\n emu {b.hex()}"
    assert len(got) == len(want), f"{len(got)} frames, emulator {len(want)}"
    for k in CHECKED:
        assert c[k] == emu.counters[k], f"{k}: rtl {c[k]} emulator {emu.counters[k]}"
    assert c["drops"] == 0 and c["overflow"] == 0 and c["frames_sent"] == len(got)
    check_frames(got)
    # cut-through: every add the engine took was the next message its BookEvent stream carried
    assert c["fast_mismatch"] == 0 and c["fast_taken"] <= c["fast_offered"]
    # the wire path's in-flight accounting never stopped (no port walker misprediction)
    assert c["wire_stops"] == 0 and c["port_offered"] <= c["fast_offered"]
    assert c["fast_orders"] <= min(2 * c["fast_taken"], len(got))
    if not kw.get("fast", True):
        assert c["fast_taken"] == 0 and c["fast_orders"] == 0
    # every order's latency, book input (or cut-through strobe) -> first frame byte, is at
    # least the path's 3 cycles
    if got:
        assert c["lat_count"] == len(got) and c["lat_min"] >= 3
    return got, c, emu


SAMPLE_NAMES = ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOGL", "AMD"]


def test_sample_capture_orders_match_emulator(built):
    frames = sample_frames()
    mid = mids(frames, SAMPLE_NAMES)
    total = dict.fromkeys(CHECKED, 0)
    n = 0
    fast = 0
    for seed, perm in ((1, True), (2, False), (3, False)):
        cfg, writes, limits = case(seed, SAMPLE_NAMES, mid, permissive=perm)
        got, c, emu = compare(frames, cfg, writes, limits)
        n += len(got)
        fast += c["fast_taken"]
        if got:
            # latency: book input -> first order byte is at least the book's and the order
            # path's pipeline (the cut-through strobe -> first order byte: the order path's);
            # from the trigger field's beat at the port it is longer (the feed's stages)
            from tickwire.hw.book.builder import BookBuilder
            from tickwire.hw.trigger.path import OrderPath
            if c["fast_orders"] == 0:
                assert c["lat_min"] >= BookBuilder.LATENCY + OrderPath.LATENCY
            _, from_field = trigger_latencies(frames, emu.orders.sequence, c["first_cycles"],
                                              c["frame_cycles"])
            assert min(from_field) > c["lat_min"]
        for k in CHECKED:
            total[k] += c[k]
    assert n > 20 and total["risk_rejects"] > 0
    assert fast > 0


@pytest.mark.parametrize("seed", [11, 12])
def test_generated_day_orders_match_emulator(built, seed):
    frames = day_frames(seed)
    day = gen.generate_day(symbols=8, messages=20000, seed=seed)
    names = list(day.symbols)
    mid = mids(frames, names)
    n = fast = 0
    for k, perm in ((0, True), (1, False)):
        cfg, writes, limits = case(seed * 10 + k, names, mid, permissive=perm)
        got, c, _ = compare(frames, cfg, writes, limits)
        n += len(got)
        fast += c["fast_taken"]
    assert n > 0 and fast > 0


def test_band_of_symbols_and_random_ready(built):
    """Back-pressure on the order output changes nothing but timing; a symbol not in the
    configuration (slot untracked) never trades."""
    import copy
    frames = sample_frames()[:2000]
    names = SAMPLE_NAMES[:5]
    mid = mids(frames, names)
    cfg, writes, limits = case(5, names, mid, permissive=True)
    got, c = rtl.run_orders(frames, copy.deepcopy(cfg), writes, limits=limits,
                            random_ready=True)
    emu = emulate_orders(frames, copy.deepcopy(cfg), writes, limits=limits)
    assert got == emu.orders.frames and len(got) > 0
    assert all(s < 5 for s in emu.orders.slot.tolist())
