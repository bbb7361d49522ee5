"""Ready-made bar columns for the alert tests, as factory fixtures."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from marketpulse.alerts import AlertEngine
from marketpulse.models import INDICATOR_COLUMNS

T0 = 1_700_000_040_000_000_000  # a minute boundary, ns
MINUTE = 60_000_000_000
NEVER = np.iinfo(np.int64).min
KEY = ("symbol", "timeframe", "bar_start", "bar_end")
COLUMNS = (*KEY, "open", "high", "low", "close", "volume", *INDICATOR_COLUMNS)


def _bars(
    symbol: str = "AAPL",
    timeframe: str = "1m",
    n: int | None = None,
    step: int = MINUTE,
    start: int = T0,
    **columns,
) -> dict[str, np.ndarray]:
    """Return ``n`` bars of one symbol, ``step`` long; unspecified indicators are NaN, close 100."""
    if n is None:
        n = len(next(iter(columns.values())))
    rows = {
        "symbol": np.array([symbol] * n, dtype=object),
        "timeframe": np.array([timeframe] * n, dtype=object),
        "bar_start": start + step * np.arange(n, dtype=np.int64),
        "bar_end": start + step * np.arange(1, n + 1, dtype=np.int64),
    }
    for name in COLUMNS[len(KEY) :]:
        default = 100.0 if name in ("open", "high", "low", "close") else np.nan
        if name == "volume":
            default = 1000.0
        rows[name] = np.asarray(columns.pop(name, np.full(n, default)), dtype=np.float64)
    assert not columns, f"unknown columns {columns}"
    return rows


def _merge(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Interleave row sets by bar end (stable: ties keep argument order)."""
    rows = {k: np.concatenate([p[k] for p in parts]) for k in COLUMNS}
    order = np.argsort(rows["bar_end"], kind="stable")
    return {k: v[order] for k, v in rows.items()}


def _take(rows: dict[str, np.ndarray], sl: slice) -> dict[str, np.ndarray]:
    return {k: v[sl] for k, v in rows.items()}


def _fired_at(alerts, rows) -> list[int]:
    """Return the row positions (by bar key) where alerts fired."""
    index = {
        (s, i, t): n
        for n, (s, i, t) in enumerate(
            zip(rows["symbol"], rows["timeframe"], rows["bar_start"].tolist(), strict=True)
        )
    }
    return [index[(a.symbol, a.timeframe, a.bar_start)] for a in alerts]


def _run(rules, rows, chunks=None):
    """Evaluate ``rows`` with a fresh engine, in one call or split before each ``chunks`` index."""
    engine = AlertEngine(rules if isinstance(rules, list) else [rules])
    if chunks is None:
        return engine.evaluate(rows)
    out, start = [], 0
    for stop in [*chunks, len(rows["bar_end"])]:
        out += engine.evaluate(_take(rows, slice(start, stop)))
        start = stop
    return out


@pytest.fixture
def bars():
    return _bars


@pytest.fixture
def merge():
    return _merge


@pytest.fixture
def take():
    return _take


@pytest.fixture
def fired_at():
    return _fired_at


@pytest.fixture
def run():
    return _run


@pytest.fixture
def write(tmp_path):
    """Write a rules file under tmp_path and return its path."""

    def _write(name: str, text: str):
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


def _json_snapshot(engine, symbol):
    """A symbol's alert state in the JSON every release wrote before packed snapshots.

    A fixture of the old format, built from the engine's arrays as that writer did:
    each column's own ring (null: no bar yet), the rules that fired, the last bar
    end only with stale-feed rules.
    """
    keys = []
    for slot in engine._slots_by_symbol.get(symbol, []):
        history = {column: [None if v != v else v for v in view[slot].tolist()]
                   for column, view in engine._rings.views.items()}  # fmt: skip
        fired = {name: when for name, when in zip(engine._rule_names,
                 engine._last_fire[slot].tolist(), strict=True) if when != NEVER}  # fmt: skip
        key = {"interval": engine._keys[slot][1], "history": history, "last_fire": fired}
        end = int(engine._last_end[slot])
        if engine._stale and end != NEVER:
            key["last_end"] = end
        keys.append(key)
    return msgspec.json.encode({"symbol": symbol, "keys": keys, "version": 1})


@pytest.fixture
def json_snapshot():
    return _json_snapshot
