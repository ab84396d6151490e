"""Where a replay's top-N book rows go as the replay runs: CSV or Parquet, chunk by chunk.

A writer is handed each chunk's rows (:class:`~tickwire.host.emu.pipeline.BookRows`) with the
symbol names so far, and writes them on its own thread while the replay goes on: what a run
holds is then a chunk or two of rows, however long the day.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from numba import njit

FORMATS = ("csv", "parquet")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Parquet codec of the book rows. "none" costs the writer about half the CPU time but writes
#: three times the bytes, which past the page cache leaves it waiting on the disk (README,
#: "Replay of a whole day"); lz4 and zstd cost more time than snappy here
COMPRESSION = "snappy"
#: Parquet row orders: "sequence" (the CSV's), or "symbol": each row group's rows grouped by
#: symbol name, then by sequence. A symbol's consecutive rows share most of their levels, so
#: grouped they compress to a third of the bytes in about 3/5 of the writer's time (README)
ORDERS = ("sequence", "symbol")
#: Parquet data page size limit (a chunk's column fits one page)
PAGE_BYTES = 8 << 20


class BookWriter:
    """Base of the row writers. :meth:`write` hands a chunk's rows to a writer thread, which
    formats and writes them while the replay builds the next chunk: writing overlaps book
    building and at most two chunks are held (the caller waits only when the previous chunk
    is still being written). ``background=False`` writes in the caller.

    ``rows``: rows written; ``seconds``: time spent formatting and writing (``cpu_seconds``:
    the CPU time of it, which a busy machine does not inflate); ``waited``: time the caller
    spent in :meth:`write`/:meth:`sync` (the copy and any wait for the thread)."""

    def __init__(self, path: str | Path, depth: int, background: bool = True):
        self.path, self.depth = Path(path), depth
        self.rows, self.seconds, self.cpu_seconds, self.waited = 0, 0.0, 0.0, 0.0
        self._pool = ThreadPoolExecutor(1, "book-writer") if background else None
        self._job = None
        self._stage: tuple | None = None   # the writer thread's copy of a chunk

    def write(self, rows, symbols: list[str], lend: bool = False) -> None:
        """Append ``rows`` (slot ``i`` is ``symbols[i]``). They are copied unless ``lend``:
        the caller then leaves their arrays untouched until its next call returns."""
        if not len(rows):
            return
        if rows.levels.shape[1] != self.depth:
            raise ValueError(f"rows of depth {rows.levels.shape[1]} for a depth-{self.depth} "
                             f"book file")
        if rows.slot.min() < -1 or rows.slot.max() >= len(symbols):   # -1: no name
            raise ValueError(f"book rows name slots {rows.slot.min()}..{rows.slot.max()}, "
                             f"with {len(symbols)} symbols known")
        t0 = time.perf_counter()
        self._sync()
        if self._pool is None:
            self._timed(rows, list(symbols))
        else:
            self._job = self._pool.submit(self._timed, rows if lend else self._copy(rows),
                                          list(symbols))
        self.rows += len(rows)
        self.waited += time.perf_counter() - t0

    def sync(self) -> None:
        """Wait until every row handed so far is written (re-raising the writer's error)."""
        t0 = time.perf_counter()
        self._sync()
        self.waited += time.perf_counter() - t0

    def close(self) -> None:
        try:
            self.sync()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
            t0, c0 = time.perf_counter(), time.thread_time()
            self._close()
            self.seconds += time.perf_counter() - t0
            self.cpu_seconds += time.thread_time() - c0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.close()
        except Exception:
            if exc_type is None:   # else the run's own error is the one to see
                raise

    def _sync(self):
        job, self._job = self._job, None
        if job is not None:
            job.result()

    def _copy(self, rows):
        from .emu.pipeline import BookRows
        n = len(rows)
        if self._stage is None or len(self._stage[0]) < n:
            self._stage = (np.empty(n, np.uint64), np.empty(n, np.uint64),
                           np.empty(n, np.int32), np.empty((n, self.depth, 4), np.uint32))
        seq, ts, slot, lv = (a[:n] for a in self._stage)
        seq[:], ts[:], slot[:], lv[:] = rows.sequence, rows.timestamp, rows.slot, rows.levels
        return BookRows(seq, ts, slot, np.zeros(0, np.int64), lv)

    def _timed(self, rows, symbols):
        t0, c0 = time.perf_counter(), time.thread_time()
        self._write(rows, symbols)
        self.seconds += time.perf_counter() - t0
        self.cpu_seconds += time.thread_time() - c0

    def _write(self, rows, symbols):
        raise NotImplementedError

    def _close(self):
        raise NotImplementedError


@njit(cache=True, nogil=True)
def _columns(lv, out):
    """``out[j, r] = lv[r, j]``: the row-major levels as contiguous columns (a plain loop is
    several times faster than numpy's strided copy here)."""
    for r in range(lv.shape[0]):
        for j in range(lv.shape[1]):
            out[j, r] = lv[r, j]


def level_columns(levels: np.ndarray) -> np.ndarray | None:
    """Rows' levels ``[rows, N, 4]`` as ``[4N, rows]`` without a copy when they lie column by
    column (each of the 4N values contiguous over the rows); None when they do not."""
    n, d, w = levels.shape
    s = levels.itemsize
    if n and levels.strides[0] == s and levels.strides[2] * w == levels.strides[1]:
        return np.lib.stride_tricks.as_strided(levels, (d * w, n), (levels.strides[2], s),
                                               writeable=False)
    return None


@njit(cache=True, nogil=True)
def _by_symbol(rank, slot, seq, ts, lv, src, o_seq, o_ts, o_slot, o_lv):
    """Rows grouped by ``rank[slot + 1]`` (slot -1: the empty name), each group in the given
    order (a stable counting sort), into the ``o_*`` arrays; ``lv``: the levels as columns
    ``[4N, rows]``, any strides; ``src``: room for the permutation. Returns the first row
    whose sequence does not grow past its predecessor's, or -1 (only a growing sequence lets
    a reader restore the order)."""
    n = slot.shape[0]
    start = np.zeros(rank.shape[0] + 1, np.int64)
    bad = -1
    for r in range(n):
        start[rank[slot[r] + 1] + 1] += 1
        if r and seq[r] <= seq[r - 1] and bad < 0:
            bad = r
    for k in range(rank.shape[0]):
        start[k + 1] += start[k]
    for r in range(n):
        k = rank[slot[r] + 1]
        src[start[k]] = r
        start[k] += 1
    for i in range(n):
        r = src[i]
        o_seq[i], o_ts[i], o_slot[i] = seq[r], ts[r], slot[r]
    # column by column: sequential writes, reads within one column
    for j in range(lv.shape[0]):
        for i in range(n):
            o_lv[j, i] = lv[j, src[i]]
    return bad


class ParquetBookWriter(BookWriter):
    """Top-N rows to a Parquet file, one row group per chunk, with the CSV's columns: sequence
    and timestamp uint64 (delta-encoded, with min/max statistics so that a reader can pick row
    groups by time), symbol string (dictionary-encoded), the levels uint32 in plain pages
    without statistics (dictionary pages and min/max for the levels cost more time than they
    save). ``compression`` (see :data:`COMPRESSION`): any codec pyarrow writes. ``order``
    (see :data:`ORDERS`): "symbol" writes each row group's rows grouped by symbol name and by
    sequence within a symbol, as the row groups' ``sorting_columns`` declare; sorting on the
    sequence restores the handed order, so the rows must come in growing sequence (an error
    otherwise). Levels handed column by column (:attr:`columnar`) go to pyarrow in sequence
    order without a copy."""

    #: the replay may lay the rows' levels out column by column for this writer
    columnar = True

    def __init__(self, path: str | Path, depth: int, compression: str | None = None,
                 background: bool = True, order: str | None = None):
        import pyarrow as pa
        import pyarrow.parquet as pq
        from .bookcsv import header
        self.order = order or ORDERS[0]
        if self.order not in ORDERS:
            raise ValueError(f"book row order {self.order!r}: {' or '.join(ORDERS)}")
        super().__init__(path, depth, background)
        self._pa = pa
        cols = header(depth).split(",")
        types = [pa.uint64(), pa.uint64(), pa.string()] + [pa.uint32()] * (len(cols) - 3)
        # no nulls: no definition levels to encode
        self.schema = pa.schema([pa.field(c, t, nullable=False) for c, t in zip(cols, types)])
        # the symbols go in as indices into the names, which pyarrow writes as its dictionary
        # page without hashing a string a row; the file says string (no Arrow schema stored,
        # the Parquet types alone give the columns' types back)
        self._schema = self.schema.set(2, self.schema.field(2).with_type(
            pa.dictionary(pa.int32(), pa.string())))
        self.compression = compression or COMPRESSION
        grouped = self.order == "symbol"
        self._w = pq.ParquetWriter(
            path, self._schema, compression=self.compression, use_dictionary=[cols[2]],
            write_statistics=cols[:2], store_schema=False,
            # a page per column of a chunk: pages of pyarrow's 20,000 rows cost the grouped
            # levels a sixth more time (README)
            data_page_size=PAGE_BYTES, max_rows_per_page=1 << 20,
            column_encoding={c: "DELTA_BINARY_PACKED" for c in cols[:2]},
            sorting_columns=[pq.SortingColumn(2), pq.SortingColumn(0)] if grouped else None)
        self._names: list[str] | None = None
        self._cols = np.empty((4 * depth, 0), np.uint32)
        self._grouped: tuple | None = None   # seq, ts, slot, permutation of a grouped chunk
        self._last = None                    # the last sequence written, grouped by symbol

    def _write(self, rows, symbols):
        pa = self._pa
        if symbols != self._names:
            self._names = list(symbols)
            self._dict = pa.array(self._names + [""], pa.string())
            # rank[slot + 1]: the place of a slot's name in name order ("" first)
            self._rank = np.argsort(np.argsort([""] + self._names, kind="stable")).astype(
                np.int32)
        n = len(rows)
        lv = level_columns(rows.levels)
        if self.order == "symbol":
            seq, ts, slot, lv = self._group(rows, lv)
        else:
            seq, ts, slot = rows.sequence, rows.timestamp, rows.slot
            if lv is None:
                # one transposed copy, so each level column is contiguous (taken without a copy)
                lv = self._columns(n)
                _columns(rows.levels.reshape(n, -1), lv)
        slot = slot.astype(np.int32)   # a copy
        slot[slot < 0] += len(self._dict)   # as the CSV: -1 is the empty name
        arrays = [pa.array(seq), pa.array(ts), pa.DictionaryArray.from_arrays(slot, self._dict)]
        arrays += [pa.array(c) for c in lv]
        self._w.write_table(pa.Table.from_arrays(arrays, schema=self._schema))

    def _columns(self, n):
        if self._cols.shape[1] < n:
            self._cols = np.empty((4 * self.depth, n), np.uint32)
        return self._cols[:, :n]

    def _group(self, rows, lv):
        """The chunk's rows grouped by symbol (see :func:`_by_symbol`), in reused arrays."""
        n = len(rows)
        if lv is None:   # row by row: read as columns through strides
            lv = rows.levels.reshape(n, -1).T
        if self._grouped is None or len(self._grouped[0]) < n:
            self._grouped = (np.empty(n, np.uint64), np.empty(n, np.uint64),
                             np.empty(n, np.int32), np.empty(n, np.int64))
        seq, ts, slot, src = (a[:n] for a in self._grouped)
        out = self._columns(n)
        bad = _by_symbol(self._rank, rows.slot, rows.sequence, rows.timestamp, lv, src,
                         seq, ts, slot, out)
        prev = self._last if bad < 0 else rows.sequence[bad - 1]
        if bad < 0 and prev is not None and rows.sequence[0] <= prev:
            bad = 0
        if bad >= 0:
            raise ValueError(f"book rows grouped by symbol need a growing sequence, to be put "
                             f"back in order: {rows.sequence[bad]} follows {prev} (write "
                             f"them in sequence order)")
        self._last = int(rows.sequence[n - 1])
        return seq, ts, slot, out

    def _close(self):
        self._w.close()


def book_format(path: str | Path, fmt: str | None = None) -> str:
    """``fmt`` when given, else by the suffix: Parquet for .parquet/.pq, CSV otherwise."""
    if fmt is None:
        return "parquet" if Path(path).suffix.lower() in PARQUET_SUFFIXES else "csv"
    if fmt not in FORMATS:
        raise ValueError(f"book format {fmt!r}: csv or parquet")
    return fmt


def open_book_writer(path: str | Path, depth: int, fmt: str | None = None,
                     compression: str | None = None, order: str | None = None) -> BookWriter:
    """A CSV or Parquet writer for ``path`` (see :func:`book_format`); ``compression``: the
    Parquet codec (default :data:`COMPRESSION`), ``order``: the Parquet row order (see
    :data:`ORDERS`)."""
    if book_format(path, fmt) == "parquet":
        return ParquetBookWriter(path, depth, compression, order=order)
    if compression is not None:
        raise ValueError("--book-compression applies to Parquet output only")
    if order is not None:
        raise ValueError("--book-order applies to Parquet output only")
    from .bookcsv import CsvBookWriter
    return CsvBookWriter(path, depth)


def read_book_parquet(path: str | Path):
    """(header list, rows as list of lists of str, as :func:`bookcsv.read_book_csv` gives):
    rows grouped by symbol are put back in sequence order."""
    import pyarrow.parquet as pq
    f = pq.ParquetFile(path)
    t = f.read()
    md = f.metadata
    if md.num_row_groups and md.row_group(0).sorting_columns:   # grouped by symbol
        t = t.sort_by("sequence")
    cols = [t.column(i).to_pylist() for i in range(t.num_columns)]
    return t.column_names, [[str(v) for v in r] for r in zip(*cols)]
