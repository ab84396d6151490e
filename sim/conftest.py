"""pytest configuration of the cocotb benches in sim/ (see sim/runner.py)."""

import pytest

from tickwire.sim.runner import SHARED_DATA


def pytest_configure(config):
    config.addinivalue_line("markers", "rtl: runs an RTL simulation")


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"external captures not found at {SHARED_DATA}")
    return SHARED_DATA
