"""Under CI=true a clone without ../shared/data fails at the start of the run, naming the path."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).with_name("conftest.py")


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    # a clone with no shared data beside it: <tmp>/clone/tests/{conftest.py, test_one.py}
    tests = tmp_path / "clone" / "tests"
    tests.mkdir(parents=True)
    shutil.copy(CONFTEST, tests / "conftest.py")
    (tests / "test_one.py").write_text("def test_one(shared_data):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "-rs", str(tests)], capture_output=True, text=True,
                          cwd=tmp_path / "clone", env=env)


def test_ci_without_shared_data_fails_naming_the_path(tmp_path):
    r = _run(tmp_path, "true")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "CI=true but the external test data is missing" in out
    assert str(tmp_path / "shared" / "data") in out
    assert "1 passed" not in out and "skipped" not in out


def test_outside_ci_the_data_tests_skip_naming_the_path(tmp_path):
    r = _run(tmp_path, None)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "1 skipped" in out and str(tmp_path / "shared" / "data") in out
