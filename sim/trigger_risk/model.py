"""Scenarios for the order-path benches: generated ITCH days with faults put in
(tickwire.host.gen), random host configurations, and the emulator (tickwire.host.emu) stepped
one message at a time as the scoreboard.

:func:`make_scenario` returns a plain dict (picklable, no numpy) with

* ``config``: what the DUT must be given — risk parameters, per-slot limits, trigger writes
  (with the message index they precede), slot names, the session template;
* ``steps``: per message, the BookEvent the book builder would hand the trigger engine (or
  None) and the cut-through strobe an add would give (or None);
* ``expect``: the emulator's candidates (with the risk decision of each), accepted orders,
  Ethernet frames and counters.

The emulator is the real one, run message by message through its public API
(``Emulator.run(chunk=1)`` with a progress callback) so that the post-message best bid/ask,
the fired sides (armed bits) and the reject counters can be read between messages; the
emulator reports rejects as counts only, so where one message rejects both of its candidates
the two reasons are known as a pair. :func:`run_scenario_full` runs the same scenario through
one ``Emulator.run`` call and the tests require both to agree.
"""

from __future__ import annotations

import random

from tickwire.host import gen, itch
from tickwire.host.config import Config
from tickwire.host.emu.core import ASK, BID, RISK_REASONS, pack_symbol
from tickwire.host.emu.pipeline import Emulator, messages_buffer
from tickwire.host.framing import ip_to_int, mac_to_bytes
from tickwire.spec.capacity import GATEWARE
from tickwire.spec.values import TICK

__all__ = ["PATH_FAULTS", "scenario_day", "random_config", "random_writes", "make_scenario",
           "run_scenario_full", "dut_config", "COUNTER_NAMES"]
COUNTER_NAMES = ("triggers_fired", "orders_sent", "risk_rejects") + tuple(
    "reject_" + r for r in RISK_REASONS)


# ------------------------------------------------------------------------------ ITCH day

#: The faults the scenarios put into a generated day (tickwire.host.gen.inject_faults): adds
#: and replaces on a live reference (the book refuses them: ``duplicate_ref``; their prices
#: still count for the triggers), halts and resumptions, timestamps that step back a little.
PATH_FAULTS = dict(duplicate_ref=0.02, halt=0.01, clock_back=0.01)


def scenario_day(seed: int, n: int, n_names: int, *, untracked: int = 1
                 ) -> tuple[list[bytes], list[str], list[tuple[list[int], list[int]]]]:
    """A generated day of ``n`` messages squeezed into about 3.2 µs per message (the fair
    prices stay near the open), over ``n_names`` tracked symbols and ``untracked`` others, with
    :data:`PATH_FAULTS` put in. Returns (messages, tracked names, per tracked symbol the
    prices of its buy adds and of its sell adds), the prices triggers are set around."""
    day = gen.generate_day(symbols=n_names + untracked, messages=n, seed=seed,
                           session_ns=n * 3_200)
    msgs = gen.inject_faults(day, seed, PATH_FAULTS)
    quotes = [([], []) for _ in range(n_names)]
    for m in msgs:
        if m[:1] in (b"A", b"F"):
            f = itch.decode(m)
            if f["stock_locate"] <= n_names:
                quotes[f["stock_locate"] - 1][f["buy_sell_indicator"] == "S"].append(f["price"])
    return msgs, day.symbols[:n_names], quotes


# ------------------------------------------------------------------------------ config

def random_config(rng: random.Random, names: list[str], centre: int, *,
                  permissive: bool = False) -> Config:
    """Random risk limits (notional ones scaled by ``centre``, a typical price), order
    numbering and session template."""
    cfg = Config(symbols=list(names))
    cfg.strategy.kind = "none"
    cfg.capacity.symbols = GATEWARE["symbols"]
    cfg.capacity.order_buckets = GATEWARE["order_buckets"]
    cfg.capacity.levels = 64
    r = cfg.risk

    def strict(p=0.35):
        return not permissive and rng.random() < p

    r.kill = strict(0.03)
    r.kill_after_rejects = rng.randint(8, 60) if strict(0.25) else 0
    r.max_order_qty = rng.randint(50, 450) if strict() else 10**6
    r.max_notional = rng.randint(40, 450) * centre if strict() else 10**15
    r.collar_bps = rng.choice((1, 10, 25, 40, 60)) if strict() else 10_000
    r.max_gross = rng.randint(1, 25) * 100 * centre if strict() else 10**18
    r.max_long = rng.randint(0, 700) if strict() else 10**9
    r.max_short = rng.randint(0, 700) if strict() else 10**9
    if strict(0.6):
        r.symbol_burst = rng.randint(0, 5)
        r.symbol_refill_ns = rng.choice((700, 3_000, 10_000, 50_000, 1_000_000))
    else:
        r.symbol_refill_ns = 0
    if strict(0.5):
        r.global_burst = rng.randint(0, 9)
        r.global_refill_ns = rng.choice((500, 2_000, 7_000, 100_000))
    else:
        r.global_refill_ns = 0
    r.dup_window_ns = rng.choice((2_000, 30_000, 500_000, 10**7, 10**8)) if strict(0.6) else 0
    r.disabled = [n for n in names if strict(0.1)]
    cfg.orders.first_user_ref = rng.choice((1, 7, 99_995, 999_999_990, 4_294_960_000,
                                            rng.randrange(1, 1 << 31)))
    cfg.orders.capacity = rng.choice("PAR")
    s = cfg.session
    s.src_mac = ":".join(f"{rng.randrange(256):02x}" for _ in range(6))
    s.dst_mac = ":".join(f"{rng.randrange(256):02x}" for _ in range(6))
    s.src_ip = ".".join(str(rng.randrange(256)) for _ in range(4))
    s.dst_ip = ".".join(str(rng.randrange(256)) for _ in range(4))
    s.src_port, s.dst_port = rng.randrange(1, 65536), rng.randrange(1, 65536)
    s.seq = rng.choice((0, 0xFFFF_FF00, rng.randrange(1 << 32)))
    s.ack = rng.randrange(1 << 32)
    s.window = rng.randrange(1 << 16)
    s.vlan = rng.choice((-1, -1, 0, rng.randrange(4096)))
    s.ttl = rng.randrange(1, 256)
    s.ip_id = rng.choice((0, 0xFFF0, rng.randrange(1 << 16)))
    return cfg


def random_writes(rng: random.Random, n_msgs: int, quotes: list[tuple[list[int], list[int]]],
                  *, rewrites: int | None = None) -> list[dict]:
    """Trigger writes around the prices each slot's buy and sell adds carry (``quotes``, as
    :func:`scenario_day` returns them; a buy trigger near the offers, a sell trigger near the
    bids): one per slot before message 0 (some slots stay unwritten), then ``rewrites``
    (default one per 12 messages) at random message indices (sometimes without a reference
    price)."""
    n_slots = len(quotes)

    def row(msg, slot):
        bids, asks = (q or [TICK] for q in quotes[slot])
        c = (min(asks) + max(bids)) // 2
        return dict(msg=msg, slot=slot,
                    buy_price=rng.choice(asks) + rng.randint(-2, 1) * TICK,
                    sell_price=rng.choice(bids) + rng.randint(-1, 2) * TICK,
                    quantity=rng.choice((1, 100, 100, 250, rng.randint(1, 500))),
                    enable_buy=int(rng.random() < 0.8), enable_sell=int(rng.random() < 0.8),
                    rearm=int(rng.random() < 0.6),
                    ref_price=rng.choice((-1, 0, c + rng.randint(-40, 40) * TICK)))
    out = [row(0, s) for s in range(n_slots) if rng.random() < 0.9]
    for _ in range(n_msgs // 12 if rewrites is None else rewrites):
        out.append(row(rng.randrange(1, n_msgs), rng.randrange(n_slots)))
    out.sort(key=lambda w: w["msg"])
    return out


# ------------------------------------------------------------------------------ stepping

def _emu(cfg: Config, slot_limits=None) -> Emulator:
    emu = Emulator(cfg, 0)
    if slot_limits:
        for s, (ml, ms) in slot_limits.items():
            emu.state.risk_slot[s, 2] = ml
            emu.state.risk_slot[s, 3] = ms
    return emu


def _add_info(raw: bytes, sides: dict, found: bool) -> dict:
    """The AddInfo of a message: an A/F's own side and price (also when the book refused
    it); a U's new price with its original's book side when the original was ``found`` (the
    side from ``sides``, the record of every stored order's side)."""
    t = chr(raw[0])
    if t in "AF":
        return {"valid": 1, "side": BID if raw[19] == ord("B") else ASK,
                "price": int.from_bytes(raw[32:36], "big")}
    if t == "U" and found:
        old = int.from_bytes(raw[11:19], "big")
        return {"valid": 1, "side": sides[old], "price": int.from_bytes(raw[31:35], "big")}
    return {"valid": 0, "side": 0, "price": 0}


def _track(raw: bytes, sides: dict, stored: bool, found: bool) -> None:
    """Record the side of the order a message stored (``stored``: the book did not count a
    duplicate_ref / order_table_full for it)."""
    t = chr(raw[0])
    if t in "AF" and stored:
        sides[int.from_bytes(raw[11:19], "big")] = BID if raw[19] == ord("B") else ASK
    elif t == "U" and found and stored:
        sides[int.from_bytes(raw[19:27], "big")] = sides[int.from_bytes(raw[11:19], "big")]


def make_scenario(seed: int, n_msgs: int = 600, *, n_names: int = 3, permissive: bool = False,
                  fast_rate: float = 0.7) -> dict:
    """One random scenario (see the module docstring). The emulator runs message by message
    (``Emulator.run(chunk=1)``; the state is read in the progress callback, the writes of
    message k+1 are scheduled there, as the host would between polls)."""
    rng = random.Random(seed)
    msgs, names, quotes = scenario_day(seed, n_msgs, n_names)
    n_msgs = len(msgs)
    typical = sum(q[0][0] if q[0] else TICK for q in quotes) // n_names
    cfg = random_config(rng, names, typical, permissive=permissive)
    writes = random_writes(rng, n_msgs, quotes)
    limits = {}
    if not permissive:
        for s in range(n_names):
            if rng.random() < 0.5:
                limits[s] = (rng.randint(-50, 600), rng.randint(-50, 600))
    emu = _emu(cfg, limits)
    st = emu.state
    data, offs, seqs = messages_buffer(msgs)
    by_msg: dict[int, list] = {}
    for w in writes:
        by_msg.setdefault(w["msg"], []).append(w)
    for w in by_msg.get(0, []):
        emu.write_trigger(**w)
    sides: dict[int, int] = {}
    steps: list[dict] = []
    fired: list[tuple] = []      # (msg, slot, side, price, qty, seq)
    reasons: dict[int, list] = {}
    prev = {"armed": st.armed.copy(), "c": st.counter_dict()}
    k = [0]

    def step(_n):
        i = k[0]
        raw = msgs[i]
        t = chr(raw[0])
        loc = int.from_bytes(raw[1:3], "big")
        c = st.counter_dict()
        armed_pre = prev["armed"].copy()
        for w in by_msg.get(i, []):
            armed_pre[w["slot"]] = 1
        slot = int(st.locate_slot[loc])
        refused = sum(c[x] - prev["c"][x] for x in ("duplicate_ref", "order_table_full"))
        found = c["unknown_ref"] == prev["c"]["unknown_ref"]
        add = _add_info(raw, sides, found)
        _track(raw, sides, not refused, found)
        ev = fast = None
        seq, ts = int(seqs[i]), int.from_bytes(raw[5:11], "big")
        if c["book_messages"] != prev["c"]["book_messages"]:
            s = slot
            ev = {"sequence": seq, "timestamp": ts, "slot": s, "evaluate": 1,
                  "trading_state": int(st.trading_state[s]),
                  "best_ask": _quote(st, s, ASK), "best_bid": _quote(st, s, BID), "add": add}
            if add["valid"] and rng.random() < fast_rate:
                fast = {"slot": s, "side": add["side"], "price": add["price"],
                        "sequence": seq, "timestamp": ts}
            sides_fired = [sd for sd in (BID, ASK) if armed_pre[s, sd] and not st.armed[s, sd]]
            assert len(sides_fired) == c["triggers_fired"] - prev["c"]["triggers_fired"]
            for sd in sides_fired:
                fired.append((i, s, sd, int(st.trig[s, sd]), int(st.trig[s, 2]), seq))
            rs = [r for j, r in enumerate(RISK_REASONS)
                  for _ in range(c["reject_" + r] - prev["c"]["reject_" + r])]
            if rs:
                reasons[i] = [RISK_REASONS.index(r) for r in rs]
        elif t == "H" and slot >= 0:
            ev = {"sequence": seq, "timestamp": ts, "slot": slot, "evaluate": 0,
                  "trading_state": int(st.trading_state[slot]),
                  "best_ask": _quote(st, slot, ASK), "best_bid": _quote(st, slot, BID),
                  "add": {"valid": 0, "side": 0, "price": 0}}
        steps.append({"ev": ev, "fast": fast, "writes": by_msg.get(i, [])})
        prev["armed"] = st.armed.copy()
        prev["c"] = c
        k[0] = i + 1
        for w in by_msg.get(i + 1, []):
            emu.write_trigger(**w)

    res = emu.run(data, offs, seqs, chunk=1, progress=step)
    o = res.orders
    accepted = {(int(o.msg[j]), int(o.side[j])) for j in range(len(o))}
    cands = []
    for (i, s, sd, px, q, seq) in fired:
        cands.append({"msg": i, "sequence": seq, "slot": s, "side": sd, "price": px,
                      "quantity": q, "accept": int((i, sd) in accepted)})
    # reject reasons: exact per candidate where a message rejected one; as the multiset of
    # the message's reasons where it rejected two (the emulator reports counts only)
    for cd in cands:
        if not cd["accept"]:
            cd["reasons"] = sorted(reasons[cd["msg"]])
    counters = {name: int(res.counters[name]) for name in COUNTER_NAMES}
    expect = {
        "candidates": cands,
        "orders": [{"sequence": int(o.sequence[j]), "slot": int(o.slot[j]),
                    "side": int(o.side[j]), "price": int(o.price[j]),
                    "quantity": int(o.quantity[j]), "user_ref": int(o.user_ref[j])}
                   for j in range(len(o))],
        "frames": [bytes(f) for f in o.frames],
        "counters": counters,
    }
    return {"seed": seed, "msgs": msgs, "config": dut_config(cfg, names, st, limits),
            "writes": writes, "steps": steps, "expect": expect, "cfg": cfg, "limits": limits}


def _quote(st, s, side):
    n = int(st.lv_n[s, side])
    return {"price": int(st.top(1)[s, 0, 0 if side == ASK else 2]) if n else 0,
            "valid": int(n > 0)}


def run_scenario_full(sc: dict):
    """The same scenario through one ``Emulator.run`` call (all writes scheduled up front,
    one chunk) — the tests require the stepped run to agree with it."""
    emu = _emu(sc["cfg"], sc["limits"])
    for w in sc["writes"]:
        emu.write_trigger(**w)
    data, offs, seqs = messages_buffer(sc["msgs"])
    return emu.run(data, offs, seqs, chunk=1 << 18)


# ------------------------------------------------------------------------------ DUT config

def dut_config(cfg: Config, names: list[str], st, limits) -> dict:
    r = cfg.risk
    params = {
        "kill": int(r.kill), "kill_after_rejects": r.kill_after_rejects,
        "max_order_qty": r.max_order_qty, "max_notional": r.max_notional,
        "collar_bps": r.collar_bps, "max_gross": r.max_gross,
        "symbol_burst": r.symbol_burst, "symbol_refill_ns": r.symbol_refill_ns,
        "global_burst": r.global_burst, "global_refill_ns": r.global_refill_ns,
        "dup_window_ns": r.dup_window_ns, "first_user_ref": cfg.orders.first_user_ref,
    }
    slots = [{"enable": int(st.risk_slot[s, 0]), "max_long": int(st.risk_slot[s, 2]),
              "max_short": int(st.risk_slot[s, 3])} for s in range(st.symbols)]
    s = cfg.session
    tmpl = {
        "dst_mac": int.from_bytes(mac_to_bytes(s.dst_mac), "big"),
        "src_mac": int.from_bytes(mac_to_bytes(s.src_mac), "big"),
        "vlan_en": int(s.vlan >= 0), "vlan": max(s.vlan, 0),
        "src_ip": ip_to_int(s.src_ip), "dst_ip": ip_to_int(s.dst_ip),
        "src_port": s.src_port, "dst_port": s.dst_port, "seq": s.seq & 0xFFFF_FFFF,
        "ack": s.ack & 0xFFFF_FFFF, "window": s.window, "ttl": s.ttl, "ip_id": s.ip_id,
    }
    return {"params": params, "slots": slots, "tmpl": tmpl,
            "capacity": ord(cfg.orders.capacity),
            "names": {i: pack_symbol(n) for i, n in enumerate(names)},
            "limits_override": {str(k): list(v) for k, v in limits.items()}}
