"""The book builder on the fast Verilator harness (sim/book_builder/fast.py) against the
emulator: every top-N row and every book counter, with the order table off chip behind the
harness's AXI memory model at a DDR-like latency and back-pressure.

The generated day with 10^6 live orders and 1,000 levels on a side is in
tests/test_book_deep_day.py.
"""

import numpy as np
import pytest

from tickwire.sim.book_builder.fast import decoded_records, run_book
from tickwire.sim.book_builder.gen import _emulator, fault_day, to_decoded
from tickwire.sim.fastsim import AxiTiming

pytestmark = pytest.mark.rtl


def emulator_rows_counters(raw, p):
    from tickwire.host.emu.pipeline import messages_buffer
    emu = _emulator(None, p["depth"], p["symbols"], p["order_buckets"], p["order_ways"],
                    p["levels"])
    res = emu.run(*messages_buffer(raw))
    return res.rows, {k: int(v) for k, v in res.counters.items()}


def assert_same(rows, counters, want_rows, want_counters):
    assert len(rows["sequence"]) == len(want_rows)
    assert np.array_equal(rows["sequence"], want_rows.sequence.astype(np.uint64))
    assert np.array_equal(rows["slot"], want_rows.slot.astype(np.int64))
    assert np.array_equal(rows["timestamp"], want_rows.timestamp.astype(np.uint64))
    bad = np.flatnonzero((rows["levels"] != want_rows.levels.astype(np.uint32)).any(axis=(1, 2)))
    assert not len(bad), f"{len(bad)} rows differ, first at sequence {rows['sequence'][bad[0]]}"
    assert counters == {k: want_counters[k] for k in counters}


def test_decoded_records_match_field_decoder():
    raw, _ = fault_day(3, 400, 10)
    recs = decoded_records(raw)
    for i, m in enumerate(raw):
        d = to_decoded(m, i + 1)
        at, got = 0, {}
        for name, size in (("type", 1), ("locate", 2), ("timestamp", 6), ("sequence", 8),
                           ("ref", 8), ("new_ref", 8), ("side", 1), ("shares", 4),
                           ("price", 4), ("stock", 8), ("state", 1)):
            got[name] = int.from_bytes(recs[i, at:at + size].tobytes(), "little")
            at += size
        assert got == d, f"message {i} ({chr(m[0])})"


@pytest.mark.parametrize("latency,backpressure", [(40, 0.2), (200, 0.0)])
def test_offchip_table_small_crowded(latency, backpressure):
    """64 buckets for 20 symbols' orders: full buckets, refusals, evictions and misses, and
    ops on buckets still in flight, at two memory latencies."""
    raw, _ = fault_day(5, 3000, 20)
    p = dict(symbols=8, order_buckets=64, order_ways=4, levels=12, depth=3, cache_levels=4,
             order_memory="offchip", mem_data_width=512, mem_addr_width=32, mem_inflight=32)
    rows, counters, cycles, stats = run_book(
        raw, timing=AxiTiming(latency=latency, backpressure=backpressure, seed=3), **p)
    want_rows, want_counters = emulator_rows_counters(raw, p)
    assert_same(rows, counters, want_rows, want_counters)
    assert counters["order_table_full"] > 0 and counters["level_overflow"] > 0
    # two bucket reads per order op; one write per stored or changed order
    assert stats["reads"] % 2 == 0 and stats["read_beats"] == 2 * stats["reads"]
    assert stats["max_reads_outstanding"] > 4
