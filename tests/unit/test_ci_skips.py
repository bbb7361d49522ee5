"""The suite's root conftest: under CI (``CI=true``) a skip fails the run."""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

TESTS = """
import pytest

def test_passes():
    pass

def test_skips():
    pytest.skip("no such data file")

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False
"""
MODULE_SKIP = """
import pytest

pytest.importorskip("no_such_module_for_the_ci_rule")

def test_never_collected():
    pass
"""


@pytest.fixture
def suite(tmp_path):
    shutil.copy(ROOT_CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_some.py").write_text(TESTS)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)

    def run(ci, *options):
        env = {k: v for k, v in os.environ.items() if k != "CI"}
        if ci is not None:
            env["CI"] = ci
        report = tmp_path / f"report-{ci}.xml"
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
             f"--junitxml={report}", "-o", "addopts=", *options, str(tmp_path)],
            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        cases = {}
        for case in ET.parse(report).iter("testcase"):
            outcome = [child.tag for child in case if child.tag in ("failure", "skipped", "error")]
            cases[case.get("name")] = outcome[0] if outcome else "passed"
        return result, cases

    return run


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_outside_ci_a_skip_stays_a_skip(suite, ci):
    result, cases = suite(ci)
    assert result.returncode == 0, result.stdout
    assert cases["test_skips"] == "skipped"
    assert cases["test_expected_failure"] == "skipped"  # junit's name for xfail
    assert "skipped under CI" not in result.stdout


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_under_ci_every_skip_fails_the_run_and_is_listed(suite, ci):
    result, cases = suite(ci)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert cases["test_passes"] == "passed"
    assert cases["test_skips"] == "failure"
    assert cases["test_expected_failure"] == "skipped"  # xfail is not a skip
    listed = result.stdout.split("skipped under CI: each one fails the run", 1)[1]
    assert "test_some.py::test_skips: no such data file" in listed
    assert "test_module_skip.py" in listed and "no_such_module_for_the_ci_rule" in listed


def test_under_ci_a_skip_fails_the_run_with_workers_too(suite):
    """``make test`` runs the suite on two xdist workers: collection happens in them."""
    result, cases = suite("true", "-n", "2", "--dist", "loadgroup")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert cases["test_passes"] == "passed"
    assert cases["test_skips"] == "failure"
    listed = result.stdout.split("skipped under CI: each one fails the run", 1)[1]
    assert "test_module_skip.py" in listed and "no_such_module_for_the_ci_rule" in listed
