"""Shared helpers for the feed tests: where the real data lives, small files to write."""

from __future__ import annotations

from pathlib import Path

import pytest


def _repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").exists():
            return parent
    raise RuntimeError("repository root not found")


DATA = _repo_root().parent / "shared" / "data"
LEAN_TRADES = DATA / "lean-2013-10-07" / "trades.csv.gz"
KAGGLE_BARS = DATA / "kaggle-stock-exchange" / "indexProcessed.csv"


@pytest.fixture
def write_file(tmp_path):
    """Write text to a file in tmp_path and return its path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="session")
def lean_trades() -> Path:
    """The real Lean trades of 2013-10-07 (gzip CSV)."""
    return LEAN_TRADES


@pytest.fixture(scope="session")
def kaggle_bars() -> Path:
    """The real Kaggle daily index bars (CSV)."""
    return KAGGLE_BARS
