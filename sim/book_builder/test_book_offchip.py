"""cocotb/Verilator bench of the book builder with its order table off chip: the ``mem`` AXI4
port served by cocotbext-axi's ``AxiRam`` with latency and back-pressure
(:mod:`.axi_mem`); every top-N row, BookEvent, counter and slot state the emulator's.

Two builds: a tiny one (32 buckets × 4 ways, 256-bit bus, 8 ops in flight) where full
buckets and ops on a bucket still in flight are common, and the boards' capacities (the
defaults with 2^20 × 4 orders, off chip).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickwire.sim.book_builder.gen import fault_day
from tickwire.spec.capacity import BOARD_ORDER_BUCKETS
from tickwire.sim.book_builder.test_book_builder import (BIG, TINY, _build, make_case, run_case,
                                                        table_axi)

pytestmark = pytest.mark.rtl

LOBSTER_MSG = "lobster/AAPL_2012-06-21_34200000_57600000_message_10.csv"
LOBSTER_BOOK = "lobster/AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"

TINY_OFF = dict(TINY, order_memory="offchip", mem_data_width=256, mem_addr_width=32,
                mem_inflight=8)
BIG_OFF = dict(BIG, order_buckets=BOARD_ORDER_BUCKETS)      # the boards' build


@pytest.fixture(scope="module")
def tiny_offchip():
    return _build("book_builder_tiny_offchip", TINY_OFF)


@pytest.fixture(scope="module")
def big_offchip():
    # the defaults' own build when they already put the table off chip (one build, cached)
    same = table_axi(BIG) is not None
    return _build("book_builder" if same else "book_builder_offchip", BIG_OFF)


def _run(design, case_file: Path):
    """The bench's stats and the AXI memory's (bursts, latencies seen on the port)."""
    stats = run_case(design, case_file)
    return stats, json.loads(Path(str(case_file) + ".axi").read_text())


@pytest.mark.parametrize("seed,latency,backpressure,base", [
    (1, 24, 0.25, 0x1_0000),
    (2, 60, 0.1, 0),
])
def test_tiny_table_off_chip(tiny_offchip, tmp_path, seed, latency, backpressure, base):
    """32 buckets × 4 ways behind the AXI RAM: full buckets, duplicate and unknown references,
    evictions and level misses as on chip, with ops on buckets still in flight; back-pressure
    on the AXI channels (and on both stream ends for seed 2)."""
    raw, names = fault_day(seed, 2500, 10, **({} if seed == 1 else dict(duplicate_ref=0.1)))
    name = f"offchip_tiny_{seed}"
    axi = table_axi(TINY_OFF, base=base, latency=latency, backpressure=backpressure, seed=seed)
    case = make_case(tmp_path, name, raw, TINY_OFF, names=names[:6] if seed == 1 else None,
                     ready_prob=0.7 if seed == 2 else 1.0, seed=seed, axi=axi)
    c = case["counters"]
    assert c["order_table_full"] > 100 and c["duplicate_ref"] > 0 and c["unknown_ref"] > 0
    (accepted, span, _, _), mem = _run(tiny_offchip, tmp_path / f"{name}.pkl")
    assert accepted == len(raw)
    # the latency was pipelined (several reads outstanding) and seen on the port
    assert mem["max_reads_outstanding"] > 2 and mem["read_latency"][0] >= latency
    print(f"\n{name}: {accepted} messages in {span} cycles ({span / accepted:.1f} per "
          f"message); AXI {mem}")


def test_lobster_sample_off_chip(big_offchip, shared_data, tmp_path):
    """The LOBSTER AAPL sample at the gateware's capacities, its table behind the AXI RAM at
    a nonzero base with a DDR-like latency and back-pressure."""
    from tickwire.host import lobster
    sample = lobster.load(shared_data / LOBSTER_MSG, shared_data / LOBSTER_BOOK)
    raw, _, _ = lobster.to_itch(sample)
    axi = table_axi(BIG_OFF, base=1 << 28, latency=40, backpressure=0.2, seed=3)
    make_case(tmp_path, "offchip_lobster", raw, BIG_OFF, names=["AAPL"], state_slots=[0],
              axi=axi)
    (accepted, span, _, _), mem = _run(big_offchip, tmp_path / "offchip_lobster.pkl")
    assert accepted == len(raw) and mem["read_latency"][0] >= 40
    print(f"\nLOBSTER AAPL off chip: {accepted} messages in {span} cycles; AXI {mem}")


def test_fault_day_off_chip(big_offchip, tmp_path):
    """A generated day of 90 locates with faults at the default capacities (auto mode),
    back-pressure on the AXI channels and both stream ends."""
    raw, _ = fault_day(12, 1200, 90)
    axi = table_axi(BIG_OFF, latency=60, backpressure=0.1, seed=7)
    case = make_case(tmp_path, "offchip_day", raw, BIG_OFF, names=None, ready_prob=0.6,
                     idle_prob=0.2, seed=7, axi=axi)
    assert case["counters"]["book_updates"] > 300
    (accepted, span, _, _), mem = _run(big_offchip, tmp_path / "offchip_day.pkl")
    assert accepted == len(raw) and mem["read_latency"][0] >= 60
    print(f"\nfault day off chip: {accepted} messages in {span} cycles; AXI {mem}")
