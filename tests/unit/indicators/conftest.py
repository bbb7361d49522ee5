"""Fixtures of the indicator tests: the shared real series, loaded once per session."""

from __future__ import annotations

import pytest

from .series import INDICES, SYMBOLS, Series, load


@pytest.fixture(scope="session")
def series() -> dict[str, Series]:
    """Every shared series by name: the 13 daily indices and the 4 Lean minute series."""
    return load()


@pytest.fixture(scope="session")
def daily(series) -> dict[str, Series]:
    """Daily bars of each world index; one session per month (for VWAP resets)."""
    return {name: series[name] for name in INDICES}


@pytest.fixture(scope="session")
def minute(series) -> dict[str, Series]:
    """1-minute trade bars of each Lean symbol on 2013-10-07 (one session: the day)."""
    return {name: series[name] for name in SYMBOLS}
