"""itch-book (an independent C++ ITCH 5.0 book builder from PyPI) as an oracle of our book."""

import datetime as dt

import numpy as np
import pytest

import itch_book  # noqa: E402  (the peer: a dev dependency)

from tickwire.host import gen  # noqa: E402
from tickwire.host.config import Config  # noqa: E402
from tickwire.host.emu.pipeline import load_source, replay  # noqa: E402


def peer_bbo(path):
    feed = itch_book.Feed(str(path), date=dt.date(2026, 1, 2), price_type="fixed")
    parts = [b.bbo for b in feed.batches(tables=("bbo",))]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@pytest.mark.parametrize("seed", [11, 12])
def test_top_of_book_equals_itch_book(tmp_path, seed):
    path = tmp_path / "day.itch"
    gen.write_capture(gen.generate_day(symbols=64, messages=60_000, seed=seed), path,
                      fmt="binaryfile")
    cfg = Config()
    cfg.capacity.symbols = 256
    res = replay(load_source(path), None, 1, cfg)
    ours = res.rows
    theirs = peer_bbo(path)
    assert len(ours) == len(theirs["seq"]) > 10_000
    assert np.array_equal(ours.sequence, theirs["seq"])
    got = ours.levels[:, 0, :].astype(np.int64)
    want = np.stack([theirs["ask_px"], theirs["ask_sz"], theirs["bid_px"], theirs["bid_sz"]], 1)
    assert np.array_equal(got, want)
    # the slot → locate mapping agrees with the peer's locate column
    names = np.array(res.symbols)
    loc_of = {}
    for slot, loc in zip(ours.slot, theirs["locate"]):
        assert loc_of.setdefault(int(slot), int(loc)) == int(loc)
    assert len(loc_of) == len(names)
