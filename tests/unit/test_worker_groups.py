"""The suite's root conftest: under ``make test``'s workers, a file's tests share a worker."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

#: Eight tests that each record which worker ran them and take a moment, so that
#: without groups two idle workers would share them.
TESTS = """
import os, time
import pytest

@pytest.mark.parametrize("n", range(8))
def test_records_its_worker(n, tmp_path_factory):
    time.sleep(0.2)
    with open(os.environ["WORKERS_FILE"], "a") as out:
        out.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
"""


def _workers(tmp_path: Path, folder: str) -> list[str]:
    shutil.copy(ROOT_CONFTEST, tmp_path / "conftest.py")
    (tmp_path / folder).mkdir(parents=True)
    (tmp_path / folder / "test_grouped.py").write_text(TESTS)
    record = tmp_path / "workers.txt"
    env = {**os.environ, "WORKERS_FILE": str(record)}
    env.pop("CI", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "addopts=",
         "-n", "2", "--dist", "loadgroup", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return record.read_text().split()


def test_an_integration_files_tests_run_on_one_worker(tmp_path):
    workers = _workers(tmp_path, "tests/integration")
    assert len(workers) == 8 and len(set(workers)) == 1, workers


def test_other_tests_spread_over_the_workers(tmp_path):
    """The control: without the file's group, the same tests go to both workers."""
    workers = _workers(tmp_path, "tests/unit")
    assert len(workers) == 8 and set(workers) == {"gw0", "gw1"}, workers
