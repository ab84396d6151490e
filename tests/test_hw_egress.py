"""Amaranth-simulator tests of the order egress (hw/egress): frames byte-identical to the
host's OUCH / SoupBinTCP / TCP framing (tickwire.host), checksum wrap-around, sequence and
IPv4-id wrap, VLAN, back-pressure (nothing lost, duplicated or reordered), FIFO overflow
counting, cut-through timing and the latency histogram."""

import random

import pytest
from amaranth_sim import clear, simulate, write_table

from tickwire.host import ouch, soupbintcp
from tickwire.host.framing import (build_tcp_frame, bytes_to_mac, int_to_ip,
                                   ones_complement_sum, parse_tcp_frame)
from tickwire.hw.egress import LatencyHistogram, OrderEgress
from tickwire.hw.egress.frame import (frame_length, ip_header_sources, reference_frame,
                                      tcp_segment_sources)
from tickwire.hw.risk.userref import to_bcd

TMPL = dict(dst_mac=0x020000000020, src_mac=0x020000000010, vlan_en=0, vlan=0,
            src_ip=0x0A00000A, dst_ip=0x0A000014, src_port=40000, dst_port=15000,
            seq=1000, ack=1, window=65535, ttl=64, ip_id=0)
NAMES = {0: b"AAPL", 1: b"MSFT", 5: b"ABCDEFGH"}


def order(user_ref, side=0, quantity=100, slot=0, price=1_000_000, stamp=0, fast=0, seq=0):
    return dict(slot=slot, side=side, price=price, quantity=quantity, user_ref=user_ref,
                digits=to_bcd(user_ref, 10), timestamp=0, sequence=seq, stamp=stamp, fast=fast)


def expected_frame(tmpl, o, seq, ip_id, capacity="P"):
    name = NAMES.get(o["slot"], b"").decode().strip() or " "
    seg = soupbintcp.frame("U", ouch.enter_order(o["user_ref"], "B" if o["side"] == 0 else "S",
                                                 o["quantity"], name if name != " " else "",
                                                 o["price"], capacity=capacity))
    return build_tcp_frame(
        seg, src_mac=bytes_to_mac(tmpl["src_mac"].to_bytes(6, "big")),
        dst_mac=bytes_to_mac(tmpl["dst_mac"].to_bytes(6, "big")),
        src_ip=int_to_ip(tmpl["src_ip"]), dst_ip=int_to_ip(tmpl["dst_ip"]),
        src_port=tmpl["src_port"], dst_port=tmpl["dst_port"], seq=seq, ack=tmpl["ack"],
        window=tmpl["window"], vlan=tmpl["vlan"] if tmpl["vlan_en"] else None, ttl=tmpl["ttl"],
        ip_id=ip_id)


def run_egress(orders, *, tmpl=TMPL, capacity="P", ready_prob=1.0, gaps=None, seed=0,
               fifo_depth=16, bins=33, bin_shift=0, extra_cycles=60, **kw):
    """Send ``orders`` (``gaps[i]`` idle cycles before order i); collect the frames.
    Returns dict(frames, beats (first-beat cycle, last-beat cycle), in_cycles, counters...)."""
    dut = OrderEgress(symbols=8, fifo_depth=fifo_depth, hist_bins=bins, **kw)
    rng = random.Random(seed)
    out = {"frames": [], "first": [], "in": [], "cur": bytearray(), "errors": []}
    state = {"done": False, "cycle": 0}

    async def tb(ctx):
        ctx.set(dut.tmpl, tmpl)
        ctx.set(dut.capacity, ord(capacity))
        ctx.set(dut.lat_enable, 1)
        ctx.set(dut.lat_bin_shift, bin_shift)
        await write_table(ctx, dut.names.w,
                          {slot: int.from_bytes(name.ljust(8, b" "), "big")
                           for slot, name in NAMES.items()})
        await clear(ctx, dut)
        for i, o in enumerate(orders):
            for _ in range((gaps or {}).get(i, 0) if isinstance(gaps, dict) else
                           (gaps[i] if gaps else 0)):
                await ctx.tick()
            ctx.set(dut.i.payload, dict(o, stamp=(ctx.get(dut.now) if o.get("stamp") == "now"
                                                  else o["stamp"])))
            ctx.set(dut.i.valid, 1)
            out["in"].append(state["cycle"])
            await ctx.tick()
            ctx.set(dut.i.valid, 0)
        for _ in range(extra_cycles + int(20 * len(orders) / ready_prob)):
            await ctx.tick()
            if len(out["frames"]) >= len(orders) and not ctx.get(dut.o.valid):
                break
        for _ in range(5):
            await ctx.tick()
        state["done"] = True
        out["counters"] = {k: ctx.get(getattr(dut.counters, k))
                           for k in ("frames_sent", "drops", "fast_orders")}
        out["counters"].update({k: ctx.get(getattr(dut, k)) for k in (
            "next_seq", "next_ip_id", "lat_count", "lat_sum", "lat_min", "lat_max", "lat_last")})
        hist = []
        for b in range(bins):
            ctx.set(dut.lat_hist.r.addr, b)
            hist.append(ctx.get(dut.lat_hist.r.data))
        out["hist"] = hist

    async def clock(ctx):
        async for _ in ctx.tick():
            state["cycle"] += 1
            ctx.set(dut.now, state["cycle"] & 0xFFFF_FFFF)

    async def sink(ctx):
        held = None
        while not state["done"]:
            r = 1 if ready_prob >= 1 or rng.random() < ready_prob else 0
            ctx.set(dut.o.ready, r)
            await ctx.delay(1e-9)
            if ctx.get(dut.o.valid):
                beat = (ctx.get(dut.o.data), ctx.get(dut.o.keep), ctx.get(dut.o.first),
                        ctx.get(dut.o.last))
                if held is not None and beat != held:
                    out["errors"].append(f"beat changed while waiting: {held} -> {beat}")
                held = None if r else beat
                if r:
                    data, keep, first, last = beat
                    n = bin(keep).count("1")
                    if keep != (1 << n) - 1 or (not last and n != 8):
                        out["errors"].append(f"bad keep {keep:#x}")
                    if first != (len(out["cur"]) == 0):
                        out["errors"].append("first flag out of place")
                    if first:
                        out["first"].append(state["cycle"])
                    out["cur"] += data.to_bytes(8, "little")[:n]
                    if last:
                        out["frames"].append(bytes(out["cur"]))
                        out["cur"] = bytearray()
            await ctx.tick()

    simulate(dut, tb, background=[sink], processes=[clock])
    assert not out["errors"], out["errors"][:5]
    return out


def expected_frames(orders, tmpl=TMPL, capacity="P"):
    return [expected_frame(tmpl, o, (tmpl["seq"] + 50 * i) & 0xFFFF_FFFF,
                           (tmpl["ip_id"] + i) & 0xFFFF, capacity) for i, o in enumerate(orders)]


def test_frames_match_host_framing():
    orders = [order(1), order(2, side=1, quantity=7, slot=1, price=1),
              order(4_294_967_295, slot=5, quantity=(1 << 32) - 1, price=(1 << 32) - 1),
              order(1_000_000_000, slot=3)]   # slot 3 has no name: 8 spaces
    out = run_egress(orders, gaps=[0, 20, 20, 20])
    assert out["frames"] == expected_frames(orders)
    assert all(isinstance(parse_tcp_frame(f), object) and not isinstance(parse_tcp_frame(f), str)
               for f in out["frames"])
    assert len(out["frames"][0]) == frame_length(False) == 104
    assert out["counters"]["frames_sent"] == 4 and out["counters"]["drops"] == 0


def test_vlan_capacity_and_scapy():
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Dot1Q, Ether
    tmpl = dict(TMPL, vlan_en=1, vlan=0xABC, ttl=3, window=512)
    orders = [order(i + 17, side=i & 1, slot=i % 2, price=1_000_000 + i) for i in range(3)]
    out = run_egress(orders, tmpl=tmpl, capacity="A")
    assert out["frames"] == expected_frames(orders, tmpl, "A")
    for f in out["frames"]:
        assert len(f) == 108
        p = Ether(f)
        assert p[Dot1Q].vlan == 0xABC
        ip, tcp = p[IP], p[TCP]
        raw_ip, raw_tcp = ip.chksum, tcp.chksum
        del ip.chksum, tcp.chksum
        q = Ether(bytes(p))
        assert q[IP].chksum == raw_ip and q[TCP].chksum == raw_tcp


def test_sequence_and_ip_id_wrap():
    tmpl = dict(TMPL, seq=0xFFFF_FFFF - 60, ip_id=0xFFFE)
    orders = [order(i + 1, price=1_000_000 + 100 * i) for i in range(4)]
    out = run_egress(orders, tmpl=tmpl)
    assert out["frames"] == expected_frames(orders, tmpl)
    assert out["counters"]["next_seq"] == (tmpl["seq"] + 200) & 0xFFFF_FFFF
    assert out["counters"]["next_ip_id"] == 2


def test_checksum_wrap_around():
    """Checksums whose one's-complement sum is 0xFFFF (checksum 0x0000) — the end-around
    carry case — for the IPv4 header and the TCP segment."""
    o = order(1)
    base = run_egress([o])["frames"][0]
    # IPv4: choose ip_id so that the header sums to 0xFFFF without the checksum
    hdr = bytearray(base[14:34])
    hdr[4:6] = b"\0\0"
    hdr[10:12] = b"\0\0"
    ip_id = (0xFFFF - ones_complement_sum(bytes(hdr))) & 0xFFFF
    tmpl = dict(TMPL, ip_id=ip_id)
    # TCP: choose the low 16 bits of seq likewise (pseudo header + segment)
    f0 = expected_frame(tmpl, o, TMPL["seq"], ip_id)
    seg = bytearray(f0[34:])
    seg[16:18] = b"\0\0"
    seg[6:8] = b"\0\0"
    pseudo = f0[26:34] + bytes((0, 6, 0, len(seg)))
    lo = (0xFFFF - ones_complement_sum(pseudo + bytes(seg))) & 0xFFFF
    tmpl["seq"] = (TMPL["seq"] & 0xFFFF_0000) | lo
    out = run_egress([o, order(2)], tmpl=tmpl)
    want = expected_frames([o, order(2)], tmpl)
    assert out["frames"] == want
    f = out["frames"][0]
    assert f[24:26] == b"\0\0" and f[50:52] == b"\0\0"   # both checksums wrapped to 0x0000


@pytest.mark.parametrize("ready_prob,seed", [(0.5, 1), (0.2, 2), (0.9, 3)])
def test_backpressure_keeps_every_order_in_order(ready_prob, seed):
    rng = random.Random(seed)
    orders = [order(100 + i, side=rng.randrange(2), slot=rng.choice((0, 1, 5)),
                    quantity=rng.randint(1, 1000), price=rng.randint(1, 2_000_000))
              for i in range(14)]
    gaps = [rng.choice((0, 0, 0, 1, 5, 30)) for _ in orders]
    out = run_egress(orders, ready_prob=ready_prob, gaps=gaps, seed=seed, fifo_depth=16)
    assert out["frames"] == expected_frames(orders)
    assert out["counters"]["drops"] == 0


def test_fifo_overflow_is_counted():
    orders = [order(i + 1) for i in range(6)]
    out = run_egress(orders, fifo_depth=2, ready_prob=0.05, seed=4)
    # one in the builder, two queued: the other three are dropped and counted
    assert out["counters"]["drops"] == 3
    assert out["frames"] == expected_frames(orders[:3])


def test_cut_through_timing_and_latency_histogram():
    # an order on i with the builder idle: beat 0 transfers in that same cycle
    orders = [order(1, stamp="now", fast=1), order(2, stamp="now"), order(3, stamp="now"),
              order(4, stamp="now", fast=1)]
    out = run_egress(orders, gaps=[0, 30, 0, 40])
    assert out["frames"] == expected_frames(orders)
    assert out["first"][0] == out["in"][0] and out["first"][1] == out["in"][1]
    assert out["first"][3] == out["in"][3]
    # order 3 arrived while order 2's frame was leaving: it waits for it (13 beats)
    assert out["first"][2] == out["first"][1] + 13
    lat = [f - i for f, i in zip(out["first"], out["in"])]
    assert lat == [0, 0, 12, 0]
    c = out["counters"]
    assert c["lat_count"] == 4 and c["lat_sum"] == 12 and c["lat_min"] == 0
    assert c["lat_max"] == 12 and c["fast_orders"] == 2
    assert out["hist"][0] == 3 and out["hist"][12] == 1 and sum(out["hist"]) == 4


def test_latency_histogram_bins():
    dut = LatencyHistogram(bins=8)
    lats = [0, 1, 1, 6, 7, 8, 1000, 3]

    async def tb(ctx):
        ctx.set(dut.enable, 1)
        for shift, lat_list in ((0, lats), (1, lats)):
            await clear(ctx, dut)
            ctx.set(dut.bin_shift, shift)
            for lat in lat_list:  # back to back: the same bin twice in a row
                ctx.set(dut.sample, 1)
                ctx.set(dut.latency, lat)
                await ctx.tick()
            ctx.set(dut.sample, 0)
            await ctx.tick().repeat(3)  # recorded three cycles later
            got = []
            for b in range(8):
                ctx.set(dut.rd_index, b)
                got.append(ctx.get(dut.rd_count))
            want = [0] * 8
            for lat in lat_list:
                want[min(lat >> shift, 7)] += 1
            assert got == want, (shift, got, want)
            assert ctx.get(dut.count) == len(lat_list) and ctx.get(dut.sum) == sum(lat_list)
            assert ctx.get(dut.min) == 0 and ctx.get(dut.max) == 1000

    simulate(dut, tb)


def test_reference_byte_map_matches_host_framing():
    rng = random.Random(9)
    for _ in range(30):
        tmpl = dict(dst_mac=rng.randrange(1 << 48), src_mac=rng.randrange(1 << 48),
                    vlan_en=rng.randrange(2), vlan=rng.randrange(4096),
                    src_ip=rng.randrange(1 << 32), dst_ip=rng.randrange(1 << 32),
                    src_port=rng.randrange(1 << 16), dst_port=rng.randrange(1 << 16),
                    seq=0, ack=rng.randrange(1 << 32), window=rng.randrange(1 << 16),
                    ttl=rng.randrange(256), ip_id=0)
        o = order(rng.randrange(1 << 32), side=rng.randrange(2), quantity=rng.randrange(1 << 32),
                  price=rng.randrange(1 << 32), slot=rng.choice((0, 1, 5)))
        seq, ip_id = rng.randrange(1 << 32), rng.randrange(1 << 16)
        f = reference_frame(tmpl, o, name=NAMES[o["slot"]], capacity=ord("Q"), seq=seq,
                            ip_id=ip_id)
        assert f == expected_frame(tmpl, o, seq, ip_id, "Q")
    assert len(ip_header_sources()) == 20 and len(tcp_segment_sources()) == 70


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="fifo_depth=0"):
        OrderEgress(fifo_depth=0)
    with pytest.raises(TypeError, match="symbols must be an integer"):
        OrderEgress(symbols="64")
    with pytest.raises(ValueError, match="hist_bins=1"):
        OrderEgress(hist_bins=1)
