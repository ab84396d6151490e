"""Capacities: what the book, the tables and the histogram hold, and their defaults.

Two sets of defaults exist because the two back-ends differ in what memory costs: the
gateware's build parameters (on-chip tables) and the emulator's (host memory). The emulator
run "at the gateware's capacities" (:func:`gateware_capacity`) is the RTL's scoreboard.
"""

from __future__ import annotations

__all__ = ["GATEWARE", "BOARD_ORDER_BUCKETS", "ONCHIP_ORDER_BUCKETS", "ORDER_LINE_BYTES", "EMULATOR", "BOOK_FIELDS", "ROW_DEPTH", "gateware_capacity"]

#: Build parameters of the gateware (hw/appliance.py and the register file report them in
#: the CAPACITY registers): symbol slots, price levels per slot and side, order-table buckets
#: and ways, feed group table entries, latency histogram bins.
GATEWARE = {"symbols": 64, "levels": 1056, "order_buckets": 1 << 12, "order_ways": 4,
            "groups": 4, "hist_bins": 33}

#: The order table of the board builds (hw/board/targets.py): every live order of a day
#: (10^6 at 25 % load), off chip. The default build above keeps 16,384 on chip: no memory
#: round trip in the tick-to-trade path, and what the RTL simulation runs by default.
BOARD_ORDER_BUCKETS = 1 << 20

#: The most order-table buckets kept on chip (block/ultra RAM); a bigger table (the boards'
#: 2^20 × 4 orders: 128 MiB) lives in the board's DDR/HBM behind the book builder's AXI4
#: master (``order_memory="auto"`` of the gateware).
ONCHIP_ORDER_BUCKETS = 1 << 14

#: Bytes of one order-table bucket in that memory: 4 ways of 136-bit records in two 512-bit
#: words (hw/book/orders_offchip.py ``line_geometry``); the table is ``order_buckets`` lines.
ORDER_LINE_BYTES = 128

#: The emulator's defaults (``[capacity]`` of the TOML config): deep enough for a real day,
#: as deep as the gateware's book.
EMULATOR = {"symbols": 64, "levels": GATEWARE["levels"], "order_buckets": 1 << 20,
            "order_ways": 4}

#: Levels per side in the gateware's book rows (the book-update stream) and in a run's rows
#: on every back-end, so their ``book_updates`` counters agree; shallower replays are
#: derived from these rows.
ROW_DEPTH = 10

#: The capacities the book builder is built or configured with (a Config's ``capacity``).
BOOK_FIELDS = ("symbols", "levels", "order_buckets", "order_ways")


def gateware_capacity(**overrides) -> dict[str, int]:
    """The gateware's capacities with ``overrides`` (e.g. ``symbols=8``) applied."""
    unknown = set(overrides) - set(GATEWARE)
    if unknown:
        raise ValueError(f"unknown capacity {sorted(unknown)} (known: {', '.join(GATEWARE)})")
    return dict(GATEWARE, **overrides)
