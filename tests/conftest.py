"""Shared test fixtures: where the external oracles live.

Under CI (``CI=true``, as ``.ci/run`` sets) the real captures beside the clone are required: a
missing ``../shared/data`` stops the run at its start instead of turning every test against
outside data into a skip.
"""

import os
from pathlib import Path

import pytest

# The suite's Verilated harnesses are plain builds: a profile-guided one costs two more
# compilations and a training run per gateware version, which the suite's short simulations
# do not win back (tests/test_fastsim_pgo.py turns it on for its own build; `tickwire replay`
# keeps it on by default).
os.environ.setdefault("TICKWIRE_SIM_PGO", "0")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
#: the folders of ../shared/data the suite reads
SHARED_PARTS = ("itch", "ouch", "lobster")


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_shared() -> list[Path]:
    """The required folders of the external data that are absent (all of them if SHARED is)."""
    if not SHARED.is_dir():
        return [SHARED]
    return [SHARED / p for p in SHARED_PARTS if not any((SHARED / p).glob("*"))]


def pytest_sessionstart(session):
    missing = missing_shared()
    if under_ci() and missing:
        raise pytest.UsageError(
            "CI=true but the external test data is missing: "
            + ", ".join(str(p) for p in missing)
            + " (place the shared data folder beside the clone, as ../shared/data)")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        if under_ci():
            pytest.fail(f"CI=true but the external captures are missing: {SHARED}")
        pytest.skip(f"external captures not found at {SHARED}")
    return SHARED
