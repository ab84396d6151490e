"""The book builder's gateware as the boards build it (1,056 levels a side, 2^20 × 4 orders in
off-chip memory) on the generated deep-book day (`host/gen.py` `generate_deep_day`: 64
symbols, 1.3 million messages, 1,039,892 live orders at the peak, four sides of 1,040 levels):
every top-N row and every book counter equal to the emulator's at the same capacities (the
gateware's defaults are the emulator's), no loss counter moving.

The builder runs on the fast Verilator harness (sim/book_builder/fast.py), its order table
served by the harness's AXI memory model at a DDR-like latency, its input held back while it
is busy: this measures the rate it sustains, in cycles per message. (The whole appliance at
line rate drops, and counts as ``overflow``, the packets of a build-up faster than that.)
"""

import numpy as np
import pytest
from test_book_fast import assert_same, emulator_rows_counters

from tickwire.host import gen
from tickwire.sim.book_builder.fast import run_book
from tickwire.sim.fastsim import AxiTiming
from tickwire.spec.capacity import (BOARD_ORDER_BUCKETS, BOOK_FIELDS, EMULATOR, GATEWARE,
                                     ROW_DEPTH)

pytestmark = pytest.mark.rtl

#: the board builds' capacities: the gateware's, with every live order of a day off chip
BOARD = dict(GATEWARE, order_buckets=BOARD_ORDER_BUCKETS)


def test_deep_day_builder_equals_emulator():
    # the boards' build: the emulator's default capacities
    assert {k: EMULATOR[k] for k in EMULATOR} == {k: BOARD[k] for k in EMULATOR}
    day = gen.generate_deep_day()
    stats = gen.book_stats(day)
    assert stats["peak_live_orders"] >= 1_000_000 and stats["deepest_levels"] >= 1000
    raw = list(day)
    p = dict({k: BOARD[k] for k in BOOK_FIELDS}, depth=ROW_DEPTH)
    want_rows, want_counters = emulator_rows_counters(raw, p)
    assert all(want_counters[k] == 0 for k in ("order_table_full", "level_overflow",
                                               "level_miss", "duplicate_ref", "unknown_ref",
                                               "overfill", "symbol_overflow"))
    rows, counters, cycles, mem = run_book(raw, timing=AxiTiming(latency=40, seed=1),
                                           order_buckets=BOARD_ORDER_BUCKETS)
    assert_same(rows, counters, want_rows, want_counters)
    assert len(rows["sequence"]) > 800_000
    # two line reads per order operation, a write per order stored or changed
    assert mem["reads"] == 2 * (mem["reads"] // 2) and mem["max_reads_outstanding"] > 8
    print(f"\ndeep day on the book builder: {len(raw):,} messages, "
          f"{len(rows['sequence']):,} rows equal; {cycles:,} cycles "
          f"({cycles / len(raw):.2f} a message); order-table memory {mem}")


def test_rtl_replay_at_line_rate_counts_and_warns_the_packets_it_drops(tmp_path):
    """The whole appliance fed at line rate (`tickwire replay --backend rtl`) with the deep
    day's build-up, faster than the book takes it: the line buffers drop whole packets,
    counted as ``overflow``, and the command says so (stderr, and ``feed_overflow`` in its
    JSON) instead of reporting a short book silently."""
    import json

    from typer.testing import CliRunner

    from tickwire.host.capture import write_binaryfile
    from tickwire.host.cli import app
    day = gen.generate_deep_day()
    path = tmp_path / "deep.bin"
    write_binaryfile(path, [day[i] for i in range(20_000)])
    r = CliRunner().invoke(app, ["replay", str(path), "--backend", "rtl", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["feed_overflow"] > 0 and s["messages"] < 20_000
    assert "the feed dropped" in r.stderr and "overflow" in r.stderr
