"""A second process compiles the declared indicators' kernels into numba's cache."""

from __future__ import annotations

import subprocess
import sys

from marketpulse.indicators import compile_aside, parse_set


def test_the_second_process_saves_the_declared_kinds_kernels_and_no_others(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    process = compile_aside.start(parse_set("sma(5), fast=ema(3)"))
    assert process is not None
    assert process.wait(timeout=600) == 0
    saved = sorted(p.name.split("-")[0] for p in tmp_path.rglob("*.nbi"))
    assert saved == ["classic._ema", "classic._sma", "state._count"]


def test_finishing_ends_a_second_process_still_running():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    compile_aside.finish(sleeper)
    assert sleeper.returncode is not None
