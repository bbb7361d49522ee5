"""Rings of earlier bar values: columns of different depths in one array."""

from __future__ import annotations

import numpy as np

from marketpulse.alerts.rings import Rings

LAGS = {"close": {1, 3}, "rsi": {1}}


def _expected(values: list[float], lag: int) -> list[float]:
    """Each row's value ``lag`` rows earlier in its own key (NaN before the first)."""
    return [values[i - lag] if i >= lag else np.nan for i in range(len(values))]


def _rows(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    key = rng.integers(0, 3, n)
    return {"close": rng.uniform(10, 20, n), "rsi": rng.uniform(0, 100, n)}, key


def test_each_lag_is_the_value_that_many_rows_earlier_of_the_same_key():
    rings = Rings(LAGS)
    rings.grow(3)
    columns, key = _rows(40, 1)
    lagged = rings.lag_and_push(columns, key)
    assert set(lagged) == {("close", 1), ("close", 3), ("rsi", 1)}
    for (column, lag), got in lagged.items():
        want = np.full(len(key), np.nan)
        for k in range(3):
            rows = np.flatnonzero(key == k)
            want[rows] = _expected(columns[column][rows].tolist(), lag)
        np.testing.assert_array_equal(got, want)


def test_rows_pushed_in_pieces_give_what_one_call_gives():
    columns, key = _rows(50, 2)
    whole = Rings(LAGS)
    whole.grow(3)
    expected = whole.lag_and_push(columns, key)
    pieces = Rings(LAGS)
    pieces.grow(3)
    parts = [pieces.lag_and_push({c: v[a:b] for c, v in columns.items()}, key[a:b])
             for a, b in ((0, 7), (7, 8), (8, 50))]  # fmt: skip
    for name, values in expected.items():
        np.testing.assert_array_equal(np.concatenate([p[name] for p in parts]), values)
    for column in LAGS:
        np.testing.assert_array_equal(pieces.views[column], whole.views[column])


def history(rings, slot):
    """Each column's ring of one key, oldest first."""
    return {column: view[slot].tolist() for column, view in rings.views.items()}


def test_each_column_keeps_only_its_own_depth_and_growing_keeps_the_values():
    rings = Rings(LAGS)
    rings.grow(1)
    rings.lag_and_push({"close": np.array([1.0, 2.0, 3.0, 4.0]), "rsi": np.arange(4.0)},
                       np.zeros(4, np.int64))  # fmt: skip
    assert rings.views["close"].shape == (1, 3)
    assert rings.views["rsi"].shape == (1, 1)
    assert history(rings, 0) == {"close": [2.0, 3.0, 4.0], "rsi": [3.0]}
    rings.grow(2)
    assert len(rings) == 3
    assert history(rings, 0) == {"close": [2.0, 3.0, 4.0], "rsi": [3.0]}
    assert np.isnan(rings.views["close"][1:]).all()
    rings.views["rsi"][2] = 7.0  # a restore writes through the view
    lagged = rings.lag_and_push({"close": np.array([5.0]), "rsi": np.array([8.0])},
                                np.array([2]))  # fmt: skip
    assert lagged["rsi", 1].tolist() == [7.0]
    assert history(rings, 2)["rsi"] == [8.0]
