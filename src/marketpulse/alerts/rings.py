"""Rings of earlier bar values per (symbol, interval), read and advanced in one pass."""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["lag_and_push"]


@nb.njit(cache=True, nogil=True)
def _lag_and_push(
    values: np.ndarray, key: np.ndarray, ring: np.ndarray, lags: np.ndarray, out: np.ndarray
) -> None:
    depth = ring.shape[1]
    for i in range(values.shape[0]):
        k = key[i]
        for j in range(lags.shape[0]):
            out[j, i] = ring[k, depth - lags[j]]
        for d in range(depth - 1):
            ring[k, d] = ring[k, d + 1]
        ring[k, depth - 1] = values[i]


def lag_and_push(
    values: np.ndarray, key: np.ndarray, ring: np.ndarray, lags: list[int]
) -> dict[int, np.ndarray]:
    """Return, per lag, each row's value that many bars earlier; keep the rows in ``ring``.

    Args:
        values: one value per row, rows in time order within each key.
        key: each row's ring index.
        ring: per key, its last ``depth`` values, oldest first (NaN: none yet);
            updated in place with the rows' values.
        lags: the lags asked for, each from 1 to ``depth``.
    """
    out = np.empty((len(lags), values.shape[0]), np.float64)
    _lag_and_push(
        np.ascontiguousarray(values, np.float64), np.ascontiguousarray(key, np.int64), ring,
        np.asarray(lags, np.int64), out,
    )  # fmt: skip
    return {lag: out[j] for j, lag in enumerate(lags)}
