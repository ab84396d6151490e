"""pytest entry of the ITCH decoder bench."""

import json

import pytest

from tickwire.hw.feed import EMITTED_TYPES, ItchDecoder
from tickwire.sim.feed_common import captures
from tickwire.sim.runner import BUILD_ROOT, SHARED_DATA, build, run

pytestmark = pytest.mark.rtl
TB = "tickwire.sim.feed_decoder.decoder_tb"
DECODER_LATENCY = 3  # cycles, word holding the message's last byte in -> message out


@pytest.fixture(scope="module")
def design():
    return build(ItchDecoder(fifo_depth=256), "feed_decoder")


def test_decoder_captures(design):
    if not captures():
        pytest.skip(f"shared captures not found in {SHARED_DATA / 'itch'}")
    run(design, TB, testcase="capture_messages")


def test_decoder_random(design):
    run(design, TB, testcase="random_packets")


def test_decoder_latency(design):
    """The decoder's latency: 3 cycles from the word with its last byte to the message, every type
    (README's resource table)."""
    metrics = BUILD_ROOT / "feed_decoder" / "latency.json"
    metrics.unlink(missing_ok=True)
    run(design, TB, testcase="latency", env={"TW_METRICS": str(metrics)})
    lat = json.loads(metrics.read_text())["decoder_latency_cycles"]
    assert set(lat) == set(EMITTED_TYPES)
    assert set(lat.values()) == {DECODER_LATENCY}, lat


def test_decoder_throughput(design):
    metrics = BUILD_ROOT / "feed_decoder" / "metrics.json"
    run(design, TB, testcase="throughput", env={"TW_METRICS": str(metrics)})
    print(json.loads(metrics.read_text()))
