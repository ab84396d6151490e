"""Wire triggers on the Verilated appliance (docs/architecture.md "Trigger sources"): the
order frames are the emulator's, with the cut-through path on and off, and with it on almost
every add is evaluated from the decoder's strobe, wherever it lies in its packet (the
producer's hazard accounting, hw/trigger/cutthrough.py, stands in for the book's ``quiet``)."""

import copy
import random

import pytest

from tickwire.host import gen
from tickwire.host.framing import build_udp_frame
from tickwire.backends import rtl
from tickwire.backends.wire import trigger_latencies

from test_rtl_orders import SAMPLE_NAMES, case, compare, mids, sample_frames

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def built():
    from tickwire.sim import fastsim
    return fastsim.build(rtl.harness())


def wire(cfg):
    cfg = copy.deepcopy(cfg)
    cfg.strategy.source = "wire"
    return cfg


def test_sample_wire_triggers(built):
    """The bundled capture with ``tickwire latency``'s static triggers as wire triggers and
    two random cases: same frames on and off; with it on, most orders leave from the strobe
    and every one of those no later, counted from its trigger field, than on the slow path."""
    from tickwire.host.config import load_config
    from tickwire.host.latency_cli import DEFAULT_CONFIG
    frames = sample_frames()
    cases = [(wire(rtl.rtl_config(load_config(DEFAULT_CONFIG))), [], None)]
    mid = mids(frames, SAMPLE_NAMES)
    cases += [(wire(c), w, lim) for c, w, lim in
              (case(seed, SAMPLE_NAMES, mid, permissive=perm)
               for seed, perm in ((23, True), (24, False)))]
    for i, (cfg, writes, limits) in enumerate(cases):
        on, c_on, emu = compare(frames, cfg, writes, limits, fast=True)
        off, c_off, _ = compare(frames, cfg, writes, limits, fast=False)
        assert on == off
        if i == 0:
            assert len(on) > 20 and c_on["fast_orders"] > len(on) // 2, c_on
            _, lat_on = trigger_latencies(frames, emu.orders.sequence, c_on["first_cycles"],
                                          c_on["frame_cycles"])
            _, lat_off = trigger_latencies(frames, emu.orders.sequence, c_off["first_cycles"],
                                           c_off["frame_cycles"])
            assert all(a <= b for a, b in zip(lat_on, lat_off))
            assert sum(a < b for a, b in zip(lat_on, lat_off)) == c_on["fast_orders"]
            # the port walker follows the capture from its start: nearly all of those orders,
            # replaces included, leave 4 cycles after their trigger field (engine, risk,
            # egress); the rest from the decoder's strobe or the book
            assert c_on["port_syncs"] >= 1 and c_on["port_offered"] > 0
            assert min(lat_on) == 4 and sum(x == 4 for x in lat_on) >= 0.9 * len(on)
            assert c_off["port_offered"] == 0 and min(lat_off) > 4


def test_generated_day_wire_triggers(built):
    """A generated day (adds, replaces, executions, cancels, deletes, trading states) with
    random idle gaps and random risk configurations: replaces and trading-state messages in
    flight hold the wire path back, and the frames are the emulator's."""
    day = gen.generate_day(symbols=8, messages=20000, seed=37)
    frames = [build_udp_frame(p) for _, p in gen.to_packets(day)]
    rnd = random.Random(37)
    gaps = [rnd.choice((0, 1, 3, 8, 20)) for _ in frames]
    names = list(day.symbols)
    mid = mids(frames, names)
    taken = orders = 0
    for k, perm in ((0, True), (1, False)):
        cfg, writes, limits = case(370 + k, names, mid, permissive=perm)
        got, c, _ = compare(frames, wire(cfg), writes, limits, gaps_a=gaps)
        off, _, _ = compare(frames, wire(cfg), writes, limits, gaps_a=gaps, fast=False)
        assert got == off
        taken += c["fast_taken"]
        orders += c["fast_orders"]
    assert taken > 1000 and orders > 0


@pytest.mark.parametrize("seed", [43])
def test_impaired_feed_wire_triggers(built, seed):
    """The impaired feed of tests/test_rtl_cut_through.py (frames cut inside their add,
    duplicates, stale-session packets, gaps, a session change) with wire triggers: the
    emulator's frames with the path on and off, no order from a frame the rules dropped."""
    from test_rtl_cut_through import delivered_sequences, impaired_case
    frames, gaps, cfg, writes = impaired_case(seed)
    got, c, emu = compare(frames, wire(cfg), writes, None, gaps_a=gaps)
    off, _, _ = compare(frames, wire(cfg), writes, None, gaps_a=gaps, fast=False)
    assert got == off and len(got) > 20 and c["fast_orders"] > 10
    assert set(emu.orders.sequence.tolist()) <= delivered_sequences(frames)


def storm_case():
    """tests/test_portwalk.py's replace storm on the two locates of tests/test_rtl_cut_through.py,
    with wire triggers around its prices: (frames, gaps, config, writes)."""
    from test_portwalk import replace_storm
    from test_rtl_cut_through import BUY, NAMES, SELL
    from tickwire.host import itch
    from tickwire.sim.trigger_risk import model
    # (the directory first: the book maps both locates by name; few reused references: each
    # refusal wipes the port's table, 4,096 cycles; gaps long enough for the replaces of
    # unknown orders, hazards, to have left the book)
    frames, gaps = replace_storm(9, 400, names=NAMES, reuse=0.01, gaps=(3, 60),
                                 prices=(SELL - 300_000, BUY + 300_000),
                                 head=[itch.encode("R", stock_locate=loc, stock=NAMES[loc - 1])
                                       for loc in (1, 2)])
    rnd = random.Random(9)
    cfg = wire(model.random_config(rnd, NAMES, BUY, permissive=True))
    writes = [dict(msg=0, slot=s, buy_price=BUY, sell_price=SELL, quantity=10, enable_buy=1,
                   enable_sell=1, rearm=1, ref_price=-1) for s in range(2)]
    return frames, gaps, cfg, writes


def replace_latencies(frames, emu, c):
    """Cycles from the price's last byte to the order, per order fired by a replace."""
    _, lat = trigger_latencies(frames, emu.orders.sequence, c["first_cycles"],
                               c["frame_cycles"])
    return [x for q, x in zip(emu.orders.sequence.tolist(), lat) if kind(frames, q) == "U"]


def test_replaces_from_the_port(built):
    """Replaces, reused references (the book refuses them), executions, cancels and deletes
    of live, replaced and unknown orders (tests/test_portwalk.py ``replace_storm``), with
    wire triggers around their prices: the emulator's frames, and the replaces that fire
    from the port's order table leave 4 cycles after their price's last byte (those behind
    the replace of an unknown order, a hazard, take the book's path)."""
    frames, gaps, cfg, writes = storm_case()
    got, c, emu = compare(frames, cfg, writes, None, gaps_a=gaps)
    off, _, _ = compare(frames, cfg, writes, None, gaps_a=gaps, fast=False)
    assert got == off and c["duplicate_ref"] > 0 and c["unknown_ref"] > 0
    by_u = replace_latencies(frames, emu, c)
    assert len(by_u) > 5 and sum(x == 4 for x in by_u) >= 5, by_u


def test_replaces_from_the_port_with_line_b(built):
    """The storm with line B carrying copies 40 cycles behind, and the feed idle between
    frames (as at 2M frames/s): the port walker clears every copy from its header (a
    duplicate of what line A delivered) and never loses sync; the emulator's frames, and
    replaces still leave from the port. (Before the walker read B's headers, every copy
    unsynced it and its order table was suspended until the resync.)"""
    from emu_helpers import emulate_orders
    frames, gaps, cfg, writes = storm_case()
    gaps = [max(g, 120) for g in gaps]
    got, c = rtl.run_orders(frames, copy.deepcopy(cfg), writes, gaps_a=gaps, line_b=frames,
                            gaps_b=[gaps[0] + 40] + gaps[1:])
    emu = emulate_orders(frames, copy.deepcopy(cfg), writes)
    assert got == emu.orders.frames and len(got) > 20
    assert c["wire_stops"] == 0 and c["port_syncs"] == 1
    by_u = replace_latencies(frames, emu, c)
    assert sum(x == 4 for x in by_u) >= 5, by_u


@pytest.mark.parametrize("skew", [17, 0, -1, -20])
def test_sample_wire_triggers_line_b(built, skew):
    """The bundled capture on both lines, 40 idle cycles after each frame, line B ``skew``
    cycles behind line A (a copy arriving within the packet's header), with it, or ahead of
    it: the emulator's frames either way. Behind or level, every B packet is a duplicate the
    walker clears from its header: it never loses sync and the orders leave 4 cycles after
    their trigger field (29 of 47 when every B beat unsynced it). Ahead, even by a cycle, any
    B packet may be the one the tracker delivers: the walker follows no packet of line A."""
    from emu_helpers import emulate_orders
    from tickwire.host.config import load_config
    from tickwire.host.latency_cli import DEFAULT_CONFIG
    frames = sample_frames()
    cfg = wire(rtl.rtl_config(load_config(DEFAULT_CONFIG)))
    ga, gb = [40] * len(frames), [40] * len(frames)
    ga[0] += max(0, -skew)
    gb[0] += max(0, skew)
    got, c = rtl.run_orders(frames, copy.deepcopy(cfg), [], gaps_a=ga, line_b=frames,
                            gaps_b=gb)
    emu = emulate_orders(frames, copy.deepcopy(cfg), [])
    assert got == emu.orders.frames and len(got) > 40
    assert c["wire_stops"] == 0 and c["fast_mismatch"] == 0 and c["overflow"] == 0
    _, from_field = trigger_latencies(frames, emu.orders.sequence, c["first_cycles"],
                                      c["frame_cycles"])
    if skew >= 0:
        assert c["port_syncs"] == 1 and c["port_b_waits"] == 0
        assert sum(x == 4 for x in from_field) >= 0.9 * len(got), from_field
    else:
        assert c["port_offered"] == 0 and c["port_b_waits"] > 100


def framing_payload(frame):
    from tickwire.host import framing
    return framing.parse_udp_frame(frame).payload


def kind(frames, seq):
    """The type of message ``seq`` in ``frames``."""
    from tickwire.host import moldudp64
    for f in frames:
        p = moldudp64.unpack(framing_payload(f))
        if p.sequence <= seq < p.sequence + len(p.messages):
            return chr(p.messages[seq - p.sequence][0])
    raise KeyError(seq)


def test_port_walker_holds_line_b(built):
    """The port walker fires an add from line A's port while the book is held up far behind
    (432 adds into the deep levels ahead of it: the decoder's FIFO fills and the tracker
    waits), and the tracker keeps the packet it predicted
    ahead of a lower-sequenced packet that arrives on line B meanwhile (``hold_b``): B's copy
    of the add's sequence number carries another add, and the emulator, which takes packets in
    arrival order, drains it as a duplicate (decided first, it would delete an order that does
    not exist: ``unknown_ref``). The one-add packet's order leaves 16 cycles after the frame's
    first byte, 4 after the price's last byte."""
    from emu_helpers import emulate_orders
    from test_rtl_cut_through import BUY, NAMES, SELL, Feed
    from tickwire.host import itch, moldudp64
    from tickwire.sim.trigger_risk import model
    rnd = random.Random(61)
    fd = Feed(rnd)
    for loc in (1, 2):
        fd.packet([itch.encode("R", stock_locate=loc, timestamp=fd.ts, stock=NAMES[loc - 1])])
    deep = [itch.encode("A", stock_locate=1, timestamp=fd.ts + i, order_reference_number=100 + i,
                        buy_sell_indicator="B", shares=100, stock=NAMES[0],
                        price=SELL - 1000 - 10 * i) for i in range(432)]
    for k in range(0, len(deep), 36):
        fd.packet(deep[k:k + 36])
    add = fd.msg_add(1, cross=True, side="S", typ="A")
    fd.packet([add])
    other = itch.encode("D", stock_locate=1, timestamp=fd.ts, order_reference_number=99)
    q = build_udp_frame(moldudp64.pack("TWCUT00001", fd.seq - 2, [deep[-1], other]))
    gaps = [3] * len(fd.frames)
    start = 0
    for f, g in zip(fd.frames, gaps):
        start += g + (len(f) + 7) // 8
    start -= (len(fd.frames[-1]) + 7) // 8      # the one-add packet's first beat
    # B's packet starts after the add's packet header has gone past the port, long before the
    # book has taken the deep adds
    cfg = model.random_config(rnd, NAMES, BUY, permissive=True)
    cfg.strategy.source = "wire"
    writes = [dict(msg=0, slot=s, buy_price=BUY, sell_price=SELL, quantity=10, enable_buy=1,
                   enable_sell=1, rearm=1, ref_price=-1) for s in range(2)]
    got, c = rtl.run_orders(fd.frames, copy.deepcopy(cfg), writes, line_b=[q],
                            gaps_a=gaps, gaps_b=[start + 12], settle=20_000)
    emu = emulate_orders(fd.frames + [q], copy.deepcopy(cfg), writes)
    assert got == emu.orders.frames and len(got) == 1
    diff = {k: (c[k], v) for k, v in emu.counters.items() if c[k] != v}
    assert diff == {}, diff
    assert c["dup_packets"] == 1 and c["unknown_ref"] == 0
    assert c["fast_mismatch"] == 0 and c["fast_orders"] == 1
    from_frame, from_field = trigger_latencies(fd.frames, emu.orders.sequence,
                                               c["first_cycles"], c["frame_cycles"])
    assert (from_frame, from_field) == ([16], [4])
