"""End to end: the first `marketpulse run` on an empty kernel cache, then a second one.

The first run compiles the kernels it uses, and only those: its live view
says so with a progress line (``compiling kernels: 7/26``) and draws no table
or figures of a pipeline that has no tick yet. The second run, its cache
warm, compiles nothing. The cache is a fresh ``NUMBA_CACHE_DIR`` of the
test's own, so what numba saved there is what each run compiled.
"""

import os
import pkgutil
import re
import subprocess
import sys
from importlib import import_module

import pytest
from numba.core.dispatcher import Dispatcher

import marketpulse
from marketpulse.alerts import default_rules
from marketpulse.kernel_progress import needed
from marketpulse.stream.processor import Processor, ProcessorSettings

from .terminal import in_terminal, written_lines

pytestmark = pytest.mark.integration

#: The parts of the package that hold numba kernels.
_WITH_KERNELS = ("marketpulse.indicators", "marketpulse.stream", "marketpulse.alerts",
                 "marketpulse.sinks.pgcopy")  # fmt: skip
RUN = ("run", "--duration", "3", "--symbols", "5", "--no-dashboard")
_PROGRESS = re.compile(r"^compiling kernels: (\d+)/(\d+) \(first run only; later runs load them\)$")


def _saved(cache):
    """The kernels (index files) and compiled signatures (data files) numba saved in ``cache``."""
    kernels = sorted(p.name.split("-")[0] for p in cache.rglob("*.nbi"))
    return kernels, len(list(cache.rglob("*.nbc")))


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """`marketpulse run` in an 100 x 30 terminal, its kernel cache empty."""
    folder = tmp_path_factory.mktemp("first-run")
    cache = folder / "numba"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NUMBA_CACHE_DIR", str(cache))
        code, raw = in_terminal(
            *RUN, "--lake", folder / "lake", columns=100, rows=30, cwd=folder, timeout=600
        )
    assert code == 0, raw[-2000:]
    return folder, cache, written_lines(raw)


@pytest.mark.timeout(900)
def test_the_first_run_shows_its_kernels_compiling_and_no_idle_figures(first):
    _, _, lines = first
    progress = [m for m in map(_PROGRESS.match, (line.strip() for line in lines)) if m]
    assert progress, "\n".join(lines[:40])
    done, total = int(progress[-1][1]), int(progress[-1][2])
    assert 0 <= done <= total and total > 0
    # until the first tick: neither the table nor a figures line of zeros
    last_progress = max(i for i, line in enumerate(lines) if _PROGRESS.match(line.strip()))
    header = [i for i, line in enumerate(lines) if re.match(r"\s*symbol\s+last\b", line)]
    assert header and min(header) > last_progress
    zero_figures = [line for line in lines if re.search(r"ticks/s in 0 .*\bticks 0\b", line)]
    assert zero_figures == []
    summary = [line for line in lines if line.startswith("done: ticks in ")]
    assert len(summary) == 1 and "ticks in 0," not in summary[0]


@pytest.mark.timeout(900)
def test_the_first_run_compiles_the_kernels_it_uses_each_once_and_no_others(first):
    _, cache, _ = first
    kernels, signatures = _saved(cache)
    # the embedded bus carries Arrow columns: no JSON to scan
    used = needed(Processor(ProcessorSettings(), default_rules()).kernels(columns=True))
    expected = sorted(
        f"{k.py_func.__module__.rsplit('.', 1)[1]}.{k.py_func.__name__}" for k in used
    )
    assert kernels == expected
    assert signatures == len(kernels)  # one specialization each: none for literal arguments
    # the package has kernels this run does not use (other indicator kinds, bar feeds, COPY)
    assert len(kernels) < len(_package_kernels()) - 20


def _package_kernels():
    """The package's kernels that numba compiles on their own (not inlined)."""
    found = set()
    for module in pkgutil.walk_packages(marketpulse.__path__, "marketpulse."):
        if not module.name.startswith(_WITH_KERNELS):
            continue
        for value in vars(import_module(module.name)).values():
            if isinstance(value, Dispatcher) and value.targetoptions.get("inline") != "always":
                found.add(value)
    return found


@pytest.mark.timeout(900)
def test_a_second_run_compiles_nothing_and_prints_figures_not_progress(first):
    folder, cache, _ = first
    before = _saved(cache)
    env_run = subprocess.run(
        [sys.executable, "-m", "marketpulse", *RUN, "--lake", str(folder / "lake2")],
        cwd=folder, capture_output=True, text=True, timeout=600,
        env=_env(NUMBA_CACHE_DIR=str(cache)),
    )  # fmt: skip
    assert env_run.returncode == 0, env_run.stderr[-2000:]
    assert _saved(cache) == before
    assert "compiling kernels" not in env_run.stdout
    assert "kernels to compile" not in env_run.stderr
    assert env_run.stdout.strip().splitlines()[-1].startswith("done: ticks in ")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    return {**env, **extra}
