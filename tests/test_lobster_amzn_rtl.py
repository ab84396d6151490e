"""`tickwire replay --backend rtl` on the AMZN whole day at level 1 (LOBSTER, 2012-06-21): the
gateware's book, at the gateware's capacities, gives the file's best bid and ask after every
one of its 57,515 events, and its loss counters are the emulator's at the same capacities."""

import json

import numpy as np
import pytest
from test_lobster_amzn import EVENTS, LOSSES, best_after_each_event, day, run  # noqa: F401
from typer.testing import CliRunner

from tickwire.backends.rtl import rtl_config
from tickwire.host.bookcsv import read_book_csv
from tickwire.host.capture import write_binaryfile
from tickwire.host.cli import app
from tickwire.host.config import Config
from tickwire.host.emu.pipeline import BookRows

pytestmark = pytest.mark.rtl


def test_rtl_best_bid_ask_exact_over_the_day(day, tmp_path):  # noqa: F811
    sample, msgs, event_index, stats = day
    path, out = tmp_path / "amzn.bin", tmp_path / "amzn-rtl.csv"
    write_binaryfile(path, msgs)
    r = CliRunner().invoke(app, ["replay", str(path), "--backend", "rtl", "--symbols", "AMZN",
                                 "--depth", "1", "--book-out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["messages"] == len(msgs)
    head, text = read_book_csv(out)
    assert head[:3] == ["sequence", "timestamp", "symbol"] and all(t[2] == "AMZN" for t in text)
    seq = np.array([int(t[0]) for t in text], np.int64)
    lv = np.array([[[int(float(v)) for v in t[3:7]]] for t in text], np.int64)
    # a BinaryFILE's record k (from 0) has sequence k + 1; the emulator's rows name the record
    rows = BookRows(seq, seq, np.zeros(len(seq), np.int64), seq - 1, lv)
    got = best_after_each_event(rows, event_index)
    want = sample.book_rows()[:, 0, :]
    wrong = np.nonzero((got != want).any(axis=1))[0]
    assert len(wrong) == 0, f"{len(wrong)} wrong rows, the first after event {wrong[0]}"
    # the same losses as the emulator at the gateware's capacities (none but far levels)
    emu = run(msgs, rtl_config(Config())).counters
    assert s["book_loss"] == {k: emu.get(k, 0) for k in s["book_loss"]}  # no frames, no fcs_errors
    assert emu["order_table_full"] == emu["level_miss"] == 0
    print(f"\nAMZN day on the RTL: all {EVENTS} best bid/ask rows right; "
          f"{s['simulation']['cycles']:,} cycles for {len(msgs):,} messages; loss {s['book_loss']}")
