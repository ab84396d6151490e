"""The book builder's pure-Python reference model (sim/book_builder/model.py) agrees with the
numba emulator, which defines the semantics: same rows, counters and slot state."""

import pytest

from tickwire.sim.book_builder.gen import emulator_rows, random_day, to_decoded
from tickwire.sim.book_builder.model import BookModel


@pytest.mark.parametrize("seed, names, caps, kw", [
    (1, 6, dict(symbols=8, order_buckets=32, order_ways=4, levels=6, depth=3), dict(spread=9)),
    (2, None, dict(symbols=8, order_buckets=16, order_ways=2, levels=4, depth=4),
     dict(spread=7, ref_space=300)),
    (3, 40, dict(symbols=64, order_buckets=4096, order_ways=4, levels=32, depth=10),
     dict(n_locates=90, spread=70, hot=0.5, hot_switch=0.003, add_share=0.6)),
    (4, None, dict(symbols=64, order_buckets=256, order_ways=1, levels=32, depth=32),
     dict(n_locates=90, spread=50, odd=0.1)),
])
def test_model_matches_emulator(seed, names, caps, kw):
    kw.setdefault("n_locates", 10)
    raw, all_names = random_day(seed, 3000, **kw)
    names = all_names[:names] if names else None
    want, want_c, emu = emulator_rows(raw, symbols=names, depth=caps["depth"],
                                      symbols_capacity=caps["symbols"],
                                      order_buckets=caps["order_buckets"],
                                      order_ways=caps["order_ways"], levels=caps["levels"])
    m = BookModel(names=names or (), auto=names is None, **caps)
    rows = [r for r in (m.process(to_decoded(x, i + 1)) for i, x in enumerate(raw)) if r]
    assert rows == want
    assert m.counters == want_c
    st = emu.state
    for s in range(caps["symbols"]):
        assert m.trading_state[s] == st.trading_state[s]
        assert m.last_trade[s] == (int(st.last_trade[s, 0]),
                                   int(st.last_trade[s, 1]) & 0xFFFF_FFFF)
