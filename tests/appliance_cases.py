"""Shared by the appliance tests (fast harness and cocotb bench): random cases whose host
writes are spread over the stream, the host's program as driver calls, and the emulator run
that matches it."""

import copy
import random

import numpy as np

from test_rtl_orders import TICK, case

ROW = ("buy_price", "sell_price", "quantity", "enable_buy", "enable_sell", "rearm")


def plan_writes(seed, frames, names, mid, *, permissive=False, rewrites=6):
    """A random case (tests/test_rtl_orders.py ``case``) whose trigger writes are spread over
    the stream, plus ``rewrites`` later re-writes of random slots: [(frame, write)]."""
    cfg, writes, limits = case(seed, names, mid, permissive=permissive)
    rng = random.Random(seed + 1000)
    plan = [(0 if rng.random() < 0.6 else rng.randrange(1, len(frames)), w) for w in writes]
    for _ in range(rewrites):
        s = rng.randrange(len(names))
        m = mid[s]
        plan.append((rng.randrange(1, len(frames)), dict(
            slot=s, buy_price=m + rng.randint(-3, 1) * TICK,
            sell_price=m + rng.randint(-1, 3) * TICK, quantity=rng.choice((1, 100, 300)),
            enable_buy=int(rng.random() < 0.8), enable_sell=int(rng.random() < 0.8),
            rearm=int(rng.random() < 0.5),
            ref_price=rng.choice((-1, m + rng.randint(-20, 20) * TICK)))))
    plan.sort(key=lambda fw: fw[0])
    return cfg, limits, plan


def host_steps(cfg, limits, plan):
    """What a host does, as driver calls [(frame, method, args, kwargs)], each made before
    ``frame``: configure, then trigger writes as the stream runs."""
    steps = [(0, "apply_config", (copy.deepcopy(cfg),), {})]
    for s, (ml, ms) in limits.items():
        steps.append((0, "write_risk_slot", (s,), {"max_long": ml, "max_short": ms}))
    for f, w in plan:
        steps.append((f, "write_trigger", (w["slot"],), {k: w[k] for k in ROW}))
        if w["ref_price"] >= 0:
            steps.append((f, "write_risk_slot", (w["slot"],), {"ref_price": w["ref_price"]}))
    return steps


def host_program(cfg, limits, plan):
    """:func:`host_steps` for :func:`tickwire.backends.rtl.run_appliance`."""
    steps = host_steps(cfg, limits, plan)

    def host(drv, bus):
        for f, name, args, kwargs in steps:
            bus.seek(f)
            getattr(drv, name)(*args, **kwargs)
    return host


def emulate(frames, cfg, limits, plan, depth):
    from tickwire.host.capture import Frames
    from tickwire.host.emu import feed
    from tickwire.host.emu.pipeline import Emulator
    from tickwire.backends.rtl import frame_first_messages, rtl_config
    first = frame_first_messages(frames)
    idx = feed.index_frames(Frames.from_list(frames))   # FcsError frames flagged
    c = rtl_config(copy.deepcopy(cfg))
    c.strategy.kind = "none"
    emu = Emulator(c, depth)
    for s, (ml, ms) in limits.items():
        emu.state.risk_slot[s, 2] = ml
        emu.state.risk_slot[s, 3] = ms
    for f, w in plan:
        emu.write_trigger(int(first[f]) if f else 0, w["slot"], *(w[k] for k in ROW),
                          ref_price=w["ref_price"])
    return emu, emu.run(idx.data, idx.offsets, idx.sequences, idx.counters)
