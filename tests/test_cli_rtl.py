"""`tickwire run --backend rtl` is `--backend emu` on the gateware: the same host loop and
strategy (default band, model), byte-identical order frames and every emulator counter equal;
`tickwire latency` measures it."""

import json

import pytest
from typer.testing import CliRunner

from tickwire.host import gen
from tickwire.host.capture import read_capture
from tickwire.host.cli import _register_optional, app
from tickwire.host.latency_cli import CLOCK_MHZ

pytestmark = pytest.mark.rtl
_register_optional()


@pytest.fixture(scope="module")
def day16(tmp_path_factory):
    d = tmp_path_factory.mktemp("day16")
    day = gen.generate_day(symbols=16, messages=20_000, seed=16)
    path = d / "day16.pcap"
    gen.write_capture(day, path)
    return path


def run(tmp_path, backend, capture=None, config=None):
    out = tmp_path / f"orders-{backend}.pcap"
    args = ["run", "--json", "--backend", backend, "--orders-out", str(out)]
    args += ["--capture", str(capture)] if capture else []
    args += ["--config", str(config)] if config else []
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    fr = read_capture(out)
    return json.loads(r.stdout), [fr.frame(i) for i in range(len(fr))]


def assert_same(tmp_path, capture=None, config=None, min_orders=20):
    emu, emu_frames = run(tmp_path, "emu", capture, config)
    rtl, rtl_frames = run(tmp_path, "rtl", capture, config)
    assert rtl["backend"] == "rtl" and emu["backend"] == "emu"
    assert emu["orders"] >= min_orders and emu["trigger_writes"] > 0
    assert rtl_frames == emu_frames and len(emu_frames) == emu["orders"]
    diff = {k: (rtl["counters"].get(k), v) for k, v in emu["counters"].items()
            if rtl["counters"].get(k) != v}
    assert diff == {}
    assert rtl["trigger_writes"] == emu["trigger_writes"]


def test_default_band_strategy_sample(tmp_path):
    """No --config: every symbol learned (auto mode), the band strategy."""
    assert_same(tmp_path)


def test_default_band_strategy_generated_16_symbols(tmp_path, day16):
    assert_same(tmp_path, day16)


def test_model_strategy(tmp_path, day16):
    cfg = tmp_path / "model.toml"
    cfg.write_text('[strategy]\nkind = "model"\n')
    assert_same(tmp_path, config=cfg)
    assert_same(tmp_path, day16, cfg, min_orders=1)


def test_latency_json():
    out = CliRunner().invoke(app, ["latency", "--backend", "rtl", "--json"])
    assert out.exit_code == 0, out.output
    r = json.loads(out.stdout)
    assert r["orders"] > 20
    f, t = r["from_frame_first_byte"]["cycles"], r["from_trigger_field"]["cycles"]
    assert 0 < t["min"] <= t["p50"] <= t["p99"] <= t["max"]
    assert f["min"] >= t["min"] and f["p50"] >= t["p50"]
    # the trigger field ends inside the frame: the frame's first byte comes earlier
    assert f["max"] >= t["max"]
    assert r["from_trigger_field"]["ns"]["min"] == pytest.approx(t["min"] * 1000 / CLOCK_MHZ,
                                                                 abs=0.1)
    # the cut-through orders: 3 cycles after the decoder's strobe
    assert r["cut_through"]["fast_orders"] > 0
    # the queueing behind another order frame is reported apart from the path
    q = r["egress_wait"]["cycles"]
    assert 0 <= q["min"] <= q["max"] and r["orders_that_waited"] <= r["orders"]
    nq = r["from_trigger_field_not_queued"]["cycles"]
    assert nq["min"] >= t["min"] and nq["max"] <= t["max"]
    assert r["from_trigger_field_cut_through"]["cycles"]["min"] == t["min"]


def test_latency_wire_triggers():
    out = CliRunner().invoke(app, ["latency", "--source", "wire", "--json"])
    assert out.exit_code == 0, out.output
    r = json.loads(out.stdout)
    assert r["trigger_source"] == "wire" and r["orders"] > 20
    # most orders leave from the port walker's strobe: 4 cycles after their trigger field
    ct = r["cut_through"]
    assert ct["fast_orders"] > r["orders"] // 2 and ct["port_offered"] > 0
    assert ct["wire_stops"] == 0 and ct["port_syncs"] >= 1
    assert r["from_trigger_field"]["cycles"]["min"] == 4
    assert r["from_trigger_field"]["cycles"]["p50"] <= 6
    bad = CliRunner().invoke(app, ["latency", "--source", "tape", "--json"])
    assert bad.exit_code == 2 and "strategy.source" in bad.output


def test_latency_with_bad_fcs_frames(tmp_path):
    """The bundled capture with every frame flagged with a bad FCS (pcapng's CRC-error flag),
    wire triggers: every order frame is aborted or had left whole, the rest of the frames are
    the emulator's with the aborted ones' sequence bytes taken back, and the report says so."""
    from pathlib import Path
    import tickwire.host
    from tickwire.host.capture import write_pcapng
    from tickwire.host.framing import FcsError
    fr = read_capture(Path(tickwire.host.__file__).parent / "data" / "sample.pcap")
    path = tmp_path / "bad.pcapng"
    write_pcapng(path, [FcsError(f) for f in fr], fr.timestamps_ns)
    out = CliRunner().invoke(app, ["latency", "--capture", str(path), "--source", "wire",
                                   "--json"])
    assert out.exit_code == 0, out.output
    r = json.loads(out.stdout)
    b = r["bad_fcs"]
    assert b["fcs_errors"] == len(fr) == r["book_loss"]["fcs_errors"]
    assert b["fcs_aborts"] > 0 and b["fcs_late"] > 0
    assert b["fcs_aborts"] + b["fcs_late"] == r["orders"] > 20
