"""The emulator's book against LOBSTER's 10-level book after every event of the sample."""

import numpy as np
import pytest

from tickwire.host import lobster
from tickwire.host.config import Config
from tickwire.host.emu.pipeline import Emulator, messages_buffer

MSG = "lobster/AAPL_2012-06-21_34200000_57600000_message_10.csv"
BOOK = "lobster/AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"


@pytest.fixture(scope="module")
def sample(shared_data):
    return lobster.load(shared_data / MSG, shared_data / BOOK)


def book_after_each_event(rows, event_index):
    """Top-N state after each event from the change rows (a row is emitted only on change)."""
    out = np.zeros((len(event_index), rows.levels.shape[1], 4), np.int64)
    cur = np.zeros(out.shape[1:], np.int64)
    j = 0
    for e, m in enumerate(event_index):
        while j < len(rows) and rows.msg[j] <= m:
            cur = rows.levels[j].astype(np.int64)
            j += 1
        out[e] = cur
    return out


@pytest.mark.parametrize("levels", [256, 32])  # software default and the gateware default
def test_lobster_replays_exactly(sample, levels):
    msgs, event_index, stats = lobster.to_itch(sample)
    assert len(sample.events) == 999
    data, offs, seqs = messages_buffer(msgs)
    cfg = Config(symbols=["AAPL"])
    cfg.strategy.kind = "none"
    cfg.capacity.levels = levels
    res = Emulator(cfg, depth=10).run(data, offs, seqs)
    got = book_after_each_event(res.rows, event_index)
    want = sample.book_rows()
    mismatched = [e for e in range(len(want)) if not np.array_equal(got[e], want[e])]
    assert mismatched == [], f"first mismatch at event {mismatched[:1]}"
    c = res.counters
    assert c["unknown_ref"] == 0 and c["level_miss"] == 0 and c["overfill"] == 0
    assert c["level_overflow"] == 0
    # what the two files imply beyond their events stays small and is accounted for
    assert stats["resting_orders"] < 20 and stats["synthetic_adds"] < 60


def test_lobster_stream_decodes(sample):
    from tickwire.host import itch
    msgs, event_index, _ = lobster.to_itch(sample)
    types = [itch.decode(m)["type"] for m in msgs]
    assert types[0] == "R"
    kinds = {1: "A", 3: "D", 4: "E", 5: "P", 2: "X"}
    for e, typ in enumerate(sample.events[:, 1]):
        assert types[event_index[e]] == kinds[int(typ)]
