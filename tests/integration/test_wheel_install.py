"""A built wheel installs on its own (production dependencies only) and runs.

The README's bare-machine install: ``python -m pip wheel --no-deps -w dist .``
then ``pip install dist/marketpulse-*.whl`` in a fresh virtual environment,
dependencies from PyPI (pip's cache reused; here without writing their bytecode). The
test tools (the ``dev`` extra) must stay out, and the installed command must run the
pipeline without them. The same split in the Makefile: ``make run`` installs the
runtime only, ``make test`` adds the ``dev`` extra (with uv, or pip where uv cannot be
installed).
"""

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# the `dev` extra's own packages (pandas is not one: exchange_calendars needs it at run time)
TEST_TOOLS = ("pytest", "talib", "playwright", "moto", "hypothesis", "sqlglot", "ruff")


def _environ():
    """The caller's environment without MarketPulse settings or a path into the checkout."""
    drop = ("MARKETPULSE_", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    environ["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return environ


def _run(command, cwd, timeout=600):
    return subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_environ(),
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with only the built wheel installed; its bin directory."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT], cwd=base
    )
    assert built.returncode == 0, built.stderr
    wheels = sorted(dist.glob("marketpulse-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    # --no-compile: pip would write the bytecode of every file of every dependency (30 CPU-s
    # against 17 for the whole install, measured here); the commands below write what they
    # import, as on a first import anywhere
    done = _run([bin_dir / "python", "-m", "pip", "install", "-q", "--no-compile", wheels[0]],
                cwd=base)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return bin_dir


@pytest.mark.timeout(900)
def test_the_wheel_installs_without_the_test_tools_and_runs(installed, tmp_path):
    # nothing of the dev extra came along
    probe = (
        "import importlib.util as u, sys; "
        "print(','.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    )
    # numba: a runtime dependency, there to show the probe sees what is installed
    found = _run([installed / "python", "-c", probe, "numba", *TEST_TOOLS], cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "numba"
    # the command is the installed one, not the checkout's
    where = _run(
        [installed / "python", "-c", "import marketpulse; print(marketpulse.__file__)"],
        cwd=tmp_path,
    )
    assert str(installed.parent) in where.stdout, where.stdout + where.stderr

    helped = _run([installed / "marketpulse", "--help"], cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "run" in helped.stdout and "sql" in helped.stdout

    lake = tmp_path / "lake"
    ran = _run(
        [installed / "marketpulse", "run", "--duration", "2", "--symbols", "5", "--no-dashboard",
         "--lake", lake],
        cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr + ran.stdout
    assert ran.stdout.strip().splitlines()[-1].startswith("done: ")
    counted = _run(
        [installed / "marketpulse", "sql", "select count(*) as n from bars", "--lake", lake],
        cwd=tmp_path,
    )
    assert counted.returncode == 0, counted.stderr
    rows = int(counted.stdout.strip().splitlines()[-1].strip())
    assert rows > 0


@pytest.mark.timeout(900)
def test_a_bad_duration_in_the_installed_command_is_one_line(installed, tmp_path):
    bad = _run([installed / "marketpulse", "run", "--duration", "-1"], cwd=tmp_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr + bad.stdout
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1, bad.stderr
    assert "--duration" in lines[0]


def test_make_run_installs_no_test_tools_and_make_test_does(tmp_path):
    # a venv that does not exist yet: make prints every step it would take, runs none
    fresh = f"VENV={tmp_path / 'venv'}"
    run = _run(["make", "-n", "run", fresh], cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    # uv installs, pinned, from its cache alone first, then from the index, with pip as
    # the fallback: each with the runtime only
    assert "install --quiet uv==" in run.stdout
    assert "uv pip install --quiet --offline --python" in run.stdout
    assert "uv pip install --quiet --python" in run.stdout
    assert run.stdout.count(" pip -e . 2>/dev/null ||") == 1, run.stdout  # offline, then...
    assert run.stdout.count(" pip -e .;") == 2, run.stdout  # ...the index, or pip
    assert "[dev]" not in run.stdout
    test = _run(["make", "-n", "test", fresh], cwd=ROOT, timeout=60)
    assert test.returncode == 0, test.stderr
    assert test.stdout.count(' -e ".[dev]" 2>/dev/null ||') == 1, test.stdout
    assert test.stdout.count(' -e ".[dev]";') == 2, test.stdout
    assert test.stdout.index("-e .;") < test.stdout.index("[dev]") < test.stdout.index("-m pytest")
