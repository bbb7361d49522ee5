"""Rings of earlier bar values per (symbol, interval), read and advanced in one pass."""

from __future__ import annotations

import numba as nb
import numpy as np

from marketpulse.numba_blas import defer_blas_check

defer_blas_check()

__all__ = ["KERNELS", "Rings"]


@nb.njit(cache=True, nogil=True)
def _lag_and_push(
    values: np.ndarray,
    key: np.ndarray,
    ring: np.ndarray,
    pair_column: np.ndarray,
    pair_lag: np.ndarray,
    out: np.ndarray,
) -> None:
    depth = ring.shape[2]
    for i in range(values.shape[1]):
        k = key[i]
        for j in range(pair_column.shape[0]):
            out[j, i] = ring[k, pair_column[j], depth - pair_lag[j]]
        for c in range(values.shape[0]):
            for d in range(depth - 1):
                ring[k, c, d] = ring[k, c, d + 1]
            ring[k, c, depth - 1] = values[c, i]


class Rings:
    """The last values of some columns per key (a (symbol, interval) slot), oldest first.

    All columns live in one array, each right-aligned in the depth of the
    deepest, so one call reads the lags of every column and pushes the rows.
    :attr:`views` gives each column's own ring, ``depth`` values per key.

    Args:
        lags: per column, the lags (in bars, from 1) that are read; its
            ring is as deep as the largest.
    """

    def __init__(self, lags: dict[str, set[int]]) -> None:
        self.columns = list(lags)
        self._depths = [max(lags[c]) for c in self.columns]
        width = max(self._depths, default=0)
        #: where each column's own values lie in a key's flattened (columns, width) ring
        self._own = np.array([j * width + d for j, depth in enumerate(self._depths)
                              for d in range(width - depth, width)], np.int64)  # fmt: skip
        self._pairs = [(j, lag) for j, c in enumerate(self.columns) for lag in sorted(lags[c])]
        self._pair_column = np.array([j for j, _ in self._pairs], np.int64)
        self._pair_lag = np.array([lag for _, lag in self._pairs], np.int64)
        self._ring = np.full((0, len(self.columns), max(self._depths, default=0)), np.nan)
        self.views: dict[str, np.ndarray] = {}
        self._view()

    def __len__(self) -> int:
        return self._ring.shape[0]

    def grow(self, extra: int) -> None:
        """Add ``extra`` keys with no values yet (NaN)."""
        more = np.full((extra, *self._ring.shape[1:]), np.nan)
        self._ring = np.concatenate([self._ring, more])
        self._view()

    def _view(self) -> None:
        width = self._ring.shape[2]
        self.views = {
            c: self._ring[:, j, width - depth :]
            for j, (c, depth) in enumerate(zip(self.columns, self._depths, strict=True))
        }

    @property
    def depths(self) -> list[int]:
        """Each column's depth: the values kept per key."""
        return list(self._depths)

    def rows(self, keys: np.ndarray) -> np.ndarray:
        """Each column's ring of ``keys``, oldest first, one after another: (keys, depths)."""
        if not self.columns:
            return np.empty((len(keys), 0))
        keys_, columns, width = self._ring.shape
        return self._ring.reshape(keys_, columns * width)[keys][:, self._own]

    def lag_and_push(
        self, columns: dict[str, np.ndarray], key: np.ndarray
    ) -> dict[tuple[str, int], np.ndarray]:
        """Return each row's earlier values per (column, lag); keep the rows' values.

        Args:
            columns: one float64 value per row for each column; rows in time
                order within each key.
            key: each row's key.
        """
        if not self.columns:
            return {}
        n = len(key)
        values = np.empty((len(self.columns), n), np.float64)
        for j, c in enumerate(self.columns):
            values[j] = columns[c]
        out = np.empty((len(self._pairs), n), np.float64)
        _lag_and_push(
            values, np.ascontiguousarray(key, np.int64), self._ring,
            self._pair_column, self._pair_lag, out,
        )  # fmt: skip
        return {(self.columns[j], lag): out[i] for i, (j, lag) in enumerate(self._pairs)}


#: The kernels called from Python (marketpulse.kernel_progress reads their callees off them).
KERNELS = (_lag_and_push,)
