"""Throughput of decode + book building, in-process after warm-up, with itch-book beside it.

Both sides do the same job on the same file from the page cache: read it, decode every message
and maintain full-depth books of every symbol, emitting a top-of-book row on each change
(tickwire: depth-1 rows in auto mode; itch-book: its ``bbo`` table).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from .config import Config
from .capture import sniff_format
from .emu.pipeline import Emulator, load_source, run_source


def _ours(path: Path) -> tuple[int, int, float]:
    t0 = time.perf_counter()
    cfg = Config()
    cfg.strategy.kind = "none"
    cfg.capacity.symbols = 16384          # a whole NASDAQ day has ~12k symbols
    cfg.capacity.order_buckets = 1 << 20  # 4M order entries: a full day's live orders
    if sniff_format(path) == "binaryfile":
        res = Emulator(cfg, depth=1).run_binaryfile(path)
        n = res.counters["messages"]
    else:
        src = load_source(path)
        res = run_source(src, cfg, depth=1)
        n = len(src.offsets)
    return n, len(res.rows), time.perf_counter() - t0


def _peer(path: Path) -> tuple[int, int, float]:
    import itch_book
    t0 = time.perf_counter()
    feed = itch_book.Feed(str(path), date=dt.date(2026, 1, 2), price_type="fixed")
    rows = 0
    for b in feed.batches(tables=("bbo",)):
        rows += len(b.bbo["seq"])
    return int(feed.stats["messages"]), rows, time.perf_counter() - t0


def bench_file(path: str | Path, repeat: int = 3, peer: bool = False) -> dict:
    """Best-of-``repeat`` seconds for tickwire (and itch-book with ``peer``) on ``path``.

    With ``peer`` the two tools alternate run by run, so a noisy machine slows both alike.
    """
    path = Path(path)
    if peer and sniff_format(path) != "binaryfile":
        peer = False
        peer_error = "itch-book reads BinaryFILE only"
    else:
        peer_error = None
    n, rows, _ = _ours(path)  # warm-up: JIT and page cache
    if peer:
        pn, prows, _ = _peer(path)
    ours, theirs = [], []
    for _ in range(max(1, repeat)):
        ours.append(_ours(path)[2])
        if peer:
            theirs.append(_peer(path)[2])
    best = min(ours)
    out = {"file": str(path), "messages": n, "bbo_rows": rows, "seconds": best,
           "msgs_per_s": n / best}
    if peer_error:
        out["peer_error"] = peer_error
    if peer:
        pbest = min(theirs)
        out["peer"] = {"name": "itch-book", "messages": pn, "bbo_rows": prows,
                       "seconds": pbest, "msgs_per_s": pn / pbest}
        out["ratio"] = pbest / best
    return out
