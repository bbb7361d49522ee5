"""The package cache locator: kernels compiled in one checkout load in another."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import marketpulse

LOCATORS = "marketpulse.kernel_cache.PackageCacheLocator,UserProvidedCacheLocator"
#: One small kernel of the package, called as the PostgreSQL sink calls it.
CALL = (
    "import numpy as np; from marketpulse.sinks import pgcopy;"
    "print(pgcopy._put_null(np.zeros(8, np.uint8), 2))"
)


def _checkouts(tmp_path: Path) -> list[Path]:
    """Two copies of the package in two folders, as two clones would hold it."""
    package = Path(marketpulse.__file__).parent
    ignore = shutil.ignore_patterns("__pycache__")
    for name in ("one", "two"):
        shutil.copytree(package, tmp_path / name / "marketpulse", ignore=ignore)
    return [tmp_path / "one", tmp_path / "two"]


def _run(checkout: Path, cache: Path, locators: str | None) -> str:
    env = {**os.environ, "PYTHONPATH": str(checkout), "NUMBA_CACHE_DIR": str(cache),
           "NUMBA_DEBUG_CACHE": "1"}  # fmt: skip
    env.pop("NUMBA_CACHE_LOCATOR_CLASSES", None)
    if locators:
        env["NUMBA_CACHE_LOCATOR_CLASSES"] = locators
    result = subprocess.run([sys.executable, "-c", CALL], env=env, capture_output=True,
                            text=True, cwd=checkout, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "6"  # the kernel ran: four bytes written after 2
    return result.stdout


def test_a_second_checkout_loads_the_kernels_the_first_compiled(tmp_path):
    one, two = _checkouts(tmp_path)
    cache = tmp_path / "cache"
    first = _run(one, cache, LOCATORS)
    assert "data saved" in first  # compiled and saved once
    second = _run(two, cache, LOCATORS)
    assert "data loaded" in second and "data saved" not in second
    assert [p.name for p in cache.iterdir()] == ["marketpulse.sinks"]


def test_numbas_own_locator_compiles_again_in_a_second_checkout(tmp_path):
    """What the locator is for: by the folder's absolute path, the copy misses."""
    one, two = _checkouts(tmp_path)
    cache = tmp_path / "cache"
    _run(one, cache, None)
    assert "data saved" in _run(two, cache, None)


def test_files_outside_the_package_go_to_the_next_locator(tmp_path):
    module = tmp_path / "own.py"
    module.write_text("import numba\n@numba.njit(cache=True)\ndef f(x):\n    return x + 1\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "c"),
           "NUMBA_CACHE_LOCATOR_CLASSES": LOCATORS}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", "import own; print(own.f(1))"], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"
    assert [p.name for p in (tmp_path / "c").iterdir()][0].startswith(tmp_path.name + "_")
