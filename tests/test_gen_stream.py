"""`tickwire gen` part by part: the same bytes as the whole-day generator, whatever the part
size, in BinaryFILE (plain and gzip) and through the command."""

import gzip
import hashlib

import numpy as np
import pytest
from typer.testing import CliRunner

from tickwire.host import gen
from tickwire.host.cli import app

# generate_day(6, 30_000, 11).blob as the whole-day generator (commit 93cb728) wrote it:
# a seed's bytes are a contract that tests and benches rely on
DIGEST_6_30000_11 = "9a0694e3f213269074435a0fc45e47ec"


def same_day(a: gen.Day, b: gen.Day) -> bool:
    return (a.blob == b.blob and np.array_equal(a.offsets, b.offsets)
            and np.array_equal(a.timestamps, b.timestamps))


@pytest.mark.parametrize("args", [(6, 30_000, 11, None), (3, 100_000, 2, None),
                                  (5, 40_000, 7, 50_000)])
def test_parts_join_to_one_part_whatever_their_size(args):
    symbols, messages, seed, session = args
    kw = {"session_ns": session}
    one = gen.join_days(list(gen.day_chunks(symbols, messages, seed, block=1 << 20, **kw)))
    assert len(one) == messages
    for block in (1 << 15, 3 << 15):
        parts = list(gen.day_chunks(symbols, messages, seed, block=block, **kw))
        assert len(parts) >= 2 + -(-(messages - 200) // block)   # start, flow blocks, end
        assert max(len(p) for p in parts[1:-1]) <= block
        assert same_day(gen.join_days(parts), one)
    assert same_day(gen.generate_day(symbols, messages, seed, **kw), one)


def test_seeded_bytes_are_those_of_the_whole_day_generator():
    assert hashlib.md5(gen.generate_day(6, 30_000, 11).blob).hexdigest() == DIGEST_6_30000_11


@pytest.mark.parametrize("name", ["day.itch", "day.itch.gz"])
def test_write_day_is_write_capture(tmp_path, name):
    day = gen.generate_day(4, 70_000, 5)
    whole, streamed = tmp_path / "whole" / name, tmp_path / name
    whole.parent.mkdir()
    gen.write_capture(day, whole, fmt="binaryfile")
    done = []
    gen.write_day(streamed, 4, 70_000, 5, progress=done.append)
    assert sum(done) == 70_000 and len(done) >= 3
    assert streamed.read_bytes() == whole.read_bytes()   # gzip header names the same file
    if name.endswith(".gz"):
        with gzip.open(streamed) as f:
            assert len(f.read()) == len(day.blob) + 2 * len(day)


def test_records_carry_each_length():
    part = next(gen.day_chunks(2, 500, 3))
    rec = gen.binaryfile_records(part)
    pos, got = 0, []
    while pos < len(rec):
        n = int(rec[pos]) << 8 | int(rec[pos + 1])
        got.append(rec[pos + 2:pos + 2 + n].tobytes())
        pos += 2 + n
    assert got == list(part)


def test_bad_arguments_raise_before_a_file_is_made(tmp_path):
    out = tmp_path / "x.itch"
    with pytest.raises(ValueError, match="fixed"):
        gen.write_day(out, 64, 100, 1)
    assert not out.exists()
    with pytest.raises(ValueError, match="multiple"):
        next(gen.day_chunks(2, 1000, 1, block=1000))


def test_gen_command_streams_binaryfile(tmp_path):
    out = tmp_path / "d.itch"
    r = CliRunner().invoke(app, ["gen", "--symbols", "3", "--messages", "40000", "--seed", "4",
                                 "--format", "binaryfile", "--out", str(out)])
    assert r.exit_code == 0, r.output
    ref = tmp_path / "ref.itch"
    gen.write_capture(gen.generate_day(3, 40_000, 4), ref, fmt="binaryfile")
    assert out.read_bytes() == ref.read_bytes()
