"""The `tickwire` command: output contracts of run, decode, replay, bench and gen."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tickwire.host import capture, gen, itch, moldudp64
from tickwire.host.bookcsv import header, read_book_csv
from tickwire.host.cli import app, main  # noqa: F401

runner = CliRunner()


def cli(*args):
    r = runner.invoke(app, [str(a) for a in args])
    return r


def test_run_default_capture_json():
    r = cli("run", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    for k in ("backend", "messages", "packets", "gaps", "orders", "risk_rejects"):
        assert k in s
    assert s["backend"] == "emu" and s["messages"] == 20_000 and s["packets"] > 1000
    assert s["orders"] > 0 and s["gaps"] == 0
    assert s["orders"] + sum(s["risk_rejects"].values()) == s["triggers_fired"]


def test_run_with_toml_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[risk]\nkill = true\n[strategy]\nband_bps = 10\n')
    s = json.loads(cli("run", "--json", "--config", cfg).stdout)
    assert s["orders"] == 0 and s["risk_rejects"]["kill"] == s["triggers_fired"] > 0


@pytest.mark.parametrize("text,needle", [
    ("[risk]\nmax_qty = 5\n", "risk.max_qty: unknown key"),
    ("[risk]\nmax_order_qty = 'x'\n", "risk.max_order_qty: expected an integer"),
    ("[strategy]\nkind = 'magic'\n", "strategy.kind"),
    ("[feed]\ngroups = ['1.2.3:5']\n", "feed.groups"),
    ("not toml ===", "c.toml"),
])
def test_bad_config_is_a_clear_error(tmp_path, text, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    r = cli("run", "--config", cfg)
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output


def test_garbage_and_truncated_inputs_name_the_file(tmp_path):
    g = tmp_path / "garbage.bin"
    g.write_bytes(bytes(range(256)) * 3)
    r = cli("run", "--capture", g)
    assert r.exit_code == 2 and "garbage.bin" in r.output and "offset" in r.output
    src = gen.generate_day(symbols=2, messages=2000, seed=1)
    p = tmp_path / "day.pcap"
    gen.write_capture(src, p)
    t = tmp_path / "cut.pcap"
    t.write_bytes(p.read_bytes()[:-7])
    r = cli("run", "--capture", t)
    assert r.exit_code == 2 and "cut.pcap" in r.output and "offset" in r.output
    r = cli("run", "--capture", tmp_path / "missing.pcap")
    assert r.exit_code == 2 and "missing.pcap" in r.output


def test_decode_jsonl_fields(tmp_path, shared_data):
    f = shared_data / "itch" / "Nasdaq.Equities.TotalView.Itch.v5.0__Multiple.Packets.pcap"
    r = cli("decode", f)
    assert r.exit_code == 0
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(recs) == 39
    first = recs[0]
    assert first["type"] == "D" and first["session"] == "000010059B"
    assert first["sequence"] == 14764496 and isinstance(first["order_reference_number"], int)
    adds = [x for x in recs if x["type"] == "A"]
    assert adds and adds[0]["stock"] == "META" and adds[0]["price"] == 805200
    assert {"stock_locate", "tracking_number", "timestamp", "buy_sell_indicator",
            "shares"} <= set(adds[0])
    seqs = [x["sequence"] for x in recs]
    assert seqs[1:] == list(range(seqs[1], seqs[1] + 38))


def test_decode_binaryfile_and_table(tmp_path):
    p = tmp_path / "d.itch"
    day = gen.generate_day(symbols=3, messages=500, seed=2)
    gen.write_capture(day, p, fmt="binaryfile")
    recs = [json.loads(x) for x in cli("decode", p).stdout.splitlines()]
    assert len(recs) == 500 and [r["sequence"] for r in recs] == list(range(1, 501))
    for r, m in zip(recs, day.messages):
        d = itch.decode(m)
        assert r["type"] == d["type"] and all(r[k] == v for k, v in d.items())
    t = cli("decode", p, "--format", "table", "--limit", "5").stdout.splitlines()
    assert len(t) == 5 and t[0].split()[1] == "S"


def test_replay_csv_and_duplicate_packets(tmp_path):
    day = gen.generate_day(symbols=4, messages=5000, seed=3)
    pkts = gen.to_packets(day)
    from tickwire.host.framing import build_udp_frame
    frames, ts = [], []
    for k, (t, p) in enumerate(pkts):
        frames.append(build_udp_frame(p))
        ts.append(t)
        if k % 7 == 0:  # a late copy (as from line B): must be dropped
            frames.append(build_udp_frame(p))
            ts.append(t + 1)
    cap = tmp_path / "dup.pcap"
    capture.write_pcap(cap, frames, ts)
    clean = tmp_path / "clean.pcap"
    gen.write_capture(day, clean)
    sym = ",".join(day.symbols[:2])
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    ra = cli("replay", cap, "--symbols", sym, "--depth", "3", "--book-out", a, "--json")
    rb = cli("replay", clean, "--symbols", sym, "--depth", "3", "--book-out", b)
    assert ra.exit_code == 0 and rb.exit_code == 0
    assert a.read_text() == b.read_text()
    cols, rows = read_book_csv(a)
    assert cols == header(3).split(",") and cols[:5] == ["sequence", "timestamp", "symbol",
                                                       "ask_price_1", "ask_size_1"]
    assert len(rows) == json.loads(ra.stdout)["rows"] > 100
    assert {r[2] for r in rows} == set(day.symbols[:2])
    seq = [int(r[0]) for r in rows]
    assert seq == sorted(seq)
    for r in rows:  # best ask above best bid, empty levels 0,0
        ap, bp = int(r[3]), int(r[5])
        assert ap == 0 or bp == 0 or ap > bp


def test_gen_deterministic_and_bench_json(tmp_path):
    a, b = tmp_path / "a.itch", tmp_path / "b.itch"
    for p in (a, b):
        assert cli("gen", "--symbols", 3, "--messages", 3000, "--seed", 9, "--out", p,
                   "--format", "binaryfile").exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    r = cli("bench", a, "--json", "--repeat", "1", "--peer")
    s = json.loads(r.stdout)
    assert s["messages"] == 3000 and s["msgs_per_s"] > 0 and s["peer"]["messages"] == 3000
    assert s["bbo_rows"] == s["peer"]["bbo_rows"]
    assert cli("gen", "--out", a, "--format", "csv").exit_code == 2


def test_run_with_model_driven_triggers(tmp_path):
    cfg = tmp_path / "m.toml"
    cfg.write_text('[strategy]\nkind = "model"\n')
    r = cli("run", "--json", "--config", cfg)
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    sig = s["signal"]
    assert sig["updates"] > 1000 and sig["trigger_writes"] == s["trigger_writes"] > 0
    assert sig["update_to_write"]["p99_us"] >= sig["update_to_write"]["p50_us"] > 0
    assert s["orders"] + sum(s["risk_rejects"].values()) == s["triggers_fired"]
