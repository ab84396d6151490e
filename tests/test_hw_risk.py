"""Amaranth-simulator tests of the pre-trade risk stage (hw/risk): each reject reason, the
check order, the auto-kill trip, token-bucket refill boundaries (also with time going
backwards), 64-bit notional and gross, the collar boundary, position limits, the duplicate
window, user_ref / BCD digits, back-to-back candidates on one slot, and random candidate
streams from emulator scenarios (tickwire.sim.trigger_risk.model)."""

import random

import pytest
from amaranth_sim import clear, simulate, write_table

from tickwire.host.emu.core import _refill  # the emulator's token bucket: expected values
from tickwire.hw.risk import RISK_REASONS, PreTradeRisk, UserRefCounter
from tickwire.hw.risk.userref import to_bcd

R = {name: i for i, name in enumerate(RISK_REASONS)}
PERMISSIVE = dict(kill=0, kill_after_rejects=0, max_order_qty=(1 << 32) - 1,
                  max_notional=(1 << 64) - 1, collar_bps=10_000, max_gross=(1 << 64) - 1,
                  symbol_burst=0, symbol_refill_ns=0, global_burst=0, global_refill_ns=0,
                  dup_window_ns=0, first_user_ref=1)
OPEN = {"enable": 1, "max_long": (1 << 63) - 1, "max_short": (1 << 63) - 1}


def cand(slot=0, side=0, price=1_000_000, quantity=100, ref=0, ts=0, seq=0):
    return dict(slot=slot, side=side, price=price, quantity=quantity, ref_price=ref,
                timestamp=ts, sequence=seq, stamp=0, fast=0)


def run_risk(cands, *, params=None, limits=None, symbols=8, gap=1, actions=None,
             positions=None):
    """Send ``cands`` (a candidate every ``gap`` cycles; ``gap`` 0 = back to back); returns
    (decisions, accepted orders, counters, status). ``limits``: {slot: SlotLimits dict}
    (default every slot OPEN). ``actions``: {index: callable(ctx, dut)} run before that
    candidate is sent. ``positions``: slots whose position to read at the end."""
    dut = PreTradeRisk(symbols=symbols)
    p = dict(PERMISSIVE)
    p.update(params or {})
    out = {"d": [], "o": [], "c": {}, "pos": {}}

    async def tb(ctx):
        ctx.set(dut.params, p)
        await write_table(ctx, dut.limits.w,
                          {s: (limits or {}).get(s, OPEN) for s in range(symbols)})
        await clear(ctx, dut)
        for i, c in enumerate(cands):
            if actions and i in actions:
                await actions[i](ctx, dut)
            ctx.set(dut.i.payload, c)
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
            ctx.set(dut.i.valid, 0)
            for _ in range(gap):
                await ctx.tick()
        for _ in range(4):
            await ctx.tick()
        for name in ("orders_sent", "risk_rejects") + tuple("reject_" + r for r in RISK_REASONS):
            out["c"][name] = ctx.get(getattr(dut.counters, name))
        out["status"] = {k: ctx.get(getattr(dut, k))
                         for k in ("tripped", "gross", "user_ref", "kill_active")}
        for s in positions or ():
            ctx.set(dut.positions.r.addr, s)
            out["pos"][s] = ctx.get(dut.positions.r.data)

    async def mon(ctx):
        async for _, _, dv, d, ov, o in ctx.tick().sample(dut.d.valid, dut.d.payload,
                                                          dut.o.valid, dut.o.payload):
            if dv:
                out["d"].append((d.accept, d.reason, d.side, d.price, d.quantity, d.sequence))
            if ov:
                out["o"].append({"slot": o.slot, "side": o.side, "price": o.price,
                                 "quantity": o.quantity, "user_ref": o.user_ref,
                                 "digits": o.digits, "sequence": o.sequence})

    simulate(dut, tb, processes=[mon])
    return out


def verdicts(out):
    return ["ok" if a else RISK_REASONS[r] for a, r, *_ in out["d"]]


# ------------------------------------------------------------------ each reason

@pytest.mark.parametrize("reason,params,limits,c", [
    ("kill", {"kill": 1}, None, cand()),
    ("symbol_disabled", {}, {0: dict(OPEN, enable=0)}, cand()),
    ("max_qty", {"max_order_qty": 99}, None, cand(quantity=100)),
    ("max_notional", {"max_notional": 100 * 1_000_000 - 1}, None, cand()),
    ("price_collar", {"collar_bps": 100}, None, cand(price=1_000_000, ref=1_010_102)),
    ("position", {}, {0: dict(OPEN, max_long=99)}, cand()),
    ("gross_exposure", {"max_gross": 100 * 1_000_000 - 1}, None, cand()),
    ("throttle_symbol", {"symbol_burst": 0, "symbol_refill_ns": 10}, None, cand()),
    ("throttle_global", {"global_burst": 0, "global_refill_ns": 10}, None, cand()),
])
def test_each_reject_reason(reason, params, limits, c):
    out = run_risk([c], params=params, limits=limits)
    assert verdicts(out) == [reason] and out["o"] == []
    assert out["c"]["reject_" + reason] == 1 and out["c"]["risk_rejects"] == 1
    assert out["c"]["orders_sent"] == 0


def test_duplicate_window_boundary():
    w = 5_000
    cs = [cand(ts=1_000), cand(ts=1_000 + w - 1), cand(ts=1_000 + w),   # dup, then allowed
          cand(ts=1_000 + w + 1, quantity=101),                        # other qty: allowed
          cand(ts=1_000 + w + 2, side=1),                               # other side: allowed
          cand(ts=1_000 + w + 3, side=1, price=999_999),                # other price
          cand(ts=1_000 + w + 4, side=1, price=999_999)]                # same: dup
    out = run_risk(cs, params={"dup_window_ns": w})
    assert verdicts(out) == ["ok", "duplicate", "ok", "ok", "ok", "ok", "duplicate"]
    # a timestamp earlier than the record: now - t < 0 < window -> duplicate (as the emulator)
    out = run_risk([cand(ts=10_000), cand(ts=9_000)], params={"dup_window_ns": w})
    assert verdicts(out) == ["ok", "duplicate"]


def test_check_order_first_failing_reason_wins():
    # fails max_qty, max_notional, position and gross at once: max_qty is reported
    out = run_risk([cand(quantity=500)], params={"max_order_qty": 10, "max_notional": 1,
                                                 "max_gross": 1},
                   limits={0: dict(OPEN, max_long=0)})
    assert verdicts(out) == ["max_qty"]
    out = run_risk([cand()], params={"kill": 1, "max_order_qty": 1},
                   limits={0: dict(OPEN, enable=0)})
    assert verdicts(out) == ["kill"]
    # throttle before duplicate, symbol before global
    out = run_risk([cand(), cand()], params={"symbol_burst": 1, "symbol_refill_ns": 1_000,
                                             "global_burst": 1, "global_refill_ns": 1_000,
                                             "dup_window_ns": 1_000})
    assert verdicts(out) == ["ok", "throttle_symbol"]


def test_auto_kill_trip_and_clear():
    async def clear_trip(ctx, dut):
        ctx.set(dut.trip_clear, 1)
        await ctx.tick()
        ctx.set(dut.trip_clear, 0)
    cs = [cand(quantity=1000), cand(quantity=1000), cand(), cand(), cand()]
    out = run_risk(cs, params={"max_order_qty": 500, "kill_after_rejects": 2},
                   actions={4: clear_trip})
    assert verdicts(out) == ["max_qty", "max_qty", "kill", "kill", "ok"]
    assert out["c"]["reject_kill"] == 2 and out["c"]["risk_rejects"] == 4
    out = run_risk(cs[:3], params={"max_order_qty": 500, "kill_after_rejects": 2})
    assert out["status"]["tripped"] == 1 and out["status"]["kill_active"] == 1


# ------------------------------------------------------------------ token buckets

def bucket_expect(times, burst, refill):
    tokens, last, out = burst, 0, []
    for t in times:
        tokens, last = _refill(tokens, last, t, burst, refill)
        ok = tokens > 0
        out.append("ok" if ok else "throttle_symbol")
        tokens -= ok
    return out


@pytest.mark.parametrize("burst,refill,times", [
    (2, 1_000, [0, 0, 0, 999, 1_000, 1_000, 1_999, 2_000, 2_999, 3_000, 3_000, 10_000,
                10_000, 10_000, 10_999, 11_000]),
    (1, 7, [5, 11, 12, 18, 19, 19, 26, 100, 100, 106, 107]),
    (3, 1, [0, 0, 0, 0, 1, 1, 3, 3, 3, 3]),
    (4, 250, [100, 100, 100, 100, 100, 349, 350, 351, 599, 600, 601, 601]),
    # time going backwards (the bucket keeps the emulator's exact state)
    (3, 100, [1_000, 1_000, 1_000, 950, 1_099, 1_100, 1_050, 1_150, 1_200, 1_199, 2_000]),
])
def test_symbol_bucket_refill_boundaries(burst, refill, times):
    cs = [cand(ts=t, price=1_000_000 + i) for i, t in enumerate(times)]
    out = run_risk(cs, params={"symbol_burst": burst, "symbol_refill_ns": refill})
    assert verdicts(out) == bucket_expect(times, burst, refill)


def test_buckets_random_against_reference():
    rng = random.Random(5)
    for _ in range(4):
        burst, refill = rng.randint(1, 4), rng.choice((3, 10, 64))
        gburst, grefill = rng.randint(1, 6), rng.choice((2, 5, 20))
        t, times, slots = 100, [], []
        for _ in range(40):
            t = max(0, t + rng.choice((0, 0, 1, 2, refill - 1, refill, refill + 1, -3, 40)))
            times.append(t)
            slots.append(rng.randrange(3))
        cs = [cand(slot=s, ts=t, price=1_000_000 + i) for i, (s, t) in enumerate(zip(slots, times))]
        out = run_risk(cs, params={"symbol_burst": burst, "symbol_refill_ns": refill,
                                   "global_burst": gburst, "global_refill_ns": grefill},
                       gap=rng.choice((0, 1)))
        sym = {s: [burst, 0] for s in range(3)}
        glb = [gburst, 0]
        want = []
        for s, tt in zip(slots, times):
            sym[s] = list(_refill(*sym[s], tt, burst, refill))
            glb[:] = _refill(*glb, tt, gburst, grefill)
            if sym[s][0] <= 0:
                want.append("throttle_symbol")
            elif glb[0] <= 0:
                want.append("throttle_global")
            else:
                want.append("ok")
                sym[s][0] -= 1
                glb[0] -= 1
        assert verdicts(out) == want


# ------------------------------------------------------------------ wide arithmetic

def test_notional_64_bit_and_gross():
    q = p = (1 << 32) - 1
    n = q * p
    out = run_risk([cand(quantity=q, price=p)], params={"max_notional": n - 1})
    assert verdicts(out) == ["max_notional"]
    out = run_risk([cand(quantity=q, price=p), cand(quantity=q, price=p, ts=1)],
                   params={"max_notional": n, "max_gross": n})
    assert verdicts(out) == ["ok", "gross_exposure"]
    assert out["status"]["gross"] == n
    # gross + notional above 2**64: the 65-bit sum compares correctly
    out = run_risk([cand(quantity=q, price=p), cand(quantity=q, price=p, ts=1, side=1)],
                   params={"max_gross": (1 << 64) - 1})
    assert verdicts(out) == ["ok", "gross_exposure"]


def test_collar_boundary():
    ref = 1_000_000
    # |p - ref| * 10000 == bps * ref: inside the collar; one more unit outside
    bps = 37
    edge = ref * bps // 10_000          # 3700
    cs = [cand(price=ref + edge, ref=ref), cand(price=ref + edge + 1, ref=ref, ts=1),
          cand(price=ref - edge, ref=ref, ts=2), cand(price=ref - edge - 1, ref=ref, ts=3),
          cand(price=5, ref=0, ts=4),                                   # ref 0: no collar
          cand(price=(1 << 32) - 1, ref=1, ts=5)]                       # wide product
    out = run_risk(cs, params={"collar_bps": bps})
    assert verdicts(out) == ["ok", "price_collar", "ok", "price_collar", "ok", "price_collar"]
    m = (1 << 32) - 1
    out = run_risk([cand(price=1, ref=m), cand(price=1, ref=m, ts=1, quantity=7)],
                   params={"collar_bps": 10_000})
    assert verdicts(out) == ["ok", "ok"]  # (m - 1) * 10000 <= 10000 * m
    out = run_risk([cand(price=1, ref=m)], params={"collar_bps": 9_999})
    assert verdicts(out) == ["price_collar"]  # (m - 1) * 10000 > 9999 * m


def test_position_limits_signed_and_back_to_back():
    lim = {0: dict(OPEN, max_long=250, max_short=100), 1: dict(OPEN, max_long=-10, max_short=5)}
    cs = [cand(quantity=100, ts=0), cand(quantity=100, ts=1), cand(quantity=100, ts=2),
          cand(quantity=50, ts=3),                                # 250: at the limit
          cand(side=1, quantity=350, ts=4),                       # -100
          cand(side=1, quantity=1, ts=5),                         # -101 < -100
          cand(slot=1, quantity=1, ts=6),                         # 1 > -10
          cand(slot=1, side=1, quantity=5, ts=7),                 # -5 >= -5
          cand(slot=1, side=1, quantity=1, ts=8)]                 # -6 < -5
    for gap in (0, 1):
        out = run_risk(cs, limits=lim, gap=gap, positions=(0, 1))
        assert verdicts(out) == ["ok", "ok", "position", "ok", "ok", "position", "position",
                                 "ok", "position"], gap
        assert out["pos"] == {0: -100, 1: -5}


def test_host_position_write_and_clear():
    async def set_pos(ctx, dut):
        await write_table(ctx, dut.positions.w, {0: -40})

    lim = {0: dict(OPEN, max_long=100, max_short=100)}
    cs = [cand(quantity=100), cand(quantity=60, ts=1), cand(quantity=60, ts=2)]
    out = run_risk(cs, limits=lim, actions={2: set_pos}, positions=(0,))
    # 100, then 160 > 100 rejected, host sets -40, then +60 -> 20
    assert verdicts(out) == ["ok", "position", "ok"] and out["pos"] == {0: 20}


# ------------------------------------------------------------------ user_ref and BCD

def test_user_ref_digits_carry():
    first = 999_999_998
    out = run_risk([cand(ts=i, price=1_000_000 + i) for i in range(4)],
                   params={"first_user_ref": first})
    refs = [o["user_ref"] for o in out["o"]]
    assert refs == [first + i for i in range(4)]
    assert [o["digits"] for o in out["o"]] == [to_bcd(r, 10) for r in refs]
    assert out["status"]["user_ref"] == first + 4


def test_user_ref_counter_load_and_increment():
    dut = UserRefCounter(width=32, digits=10, init=1)
    seen = []

    async def tb(ctx):
        assert ctx.get(dut.value) == 1 and ctx.get(dut.digits_out) == to_bcd(1, 10)
        for first in (0, 9, 4_294_967_290, 1_234_567_899):
            ctx.set(dut.first, first)
            ctx.set(dut.load, 1)
            await ctx.tick()
            ctx.set(dut.load, 0)
            while ctx.get(dut.busy):
                await ctx.tick()
            for _ in range(5):
                seen.append((ctx.get(dut.value), ctx.get(dut.digits_out)))
                ctx.set(dut.inc, 1)
                await ctx.tick()
            ctx.set(dut.inc, 0)

    simulate(dut, tb)
    assert all(d == to_bcd(v, 10) for v, d in seen)
    assert [v for v, _ in seen[-5:]] == list(range(1_234_567_899, 1_234_567_904))


# ------------------------------------------------------------------ against the emulator

def test_candidate_streams_from_emulator_scenarios():
    """The risk stage alone, fed the emulator's candidates of random scenarios (each with
    the reference price in effect and the message's timestamp): same decisions."""
    from tickwire.sim.trigger_risk.model import make_scenario
    n_checked = 0
    for seed in (101, 102, 103, 104):
        sc = make_scenario(seed, 700)
        cfg = sc["config"]
        ref = {}
        cs, want = [], []
        by_msg = {}
        for c in sc["expect"]["candidates"]:
            by_msg.setdefault(c["msg"], []).append(c)
        for k, st in enumerate(sc["steps"]):
            for w in st["writes"]:
                if w["ref_price"] >= 0:
                    ref[w["slot"]] = w["ref_price"]
            for c in by_msg.get(k, []):
                ts = int.from_bytes(sc["msgs"][k][5:11], "big")
                cs.append(cand(slot=c["slot"], side=c["side"], price=c["price"],
                               quantity=c["quantity"], ref=ref.get(c["slot"], 0), ts=ts,
                               seq=c["sequence"]))
                want.append(c)
        limits = {s: cfg["slots"][s] for s in range(8)}
        out = run_risk(cs, params=cfg["params"], limits=limits, gap=0)
        assert len(out["d"]) == len(want)
        for (acc, reason, *_), c in zip(out["d"], want):
            assert acc == c["accept"], (seed, c)
            if not acc:
                assert reason in c["reasons"], (seed, c, reason)
        assert [(o["sequence"], o["side"], o["user_ref"]) for o in out["o"]] == [
            (o["sequence"], o["side"], o["user_ref"]) for o in sc["expect"]["orders"]]
        c = sc["expect"]["counters"]
        assert {k: v for k, v in out["c"].items()} == {k: c[k] for k in out["c"]}
        n_checked += len(cs)
    assert n_checked > 50
