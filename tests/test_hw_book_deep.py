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
