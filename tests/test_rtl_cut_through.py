"""The cut-through trigger path of the whole pipeline (hw/trigger/cutthrough.py in the
appliance, CONTROL.cut_through): the ITCH decoder's early view fires adds in the
trigger engine before they reach the book, and the order frames stay byte-identical to the
emulator's -- also when the feed is impaired (truncated frames, also truncated only after the
last message; duplicates, stale-session packets, gaps, A/B lines), with adversarial content in
the frames the emulator drops. Latency: cycles from the last byte of the triggering field on
line A to the order frame's first beat (``tickwire.backends.wire.trigger_latencies``, as
``tickwire latency``)."""

import copy
import random
import struct

import numpy as np
import pytest

from tickwire.host import gen, itch, moldudp64
from tickwire.host.config import Config
from tickwire.host.framing import build_udp_frame

from tickwire.backends import rtl
from tickwire.backends.wire import trigger_latencies
from tickwire.hw.trigger.path import OrderPath
from tickwire.sim.trigger_risk import model

from emu_helpers import emulate_orders
from test_rtl_orders import SAMPLE_NAMES, case, compare, mids, sample_frames

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def built():
    from tickwire.sim import fastsim
    return fastsim.build(rtl.harness())


def test_sample_fast_on_off_same_orders(built):
    """Bundled capture, the static strategy of ``tickwire latency`` and two random cases: the
    same order frames with the cut-through path on and off (and the emulator's); with it on
    some adds fire from the strobe (3 cycles to the order's first byte), and counted from the
    trigger field such an order leaves earlier than any order of the slow path."""
    from tickwire.host.config import load_config
    from tickwire.host.latency_cli import DEFAULT_CONFIG
    frames = sample_frames()
    cfg0 = rtl.rtl_config(load_config(DEFAULT_CONFIG))
    assert cfg0.strategy.kind == "static" and cfg0.symbols   # apply_config writes its rows
    cases = [(cfg0, [], None)]
    mid = mids(frames, SAMPLE_NAMES)
    cases += [case(seed, SAMPLE_NAMES, mid, permissive=perm)
              for seed, perm in ((21, True), (22, False))]
    taken = 0
    for cfg, writes, limits in cases:
        on, c_on, emu = compare(frames, cfg, writes, limits, fast=True)
        off, c_off, _ = compare(frames, cfg, writes, limits, fast=False)
        assert on == off
        taken += c_on["fast_taken"]
        assert c_off["fast_offered"] > 0     # strobes presented, not taken: fast_enable 0
        if c_on["fast_orders"]:
            # the strobe -> first byte of the order: the order path's 3 cycles
            assert c_on["lat_min"] == OrderPath.LATENCY
            _, lat_on = trigger_latencies(frames, emu.orders.sequence, c_on["first_cycles"],
                                          c_on["frame_cycles"])
            _, lat_off = trigger_latencies(frames, emu.orders.sequence, c_off["first_cycles"],
                                           c_off["frame_cycles"])
            assert min(lat_off) > 0 and min(lat_on) > 0
            # some cut-through order beats the slow path's fastest one
            assert min(lat_on) < min(lat_off)
    assert taken > 0


def test_generated_day_random_gaps(built):
    """A generated day with random idle gaps between frames (more packets find the book
    drained: more adds go the cut-through way), random risk configurations."""
    day = gen.generate_day(symbols=8, messages=20000, seed=31)
    frames = [build_udp_frame(p) for _, p in gen.to_packets(day)]
    rnd = random.Random(31)
    gaps = [rnd.choice((1, 3, 8, 20, 40)) for _ in frames]
    names = list(day.symbols)
    mid = mids(frames, names)
    taken = 0
    for k, perm in ((0, True), (1, False)):
        cfg, writes, limits = case(310 + k, names, mid, permissive=perm)
        got, c, _ = compare(frames, cfg, writes, limits, gaps_a=gaps)
        taken += c["fast_taken"]
    assert taken > 0


# ---------------------------------------------------------------- impaired feeds

SESSION, OTHER = "TWCUT00001", "TWCUT00002"
NAMES = ["AAA", "BBB"]
BUY, SELL = 1_000_000, 900_000       # slot triggers: ask <= BUY buys, bid >= SELL sells


def trailer_frame(payload: bytes, trailer: int, keep: int | None = None) -> bytes:
    """A UDP frame whose IPv4 datagram has ``trailer`` bytes after the UDP datagram (ignored
    by the rules); ``keep`` < ``trailer``: the frame is cut inside them (it ends before its
    IPv4 total length, but its UDP payload, its last message included, is complete: the
    message is delivered)."""
    f = build_udp_frame(payload)
    udp = f[34:42 + len(payload)]
    ip = bytearray(f[14:34])
    struct.pack_into(">H", ip, 2, 20 + len(udp) + trailer)
    struct.pack_into(">H", ip, 10, 0)
    s = sum(struct.unpack(">10H", bytes(ip)))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    struct.pack_into(">H", ip, 10, ~s & 0xFFFF)
    out = f[:14] + bytes(ip) + udp + bytes(range(1, trailer + 1))
    return out if keep is None else out[:14 + 20 + len(udp) + keep]


class Feed:
    """A small two-symbol ITCH stream, one MoldUDP64 packet per call of ``packet``, with
    the impairments of the test interleaved."""

    def __init__(self, rnd):
        self.rnd = rnd
        self.seq = 1
        self.ref = 1
        self.ts = 34_200_000_000_000
        self.live = []            # (ref, locate) of resting orders
        self.frames = []
        self.sent = []            # (seq, messages) of delivered packets

    def msg_add(self, locate, *, cross, side=None, typ=None):
        self.ts += self.rnd.randint(1, 5000)
        side = side or self.rnd.choice("BS")
        if side == "S":
            price = BUY - self.rnd.randint(0, 500) if cross else BUY + self.rnd.randint(1, 500)
        else:
            price = SELL + self.rnd.randint(0, 500) if cross else SELL - self.rnd.randint(1, 500)
        typ = typ or self.rnd.choice("AAF")
        fields = dict(stock_locate=locate, timestamp=self.ts, order_reference_number=self.ref,
                      buy_sell_indicator=side, shares=100, stock=NAMES[locate - 1],
                      price=price)
        if typ == "F":
            fields["attribution"] = "MPID"
        self.live.append((self.ref, locate))
        self.ref += 1
        return itch.encode(typ, **fields)

    def msg_delete(self):
        ref, locate = self.live.pop(self.rnd.randrange(len(self.live)))
        self.ts += self.rnd.randint(1, 5000)
        return itch.encode("D", stock_locate=locate, timestamp=self.ts,
                           order_reference_number=ref)

    def packet(self, msgs, session=SESSION, trailer=0):
        p = moldudp64.pack(session, self.seq, msgs)
        self.frames.append(trailer_frame(p, trailer) if trailer else build_udp_frame(p))
        self.sent.append((self.seq, msgs))
        self.seq += len(msgs)
        return p

    def adversarial(self, seq, session=SESSION, *, trailer_cut=False, cut=False):
        """A frame carrying a crossing add as its last message that the rules drop: a duplicate
        (``seq`` already delivered), a stale-session packet, or one cut inside the add (an
        overrun); or (``trailer_cut``) one cut only after its UDP payload, which delivers its
        (non-crossing) add."""
        live = list(self.live)
        # (a delivered one does not cross: a resting crossing add would hold the triggers'
        # conditions true and keep them disarmed)
        m = [self.msg_add(self.rnd.choice((1, 2)), cross=not trailer_cut)]
        if trailer_cut:                          # delivered: the add rests in the book
            p = self.packet(m, session)
            self.live = live                     # (away from the touch: never deleted)
            t = self.rnd.randint(2, 12)
            self.frames[-1] = trailer_frame(p, t, keep=self.rnd.randrange(t))
            return
        self.live = live                         # never delivered: no resting order
        p = moldudp64.pack(session, seq, m)
        if cut:
            f = build_udp_frame(p)
            self.frames.append(f[:self.rnd.randint(42 + 22, len(f) - 1)])
        else:
            self.frames.append(build_udp_frame(p))


def impaired_feed(seed, rounds=400):
    rnd = random.Random(seed)
    fd = Feed(rnd)
    # the directory (maps the locates by name)
    for loc in (1, 2):
        fd.packet([itch.encode("R", stock_locate=loc, timestamp=fd.ts, stock=NAMES[loc - 1])])
    session = SESSION
    for r in range(rounds):
        if r == rounds // 2:
            # a new session; the old one's late packets are stale from now on
            fd.seq = 1
            fd.sent = []
            session = OTHER
        kind = rnd.random()
        if kind < 0.15:
            # cut only after its last message: the add is complete and delivered
            fd.adversarial(fd.seq, session, trailer_cut=True)
        elif kind < 0.25:
            fd.adversarial(fd.seq, session, cut=True)
        elif kind < 0.35 and fd.sent:
            old_seq, old = rnd.choice(fd.sent[-6:])
            fd.adversarial(old_seq + len(old) - 1, session)          # duplicate
        elif kind < 0.4 and session == OTHER:
            fd.adversarial(rnd.randint(1, 400), SESSION)              # stale session
        elif kind < 0.45:
            fd.seq += rnd.randint(1, 3)                               # a gap
        # the delivered packet: adds (the last one crossing or not), deletes to re-arm
        msgs = []
        if fd.live and rnd.random() < 0.6:
            msgs += [fd.msg_delete() for _ in range(rnd.randint(1, min(3, len(fd.live))))]
        if rnd.random() < 0.3:
            msgs = [fd.msg_add(rnd.choice((1, 2)), cross=False)] + msgs
        if not msgs or rnd.random() < 0.8:
            msgs.append(fd.msg_add(rnd.choice((1, 2)), cross=rnd.random() < 0.6))
        fd.packet(msgs, session, trailer=rnd.choice((0, 0, 0, 5)))
    return fd.frames


def impaired_case(seed):
    """The impaired feed with random idle gaps, a permissive configuration and both slots'
    triggers (re-armed on the edge): (frames, gaps, config, writes)."""
    frames = impaired_feed(seed)
    rnd = random.Random(seed)
    gaps = [rnd.choice((1, 3, 12, 30)) for _ in frames]
    cfg = model.random_config(rnd, NAMES, BUY, permissive=True)
    writes = [dict(msg=0, slot=s, buy_price=BUY, sell_price=SELL, quantity=10, enable_buy=1,
                   enable_sell=1, rearm=1, ref_price=-1) for s in range(2)]
    return frames, gaps, cfg, writes


def delivered_sequences(frames) -> set[int]:
    """Sequence numbers of the messages accepted frames delivered (the emulator's feed)."""
    from tickwire.host.capture import Frames
    from tickwire.host.emu import feed
    data = np.frombuffer(b"".join(frames), np.uint8).copy()
    lens = np.array([len(f) for f in frames], np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    idx = feed.index_frames(Frames(data, offs, lens, np.arange(len(frames), dtype=np.int64), 1))
    status = idx.frame_status[idx.frame_index]
    ok = [feed.FRAME_STATUS.index(k) for k in ("accepted", "mold_overrun")]
    assert np.isin(status, ok).all()    # (an overrun packet keeps the messages it framed)
    return set(idx.sequences.tolist())


@pytest.mark.parametrize("seed", [41, 42])
def test_impaired_feed_never_fires_a_dropped_frame(built, seed):
    """Frames the rules drop (cut inside their add: an overrun; duplicates, stale-session
    packets) carry crossing adds as their last message: none of them may fire; frames cut only
    inside an IPv4 trailer deliver theirs. Random idle gaps let many adds go the cut-through
    way."""
    frames, gaps, cfg, writes = impaired_case(seed)
    got, c, emu = compare(frames, cfg, writes, None, gaps_a=gaps)
    ec = emu.counters
    assert ec["mold_overrun"] > 20 and ec["dup_packets"] > 10 and ec["stale_session"] > 0
    assert ec["gaps"] > 5
    assert len(got) > 50 and c["fast_taken"] > 20 and c["fast_orders"] > 20
    # every order (the RTL's frames are the emulator's) was triggered by a message that an
    # accepted frame delivered: none came from a frame the rules dropped
    assert set(emu.orders.sequence.tolist()) <= delivered_sequences(frames)
    assert len(set(emu.orders.sequence.tolist())) > 50
    # the slow path alone gives the same frames
    off, c_off, _ = compare(frames, cfg, writes, None, gaps_a=gaps, fast=False)
    assert off == got


@pytest.mark.parametrize("source", ["book", "wire"])
def test_ab_lines_with_drops_fast(built, source):
    """The sample on lines A and B at 10 Gb/s, each losing 10% of the frames independently,
    B 5 cycles behind A (as tests/test_rtl_pipeline.py): line B's copies of delivered packets
    are duplicates, drained by the tracker and never decoded; with book and wire triggers."""
    frames = sample_frames()[:2500]
    rnd = random.Random(7)
    a, b, ga, gb, merged = [], [], [], [], []
    idle = {"a": 0, "b": 5}
    for f in frames:
        gap = max(1, round((len(f) + 20) / 3.9) - (len(f) + 7) // 8)
        slot = (len(f) + 7) // 8 + gap
        for k, lst, gl in (("a", a, ga), ("b", b, gb)):
            if rnd.random() < 0.1:
                idle[k] += slot
            else:
                lst.append(f)
                gl.append(idle[k] + gap)
                idle[k] = 0
                merged.append(f)     # arrival order: A's copy, then B's
    mid = mids(frames, SAMPLE_NAMES)
    cfg, writes, limits = case(51, SAMPLE_NAMES, mid, permissive=True)
    cfg.strategy.source = source
    got, c = rtl.run_orders(a, copy.deepcopy(cfg), writes, limits=limits, line_b=b,
                            gaps_a=ga, gaps_b=gb, ab_window=64)
    emu = emulate_orders(merged, copy.deepcopy(cfg), writes, limits=limits, ab_window=64)
    assert got == emu.orders.frames and len(got) > 0
    diff = {k: (c[k], v) for k, v in emu.counters.items() if c[k] != v}
    assert diff == {}, diff
    assert c["dup_packets"] > 1000 and c["overflow"] == 0
    assert c["fast_mismatch"] == 0 and c["fast_taken"] > 0
