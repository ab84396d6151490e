"""The AMZN whole day at level 1 (LOBSTER, 2012-06-21) as ITCH: the emulator's best bid and ask
against the file's after each of its 57,515 events, at the emulator's and the gateware's
capacities."""

import numpy as np
import pytest

from tickwire.backends.rtl import rtl_config
from tickwire.host import hashstats, itch, lobster
from tickwire.host.config import Config
from tickwire.host.emu.pipeline import Emulator, messages_buffer

MSG = "lobster/AMZN_2012-06-21_34200000_57600000_message_1.csv.gz"
BOOK = "lobster/AMZN_2012-06-21_34200000_57600000_orderbook_1.csv.gz"
EVENTS = 57_515
LOSSES = ("unknown_ref", "duplicate_ref", "overfill", "order_table_full", "level_overflow",
          "level_miss", "symbol_overflow")


@pytest.fixture(scope="module")
def day(shared_data):
    sample = lobster.load(shared_data / MSG, shared_data / BOOK)
    msgs, event_index, stats = lobster.to_itch(sample, "AMZN")
    return sample, msgs, event_index, stats


def best_after_each_event(rows, event_index):
    """(ask p, ask s, bid p, bid s) after each event's message, from the change rows."""
    j = np.searchsorted(rows.msg, event_index, side="right") - 1
    out = rows.levels[np.maximum(j, 0), 0, :].astype(np.int64)
    out[j < 0] = 0
    return out


def run(msgs, cfg, stop=None):
    cfg.symbols = ["AMZN"]
    cfg.strategy.kind = "none"
    data, offs, seqs = messages_buffer(msgs[:stop])
    return Emulator(cfg, depth=1).run(data, offs, seqs)


def test_stream_is_the_days_events_and_implied_orders(day):
    sample, msgs, event_index, stats = day
    assert len(sample.events) == EVENTS
    kinds = {1: "A", 2: "X", 3: "D", 4: "E", 5: "P"}
    assert all(chr(msgs[i][0]) == kinds[int(t)] for i, t in zip(event_index,
                                                                 sample.events[:, 1]))
    real = set(sample.events[:, 2].tolist())
    added = [itch.decode(m)["order_reference_number"] for m in msgs if m[:1] == b"A"]
    made_up = [r for r in added if r not in real]
    assert all(r >= lobster.SYNTHETIC_REF_BASE for r in made_up)
    assert len(made_up) == stats["synthetic_adds"] > 0
    assert max(real) < lobster.SYNTHETIC_REF_BASE
    # the first event names an order the file never added: it is added right before it
    assert stats["resting_orders"] > 0


def test_best_bid_ask_exact_at_default_capacities(day):
    sample, msgs, event_index, stats = day
    cfg = Config()
    res = run(msgs, cfg)
    got = best_after_each_event(res.rows, event_index)
    want = sample.book_rows()[:, 0, :]
    wrong = np.nonzero((got != want).any(axis=1))[0]
    assert len(wrong) == 0, f"{len(wrong)} wrong rows, the first after event {wrong[0]}"
    c = res.counters
    assert {k: c[k] for k in LOSSES if k != "level_overflow"} == dict.fromkeys(
        [k for k in LOSSES if k != "level_overflow"], 0)
    # deep levels are evicted exactly when the implied book is deeper than the capacity
    deepest = max(stats["peak_bid_levels"], stats["peak_ask_levels"])
    assert (c["level_overflow"] > 0) == (deepest > cfg.capacity.levels)
    print(f"\nAMZN day: {len(msgs)} ITCH messages for {EVENTS} events, {stats}; "
          f"emulator at {cfg.capacity.levels} levels: level_overflow {c['level_overflow']}")


def test_order_table_at_gateware_capacities_stores_every_order(day):
    sample, msgs, event_index, stats = day
    cfg = rtl_config(Config())
    res = run(msgs, cfg)
    c = res.counters
    buckets, ways = cfg.capacity.order_buckets, cfg.capacity.order_ways
    # the two-bank table (fold and mix32 buckets) refuses none of the day's adds, as its model
    # in hashstats says; one bank of fold buckets of the same size refuses some
    stream = hashstats.itch_stream(msgs)
    model = hashstats.refusals(stream, buckets, ways, hashstats.BUILT)
    fold = hashstats.refusals(stream, buckets, ways, "fold")
    assert c["order_table_full"] == model["refused"] == 0
    assert fold["refused"] > 0
    assert c["unknown_ref"] == c["duplicate_ref"] == c["overfill"] == 0
    got = best_after_each_event(res.rows, event_index)
    want = sample.book_rows()[:, 0, :]
    wrong = np.nonzero((got != want).any(axis=1))[0]
    # what is left to lose is levels, and only when the day is deeper than the capacity;
    # never silently wrong: a loss is counted before the first wrong row
    deepest = max(stats["peak_bid_levels"], stats["peak_ask_levels"])
    assert (c["level_overflow"] > 0) == (deepest > cfg.capacity.levels)
    if len(wrong):
        before = run(msgs, rtl_config(Config()), stop=int(event_index[wrong[0]]) + 1).counters
        assert sum(before[k] for k in LOSSES) > 0
    print(f"\nAMZN day at the gateware's capacities ({cfg.capacity.levels} levels, "
          f"{buckets}x{ways} orders in two banks): {len(wrong)} of {EVENTS} best bid/ask rows "
          f"wrong; " + ", ".join(f"{k} {c[k]}" for k in LOSSES)
          + f"; one fold bank would refuse {fold['refused']} adds")


def test_exact_at_gateware_order_capacity_with_the_days_depth(day):
    # the gateware's order table with as many levels as the day needs: every row right
    sample, msgs, event_index, stats = day
    cfg = rtl_config(Config())
    cfg.capacity.levels = max(stats["peak_bid_levels"], stats["peak_ask_levels"])
    res = run(msgs, cfg)
    got = best_after_each_event(res.rows, event_index)
    want = sample.book_rows()[:, 0, :]
    wrong = np.nonzero((got != want).any(axis=1))[0]
    assert len(wrong) == 0, f"{len(wrong)} wrong rows, the first after event {wrong[0]}"
    assert {k: res.counters[k] for k in LOSSES} == dict.fromkeys(LOSSES, 0)
    print(f"\nAMZN day at {cfg.capacity.order_buckets}x{cfg.capacity.order_ways} orders "
          f"and {cfg.capacity.levels} levels: all {EVENTS} best bid/ask rows right, no loss")
