"""`tickwire replay` streamed: rows written chunk by chunk (CSV bytes as before, Parquet with the
same rows), memory bounded by a chunk, and the book's loss counters never silent."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tickwire.host import gen
from tickwire.host.bookcsv import CsvBookWriter, header, read_book_csv, write_book_csv
from tickwire.host.bookout import BookWriter, ParquetBookWriter, read_book_parquet
from tickwire.host.cli import app
from tickwire.host.config import Config
from tickwire.host.emu.pipeline import Emulator, load_source, replay
from tickwire.spec.counters import BOOK_LOSS_COUNTERS, COUNTER_NAMES, FEED_COUNTERS

runner = CliRunner()
DEPTH = 4
CHUNK_BYTES = 1 << 14   # many reads, so many chunks, on a small day


@pytest.fixture(scope="module")
def day_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("day")
    day = gen.generate_day(symbols=6, messages=30_000, seed=11)
    paths = {"binaryfile": d / "day.itch", "pcap": d / "day.pcap"}
    for fmt, p in paths.items():
        gen.write_capture(day, p, fmt=fmt)
    return paths


def reference_csv(res) -> bytes:
    """The book CSV as ``tickwire replay`` has always written it: one Python line per row."""
    rows, names = res.rows, res.symbols + [""]
    lines = [header(rows.levels.shape[1])]
    for s, t, k, lv in zip(rows.sequence.tolist(), rows.timestamp.tolist(), rows.slot.tolist(),
                           rows.levels.reshape(len(rows), -1).tolist()):
        lines.append(f"{s},{t},{names[k]}," + ",".join(map(str, lv)))
    return ("\n".join(lines) + "\n").encode()


class Recorder(BookWriter):
    """Keeps what it is handed: row counts, the buffers the rows lie in, a copy of each row."""

    def __init__(self, depth, background=False):
        super().__init__("unused", depth, background)
        self.sizes, self.buffers, self.parts = [], set(), []

    def _write(self, rows, symbols):
        self.sizes.append(len(rows))
        self.buffers.add(rows.levels.__array_interface__["data"][0])
        self.parts.append((rows.sequence.copy(), rows.slot.copy(), rows.levels.copy()))

    def _close(self):
        pass


def in_memory(path):
    return replay(str(path), depth=DEPTH)


# --------------------------------------------------------------------------- CSV bytes
@pytest.mark.parametrize("fmt", ["binaryfile", "pcap"])
def test_streamed_csv_is_the_in_memory_csv(day_files, tmp_path, fmt):
    path = day_files[fmt]
    ref = in_memory(path)
    assert len(ref.rows) > 1000
    whole, streamed = tmp_path / "whole.csv", tmp_path / "streamed.csv"
    write_book_csv(whole, ref)
    assert whole.read_bytes() == reference_csv(ref)
    kw = {"chunk_bytes": CHUNK_BYTES} if fmt == "binaryfile" else {"chunk": 2048}
    with CsvBookWriter(streamed, DEPTH) as w:
        res = replay(str(path), depth=DEPTH, out=w, **kw)
    assert res.rows is None and w.rows == len(ref.rows) == res.counters["book_updates"]
    assert streamed.read_bytes() == whole.read_bytes()


def test_csv_numbers_at_their_widths(tmp_path):
    """Every digit count of the uint64 and uint32 columns, and a slot of -1 (no name)."""
    from tickwire.host.emu.pipeline import BookRows
    big = [0, 9, 10, 99, 100, 12345, 2**32 - 1, 10**19 - 1, 10**19, 2**64 - 1]
    n = len(big)
    seq = np.array(big, np.uint64)
    v32 = np.array([0, 9, 10, 99, 100, 12345, 2**32 - 1, 7, 10**6, 4 * 10**9], np.uint32)
    lv = np.stack([np.roll(v32, k) for k in range(8)], axis=1)
    rows = BookRows(seq, seq[::-1].copy(), np.array([0, 1, -1] * 3 + [0], np.int32),
                    np.zeros(n, np.int64), lv.reshape(n, 2, 4))

    class R:
        pass
    r = R()
    r.rows, r.symbols, r.depth = rows, ["AB", "ÄÖ"], 2
    p = tmp_path / "w.csv"
    write_book_csv(p, r)
    assert p.read_bytes() == reference_csv(r)


# --------------------------------------------------------------------------- Parquet
def test_parquet_holds_the_same_rows(day_files, tmp_path):
    path = day_files["binaryfile"]
    ref = in_memory(path)
    out = tmp_path / "rows.parquet"
    with ParquetBookWriter(out, DEPTH) as w:
        replay(str(path), depth=DEPTH, out=w, chunk_bytes=CHUNK_BYTES)
    t = pq.read_table(out)
    assert t.column_names == header(DEPTH).split(",")
    assert pq.ParquetFile(out).metadata.num_row_groups > 3   # one per chunk
    assert np.array_equal(t.column("sequence").to_numpy(), ref.rows.sequence)
    assert np.array_equal(t.column("timestamp").to_numpy(), ref.rows.timestamp)
    assert t.column("symbol").to_pylist() == [ref.symbols[k] for k in ref.rows.slot]
    lv = np.stack([t.column(c).to_numpy() for c in t.column_names[3:]], axis=1)
    assert lv.dtype == np.uint32 and np.array_equal(lv, ref.rows.levels.reshape(len(lv), -1))
    csv = tmp_path / "rows.csv"
    write_book_csv(csv, ref)
    assert read_book_parquet(out) == read_book_csv(csv)


# --------------------------------------------------------------------------- bounded memory
@pytest.mark.parametrize("background", [False, True])
def test_binaryfile_replay_holds_no_more_than_a_chunk(day_files, background):
    path = day_files["binaryfile"]
    ref = in_memory(path)
    rec = Recorder(DEPTH, background)
    with rec:
        res = Emulator(replay_config(), DEPTH).run_binaryfile(path, chunk_bytes=CHUNK_BYTES,
                                                             out=rec)
    kmax = CHUNK_BYTES // 14 + 1          # messages (so rows) one read can hold
    assert res.rows is None and len(rec.sizes) > 10 and max(rec.sizes) <= kmax
    # streamed from (at most) two sets of row arrays, reused read after read
    assert len(rec.buffers) <= 2
    assert np.array_equal(np.concatenate([p[0] for p in rec.parts]), ref.rows.sequence)
    assert np.array_equal(np.concatenate([p[2] for p in rec.parts]), ref.rows.levels)


@pytest.mark.parametrize("kernel", [True, False])
def test_indexed_replay_streams_chunk_by_chunk(day_files, kernel):
    src = load_source(day_files["pcap"])
    ref = Emulator(replay_config(), DEPTH).run(src.data, src.offsets, src.sequences,
                                               replay_kernel=kernel)
    rec = Recorder(DEPTH)
    res = Emulator(replay_config(), DEPTH).run(src.data, src.offsets, src.sequences, out=rec,
                                               chunk=1000, replay_kernel=kernel)
    assert res.rows is None and max(rec.sizes) <= 1000 and len(rec.sizes) > 10
    if kernel:
        assert len(rec.buffers) <= 2
    assert np.array_equal(np.concatenate([p[1] for p in rec.parts]), ref.rows.slot)
    assert np.array_equal(np.concatenate([p[2] for p in rec.parts]), ref.rows.levels)
    assert res.counters == ref.counters


def test_general_kernel_binaryfile_streams_the_same_rows(day_files):
    path = day_files["binaryfile"]
    ref = in_memory(path)
    rec = Recorder(DEPTH)
    Emulator(replay_config(), DEPTH).run_binaryfile(path, chunk_bytes=CHUNK_BYTES, out=rec,
                                                   replay_kernel=False, threads=2)
    assert len(rec.sizes) > 10
    assert np.array_equal(np.concatenate([p[2] for p in rec.parts]), ref.rows.levels)


def test_a_writer_error_stops_the_replay(day_files, tmp_path):
    class Broken(Recorder):
        def _write(self, rows, symbols):
            raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        with Broken(DEPTH, background=True) as w:
            replay(str(day_files["binaryfile"]), depth=DEPTH, out=w, chunk_bytes=CHUNK_BYTES)


def replay_config():
    cfg = Config()
    cfg.strategy.kind = "none"
    return cfg


# --------------------------------------------------------------------------- the command
def test_replay_command_parquet_and_format_choice(day_files, tmp_path):
    path = day_files["binaryfile"]
    csv, pqt, forced = tmp_path / "a.csv", tmp_path / "a.parquet", tmp_path / "b.out"
    r1 = runner.invoke(app, ["replay", str(path), "--depth", DEPTH, "--book-out", str(csv)])
    r2 = runner.invoke(app, ["replay", str(path), "--depth", DEPTH, "--book-out", str(pqt),
                             "--json"])
    r3 = runner.invoke(app, ["replay", str(path), "--depth", DEPTH, "--book-out", str(forced),
                             "--book-format", "parquet"])
    assert r1.exit_code == r2.exit_code == r3.exit_code == 0, r1.output + r2.output
    s = json.loads(r2.stdout)
    assert s["book_format"] == "parquet" and s["rows"] == len(read_book_csv(csv)[1]) > 1000
    assert read_book_parquet(pqt) == read_book_parquet(forced) == read_book_csv(csv)
    assert s["seconds"]["write_rows"] >= 0 and "book_trigger_risk" in s["seconds"]
    bad = runner.invoke(app, ["replay", str(path), "--book-out", str(csv), "--book-format",
                              "xlsx"])
    assert bad.exit_code == 2 and "csv or parquet" in bad.output
    lone = runner.invoke(app, ["replay", str(path), "--book-format", "csv"])
    assert lone.exit_code == 2 and "--book-out" in lone.output


# --------------------------------------------------------------------------- loss counters
def test_loss_counters_cover_the_register_map():
    from tickwire.spec.regmap import COUNTER_REGISTERS
    assert set(BOOK_LOSS_COUNTERS) <= set(COUNTER_NAMES) | set(FEED_COUNTERS)
    for k in BOOK_LOSS_COUNTERS:   # each readable from the board as CNT_<NAME>
        assert COUNTER_REGISTERS[k] == "CNT_" + k.upper()


def test_replay_warns_on_book_loss(day_files, tmp_path):
    tiny = tmp_path / "tiny.toml"
    tiny.write_text("[capacity]\nlevels = 4\norder_buckets = 64\norder_ways = 2\n")
    path = day_files["binaryfile"]
    r = runner.invoke(app, ["replay", str(path), "--depth", DEPTH, "--config", str(tiny),
                            "--book-out", str(tmp_path / "t.csv"), "--json"])
    assert r.exit_code == 0, r.output
    loss = json.loads(r.stdout)["book_loss"]
    cfg = replay_config()
    cfg.capacity.levels, cfg.capacity.order_buckets, cfg.capacity.order_ways = 4, 64, 2
    want = Emulator(cfg, DEPTH).run_binaryfile(path).counters
    assert set(loss) == set(BOOK_LOSS_COUNTERS)
    assert loss == {k: want.get(k, 0) for k in BOOK_LOSS_COUNTERS}
    assert loss["level_overflow"] > 0 and loss["order_table_full"] > 0
    assert "warning" in r.stderr
    for k, v in loss.items():       # each moved counter named with its count
        assert (f"{k} {v:,}" in r.stderr) == (v > 0)
    text = runner.invoke(app, ["replay", str(path), "--depth", DEPTH, "--config", str(tiny)])
    assert "level_overflow" in text.stderr and "level_overflow" not in text.stdout


def test_clean_replay_says_nothing_on_stderr(day_files):
    r = runner.invoke(app, ["replay", str(day_files["pcap"]), "--json"])
    assert r.exit_code == 0 and r.stderr == ""
    assert json.loads(r.stdout)["book_loss"] == {k: 0 for k in BOOK_LOSS_COUNTERS}


def test_run_warns_on_book_loss(tmp_path):
    tiny = tmp_path / "tiny.toml"
    tiny.write_text("[capacity]\norder_buckets = 16\norder_ways = 2\n")
    r = runner.invoke(app, ["run", "--json", "--config", str(tiny), "--backend", "emu"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["book_loss"]["order_table_full"] == s["counters"]["order_table_full"] > 0
    assert f"order_table_full {s['book_loss']['order_table_full']:,}" in r.stderr


def test_bad_fcs_frames_in_a_capture_are_book_loss(day_files, tmp_path):
    """A capture whose pcapng flags frames with a CRC error (a cut-through MAC's bad FCS):
    the replay takes them as they came and says the book may be wrong."""
    from tickwire.host.capture import read_capture, write_pcapng
    from tickwire.host.framing import FcsError
    fr = read_capture(day_files["pcap"])
    frames = [FcsError(f) if i % 50 == 7 else f for i, f in enumerate(fr)]
    path = tmp_path / "bad.pcapng"
    write_pcapng(path, frames, fr.timestamps_ns)
    r = runner.invoke(app, ["replay", str(path), "--json"])
    assert r.exit_code == 0, r.output
    loss = json.loads(r.stdout)["book_loss"]
    assert loss["fcs_errors"] == sum(isinstance(f, FcsError) for f in frames) > 0
    assert f"fcs_errors {loss['fcs_errors']:,}" in r.stderr
    clean = runner.invoke(app, ["replay", str(day_files["pcap"]), "--json"])
    assert json.loads(clean.stdout)["book_loss"]["fcs_errors"] == 0
