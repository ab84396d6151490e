"""pytest entry of the frame parser bench: build once, run the cocotb tests of parser_tb."""

import json

import pytest

from tickwire.hw.feed import FrameParser
from tickwire.sim.feed_common import captures
from tickwire.sim.runner import BUILD_ROOT, SHARED_DATA, build, run

pytestmark = pytest.mark.rtl
PARSER_LATENCY = 6  # cycles, frame's last beat in -> payload's last beat out


@pytest.fixture(scope="module")
def design():
    return build(FrameParser(groups=4), "feed_parser")


def test_parser_captures(design):
    if not captures():
        pytest.skip(f"shared captures not found in {SHARED_DATA / 'itch'}")
    run(design, "tickwire.sim.feed_parser.parser_tb", testcase="captures_every_frame")


def test_parser_malformed(design):
    run(design, "tickwire.sim.feed_parser.parser_tb",
        testcase=["malformed_then_good", "cut_at_every_byte_back_to_back", "random_mix"],
        tag="malformed")


def test_parser_latency(design):
    """The parser's cut-through latency: 7 cycles from a frame's last beat to its payload's
    last beat (README's resource table)."""
    if not captures(anonymised=False):
        pytest.skip(f"shared captures (not anonymised) not found in {SHARED_DATA / 'itch'}")
    metrics = BUILD_ROOT / "feed_parser" / "latency.json"
    metrics.unlink(missing_ok=True)
    run(design, "tickwire.sim.feed_parser.parser_tb", testcase="latency",
        env={"TW_METRICS": str(metrics)})
    assert json.loads(metrics.read_text())["parser_latency_cycles"] == PARSER_LATENCY
