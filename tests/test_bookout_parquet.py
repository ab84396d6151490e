"""The Parquet book writer's options keep the rows: every codec, the delta-encoded sequence and
timestamp columns, statistics only where a reader picks row groups by them, levels handed
column by column written without a copy, and rows grouped by symbol within each row group
(``order="symbol"``) that sorting on the sequence puts back in the CSV's order."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tickwire.host import gen
from tickwire.host.bookcsv import header
from tickwire.host.bookout import ParquetBookWriter, level_columns, read_book_parquet
from tickwire.host.emu.pipeline import BookRows, replay

DEPTH = 3


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    p = tmp_path_factory.mktemp("day") / "day.itch"
    gen.write_capture(gen.generate_day(5, 20_000, 3), p, fmt="binaryfile")
    res = replay(str(p), depth=DEPTH)
    assert len(res.rows) > 1000
    return p, res


def check_rows(path, res, t=None):
    t = pq.read_table(path) if t is None else t
    assert t.column_names == header(DEPTH).split(",")
    assert [str(f.type) for f in t.schema] == ["uint64", "uint64", "string"] + \
        ["uint32"] * 4 * DEPTH
    assert np.array_equal(t.column("sequence").to_numpy(), res.rows.sequence)
    assert np.array_equal(t.column("timestamp").to_numpy(), res.rows.timestamp)
    assert t.column("symbol").to_pylist() == [res.symbols[k] for k in res.rows.slot]
    lv = np.stack([t.column(c).to_numpy() for c in t.column_names[3:]], axis=1)
    assert np.array_equal(lv, res.rows.levels.reshape(len(lv), -1))


@pytest.mark.parametrize("codec", ["none", "lz4", "snappy", "zstd"])
def test_every_codec_keeps_the_rows(ref, tmp_path, codec):
    path, res = ref
    out = tmp_path / "rows.parquet"
    with ParquetBookWriter(out, DEPTH, codec) as w:
        replay(str(path), depth=DEPTH, out=w, chunk_bytes=1 << 14)
    check_rows(out, res)
    meta = pq.ParquetFile(out).metadata
    assert meta.num_row_groups > 3
    col = meta.row_group(0).column
    assert col(3).compression.lower() == ("uncompressed" if codec == "none" else codec)


def test_encodings_and_statistics(ref, tmp_path):
    path, res = ref
    out = tmp_path / "rows.parquet"
    with ParquetBookWriter(out, DEPTH) as w:
        replay(str(path), depth=DEPTH, out=w, chunk_bytes=1 << 14)
    meta = pq.ParquetFile(out).metadata
    rg = meta.row_group(1)
    seq, ts, sym, lv = (rg.column(i) for i in (0, 1, 2, 3))
    assert "DELTA_BINARY_PACKED" in seq.encodings and "DELTA_BINARY_PACKED" in ts.encodings
    assert "RLE_DICTIONARY" in sym.encodings and "RLE_DICTIONARY" not in lv.encodings
    # min/max of sequence and timestamp pick row groups; the levels carry none
    assert seq.is_stats_set and ts.is_stats_set and not lv.is_stats_set
    first = pq.read_table(out).column("sequence").to_numpy()
    n0 = meta.row_group(0).num_rows
    assert seq.statistics.min == first[n0] and ts.statistics.max >= ts.statistics.min


def test_column_laid_levels_are_written_without_a_copy(ref, tmp_path):
    _, res = ref
    rows, n, w = res.rows, len(res.rows), 4 * DEPTH
    cap = n + 7                                     # a reused buffer, longer than the rows
    cols = np.zeros((w, cap), np.uint32)
    cols[:, :n] = rows.levels.reshape(n, w).T
    view = cols[:, :n].T.reshape(n, DEPTH, 4)      # [rows, N, 4] over the columns
    assert np.shares_memory(view, cols) and np.array_equal(view, rows.levels)
    lc = level_columns(view)
    assert lc is not None and np.shares_memory(lc, cols) and np.array_equal(lc, cols[:, :n])
    assert level_columns(rows.levels) is None        # row by row: the writer transposes
    out = tmp_path / "cols.parquet"
    with ParquetBookWriter(out, DEPTH, background=False) as wr:
        half = n // 2
        for a, b in ((0, half), (half, n)):
            wr.write(BookRows(rows.sequence[a:b], rows.timestamp[a:b], rows.slot[a:b],
                              rows.msg[a:b], view[a:b]), res.symbols, lend=True)
    check_rows(out, res)


def test_replay_hands_parquet_its_levels_column_by_column(ref, tmp_path, monkeypatch):
    """The book-only kernel lays the rows out as the writer takes them: no transposition."""
    import tickwire.host.bookout as bookout

    def transposed(*a):
        raise AssertionError("the levels were copied into columns")
    monkeypatch.setattr(bookout, "_columns", transposed)
    path, res = ref
    out = tmp_path / "rows.parquet"
    with ParquetBookWriter(out, DEPTH) as w:
        replay(str(path), depth=DEPTH, out=w, chunk_bytes=1 << 14)
    check_rows(out, res)


def test_replay_command_codec_choice(ref, tmp_path):
    from typer.testing import CliRunner
    from tickwire.host.cli import app
    path, res = ref
    run = CliRunner().invoke
    for codec, meta in ((None, "SNAPPY"), ("none", "UNCOMPRESSED"), ("zstd", "ZSTD")):
        out = tmp_path / f"{codec}.parquet"
        args = ["replay", str(path), "--depth", str(DEPTH), "--book-out", str(out), "--json"]
        r = run(app, args + (["--book-compression", codec] if codec else []))
        assert r.exit_code == 0, r.output
        check_rows(out, res)
        assert pq.ParquetFile(out).metadata.row_group(0).column(5).compression == meta
    bad = run(app, ["replay", str(path), "--book-out", str(tmp_path / "a.parquet"),
                    "--book-compression", "rar"])
    assert bad.exit_code == 2 and "none, snappy" in bad.output
    csv = run(app, ["replay", str(path), "--book-out", str(tmp_path / "a.csv"),
                    "--book-compression", "lz4"])
    assert csv.exit_code == 2 and "Parquet output only" in csv.output


# --------------------------------------------------------------------------- grouped by symbol
def write_both(path, tmp_path, **kw):
    """The replay's rows written in sequence order and grouped by symbol: the two files."""
    outs = []
    for order in ("sequence", "symbol"):
        out = tmp_path / f"{order}.parquet"
        with ParquetBookWriter(out, DEPTH, order=order, **kw) as w:
            replay(str(path), depth=DEPTH, out=w, chunk_bytes=1 << 14)
        outs.append(out)
    return outs


def test_rows_grouped_by_symbol_within_each_row_group(ref, tmp_path):
    path, res = ref
    seq_out, sym_out = write_both(path, tmp_path)
    a, b = pq.ParquetFile(seq_out), pq.ParquetFile(sym_out)
    assert a.metadata.num_row_groups == b.metadata.num_row_groups > 3
    for k in range(b.metadata.num_row_groups):
        ta, tb = a.read_row_group(k), b.read_row_group(k)
        # the chunk's rows, by symbol name and each symbol's by sequence, as declared
        key = list(zip(tb.column("symbol").to_pylist(), tb.column("sequence").to_pylist()))
        assert key == sorted(key) and len(set(tb.column("symbol").to_pylist())) > 1
        assert tb.sort_by("sequence").equals(ta)
        assert b.metadata.row_group(k).sorting_columns == (pq.SortingColumn(2),
                                                           pq.SortingColumn(0))
        assert a.metadata.row_group(k).sorting_columns == ()
    check_rows(sym_out, res, pq.read_table(sym_out).sort_by("sequence"))
    assert read_book_parquet(sym_out) == read_book_parquet(seq_out)
    # the same encodings and statistics as in sequence order
    cb, ca = b.metadata.row_group(1).column, a.metadata.row_group(1).column
    for i in range(3 + 4 * DEPTH):
        assert cb(i).encodings == ca(i).encodings and cb(i).is_stats_set == ca(i).is_stats_set
    # a symbol's rows share most levels: grouped, they take fewer bytes (in row groups this
    # small, of a few hundred rows, the footer is much of the file)
    assert sym_out.stat().st_size < seq_out.stat().st_size


def test_grouped_rows_read_by_duckdb_in_sequence_order(ref, tmp_path):
    """What the README tells readers of a grouped file: ORDER BY sequence gives the rows back
    (DuckDB reads the columns as UBIGINT, VARCHAR and UINTEGER)."""
    import duckdb
    path, _ = ref
    seq_out, sym_out = write_both(path, tmp_path)
    con = duckdb.connect()
    grouped = con.sql(f"SELECT * FROM '{sym_out}' ORDER BY sequence").fetchall()
    assert grouped == con.sql(f"SELECT * FROM '{seq_out}'").fetchall()
    types = {c: t for c, t, *_ in con.sql(f"DESCRIBE SELECT * FROM '{sym_out}'").fetchall()}
    assert (types["sequence"], types["symbol"], types["bid_size_1"]) == ("UBIGINT", "VARCHAR",
                                                                         "UINTEGER")


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_grouped_rows_with_other_codecs(ref, tmp_path, codec):
    path, _ = ref
    seq_out, sym_out = write_both(path, tmp_path, compression=codec)
    assert read_book_parquet(sym_out) == read_book_parquet(seq_out)


def test_grouped_rows_from_rows_laid_row_by_row(ref, tmp_path):
    """Rows not laid out by the replay (the RTL back-end's, copied ones), unnamed slots (-1:
    the empty name, first) and names learnt between chunks."""
    _, res = ref
    rows, n = res.rows, len(res.rows)
    slot = rows.slot.copy()
    slot[::7] = -1
    assert level_columns(rows.levels) is None
    out = tmp_path / "rows.parquet"
    thirds = (0, n // 3, 2 * n // 3, n)
    with ParquetBookWriter(out, DEPTH, order="symbol") as w:
        for a, b in zip(thirds, thirds[1:]):
            names = res.symbols[:slot[:b].max() + 1]   # the names the book knows so far
            w.write(BookRows(rows.sequence[a:b], rows.timestamp[a:b], slot[a:b],
                             rows.msg[a:b], rows.levels[a:b]), names)
    f = pq.ParquetFile(out)
    assert f.metadata.num_row_groups == 3
    for k in range(3):
        sym = f.read_row_group(k).column("symbol").to_pylist()
        assert sym == sorted(sym) and sym[0] == ""
    t = f.read().sort_by("sequence")
    assert t.column("symbol").to_pylist() == ["" if k < 0 else res.symbols[k] for k in slot]
    lv = np.stack([t.column(c).to_numpy() for c in t.column_names[3:]], axis=1)
    assert np.array_equal(lv, rows.levels.reshape(n, -1))
    assert np.array_equal(t.column("timestamp").to_numpy(), rows.timestamp)


@pytest.mark.parametrize("where", ["within a chunk", "across chunks"])
def test_grouped_rows_need_a_growing_sequence(ref, tmp_path, where):
    """Rows whose order a sort on the sequence would not restore are refused, not written
    out of order."""
    _, res = ref
    r = res.rows
    seq = r.sequence[:200].copy()
    if where == "within a chunk":
        seq[150] = seq[149]
    else:
        seq[100:] -= seq[100] - seq[0]   # the second chunk starts over
    with ParquetBookWriter(tmp_path / "x.parquet", DEPTH, order="symbol",
                           background=False) as w:
        w.write(BookRows(seq[:100], r.timestamp[:100], r.slot[:100], r.msg[:100],
                         r.levels[:100]), res.symbols)
        with pytest.raises(ValueError, match="growing sequence"):
            w.write(BookRows(seq[100:], r.timestamp[100:200], r.slot[100:200],
                             r.msg[100:200], r.levels[100:200]), res.symbols)
    with pytest.raises(ValueError, match="sequence or symbol"):
        ParquetBookWriter(tmp_path / "y.parquet", DEPTH, order="time")


def test_replay_command_book_order(ref, tmp_path):
    from typer.testing import CliRunner
    from tickwire.host.cli import app
    path, res = ref
    run = CliRunner().invoke
    outs = {}
    for order in (None, "sequence", "symbol"):
        out = outs[order] = tmp_path / f"{order}.parquet"
        args = ["replay", str(path), "--depth", str(DEPTH), "--book-out", str(out), "--json"]
        r = run(app, args + (["--book-order", order] if order else []))
        assert r.exit_code == 0, r.output
        secs = json.loads(r.output)["seconds"]
        # the replay thread's CPU, beside the writer's own (README, "Replay of a whole day")
        assert {"replay_thread_cpu", "write_rows_cpu", "book_trigger_risk"} <= set(secs)
        sc = pq.ParquetFile(out).metadata.row_group(0).sorting_columns
        assert bool(sc) == (order == "symbol")
    assert read_book_parquet(outs["symbol"]) == read_book_parquet(outs[None]) == \
        read_book_parquet(outs["sequence"])
    check_rows(outs[None], res)
    bad = run(app, ["replay", str(path), "--book-out", str(tmp_path / "a.parquet"),
                    "--book-order", "time"])
    assert bad.exit_code == 2 and "sequence or symbol" in bad.output
    csv = run(app, ["replay", str(path), "--book-out", str(tmp_path / "a.csv"),
                    "--book-order", "symbol"])
    assert csv.exit_code == 2 and "Parquet output only" in csv.output
