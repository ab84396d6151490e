"""Latency campaigns: a small sweep on the RTL back-end through Ray, stored as Parquet; the
report renders its plots and shows the numbers the raw records give; `latency compare`
passes identical runs and flags a regression injected into a copy of a run."""

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tickwire.host.capture import read_capture, write_pcap
from tickwire.host.cli import SAMPLE, _register_optional, app
from tickwire.host.latency import hist, ns
from tickwire.host.latency.records import FIGURES, STAGE_NAMES
from tickwire.host.latency_cli import DEFAULT_CONFIG

pytestmark = pytest.mark.rtl
_register_optional()

CAMPAIGN = """
[campaign]
name = "test"
backends = ["rtl"]
parallel = 2

[[input]]
name = "head"
capture = "head.pcap"
config = "{config}"

[[load]]
name = "asap"
mode = "asap"

[[load]]
name = "rate-2M"
mode = "rate"
frames_per_second = 2e6

[[load]]
name = "burst4"
mode = "rate"
frames_per_second = 1e6
burst = 4

[[config]]
name = "cut-through"
"""


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    d = tmp_path_factory.mktemp("campaign")
    fr = read_capture(SAMPLE)
    n = 1800            # the sample's first frames: enough for a few dozen orders
    write_pcap(d / "head.pcap", [fr.frame(i) for i in range(n)], fr.timestamps_ns[:n])
    (d / "c.toml").write_text(CAMPAIGN.format(config=DEFAULT_CONFIG))
    out = d / "out"
    r = CliRunner().invoke(app, ["latency", "run", str(d / "c.toml"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_runs_stored_and_queryable(campaign):
    runs = sorted(p.name for p in (campaign / "runs").iterdir())
    assert runs == ["head.asap.cut-through.rtl", "head.burst4.cut-through.rtl",
                    "head.rate-2M.cut-through.rtl"]
    for r in runs:
        meta = json.loads((campaign / "runs" / r / "run.json").read_text())
        assert meta["backend"] == "rtl" and meta["git_commit"] and meta["orders"] > 5
        assert meta["identity"]["hash"] and meta["identity"]["build_id"] is not None
        md = pq.read_schema(campaign / "runs" / r / "records.parquet").metadata
        assert json.loads(md[b"tickwire"])["run_id"] == r
    import duckdb
    q = duckdb.sql(f"SELECT load, count(*) AS n FROM '{campaign}/summary.parquet' "
                   "WHERE figure = 'end_to_end' GROUP BY load ORDER BY load").fetchall()
    assert [x[0] for x in q] == ["asap", "burst4", "rate-2M"] and all(x[1] == 1 for x in q)
    # the loads offered what they say: the paced runs are slower than back to back
    off = dict(duckdb.sql(f"SELECT load, any_value(offered_mps) FROM "
                          f"'{campaign}/summary.parquet' GROUP BY load").fetchall())
    assert off["asap"] > off["rate-2M"] > off["burst4"]


def test_report_plots_and_numbers(campaign):
    page = (campaign / "report" / "index.html").read_text()
    for png in ("spectrum.png", "waterfall.png", "load.png", "spacing.png"):
        f = campaign / "report" / png
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000
        assert png in page
    shown = json.loads((campaign / "report" / "report.json").read_text())["runs"]
    for rid, figs in shown.items():
        recs = pq.read_table(campaign / "runs" / rid / "records.parquet").to_pydict()
        series = {f: np.array(recs[f]) for f in FIGURES}
        series["spacing"] = np.diff(recs["t_order"])
        assert set(figs) == set(series)
        for f, v in series.items():
            got = figs[f]
            assert got["count"] == len(v)
            want = {"min": v.min(), "max": v.max(),
                    **{hist.key(p): hist.nearest_rank(v, p) for p in hist.PERCENTILES}}
            for k, x in want.items():
                # HdrHistogram at 3 digits: exact below 2048, else the bucket's top value
                h = hist.record(v)
                assert got[k] == x or (x >= 2048 and h.values_are_equivalent(got[k], x)), \
                    (rid, f, k)
            assert f"{int(got['p99'])} ({ns(got['p99']):.1f} ns)" in page


def test_compare_identical_and_injected_regression(campaign, tmp_path):
    same = CliRunner().invoke(app, ["latency", "compare", str(campaign), str(campaign)])
    assert same.exit_code == 0, same.output
    assert "REGRESSED" not in same.output
    # a copy of the campaign whose egress stage got 40 cycles slower on one run
    from tickwire.host.latency.campaign import summarize
    from tickwire.host.latency.runs import load_run, store
    b = tmp_path / "b"
    shutil.copytree(campaign, b)
    rid = "head.rate-2M.cut-through.rtl"
    meta, recs, _ = load_run(b / "runs" / rid)
    r = {k: np.asarray(v) for k, v in recs.to_pydict().items()}
    for k in ("egress", "end_to_end", "corrected"):
        r[k] = r[k] + 40
    r["t_order"] = r["t_order"] + 40
    store(b / "runs" / rid, r, meta, "cycles")
    summarize(b)
    bad = CliRunner().invoke(app, ["latency", "compare", str(campaign), str(b), "--json"])
    assert bad.exit_code == 1, bad.output
    res = json.loads(bad.stdout)
    flagged = {(x["run_id"], x["figure"]) for x in res["regressions"]}
    assert flagged == {(rid, "egress"), (rid, "end_to_end"), (rid, "corrected")}
    # other stages of the run and the other runs compare equal
    for x in res["rows"]:
        if x["run_id"] != rid or x["figure"] in STAGE_NAMES[:-1]:
            assert x["p99_delta"] == 0, x
