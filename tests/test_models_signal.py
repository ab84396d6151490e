"""Trigger price rules (tick rounding, never crossing) and the SignalEngine loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.models.dataset import synthetic_rows
from tickwire.models.mlp import random_mlp
from tickwire.models.signal import (
    NO_BUY, NO_SELL, SignalEngine, _trigger_scalar, fair_value, trigger_prices,
)

TICK = 100


@settings(max_examples=300, deadline=None)
@given(fair=st.floats(min_value=0.0, max_value=2e9, allow_nan=False),
       edge=st.floats(min_value=0.0, max_value=50.0))
def test_trigger_rules(fair, edge):
    buy, sell = trigger_prices(fair, edge)
    b, s = int(buy[0]), int(sell[0])
    assert (b, s) == _trigger_scalar(fair, edge, TICK)  # latency path == reference
    assert b % TICK == 0 and (s % TICK == 0 or s == NO_SELL)
    if b != NO_BUY:
        assert b <= fair - edge * TICK + 1e-6  # at least the edge below fair
        assert b > fair - edge * TICK - TICK - 1e-6  # ...and the nearest tick that is
    if s != NO_SELL:
        assert s >= fair + edge * TICK - 1e-6
    if b != NO_BUY and s != NO_SELL:
        assert s >= b + TICK  # never crossed, never locked


def test_trigger_examples():
    buy, sell = trigger_prices([585_0050.0, 585_0000.0, 585_0000.0], edge_ticks=1.0)
    assert buy.tolist() == [584_9900, 584_9900, 584_9900]
    assert sell.tolist() == [585_0200, 585_0100, 585_0100]
    b, s = trigger_prices([585_0000.0], edge_ticks=0.0)  # fair on a tick, no edge
    assert (int(b[0]), int(s[0])) == (585_0000, 585_0100)
    b, s = trigger_prices([np.nan, 50.0], edge_ticks=1.0)
    assert b.tolist() == [NO_BUY, NO_BUY] and s.tolist() == [NO_SELL, 200]
    with pytest.raises(ValueError):
        trigger_prices([1.0], edge_ticks=-1)


def test_fair_value():
    mid = np.array([1_000_000.0, 1_000_000.0, 1_000_000.0])
    p = np.array([[0, 0, 1], [1, 0, 0], [0.25, 0.5, 0.25]], dtype=np.float32)
    np.testing.assert_allclose(fair_value(mid, p, 2.0), [1_000_200.0, 999_800.0, 1_000_000.0])


class Sink:
    def __init__(self):
        self.calls = []

    def __call__(self, slot, buy, sell, qty):
        self.calls.append((slot, buy, sell, qty))


def _engine(**kw):
    sink = Sink()
    return SignalEngine(random_mlp(seed=1), sink, backend="numpy", n_slots=8, **kw), sink


def test_engine_writes_only_changes():
    eng, sink = _engine(edge_ticks=1.0, quantity={0: 100, 1: 50})
    rows = synthetic_rows(2000, 2, seed=3)
    st_ = eng.run(rows)
    assert st_["updates"] == 2000 and st_["trigger_writes"] == len(sink.calls) > 0
    assert st_["trigger_writes"] < st_["updates"]  # unchanged triggers are not rewritten
    last = {}
    for slot, buy, sell, qty in sink.calls:
        assert last.get(slot) != (buy, sell, qty)
        last[slot] = (buy, sell, qty)
        assert buy % TICK == 0 and sell % TICK == 0 and sell > buy
        assert qty == (100 if slot == 0 else 50)
    assert eng.current(0).buy_price == last[0][0]
    lat = st_["update_to_write"]
    assert lat["n"] == len(sink.calls) and 0 < lat["p50_us"] <= lat["p99_us"]


def test_engine_fair_value_brackets_mid():
    eng, sink = _engine(edge_ticks=2.0)
    book = np.array([[(1_000_300, 100, 1_000_000, 100)]], dtype=np.int64)[0]
    eng.on_update(3, book)
    slot, buy, sell, _ = sink.calls[-1]
    mt = eng.move_ticks
    assert slot == 3
    assert 1_000_150 - (2 + mt) * TICK - TICK < buy <= 1_000_150 - 2 * TICK + mt * TICK
    assert sell - buy >= 4 * TICK


def test_engine_disables_on_one_sided_book_and_uses_newest_row():
    eng, sink = _engine()
    ok = np.array([[1_000_300, 100, 1_000_000, 100]], dtype=np.int64)
    empty_bid = np.array([[1_000_300, 100, 0, 0]], dtype=np.int64)
    eng.on_update(1, ok)
    assert sink.calls[-1][1] != NO_BUY
    eng.on_update(1, empty_bid)
    assert sink.calls[-1] == (1, NO_BUY, NO_SELL, 100)
    n = len(sink.calls)
    # a batch touching slot 2 twice: one model row, priced from the newest book
    eng.on_batch([2, 2], np.stack([empty_bid, ok]))
    assert len(sink.calls) == n + 1 and sink.calls[-1][1] != NO_BUY
    assert eng.stats()["model_rows"] == 3


def test_engine_batches_match_single_updates():
    rows = synthetic_rows(600, 3, seed=8)
    e1, s1 = _engine()
    e1.run(rows, batch=1)
    e2, s2 = _engine()
    for i in range(len(rows)):  # same stream, fed as one-row batches through on_batch
        e2.on_batch(rows.slot[i:i + 1], rows.levels[i:i + 1])
    assert s1.calls == s2.calls
    e3, s3 = _engine()
    e3.run(rows, batch=50)
    # coarser batches see fewer intermediate books but end in the same state
    assert {c[0]: c for c in s3.calls} == {c[0]: c for c in s1.calls}


# ---------------------------------------------------------------------------------------------
# the emulator's strategy hook


class FakeCtx:
    """The strategy context of host/strategies.py without a device: a book fed rows, and
    the trigger writes recorded."""

    def __init__(self, slots=4, depth=10):
        from tickwire.host.strategies import BookView
        self.book = BookView(slots, depth)
        self.writes = []

    def set_trigger(self, slot, buy, sell, qty, enable_buy=True, enable_sell=True,
                    rearm=None, ref_price=-1):
        self.writes.append((slot, buy, sell, qty, enable_buy, enable_sell, ref_price))

    def feed(self, slots, levels):
        n = len(slots)
        self.book.update((np.zeros(n, np.uint64), np.zeros(n, np.uint64),
                          np.asarray(slots), np.asarray(levels)))


def model_strategy(ctx, quantity=100):
    from tickwire.host.config import Config
    from tickwire.host.strategies import ModelStrategy
    cfg = Config()
    cfg.strategy.kind = "model"
    cfg.strategy.quantity = quantity
    m = ModelStrategy(cfg, model=random_mlp(seed=2), backend="numpy")
    m.start(ctx)
    return m


def test_model_strategy_prices_two_sided_books():
    ctx = FakeCtx()
    m = model_strategy(ctx, quantity=10)
    books = np.zeros((2, 10, 4), np.int64)
    books[0, 0] = (1_000_300, 100, 1_000_000, 100)
    books[1, 0] = (2_000_300, 100, 0, 0)  # one-sided: stays disabled, nothing written
    ctx.feed([0, 1], books)
    m.poll(ctx)
    assert [w[0] for w in ctx.writes] == [0]
    slot, buy, sell, qty, eb, es, ref = ctx.writes[0]
    assert qty == 10 and eb and es and ref == 1_000_150 and buy < ref < sell
    ctx.feed([], np.zeros((0, 10, 4), np.int64))   # no rows: no model call, no write
    m.poll(ctx)
    assert len(ctx.writes) == 1 and m.engine.updates == 2
    one = np.zeros((1, 10, 4), np.int64)
    one[0, 0] = (1_000_300, 100, 0, 0)              # slot 0 loses its bid: disabled
    ctx.feed([0], one)
    m.poll(ctx)
    assert ctx.writes[-1] == (0, NO_BUY, NO_SELL, 10, False, False, -1)


def test_model_strategy_on_the_emulator_device():
    from tickwire.backends.emu import EmuDevice
    from tickwire.backends.wire import frames_of
    from tickwire.host.cli import SAMPLE
    from tickwire.host.config import Config
    from tickwire.host.hostloop import run_device
    from tickwire.host.strategies import ModelStrategy
    cfg = Config()
    cfg.strategy.kind = "model"
    cfg.strategy.poll_messages = 512
    res = run_device(EmuDevice(cfg), frames_of(SAMPLE), cfg,
                     strategy=ModelStrategy(cfg, backend="numpy"))
    assert res.signal["trigger_writes"] == len(res.writes) > 0
    w = res.writes
    assert (w[:, 2] % TICK == 0).all() and (w[:, 3] > w[:, 2]).all()
    assert len(res.orders) > 0


def test_model_strategy_with_shallow_rows():
    rows = synthetic_rows(300, 3, depth=5, seed=4)  # shallower than the model's 10 levels
    ctx = FakeCtx()
    m = model_strategy(ctx)
    ctx.feed(rows.slot, rows.levels)
    m.poll(ctx)
    assert m.engine.updates == 300 and len(ctx.writes) == 3  # one batch: newest per slot
