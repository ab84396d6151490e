"""pytest entry of the whole-feed bench (two lines, MoldUDP64 tracker, decoder)."""

import json

import pytest

from tickwire.hw.feed import FeedFrontEnd
from tickwire.sim.feed_common import captures
from tickwire.sim.runner import BUILD_ROOT, SHARED_DATA, build, run

pytestmark = pytest.mark.rtl
TB = "tickwire.sim.feed_mold.mold_tb"
FEED_LATENCY = 15  # cycles, a frame's last beat in -> its decoded message out


@pytest.fixture(scope="module")
def design():
    return build(FeedFrontEnd(), "feed_frontend")


def test_mold_ab(design):
    run(design, TB, testcase=["ab_random_drops", "ab_no_window"], tag="ab")


def test_mold_sessions(design):
    run(design, TB, testcase="sessions_and_overlap")


def test_feed_captures(design):
    if not captures():
        pytest.skip(f"shared captures not found in {SHARED_DATA / 'itch'}")
    run(design, TB, testcase="captures_end_to_end")


def test_feed_latency_rate(design):
    """The whole feed's latency: 20 cycles from a frame's last beat to the decoded message
    (README); the sustained rates are printed."""
    metrics = BUILD_ROOT / "feed_frontend" / "latency.json"
    metrics.unlink(missing_ok=True)
    run(design, TB, testcase="latency_and_rate", env={"TW_METRICS": str(metrics)})
    res = json.loads(metrics.read_text())["feed"]
    print(res)
    assert res["frame_last_beat_to_message_cycles"] == FEED_LATENCY
    for label, r in res.items():
        if label != "frame_last_beat_to_message_cycles":
            assert r["overflow"] == 0, label
