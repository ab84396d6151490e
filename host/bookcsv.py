"""The top-N book CSV of ``tickwire replay --book-out`` (same bytes from every back-end).

Rows are formatted by a compiled kernel straight into a byte buffer, a batch at a time, so a
whole day's CSV is written at the pace of the book rather than of per-row Python.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from .bookout import BookWriter

BATCH = 65536  # rows formatted per kernel call: bounds the byte buffer (~32 MB at depth 10)
_U64_DIGITS = 20


def header(depth: int) -> str:
    cols = ["sequence", "timestamp", "symbol"]
    for k in range(1, depth + 1):
        cols += [f"ask_price_{k}", f"ask_size_{k}", f"bid_price_{k}", f"bid_size_{k}"]
    return ",".join(cols)


_TEN = np.uint64(10)
_HUNDRED = np.uint64(100)
# "00" "01" ... "99": two digits per division
_PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), np.uint8).copy()
_POW10 = np.array([10 ** k for k in range(1, 20)], np.uint64)


@njit(cache=True, inline="always")
def _put(out, p, v):
    """Decimal digits of the unsigned ``v`` at ``out[p:]``; returns the end."""
    v = np.uint64(v)
    n = 1
    while n < 20 and v >= _POW10[n - 1]:
        n += 1
    q = p + n
    while v >= _HUNDRED:
        d = (v % _HUNDRED) * np.uint64(2)
        v //= _HUNDRED
        q -= 2
        out[q] = _PAIRS[d]
        out[q + 1] = _PAIRS[d + np.uint64(1)]
    if v >= _TEN:
        d = v * np.uint64(2)
        out[q - 2] = _PAIRS[d]
        out[q - 1] = _PAIRS[d + np.uint64(1)]
    else:
        out[q - 1] = np.uint8(48 + v)
    return p + n


@njit(cache=True, nogil=True)
def _format(seq, ts, slot, lv, names, name_len, out):
    """CSV lines of rows ``seq, ts, names[slot], lv[r, :]`` into ``out``; returns the bytes
    written. A negative slot indexes from the end of ``names`` (as a Python list does)."""
    p = 0
    nn = name_len.shape[0]
    width = lv.shape[1]
    for r in range(seq.shape[0]):
        p = _put(out, p, seq[r])
        out[p] = 44
        p = _put(out, p + 1, ts[r])
        out[p] = 44
        p += 1
        s = slot[r]
        if s < 0:
            s += nn
        for j in range(name_len[s]):
            out[p] = names[s, j]
            p += 1
        for j in range(width):
            out[p] = 44
            p = _put(out, p + 1, lv[r, j])
        out[p] = 10
        p += 1
    return p


class CsvBookWriter(BookWriter):
    """Top-N rows to a CSV file: the header, then one line per row, in the order handed."""

    def __init__(self, path: str | Path, depth: int, background: bool = True):
        super().__init__(path, depth, background)
        self._f = open(path, "wb")
        self._f.write((header(depth) + "\n").encode())
        self._names: list[str] | None = None
        self._buf = np.empty(0, np.uint8)

    def _name_table(self, symbols: list[str]):
        # names only ever grow (a slot keeps its name): rebuild when the list changed
        if symbols != self._names:
            enc = [s.encode() for s in symbols] + [b""]
            width = max(1, max(len(b) for b in enc))
            tab = np.zeros((len(enc), width), np.uint8)
            for i, b in enumerate(enc):
                tab[i, :len(b)] = np.frombuffer(b, np.uint8)
            self._names = list(symbols)
            self._tab = tab, np.array([len(b) for b in enc], np.int64)
        return self._tab

    def _write(self, rows, symbols):
        names, name_len = self._name_table(symbols)
        n = len(rows)
        lv = rows.levels.reshape(n, -1)
        per_row = 2 * (_U64_DIGITS + 1) + names.shape[1] + lv.shape[1] * 11 + 1
        for a in range(0, n, BATCH):
            b = min(n, a + BATCH)
            need = (b - a) * per_row
            if len(self._buf) < need:
                self._buf = np.empty(need, np.uint8)
            end = _format(rows.sequence[a:b], rows.timestamp[a:b], rows.slot[a:b], lv[a:b],
                          names, name_len, self._buf)
            self._f.write(memoryview(self._buf)[:end])

    def _close(self):
        self._f.close()


def write_book_csv(path: str | Path, result) -> None:
    """Write ``result.rows`` (sequence, timestamp, slot, levels[N,4]) with symbol names."""
    rows = result.rows
    depth = rows.levels.shape[1] if rows is not None else result.depth
    with CsvBookWriter(path, depth, background=False) as w:   # rows already held: no copy
        if rows is not None:
            w.write(rows, result.symbols)


def read_book_csv(path: str | Path):
    """(header list, rows as list of lists of str) — for tests and comparisons."""
    lines = Path(path).read_text().splitlines()
    return lines[0].split(","), [ln.split(",") for ln in lines[1:]]
