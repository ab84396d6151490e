"""The top-N book CSV of ``tickwire replay --book-out`` (same bytes from every back-end)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def header(depth: int) -> str:
    cols = ["sequence", "timestamp", "symbol"]
    for k in range(1, depth + 1):
        cols += [f"ask_price_{k}", f"ask_size_{k}", f"bid_price_{k}", f"bid_size_{k}"]
    return ",".join(cols)


def write_book_csv(path: str | Path, result) -> None:
    """Write ``result.rows`` (sequence, timestamp, slot, levels[N,4]) with symbol names."""
    rows = result.rows
    depth = rows.levels.shape[1] if rows is not None else result.depth
    names = np.array(result.symbols + [""], dtype=object)
    with open(path, "w", newline="") as f:
        f.write(header(depth) + "\n")
        if rows is None or not len(rows):
            return
        lv = rows.levels.reshape(len(rows), -1)
        step = 65536
        for a in range(0, len(rows), step):
            b = min(len(rows), a + step)
            seq = rows.sequence[a:b].tolist()
            ts = rows.timestamp[a:b].tolist()
            sym = names[rows.slot[a:b]].tolist()
            body = [",".join(map(str, r)) for r in lv[a:b].tolist()]
            f.write("".join(f"{s},{t},{y},{x}\n" for s, t, y, x in zip(seq, ts, sym, body)))


def read_book_csv(path: str | Path):
    """(header list, rows as list of lists of str) — for tests and comparisons."""
    lines = Path(path).read_text().splitlines()
    return lines[0].split(","), [ln.split(",") for ln in lines[1:]]
