"""pytest entry of the ITCH decoder bench."""

import json

import pytest

from tickwire.hw.feed import ItchDecoder
from tickwire.sim.feed_common import captures
from tickwire.sim.runner import BUILD_ROOT, build, run

pytestmark = pytest.mark.rtl
TB = "tickwire.sim.feed_decoder.decoder_tb"


@pytest.fixture(scope="module")
def design():
    return build(ItchDecoder(fifo_depth=256), "feed_decoder")


def test_decoder_captures(design):
    if not captures():
        pytest.skip("shared captures not found")
    run(design, TB, testcase="capture_messages")


def test_decoder_random(design):
    run(design, TB, testcase="random_packets")


def test_decoder_throughput(design):
    metrics = BUILD_ROOT / "feed_decoder" / "metrics.json"
    run(design, TB, testcase="throughput", env={"TW_METRICS": str(metrics)})
    print(json.loads(metrics.read_text()))
