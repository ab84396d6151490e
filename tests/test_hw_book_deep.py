"""The book builder's deep levels (hw/book/deep.py) behind its sorted cache, against the emulator.

A builder with ``cache_levels`` c and ``levels`` L must give the rows, counters, events and
slot state of the emulator's sorted array of L levels; each stream here is chosen so that the
same emulator at c levels gives different rows (the deep levels are what makes it right).
"""

import random

import pytest
from test_hw_book import SMALL, Day, check

from tickwire.hw.book import BookBuilder
from tickwire.hw.book.levels import LevelEngine
from tickwire.sim.book_builder.gen import emulator_case, fault_day


def wide_day(seed, n, *, slots=1, spread=20):
    """Adds, cancels, executions, deletes and replaces over 2 × spread + 1 prices per side."""
    d = Day()
    rng = random.Random(seed)
    live = []
    names = ["AAPL", "MSFT", "IBM", "ORCL"][:slots]
    for i in range(n):
        r = rng.random()
        if live and r < 0.3:
            ref, loc = live.pop(rng.randrange(len(live)))
            d("D", stock_locate=loc, order_reference_number=ref)
        elif live and r < 0.42:
            ref, loc = rng.choice(live)
            d("X", stock_locate=loc, order_reference_number=ref,
              canceled_shares=rng.choice([0, 1, 5, 40]))
        elif live and r < 0.5:
            ref, loc = rng.choice(live)
            d("E", stock_locate=loc, order_reference_number=ref, executed_shares=3,
              match_number=i)
        elif live and r < 0.58:
            k = rng.randrange(len(live))
            ref, loc = live[k]
            live[k] = (10_000 + i, loc)
            d("U", stock_locate=loc, original_order_reference_number=ref,
              new_order_reference_number=10_000 + i, shares=rng.randint(1, 30),
              price=1000 + rng.randint(-spread, spread))
        else:
            s = rng.randrange(slots)
            live.append((i + 1, s + 1))
            d.add(s + 1, i + 1, "BS"[rng.random() < 0.5], rng.randint(1, 30),
                  1000 + rng.randint(-spread, spread), stock=names[s])
    return d.msgs, names


def shallow_rows_differ(raw, names, p, cache):
    """The emulator's rows at ``cache`` levels differ from its rows at p["levels"]."""
    common = dict(symbols=names, depth=p["depth"], symbols_capacity=p["symbols"],
                  order_buckets=p["order_buckets"], order_ways=p["order_ways"])
    deep = emulator_case(raw, levels=p["levels"], **common)[0]
    shallow = emulator_case(raw, levels=cache, **common)[0]
    return deep != shallow


@pytest.mark.parametrize("seed,slots,levels,cache", [(1, 1, 12, 4), (2, 3, 19, 3), (3, 2, 68, 4)])
def test_random_wide_books(seed, slots, levels, cache):
    raw, names = wide_day(seed, 400, slots=slots)
    p = dict(SMALL, order_buckets=256, order_ways=4, levels=levels, cache_levels=cache)
    assert shallow_rows_differ(raw, names, dict(p, depth=2), cache)
    _, c, _ = check(raw, names=names, params=p, state_slots=range(slots))
    assert c["level_miss"] == 0 or levels < 41


def test_full_array_evicts_and_refuses_with_backpressure():
    """More prices than cache + deep: the array's worst is evicted or the add refused, and
    reductions at dropped prices miss, exactly as the emulator counts them."""
    raw, names = wide_day(5, 500, slots=2, spread=12)
    p = dict(SMALL, order_buckets=256, order_ways=4, levels=7, cache_levels=3)
    assert shallow_rows_differ(raw, names, dict(p, depth=2), 3)
    _, c, _ = check(raw, names=names, params=p, ready_prob=0.5, gap_prob=0.2, seed=5,
                    state_slots=range(2))
    assert c["level_overflow"] > 0 and c["level_miss"] > 0


@pytest.mark.parametrize("seed", range(2))
def test_fault_streams_with_deep_levels(seed):
    raw, names = fault_day(300 + seed, 600, 8)
    check(raw, names=names[:4], params=dict(SMALL, order_buckets=1024, order_ways=4,
                                                      levels=7, cache_levels=3),
                    state_slots=range(4))


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"depth \(4\) must be below cache \(4\)"):
        LevelEngine(symbols=2, levels=8, depth=4, cache=4)
    with pytest.raises(ValueError, match=r"levels \(20\) - cache \(8\) = 12 deep levels: "
                       r"must be a power of two >= 2"):
        LevelEngine(symbols=2, levels=20, depth=4, cache=8)
    b = BookBuilder(symbols=2, levels=8, depth=4, cache_levels=16)
    b._MustUse__silence = True
    assert b.cache_levels == 8      # no deep levels: the cache is the whole array
    with pytest.raises(ValueError, match=r"depth \(32\) must be below cache \(32\)"):
        BookBuilder(symbols=2, levels=40, depth=32)
    with pytest.raises(ValueError, match=r"levels \(50\) - cache \(32\) = 18 deep levels"):
        BookBuilder(symbols=2, levels=50)


def test_deep_levels_unit_against_a_sorted_list():
    """DeepLevels alone: random PUSH / POP / ADD / REDUCE on small full and empty lists, then
    every list drained by POPs; refills, final order and counters as a plain sorted list."""
    from amaranth.sim import Simulator

    from tickwire.hw.book.deep import DeepKind, DeepLevels
    D = 8
    dut = DeepLevels(symbols=2, deep=D)
    rng = random.Random(9)
    model = {(s, d): [] for s in range(2) for d in range(2)}   # [price, shares, count], best first
    ovf = miss = 0
    reqs, want_refill = [], []

    def better(side, a, b):
        return a < b if side else a > b

    for _ in range(700):
        key = (rng.randrange(2), rng.randrange(2))
        lst, side = model[key], key[1]
        r = rng.random()
        if r < 0.2:
            best = lst[0][0] if lst else 1000
            p = best + (-rng.randint(1, 3) if side else rng.randint(1, 3))
            e = [p, rng.randint(1, 9), rng.randint(1, 3)]
            reqs.append(dict(kind=DeepKind.PUSH, slot=key[0], side=side,
                             entry=dict(price=p, shares=e[1], count=e[2])))
            if len(lst) == D:
                lst.pop()
                ovf += 1
            lst.insert(0, e)
            want_refill.append(None)
        elif r < 0.35:
            reqs.append(dict(kind=DeepKind.POP, slot=key[0], side=side))
            want_refill.append(tuple(lst.pop(0)) if lst else None)
        elif r < 0.7:
            p, a = 1000 + rng.randint(-12, 12), rng.randint(0, 9)
            reqs.append(dict(kind=DeepKind.ADD, slot=key[0], side=side, price=p, amount=a))
            want_refill.append(None)
            hit = [x for x in lst if x[0] == p]
            if hit:
                hit[0][1] = (hit[0][1] + a) & 0xFFFF_FFFF
                hit[0][2] += 1
                continue
            rank = sum(1 for x in lst if better(side, x[0], p))
            if len(lst) == D:
                ovf += 1
                if rank == len(lst):
                    continue
                lst.pop()
            lst.insert(rank, [p, a, 1])
        else:
            p = (lst[rng.randrange(len(lst))][0] if lst and rng.random() < 0.8
                 else 1000 + rng.randint(-12, 12))
            a, rm = rng.choice([0, 1, 3, 20]), rng.randrange(2)
            reqs.append(dict(kind=DeepKind.REDUCE, slot=key[0], side=side, price=p, amount=a,
                             removed=rm))
            want_refill.append(None)
            hit = [x for x in lst if x[0] == p]
            if not hit:
                miss += 1
            elif a == 0 and not rm:
                pass
            elif hit[0][1] <= a or hit[0][2] <= rm:
                lst.remove(hit[0])
            else:
                hit[0][1] -= a
                hit[0][2] -= rm
    for key, lst in model.items():     # drain: every list in order
        for _ in range(len(lst) + 1):
            reqs.append(dict(kind=DeepKind.POP, slot=key[0], side=key[1]))
            want_refill.append(tuple(lst.pop(0)) if lst else None)
    got = []

    async def bench(ctx):
        for q in reqs:
            ctx.set(dut.req, dict(dict(price=0, amount=0, removed=0,
                                       entry=dict(price=0, shares=0, count=0)), **q))
            ctx.set(dut.req_valid, 1)
            await ctx.tick()
            ctx.set(dut.req_valid, 0)
            while True:
                done, rv, rf = ctx.get(dut.done), ctx.get(dut.refill_valid), ctx.get(dut.refill)
                await ctx.tick()
                if done:
                    got.append((rf.price, rf.shares, rf.count) if rv else None)
                    break
        got.append((ctx.get(dut.level_overflow), ctx.get(dut.level_miss)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got[:-1] == want_refill
    assert got[-1] == (ovf, miss) and ovf > 10 and miss > 10
