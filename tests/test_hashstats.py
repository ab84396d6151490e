"""The order-table model of hashstats against the emulator's table."""

import numpy as np
import pytest

from tickwire.host import hashstats
from tickwire.host.emu.core import mix_hash, order_hash
from tickwire.hw.book.hash import mix_bucket
from tickwire.host.emu.pipeline import Emulator, messages_buffer
from emu_helpers import Day, config


@pytest.mark.parametrize("buckets,ways", [(1 << 12, 4), (1 << 14, 4), (1 << 20, 4), (64, 8)])
def test_fold_index_is_the_emulators_hash(buckets, ways):
    refs = np.concatenate([hashstats.uniform_keys(500),
                           hashstats.sequential_keys(500, 1, start=(1 << 40) - 7)])
    bits, wb = buckets.bit_length() - 1, ways.bit_length() - 1
    want = [int(order_hash(np.uint64(r), bits, wb)) for r in refs]
    assert hashstats.fold_index(refs, buckets, ways).tolist() == want


@pytest.mark.parametrize("bits", [1, 5, 11, 19, 32])
def test_mix32_index_is_the_emulators_and_the_gatewares_hash(bits):
    refs = np.concatenate([hashstats.uniform_keys(500),
                           hashstats.sequential_keys(500, 1, start=(1 << 40) - 7)])
    want = [int(mix_hash(np.uint64(r), bits)) for r in refs]
    assert hashstats.mix32_index(refs, 1 << bits, 4).tolist() == want
    assert [mix_bucket(int(r), bits) for r in refs] == want


def test_refusals_equal_the_emulators_order_table_full():
    # a small table crowded far past its size by sequential references
    day = Day(symbols=("AAPL",))
    rng = np.random.default_rng(3)
    live = []
    for ref in range(1, 3000):
        if live and rng.random() < 0.45:
            day.delete("AAPL", live.pop(int(rng.integers(len(live)))))
        day.add("AAPL", ref, "B", 100, 1_000_000 + 100 * int(rng.integers(0, 20)))
        live.append(ref)
    cfg = config(("AAPL",), order_buckets=64, order_ways=4, levels=64)
    emu = Emulator(cfg, depth=1)
    res = emu.run(*messages_buffer(day.msgs))
    got = hashstats.refusals(hashstats.itch_stream(day.msgs), 64, 4, hashstats.BUILT)
    assert res.counters["order_table_full"] == got["refused"] > 0
    assert got["adds"] == 2999


def test_churn_holds_the_load():
    keys = hashstats.sequential_keys(5000, 4)
    s = hashstats.churn_stream(keys, 1000)
    assert s.is_add.sum() == 5000 and (~s.is_add).sum() == 4000 and s.adds == 4000
    live = np.cumsum(np.where(s.is_add, 1, -1))
    assert live[999] == 1000 and live.max() == 1000 and live[-1] == 1000
    # every removal undoes an earlier add of the same reference
    rm = np.nonzero(~s.is_add)[0]
    assert (s.pair[rm] < rm).all() and (s.ref[s.pair[rm]] == s.ref[rm]).all()


def test_uniform_baseline_matches_balls_in_bins():
    # a filled 4-way table at load a refuses about P(Poisson(4a) >= 4) of the next adds
    buckets, ways, load = 1 << 12, 4, 0.5
    keys = hashstats.uniform_keys(int(buckets * ways * 1.5))
    s = hashstats.churn_stream(keys, int(load * buckets * ways))
    r = hashstats.refusals(s, buckets, ways, "uniform")
    lam = ways * load
    poisson_full = 1 - np.exp(-lam) * sum(lam ** k / np.prod(range(1, k + 1)) for k in range(4))
    # refused orders leave the table emptier than the offered load: fewer refusals
    assert 0.5 * poisson_full < r["rate"] < poisson_full


def test_two_choices_refuse_fewer_than_one():
    keys = hashstats.sequential_keys(30_000, 1)
    s = hashstats.churn_stream(keys, int(0.5 * 4096 * 4))
    one = hashstats.refusals(s, 4096, 4, "fold")["refused"]
    two = hashstats.refusals(s, 4096, 4, "fold+mix")["refused"]
    banks = hashstats.refusals(s, 4096, 4, hashstats.BUILT)["refused"]
    assert two < one / 10 and banks < two


def test_study_table_has_a_cell_per_index():
    rows = hashstats.study(None, churn_geometries=((256, 4),), loads=(0.25, 0.5))
    table = hashstats.markdown(rows).splitlines()
    assert len(rows) == 3 * 2 * len(hashstats.INDEXES)      # 3 key patterns x 2 loads
    assert len(table) == 2 + 3 * 2
    assert all(line.count("|") == 4 + len(hashstats.INDEXES) for line in table)
    # the step-4 pattern reaches a quarter of the low-bits buckets: far more refusals
    step4 = {ix: r for name, load, _, _, ix, r in rows if "step 4" in name and load == 0.5}
    assert step4["low"]["rate"] > 4 * step4["fold"]["rate"]
