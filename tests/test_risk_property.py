"""Pre-trade risk as a property, on the emulator and on the RTL appliance.

Random configurations x ITCH streams are built so that every trigger firing is known by
construction (:func:`scenario`), with host writes between messages: trigger rows and collar
references, the kill switch, per-slot risk enables and limits, trip clears, reconciled
positions and gross exposure. The independent model (tests/risk_model.py, written from
docs/architecture.md) gives each firing its verdict, having checked every limit in force at
its time. The emulator must give every firing the model's verdict (it runs in pieces, one
firing each); both back-ends must send exactly the model's accepted orders (the RTL's frames
byte for byte as the emulator's) with its reject counts, positions and gross exposure.
Minimum counts per reject reason and of accepted orders make sure every rule was exercised.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from risk_model import ACCEPT, BUY, REASONS, SELL, Order, RiskModel
from tickwire.host import itch, moldudp64, ouch
from tickwire.host.config import Config
from tickwire.host.emu import core
from tickwire.host.emu.pipeline import Emulator, messages_buffer
from tickwire.host.framing import build_udp_frame, parse_tcp_frame
from tickwire.backends import rtl   # the RTL back-end: its one import
from tickwire.spec.capacity import BOOK_FIELDS, GATEWARE

TICK = 100
T0 = 34_200_000_000_000
TICKERS = ("AAPL", "MSFT", "AMD", "NVDA", "TSLA", "META", "AMZN", "GOOG")
#: capacities of the built appliance (the emulator runs with the same)
CAPACITY = {k: GATEWARE[k] for k in BOOK_FIELDS}


# ------------------------------------------------------------------------ scenarios
@dataclass
class Firing(Order):
    """A candidate the triggers fired at message ``msg``."""
    msg: int = 0


@dataclass
class Scenario:
    seed: int
    names: list
    risk: dict                       # Config.risk fields but disabled
    disabled: list
    first_user_ref: int
    msgs: list = field(default_factory=list)
    ops: list = field(default_factory=list)      # (msg, op, kwargs): host write before msg
    firings: list = field(default_factory=list)
    monotone: bool = True

    def config(self) -> Config:
        cfg = Config(symbols=list(self.names))
        cfg.strategy.kind = "none"
        for k, v in CAPACITY.items():
            setattr(cfg.capacity, k, v)
        for k, v in self.risk.items():
            setattr(cfg.risk, k, v)
        cfg.risk.disabled = list(self.disabled)
        cfg.orders.first_user_ref = self.first_user_ref
        return cfg


class _Trigger:
    """A slot's trigger row and armed bits, as the generator tracks them: a side's condition
    holds exactly while the stream has a crossing order of the opposite book side resting."""

    def __init__(self, row):
        self.row = row
        self.armed = [True, True]

    def after(self, cond):
        """Sides that fire on a message after which ``cond[side]`` holds."""
        fired = []
        for side in (BUY, SELL):
            if not self.row["enable_" + ("buy" if side == BUY else "sell")]:
                continue
            if not self.armed[side]:
                if self.row["rearm"] and not cond[side]:
                    self.armed[side] = True
                continue
            if cond[side]:
                self.armed[side] = False
                fired.append(side)
        return fired


def scenario(seed: int, n_msgs: int) -> Scenario:
    """A random configuration and stream. Resting "noise" orders stay 8..30 ticks from the
    slot's mid, trigger prices within 4 ticks of it, so only the stream's crossing orders
    (an ask at or below the buy price, a bid at or above the sell price; one of each side
    at most per slot, deleted later) make a condition true; trigger rows are rewritten only
    while a slot has no crossing order resting."""
    rng = random.Random(seed)
    n = rng.randint(2, 6)
    names = rng.sample(TICKERS, n)
    mid = [rng.randrange(5_000, 30_000) * TICK for _ in range(n)]
    avg = sum(mid) // n
    qmax = rng.choice((150, 250, 400))
    risk = dict(
        kill=rng.random() < 0.1,
        kill_after_rejects=rng.choice((0, 0, 0, 25, 60, 150)),
        max_order_qty=qmax,
        max_notional=int(qmax * avg * rng.uniform(0.7, 2.0)),
        collar_bps=rng.randint(3, 60),
        max_gross=rng.choice((1 << 62, avg * qmax * rng.randint(2, 12))),
        symbol_burst=rng.randint(1, 4),
        symbol_refill_ns=rng.choice((0, 100_000, 1_000_000, 5_000_000, 20_000_000)),
        global_burst=rng.randint(1, 6),
        global_refill_ns=rng.choice((0, 100_000, 1_000_000, 3_000_000)),
        dup_window_ns=rng.choice((0, 200_000, 3_000_000, 30_000_000)),
        max_long=2_000, max_short=2_000)
    disabled = [s for s in names if rng.random() < 0.15]
    sc = Scenario(seed, names, risk, disabled, rng.randint(1, 1 << 20),
                  monotone=rng.random() < 0.7)

    def trigger_row(s):
        m = mid[s]
        ref = rng.random()
        return dict(slot=s, buy_price=m - rng.randint(0, 4) * TICK,
                    sell_price=m + rng.randint(0, 4) * TICK,
                    quantity=rng.choice((1, 50, 100, 100, 100, 100, 150, 150, qmax, qmax + 1)),
                    enable_buy=rng.random() < 0.85, enable_sell=rng.random() < 0.85,
                    rearm=int(rng.random() < 0.85),
                    ref_price=(-1 if ref < 0.3 else 0 if ref < 0.45 else
                               int(m * (1 + rng.uniform(-1.3, 1.3) * risk["collar_bps"] / 1e4))))

    def limits():
        return dict(max_long=rng.choice((100, 300, 600, 1_500, 5_000)),
                    max_short=rng.choice((100, 300, 600, 1_500, 5_000)))

    t = T0 + rng.randrange(10**12)
    ref = 1
    for s, name in enumerate(names):
        sc.msgs.append(itch.encode("R", stock_locate=s + 1, stock=name, timestamp=t))
    trig = []
    for s in range(n):
        sc.ops.append((0, "limits", dict(slot=s, **limits())))
        row = trigger_row(s)
        sc.ops.append((0, "trigger", row))
        trig.append(_Trigger(row))
    crossing = [[None, None] for _ in range(n)]     # per slot, resting crossing ask / bid
    noise = [dict() for _ in range(n)]              # ref -> (side, shares)
    kill = risk["kill"]
    enabled = [name not in disabled for name in names]
    while len(sc.msgs) < n_msgs:
        k = len(sc.msgs)
        # ---- host writes before message k
        if not kill and rng.random() < 0.006 or kill and rng.random() < 0.05:
            kill = not kill
            sc.ops.append((k, "kill", dict(on=kill)))
        s = rng.randrange(n)
        if rng.random() < (0.003 if enabled[s] else 0.05):
            enabled[s] = not enabled[s]
            sc.ops.append((k, "enable", dict(slot=s, on=enabled[s])))
        if rng.random() < 0.006:
            sc.ops.append((k, "limits", dict(slot=rng.randrange(n), **limits())))
        if risk["kill_after_rejects"] and rng.random() < 0.015:
            sc.ops.append((k, "clear_trip", {}))
        if rng.random() < 0.004:
            s = rng.randrange(n)
            sc.ops.append((k, "position", dict(slot=s, shares=rng.randint(-400, 400))))
        if rng.random() < 0.003:
            sc.ops.append((k, "gross", dict(value=rng.choice((0, risk["max_gross"] // 2)))))
        s = rng.randrange(n)
        if rng.random() < 0.03 and crossing[s] == [None, None]:
            row = trigger_row(s)
            sc.ops.append((k, "trigger", row))
            trig[s] = _Trigger(row)
        # ---- message k, of slot s
        step = rng.random()
        dt = (rng.randint(0, 2_000) if step < 0.75 else rng.randint(2_000, 100_000)
              if step < 0.95 else rng.randint(100_000, 5_000_000))
        if not sc.monotone and rng.random() < 0.04:
            dt = -rng.randint(1, 2_000_000)
        t = max(T0, t + dt)
        loc = s + 1
        m = mid[s]
        free = [side for side in (BUY, SELL) if crossing[s][side] is None]
        u = rng.random()
        if u < 0.45 and (free or any(crossing[s])):
            if free and (u < 0.3 or len(free) == 2):
                side = rng.choice(free)            # a crossing order: ask for buy, bid for sell
                row = trig[s].row
                px = (row["buy_price"] - rng.randint(0, 3) * TICK if side == BUY
                      else row["sell_price"] + rng.randint(0, 3) * TICK)
                msg = itch.encode("A", stock_locate=loc, timestamp=t, order_reference_number=ref,
                                  buy_sell_indicator="S" if side == BUY else "B",
                                  shares=rng.randint(1, 500), stock=names[s], price=px)
                crossing[s][side] = ref
                ref += 1
            else:
                side = rng.choice([x for x in (BUY, SELL) if crossing[s][x] is not None])
                msg = itch.encode("D", stock_locate=loc, timestamp=t,
                                  order_reference_number=crossing[s][side])
                crossing[s][side] = None
        elif noise[s] and (u < 0.7 or len(noise[s]) > 30):
            r = rng.choice(list(noise[s]))
            side, shares = noise[s][r]
            kind = rng.choice("DDXE")
            if kind == "D" or shares == 1:
                msg = itch.encode("D", stock_locate=loc, timestamp=t, order_reference_number=r)
                del noise[s][r]
            else:
                cut = rng.randint(1, shares - 1)
                msg = (itch.encode("X", stock_locate=loc, timestamp=t, order_reference_number=r,
                                   canceled_shares=cut) if kind == "X" else
                       itch.encode("E", stock_locate=loc, timestamp=t, order_reference_number=r,
                                   executed_shares=cut, match_number=ref))
                noise[s][r] = (side, shares - cut)
        else:
            side = rng.choice("BS")
            px = m + (-1 if side == "B" else 1) * rng.randint(8, 30) * TICK
            shares = rng.randint(1, 1_000)
            msg = itch.encode("A", stock_locate=loc, timestamp=t, order_reference_number=ref,
                              buy_sell_indicator=side, shares=shares, stock=names[s], price=px)
            noise[s][ref] = (side, shares)
            ref += 1
        fired = trig[s].after([crossing[s][BUY] is not None, crossing[s][SELL] is not None])
        assert len(fired) <= 1, "a message adds one order: at most one side can fire"
        for side in fired:
            row = trig[s].row
            sc.firings.append(Firing(s, side, row["buy_price" if side == BUY else "sell_price"],
                                     row["quantity"], t, msg=k))
        sc.msgs.append(msg)
    return sc


# ------------------------------------------------------------------------ the model's run
def model_run(sc: Scenario):
    """Verdicts of the independent model, one per firing, and the model after the stream."""
    p = dict(sc.risk)
    model = RiskModel(p, len(sc.names), first_user_ref=sc.first_user_ref)
    for s, name in enumerate(sc.names):
        if name in sc.disabled:
            model.set_slot(s, enable=False)
    ops = _by_msg(sc.ops)
    verdicts = []
    fi = 0
    for k in range(len(sc.msgs)):
        for op, kw in ops.get(k, ()):
            if op == "trigger":
                model.set_slot(kw["slot"], ref=kw["ref_price"] if kw["ref_price"] >= 0 else None)
            elif op == "kill":
                model.set_kill(kw["on"])
            elif op == "enable":
                model.set_slot(kw["slot"], enable=kw["on"])
            elif op == "limits":
                model.set_slot(kw["slot"], max_long=kw["max_long"], max_short=kw["max_short"])
            elif op == "clear_trip":
                model.clear_trip()
            elif op == "position":
                model.set_position(kw["slot"], kw["shares"])
            elif op == "gross":
                model.set_gross(kw["value"])
        while fi < len(sc.firings) and sc.firings[fi].msg == k:
            f = sc.firings[fi]
            verdicts.append(model.check(f))
            fi += 1
    return verdicts, model


def _by_msg(ops):
    out = {}
    for k, op, kw in ops:
        out.setdefault(k, []).append((op, kw))
    return out


# ------------------------------------------------------------------------ the emulator
class EmuHost:
    """The host's writes on the emulator between two runs of its kernel: trigger rows through
    ``write_trigger``, the rest into the risk stage's state (the registers the driver writes
    on a board). The kill switch in effect is the host's bit or the trip (the emulator keeps
    both in one flag, tripped when the total reject count reaches ``kill_after_rejects``)."""

    def __init__(self, emu: Emulator):
        self.emu = emu
        self.host_kill = bool(emu.config.risk.kill)

    def _tripped(self) -> bool:
        rp, rg = self.emu.state.risk_params, self.emu.state.risk_global
        return rp[core.P_KILL_AFTER] > 0 and rg[core.G_TOTAL_REJECTS] >= rp[core.P_KILL_AFTER]

    def apply(self, op: str, kw: dict) -> None:
        st = self.emu.state
        if op == "trigger":
            self.emu.write_trigger(0, kw["slot"], kw["buy_price"], kw["sell_price"],
                                   kw["quantity"], kw["enable_buy"], kw["enable_sell"],
                                   kw["rearm"], kw["ref_price"])
        elif op == "kill":
            self.host_kill = kw["on"]
            st.risk_params[core.P_KILL] = int(self.host_kill or self._tripped())
        elif op == "enable":
            st.risk_slot[kw["slot"], 0] = int(kw["on"])
        elif op == "limits":
            st.risk_slot[kw["slot"], 2:4] = (kw["max_long"], kw["max_short"])
        elif op == "clear_trip":
            st.risk_global[core.G_TOTAL_REJECTS] = 0
            st.risk_params[core.P_KILL] = int(self.host_kill)
        elif op == "position":
            st.position[kw["slot"]] = kw["shares"]
        elif op == "gross":
            st.risk_global[core.G_GROSS] = kw["value"]


@dataclass
class BackendRun:
    verdicts: list | None      # per firing (None: the back-end reports totals only)
    sent: list                 # (slot, side, price, quantity, user_ref) per order frame
    frames: list
    counters: dict
    positions: list
    gross: int


def emulator_run(sc: Scenario) -> BackendRun:
    """The stream through the emulator in pieces: a piece ends after each firing message (its
    verdict is the counter that moved) and before each host write."""
    emu = Emulator(sc.config(), 0)
    host = EmuHost(emu)
    data, offs, seqs = messages_buffer(sc.msgs)
    ops = _by_msg(sc.ops)
    firing_msgs = {f.msg for f in sc.firings}
    cuts = sorted(set(ops) | {m + 1 for m in firing_msgs} | {0, len(sc.msgs)})
    verdicts, sent, frames = [], [], []
    before = emu.state.counter_dict()
    for a, b in zip(cuts, cuts[1:]):
        for op, kw in ops.get(a, ()):
            host.apply(op, kw)
        res = emu.run(data, offs[a:b], seqs[a:b], chunk=b - a)
        emu.writes.clear()
        after = res.counters
        fired = after["triggers_fired"] - before["triggers_fired"]
        assert fired == int(b - 1 in firing_msgs), f"seed {sc.seed}: messages {a}..{b - 1}"
        if fired:
            moved = [r for r in REASONS if after["reject_" + r] != before["reject_" + r]]
            if after["orders_sent"] != before["orders_sent"]:
                moved.append(ACCEPT)
            assert len(moved) == 1, moved
            verdicts.append(moved[0])
        o = res.orders
        assert all(a + int(m) == b - 1 for m in o.msg)
        sent += [(int(o.slot[i]), int(o.side[i]), int(o.price[i]), int(o.quantity[i]),
                  int(o.user_ref[i])) for i in range(len(o))]
        frames += o.frames
        before = after
    return BackendRun(verdicts, sent, frames, before,
                      emu.state.position[:len(sc.names)].tolist(),
                      int(emu.state.risk_global[core.G_GROSS]))


# ------------------------------------------------------------------------ the RTL
def frames_of(sc: Scenario) -> list[bytes]:
    """One message per MoldUDP64 packet: frame k carries message k."""
    return [build_udp_frame(moldudp64.pack("TWRISK0001", k + 1, [m]))
            for k, m in enumerate(sc.msgs)]


def rtl_run(sc: Scenario):
    """The stream through the appliance, configured and written mid-stream by the host's
    driver (a write before message k lands before frame k)."""
    def host(drv, bus):
        bus.seek(0)
        drv.apply_config(sc.config())
        for k, op, kw in sc.ops:
            bus.seek(k)
            if op == "trigger":
                drv.set_trigger(kw["slot"], kw["buy_price"], kw["sell_price"], kw["quantity"],
                                kw["enable_buy"], kw["enable_sell"], kw["rearm"],
                                ref_price=kw["ref_price"])
            elif op == "kill":
                drv.set_kill(kw["on"])
            elif op == "enable":
                drv.write_risk_slot(kw["slot"], enable=int(kw["on"]))
            elif op == "limits":
                drv.write_risk_slot(kw["slot"], max_long=kw["max_long"],
                                    max_short=kw["max_short"])
            elif op == "clear_trip":
                drv.clear_trip()
            elif op == "position":
                drv.set_position(kw["slot"], kw["shares"])
            elif op == "gross":
                drv.set_gross(kw["value"])

    r = rtl.run_appliance(frames_of(sc), host)
    sent = []
    for f in r.frames:
        seg = parse_tcp_frame(f)
        assert not isinstance(seg, str), seg
        m = ouch.decode(seg.payload[3:], "client")
        sent.append((sc.names.index(m["symbol"]), BUY if m["side"] == "B" else SELL,
                     m["price"], m["quantity"], m["user_ref_num"]))
    n = len(sc.names)
    return BackendRun(None, sent, r.frames, dict(r.drv.counters(hardware=True)),
                      r.drv.positions()[:n], r.drv.gross()), r


# ------------------------------------------------------------------------ checks
def throttle_holds(sc: Scenario, sent_times) -> None:
    """A token bucket's bound, checked on the orders sent (not on the model's arithmetic):
    between two accepted orders at t_i <= t_j, at most burst + (t_j - t_i) // refill_ns
    orders (both included) took a token."""
    p = sc.risk
    groups = [(p["global_burst"], p["global_refill_ns"], sent_times)]
    for s in range(len(sc.names)):
        groups.append((p["symbol_burst"], p["symbol_refill_ns"],
                       [(sl, t) for sl, t in sent_times if sl == s]))
    for burst, refill, orders in groups:
        if refill == 0 or not orders:
            continue
        t = np.array([x[1] for x in orders], np.int64)
        i, j = np.triu_indices(len(t))
        assert np.all(j - i + 1 <= burst + (t[j] - t[i]) // refill)


def check_against_model(sc: Scenario, got: BackendRun, verdicts, model, tag: str):
    where = f"{tag} seed {sc.seed}"
    if got.verdicts is not None:
        assert len(got.verdicts) == len(verdicts)
        for i, (g, w) in enumerate(zip(got.verdicts, verdicts)):
            assert g == w, f"{where}: firing {i} ({sc.firings[i]}): {tag} {g}, model {w}"
    assert got.sent == model.sent, f"{where}: orders differ"
    c = got.counters
    assert c["triggers_fired"] == len(sc.firings), where
    assert c["orders_sent"] == len(model.sent), where
    for r in REASONS:
        assert c["reject_" + r] == model.rejects[r], f"{where}: reject_{r}"
    assert c["risk_rejects"] == sum(model.rejects.values()), where
    assert got.positions == model.positions(), where
    assert got.gross == model.gross, where


def tally(total: dict, verdicts, model) -> None:
    for v in verdicts:
        total[v] = total.get(v, 0) + 1
    total["several_failing"] = total.get("several_failing", 0) + sum(
        len(f) > 1 for f in model.failed)


def check_scenario(sc: Scenario, got: BackendRun, tag: str, total: dict):
    verdicts, model = model_run(sc)
    check_against_model(sc, got, verdicts, model, tag)
    if sc.monotone:
        fi = iter(f for f, v in zip(sc.firings, verdicts) if v == ACCEPT)
        throttle_holds(sc, [(f.slot, f.now) for f in fi])
    tally(total, verdicts, model)
    return verdicts, model


# ------------------------------------------------------------------------ tests
EMU_SEEDS = range(100, 150)
RTL_SEEDS = (3, 5, 8, 10)


def test_emulator_risk_matches_independent_model():
    """Thousands of orders: every firing's verdict equal to the model's, every order sent
    within every limit in force at its time, every reason and accepted orders in numbers."""
    total = {}
    t0 = time.perf_counter()
    for seed in EMU_SEEDS:
        sc = scenario(seed, 3_000)
        check_scenario(sc, emulator_run(sc), "emulator", total)
    secs = time.perf_counter() - t0
    print(f"emulator: {len(EMU_SEEDS)} seeds in {secs:.1f} s: {total}")
    assert total.get(ACCEPT, 0) >= 3_000, total
    for r in REASONS:
        assert total.get(r, 0) >= 200, (r, total)
    assert total["several_failing"] >= 2_000, total     # precedence decided many verdicts


@pytest.mark.rtl
def test_rtl_risk_matches_independent_model():
    """Hundreds of orders through the appliance (Verilated, configured by the host's driver,
    kill switch, enables, limits, positions, gross and trip clears written mid-stream): the
    model's orders byte for byte as the emulator frames them, its reject counts, positions
    and gross read back through the driver."""
    total = {}
    secs = 0.0
    for seed in RTL_SEEDS:
        sc = scenario(seed, 4_000)
        emu = emulator_run(sc)
        check_scenario(sc, emu, "emulator", {})
        got, r = rtl_run(sc)
        secs += r.sim_seconds
        check_scenario(sc, got, "rtl", total)
        assert got.frames == emu.frames, f"seed {seed}: order frames differ from the emulator's"
    print(f"rtl: {len(RTL_SEEDS)} seeds, {secs:.1f} s of simulation: {total}")
    assert total.get(ACCEPT, 0) >= 300, total
    for r in REASONS:
        assert total.get(r, 0) >= 10, (r, total)


def test_model_reads_the_doc():
    """The model on hand-computed cases of docs/architecture.md ("Pre-trade risk")."""
    from risk_model import Bucket
    b = Bucket(2, 100)
    b.refill(1_000)                        # full: time restarts at the check
    assert (b.tokens, b.last) == (2, 1_000)
    b.take()
    b.refill(1_050)
    b.take()
    b.refill(1_099)
    assert b.empty() and b.last == 1_000
    b.refill(1_100)                        # one token, last advances by whole periods
    assert (b.tokens, b.last) == (1, 1_100)
    b.refill(1_350)                        # two more, capped at the burst: full again
    assert (b.tokens, b.last) == (2, 1_350)
    b.refill(900)                          # earlier time: no refill, full: last = now
    assert (b.tokens, b.last) == (2, 900)
    off = Bucket(0, 0)
    off.refill(5)
    assert not off.empty()                 # refill_ns 0: off, never empty
    assert Bucket(0, 10).empty()           # burst 0, refill on: rejects every order

    p = dict(kill=False, kill_after_rejects=2, max_order_qty=100, max_notional=10**12,
             collar_bps=100, max_gross=10**15, symbol_burst=0, symbol_refill_ns=0,
             global_burst=0, global_refill_ns=0, dup_window_ns=50, max_long=100,
             max_short=100)
    m = RiskModel(p, 2, first_user_ref=7)
    m.set_position(0, -500)
    assert m.check(Order(0, BUY, 1_000, 100, 1_000)) == ACCEPT      # a buy reduces a short
    assert m.sent == [(0, BUY, 1_000, 100, 7)] and m.positions() == [-400, 0]
    assert m.check(Order(0, BUY, 1_000, 100, 940)) == "duplicate"   # earlier time: inside
    m.set_slot(0, ref=1_000)
    assert m.check(Order(0, SELL, 1_011, 101, 2_000)) == "max_qty"  # precedence: 3 before 5
    assert m.tripped and m.check(Order(1, SELL, 1_000, 1, 3_000)) == "kill"
    m.set_kill(False)                                                # the host's bit: no
    assert m.check(Order(1, SELL, 1_000, 1, 3_000)) == "kill"        # effect on the trip
    m.clear_trip()
    assert m.total_rejects == 0 and m.check(Order(1, SELL, 1_000, 1, 3_000)) == ACCEPT
    m.set_slot(1, ref=1_000)
    assert m.check(Order(1, SELL, 1_011, 1, 4_000)) == "price_collar"   # 110 bps > 100
    assert m.check(Order(1, SELL, 1_010, 1, 4_000)) == ACCEPT            # 100 bps: inside
    assert m.check(Order(0, SELL, 1_000, 1, 5_000)) == "position"        # -401 < -100
    assert m.gross == 100_000 + 1_000 + 1_010 and m.positions() == [-400, -2]
    assert m.rejects == dict.fromkeys(REASONS, 0) | dict(duplicate=1, max_qty=1, kill=2,
                                                         price_collar=1, position=1)
    assert m.tripped                       # two rejects since the clear
