"""Per-key indicator state, and the calls that advance it over a batch of bars.

A key is a small non-negative integer naming one series (one symbol at one
interval); the caller maps symbols to keys. Each key owns one row of each
state array, so a batch may mix any keys and a key's state can be saved and
restored on its own (for the compacted ``state`` topic).
"""

from __future__ import annotations

import numpy as np

from marketpulse.indicators.kernels import COLUMNS, N_FLOATS, N_INTS, RING, update_rows

__all__ = ["IndicatorState", "compute_indicators", "update_indicators"]

# Snapshot format: magic and version, then the key's rows, little-endian.
_MAGIC = b"MPI\x01"
_SNAPSHOT_SIZE = len(_MAGIC) + 8 * (N_FLOATS + N_INTS + 2 * RING)


class IndicatorState:
    """The streaming state of every key's indicators, as numpy arrays.

    Rows are indexed by key. The arrays grow (doubling) when a key at or past
    the capacity is used; a key never seen has the state of an empty series.

    Attributes:
        floats: float64 (capacity, N_FLOATS) running sums and smoothed values.
        ints: int64 (capacity, N_INTS) bar count, last session, reseed counter.
        close_ring: float64 (capacity, RING) the last closes of each key.
        volume_ring: float64 (capacity, RING) the last volumes of each key.
    """

    def __init__(self, capacity: int = 64) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.floats = np.zeros((capacity, N_FLOATS), dtype=np.float64)
        self.ints = np.zeros((capacity, N_INTS), dtype=np.int64)
        self.close_ring = np.zeros((capacity, RING), dtype=np.float64)
        self.volume_ring = np.zeros((capacity, RING), dtype=np.float64)

    @property
    def capacity(self) -> int:
        """Number of keys the arrays hold now."""
        return self.floats.shape[0]

    def bars(self, key: int) -> int:
        """Return how many bars ``key`` has seen since it was new or reset."""
        self._check_key(key)
        return int(self.ints[key, 0]) if key < self.capacity else 0

    def ensure_capacity(self, capacity: int) -> None:
        """Grow the arrays, doubling, until they hold ``capacity`` keys."""
        if capacity <= self.capacity:
            return
        new = self.capacity
        while new < capacity:
            new *= 2
        self.floats = _grow(self.floats, new)
        self.ints = _grow(self.ints, new)
        self.close_ring = _grow(self.close_ring, new)
        self.volume_ring = _grow(self.volume_ring, new)

    def reset(self, key: int) -> None:
        """Forget ``key``'s history: its next bar starts a new series."""
        self._check_key(key)
        if key < self.capacity:
            self.floats[key] = 0.0
            self.ints[key] = 0
            self.close_ring[key] = 0.0
            self.volume_ring[key] = 0.0

    def snapshot(self, key: int) -> bytes:
        """Return ``key``'s state as bytes, for :meth:`restore` here or elsewhere."""
        self._check_key(key)
        return self.snapshots(np.array([key], np.int64))[0]

    def bar_counts(self, keys: np.ndarray) -> np.ndarray:
        """:meth:`bars` of each of ``keys`` (non-negative)."""
        keys = np.asarray(keys, np.int64)
        inside = keys < self.capacity
        return np.where(inside, self.ints[np.where(inside, keys, 0), 0], 0)

    def snapshots(self, keys: np.ndarray) -> list[bytes]:
        """:meth:`snapshot` of each of ``keys`` (non-negative), made in one pass."""
        keys = np.asarray(keys, np.int64)
        if len(keys) == 0:
            return []
        inside = keys < self.capacity
        rows = np.where(inside, keys, 0)
        parts = [
            array[rows].astype(dtype).view(np.uint8)
            for array, dtype in (
                (self.floats, "<f8"), (self.ints, "<i8"),
                (self.close_ring, "<f8"), (self.volume_ring, "<f8"),
            )
        ]  # fmt: skip
        data = np.concatenate(parts, axis=1)
        data[~inside] = 0  # never seen: the state of an empty series
        return [_MAGIC + row.tobytes() for row in data]

    def restore(self, key: int, data: bytes) -> None:
        """Set ``key``'s state from bytes made by :meth:`snapshot`.

        Raises:
            ValueError: ``data`` is not a snapshot of this format.
        """
        self._check_key(key)
        if len(data) != _SNAPSHOT_SIZE or not data.startswith(_MAGIC):
            raise ValueError(
                f"not an indicator state snapshot ({len(data)} bytes, "
                f"expected {_SNAPSHOT_SIZE} starting with {_MAGIC!r})"
            )
        self.ensure_capacity(key + 1)
        offset = len(_MAGIC)
        for target, dtype, width in (
            (self.floats, "<f8", N_FLOATS),
            (self.ints, "<i8", N_INTS),
            (self.close_ring, "<f8", RING),
            (self.volume_ring, "<f8", RING),
        ):
            target[key] = np.frombuffer(data, dtype=dtype, count=width, offset=offset)
            offset += 8 * width

    def copy(self) -> IndicatorState:
        """Return an independent copy of every key's state."""
        other = IndicatorState.__new__(IndicatorState)
        other.floats = self.floats.copy()
        other.ints = self.ints.copy()
        other.close_ring = self.close_ring.copy()
        other.volume_ring = self.volume_ring.copy()
        return other

    @staticmethod
    def _check_key(key: int) -> None:
        if key < 0:
            raise ValueError(f"keys are non-negative, not {key}")


def _grow(array: np.ndarray, rows: int) -> np.ndarray:
    grown = np.zeros((rows,) + array.shape[1:], dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


def update_indicators(
    state: IndicatorState,
    keys: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    pv: np.ndarray,
    session: np.ndarray,
) -> np.ndarray:
    """Advance ``state`` by a batch of closed bars and return their indicators.

    Args:
        state: the state to update in place; grows to hold the largest key.
        keys: int (n,) key of each bar. A key's bars must come in time order;
            different keys may interleave freely.
        high: (n,) bar highs.
        low: (n,) bar lows.
        close: (n,) bar closes.
        volume: (n,) bar volumes.
        pv: (n,) sum of price * size of each bar's trades (bar VWAP * volume).
        session: int (n,) session of each bar (such as the exchange date); a
            key's VWAP restarts when its session differs from its last bar's.

    Returns:
        float64 array (n, len(COLUMNS)), columns in :data:`COLUMNS` order, NaN
        where an indicator is not warmed up yet.

    Raises:
        ValueError: the arrays differ in length or a key is negative.
    """
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    n = keys.shape[0] if keys.ndim == 1 else -1
    columns = [np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close, volume, pv)]
    session = np.ascontiguousarray(session, dtype=np.int64)
    if n < 0 or any(a.shape != (n,) for a in (*columns, session)):
        raise ValueError("keys, high, low, close, volume, pv and session must be 1-D of one length")
    out = np.empty((n, len(COLUMNS)), dtype=np.float64)
    if n == 0:
        return out
    lowest, highest = int(keys.min()), int(keys.max())
    if lowest < 0:
        raise ValueError(f"keys are non-negative, not {lowest}")
    state.ensure_capacity(highest + 1)
    update_rows(
        keys,
        *columns,
        session,
        state.floats,
        state.ints,
        state.close_ring,
        state.volume_ring,
        out,
    )
    return out


def compute_indicators(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    pv: np.ndarray,
    session: np.ndarray,
) -> np.ndarray:
    """Return the indicators of one whole series, as :func:`update_indicators` would.

    Args:
        high: (n,) bar highs, oldest first.
        low: (n,) bar lows.
        close: (n,) bar closes.
        volume: (n,) bar volumes.
        pv: (n,) sum of price * size of each bar's trades.
        session: int (n,) session of each bar.

    Returns:
        float64 array (n, len(COLUMNS)), NaN where not warmed up.
    """
    n = np.shape(close)[0]
    return update_indicators(
        IndicatorState(capacity=1),
        np.zeros(n, dtype=np.int64),
        high,
        low,
        close,
        volume,
        pv,
        session,
    )
