"""The Parquet book writer's options keep the rows: every codec, the delta-encoded sequence and
timestamp columns, statistics only where a reader picks row groups by them, and levels handed
column by column written without a copy."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from tickwire.host import gen
from tickwire.host.bookcsv import header
from tickwire.host.bookout import ParquetBookWriter, level_columns
from tickwire.host.emu.pipeline import BookRows, replay

DEPTH = 3


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    p = tmp_path_factory.mktemp("day") / "day.itch"
    gen.write_capture(gen.generate_day(5, 20_000, 3), p, fmt="binaryfile")
    res = replay(str(p), depth=DEPTH)
    assert len(res.rows) > 1000
    return p, res


def check_rows(path, res):
    t = pq.read_table(path)
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
