"""Amaranth-simulator tests of the trigger engine (hw/trigger): the rule of
docs/architecture.md "Trigger engine" (buy/sell conditions, buy before sell, one-shot and
edge re-arm, trading state, host writes re-arming), the add rule, the cut-through path (taken
only when exact; its own event skipped; fallbacks) and random streams from emulator
scenarios."""

import pytest
from amaranth_sim import clear, simulate, write_table

from tickwire.hw.trigger import TriggerEngine

T, H = ord("T"), ord("H")
BID, ASK = 0, 1


def q(price=0, valid=None):
    return {"price": price, "valid": int(price != 0) if valid is None else valid}


def ev(seq, slot=0, ask=0, bid=0, state=T, add=None, evaluate=1, ts=None, stamp=None):
    a = {"valid": 0, "side": 0, "price": 0}
    if add is not None:
        a = {"valid": 1, "side": add[0], "price": add[1]}
    return {"sequence": seq, "timestamp": ts if ts is not None else 1000 * seq, "slot": slot,
            "evaluate": evaluate, "trading_state": state, "best_ask": q(ask) if isinstance(ask, int) else ask,
            "best_bid": q(bid) if isinstance(bid, int) else bid, "add": a,
            "stamp": stamp or 0, "stamp_valid": int(stamp is not None)}


def fast(seq, slot, side, price, ts=None):
    return {"slot": slot, "side": side, "price": price, "sequence": seq,
            "timestamp": ts if ts is not None else 1000 * seq, "stamp": 0, "stamp_valid": 0}


def row(buy=0, sell=0, qty=100, eb=1, es=0, rearm=0):
    return {"buy_price": buy, "sell_price": sell, "quantity": qty, "enable_buy": eb,
            "enable_sell": es, "rearm": rearm}


def run_trigger(ops, *, symbols=8, enable=1, fast_enable=1):
    """``ops``: ("write", slot, row) | ("ref", slot, price) | ("ev", event) |
    ("fast", strobe, quiet) | ("idle", n) | ("fast+ev", strobe, event) (same cycle).
    Returns (candidates as tuples, counters, cycles dict)."""
    dut = TriggerEngine(symbols=symbols)
    out = {"cands": [], "ev_cycles": [], "fast_cycles": [], "cand_cycles": []}
    st = {"cycle": 0}

    async def tb(ctx):
        ctx.set(dut.enable, enable)
        ctx.set(dut.fast_enable, fast_enable)
        await clear(ctx, dut)
        for op in ops:
            kind = op[0]
            if kind == "write":
                await write_table(ctx, dut.triggers.w, {op[1]: op[2]})
            elif kind == "ref":
                await write_table(ctx, dut.refs.w, {op[1]: op[2]})
            elif kind == "idle":
                for _ in range(op[1]):
                    await ctx.tick()
            elif kind == "fast":
                ctx.set(dut.fast.payload, op[1])
                ctx.set(dut.fast.valid, 1)
                ctx.set(dut.quiet, op[2])
                out["fast_cycles"].append(st["cycle"])
                await ctx.tick()
                ctx.set(dut.fast.valid, 0)
                ctx.set(dut.quiet, 0)
            elif kind in ("ev", "fast+ev"):
                e = op[1] if kind == "ev" else op[2]
                if kind == "fast+ev":
                    ctx.set(dut.fast.payload, op[1])
                    ctx.set(dut.fast.valid, 1)
                    ctx.set(dut.quiet, 1)
                ctx.set(dut.ev.payload, e)
                ctx.set(dut.ev.valid, 1)
                while True:
                    await ctx.delay(1e-9)
                    ready = ctx.get(dut.ev.ready)
                    await ctx.tick()
                    ctx.set(dut.fast.valid, 0)
                    if ready:
                        out["ev_cycles"].append(st["cycle"] - 1)
                        break
                ctx.set(dut.ev.valid, 0)
            else:
                raise AssertionError(op)
        for _ in range(4):
            await ctx.tick()
        out["counters"] = {k: ctx.get(getattr(dut.counters, k))
                           for k in ("triggers_fired", "fast_taken", "fast_mismatch")}

    async def mon(ctx):
        async for _, _, v, c in ctx.tick().sample(dut.o.valid, dut.o.payload):
            st["cycle"] += 1
            if v:
                out["cands"].append((c.slot, c.side, c.price, c.quantity, c.sequence,
                                     c.ref_price, c.fast))
                out.setdefault("stamps", []).append(c.stamp)
                out["cand_cycles"].append(st["cycle"] - 1)

    simulate(dut, tb, processes=[mon])
    return out


def sides(out):
    return [(c[4], "buy" if c[1] == 0 else "sell") for c in out["cands"]]


def test_buy_one_shot_and_host_rearm():
    out = run_trigger([
        ("write", 0, row(buy=1000, qty=7)),
        ("ev", ev(1, ask=1001, bid=990)),          # not crossed
        ("ev", ev(2, ask=1000, bid=990)),          # fires
        ("ev", ev(3, ask=999, bid=990)),           # one-shot: disarmed
        ("ev", ev(4, ask=1100, bid=990)),          # false, no re-arm (rearm 0)
        ("ev", ev(5, ask=999, bid=990)),
        ("write", 0, row(buy=1000, qty=7)),        # host re-arms
        ("ev", ev(6, ask=999, bid=990)),           # fires again
    ])
    assert sides(out) == [(2, "buy"), (6, "buy")]
    assert out["cands"][0][:4] == (0, 0, 1000, 7)


def test_sell_edge_rearm_and_empty_sides():
    out = run_trigger([
        ("write", 1, row(sell=1000, eb=0, es=1, rearm=1)),
        ("ev", ev(1, slot=1, bid=1000)),           # fires
        ("ev", ev(2, slot=1, bid=1005)),           # still true: stays disarmed
        ("ev", ev(3, slot=1, bid=999)),            # false: re-armed
        ("ev", ev(4, slot=1, bid=1000)),           # fires
        ("ev", ev(5, slot=1, bid=0)),              # empty bid side: false, re-armed
        ("ev", ev(6, slot=1, bid=q(0, 1))),        # a level at price 0: exists, 0 < 1000
        ("ev", ev(7, slot=1, bid=2000)),           # fires
    ])
    assert sides(out) == [(1, "sell"), (4, "sell"), (7, "sell")]


def test_trading_state_and_disabled_side():
    out = run_trigger([
        ("write", 0, row(buy=1000, sell=900, eb=1, es=0, rearm=1)),
        ("ev", ev(1, ask=990, bid=950, state=H)),  # halted: nothing (no firing, no re-arm)
        ("ev", ev(2, ask=990, bid=950, state=ord("Q"))),
        ("ev", ev(3, ask=990, bid=950)),           # buy fires; sell disabled
        ("ev", ev(4, ask=1010, bid=950, state=H)),  # halted: no re-arm although false
        ("ev", ev(5, ask=990, bid=950)),           # still disarmed
        ("ev", ev(6, ask=1010, bid=950)),          # re-armed
        ("ev", ev(7, ask=990, bid=950)),           # fires
    ])
    assert sides(out) == [(3, "buy"), (7, "buy")]


def test_buy_before_sell_on_one_event_and_pause():
    out = run_trigger([
        ("write", 2, row(buy=1000, sell=990, es=1)),
        ("ref", 2, 995),
        ("ev", ev(1, slot=2, ask=1000, bid=990)),  # both fire: buy then sell
        ("ev", ev(2, slot=2, ask=1000, bid=990)),
    ])
    assert sides(out) == [(1, "buy"), (1, "sell")]
    assert [c[5] for c in out["cands"]] == [995, 995]
    # the second candidate follows one cycle later; the next event waited one cycle
    assert out["cand_cycles"][1] == out["cand_cycles"][0] + 1
    assert out["ev_cycles"][1] == out["ev_cycles"][0] + 2


def test_add_counts_even_when_refused():
    # an ask add at <= buy fires although the book (refused add: duplicate ref) has no ask
    out = run_trigger([
        ("write", 0, row(buy=1000, sell=2000, es=1)),
        ("ev", ev(1, ask=0, bid=0, add=(ASK, 1000))),
        ("ev", ev(2, ask=0, bid=0, add=(BID, 2000))),
        ("ev", ev(3, ask=0, bid=0, add=(BID, 1999))),
    ])
    assert sides(out) == [(1, "buy"), (2, "sell")]


def test_write_in_the_same_cycle_as_an_evaluation_lands_after_it():
    dut_ops = [("write", 0, row(buy=1000, rearm=0)), ("ev", ev(1, ask=900))]
    out = run_trigger(dut_ops + [("ev", ev(2, ask=900))])
    assert sides(out) == [(1, "buy")]


def test_enable_off_fires_nothing():
    out = run_trigger([("write", 0, row(buy=1000)), ("ev", ev(1, ask=900))], enable=0)
    assert out["cands"] == []


# ------------------------------------------------------------------ cut-through

def test_fast_path_fires_at_the_strobe_and_skips_its_event():
    out = run_trigger([
        ("write", 0, row(buy=1000, sell=1100, es=1, qty=5)),
        ("ev", ev(1, ask=1010, bid=990)),          # shadow: ask 1010, bid 990
        ("fast", fast(2, 0, ASK, 1000), 1),        # ask add at 1000 crosses buy
        ("idle", 5),
        ("ev", ev(2, ask=1000, bid=990, add=(ASK, 1000))),  # its event: skipped
        ("ev", ev(3, ask=999, bid=990)),           # one-shot: nothing
    ])
    assert sides(out) == [(2, "buy")] and out["cands"][0][6] == 1
    assert out["cand_cycles"][0] == out["fast_cycles"][0] + 1
    assert out["counters"] == {"triggers_fired": 1, "fast_taken": 1, "fast_mismatch": 0}


def test_fast_path_evaluates_the_other_side_buy_first():
    # a bid add crossing the sell trigger while the buy side also holds (from the shadow):
    # buy first, then sell, both from the strobe
    out = run_trigger([
        ("write", 0, row(buy=1000, sell=1100, es=1)),
        ("ev", ev(1, ask=0, bid=0, state=H)),      # halted: nothing fires, shadow halted
        ("fast", fast(2, 0, BID, 1100), 1),        # halted: not taken
        ("ev", ev(2, ask=0, bid=1100, add=(BID, 1100), state=H)),
        ("ev", ev(3, ask=1000, bid=1090, evaluate=0)),  # an H event: trading again
        ("fast", fast(4, 0, BID, 1100), 1),        # taken: buy (ask 1000 <= 1000), sell
        ("ev", ev(4, ask=1000, bid=1100, add=(BID, 1100))),
    ])
    assert sides(out) == [(4, "buy"), (4, "sell")]
    assert [c[6] for c in out["cands"]] == [1, 1]
    assert out["counters"]["fast_taken"] == 1


@pytest.mark.parametrize("why", ["not_quiet", "no_cross", "disarmed", "disabled", "fast_off"])
def test_fast_path_falls_back_to_the_event(why):
    r = row(buy=1000, rearm=0, eb=0 if why == "disabled" else 1)
    ops = [("write", 0, r), ("ev", ev(1, ask=1010))]
    if why == "disarmed":
        ops += [("ev", ev(2, ask=1000)), ("ev", ev(3, ask=1010))]
    price = 1001 if why == "no_cross" else 1000
    ops += [("fast", fast(9, 0, ASK, price), 0 if why == "not_quiet" else 1),
            ("ev", ev(9, ask=price, add=(ASK, price)))]
    out = run_trigger(ops, fast_enable=0 if why == "fast_off" else 1)
    assert out["counters"]["fast_taken"] == 0
    want = {"not_quiet": [(9, "buy")], "fast_off": [(9, "buy")], "no_cross": [],
            "disarmed": [(2, "buy")], "disabled": []}[why]
    assert sides(out) == want
    assert all(c[6] == 0 for c in out["cands"])


def test_fast_path_ignored_while_an_event_waits_and_mismatch_counted():
    out = run_trigger([
        ("write", 0, row(buy=1000)),
        ("ev", ev(1, ask=1010)),
        ("fast+ev", fast(3, 0, ASK, 1000), ev(2, ask=1010)),  # an older event is waiting
        ("ev", ev(3, ask=1000, add=(ASK, 1000))),
    ])
    assert sides(out) == [(3, "buy")] and out["counters"]["fast_taken"] == 0
    out = run_trigger([
        ("write", 0, row(buy=1000)),
        ("fast", fast(5, 0, ASK, 1000), 1),
        ("ev", ev(6, ask=1000)),                    # not the strobe's message
    ])
    assert out["counters"]["fast_mismatch"] == 1


def test_latency_stamp_from_the_input():
    """A candidate's stamp: the input's stamp when valid, else the cycle counter (``now``)
    in the cycle the event was accepted (``now`` is left at 0 here)."""
    out = run_trigger([("write", 0, row(buy=1000, sell=900, es=1)),
                       ("ev", ev(1, ask=900, bid=0, stamp=12345)),
                       ("ev", ev(2, ask=1900, bid=901))])
    assert sides(out) == [(1, "buy"), (2, "sell")]
    assert out["stamps"] == [12345, 0]


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="symbols=0"):
        TriggerEngine(symbols=0)
    with pytest.raises(ValueError, match="symbols=257"):
        TriggerEngine(symbols=257)


# ------------------------------------------------------------------ against the emulator

@pytest.mark.parametrize("seed", [201, 202])
def test_random_streams_against_emulator(seed):
    """Events, strobes and writes of an emulator scenario: the candidates the emulator fired
    (slot, side, price, quantity, sequence), in order."""
    from tickwire.sim.trigger_risk.model import make_scenario
    sc = make_scenario(seed, 500, fast_rate=0.8)
    ops = []
    for st in sc["steps"]:
        for w in st["writes"]:
            ops.append(("write", w["slot"], row(w["buy_price"], w["sell_price"], w["quantity"],
                                                w["enable_buy"], w["enable_sell"], w["rearm"])))
            if w["ref_price"] >= 0:
                ops.append(("ref", w["slot"], w["ref_price"]))
        if st["fast"]:
            ops.append(("fast", dict(st["fast"], stamp=0, stamp_valid=0), 1))
        if st["ev"]:
            ops.append(("ev", dict(st["ev"], stamp=0, stamp_valid=0)))
    out = run_trigger(ops)
    want = [(c["slot"], c["side"], c["price"], c["quantity"], c["sequence"])
            for c in sc["expect"]["candidates"]]
    assert [c[:5] for c in out["cands"]] == want
    assert out["counters"]["triggers_fired"] == sc["expect"]["counters"]["triggers_fired"]
    assert out["counters"]["fast_mismatch"] == 0
    assert out["counters"]["fast_taken"] > 0
