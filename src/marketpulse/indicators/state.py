"""Per-key state of a declared indicator set, and the calls that advance it.

A key is a small non-negative integer naming one series (one symbol at one
interval); the caller maps symbols to keys. Each key owns one row of every
instance's state arrays, so a batch may mix any keys and a key's state can be
saved and restored on its own (for the compacted ``state`` topic).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from marketpulse.indicators.declare import DEFAULT, DeclaredSet
from marketpulse.numba_blas import defer_blas_check

defer_blas_check()

__all__ = [
    "IndicatorState",
    "StateMismatch",
    "compute_indicators",
    "kernels",
    "update_indicators",
    "warm_up",
]

# Snapshot format: magic and version, the declared set's fingerprint, the
# key's bar count, then each instance's rows (floats, ints, ring), little-endian.
_MAGIC = b"MPI\x02"
_HEADER = len(_MAGIC) + 8 + 8


#: Bar-kernel calls (rows times declared instances) from which the kernels of one
#: update run in threads, one per core (smaller updates: a thread hand-off costs more).
_PARALLEL_WORK = 200_000
_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor | None:
    """The kernels' threads (``None`` on one core), made on first use."""
    global _POOL
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2:
        return None
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=cores, thread_name_prefix="indicators")
    return _POOL


@numba.njit(cache=True, nogil=True)
def _count(keys, counts):
    for k in keys:
        counts[k] += 1


class StateMismatch(ValueError):
    """A snapshot was made for another declared indicator set."""


class IndicatorState:
    """The streaming state of every key's declared indicators, as numpy arrays.

    Keys may be sparse (the processor spaces a symbol's intervals 16 keys
    apart): each key used gets a row of its own, in the order first used, and
    the rows hold nothing for keys never used. The key map and the rows grow
    (doubling) as keys come; a key never seen has the state of an empty series.

    Attributes:
        declared: the declared indicator set this state computes.
        counts: int64 (rows,) bars seen by the key of each row.
        blocks: per declared instance, its ``[floats, ints, ring]`` arrays, a row per key used.
    """

    def __init__(self, capacity: int = 64, declared: DeclaredSet = DEFAULT) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.declared = declared
        self._rows = np.full(capacity, -1, np.int64)  # key: its row, -1 for none yet
        self._used = 0  # rows given to keys
        rows = min(capacity, 64)
        self.counts = np.zeros(rows, dtype=np.int64)
        self.params = [np.array(item.numbers, np.float64) for item in declared.items]
        self.blocks: list[list[np.ndarray]] = []
        for item, params in zip(declared.items, self.params, strict=True):
            floats, ints, ring = item.kind.layout(tuple(params))
            self.blocks.append([
                np.zeros((rows, max(floats, 1)), np.float64),
                np.zeros((rows, max(ints, 1)), np.int64),
                np.zeros((rows, max(ring, 1)), np.float64),
            ])  # fmt: skip
        self._row_bytes = 8 * sum(a.shape[1] for block in self.blocks for a in block)

    @property
    def capacity(self) -> int:
        """Number of keys the key map holds now (rows are made for the keys used)."""
        return self._rows.shape[0]

    @property
    def columns(self) -> tuple[str, ...]:
        """The output columns, in order."""
        return self.declared.columns

    def bars(self, key: int) -> int:
        """Return how many bars ``key`` has seen since it was new or reset."""
        self._check_key(key)
        return int(self.bar_counts(np.array([key], np.int64))[0])

    def ensure_capacity(self, capacity: int) -> None:
        """Grow the key map, doubling, until it holds ``capacity`` keys."""
        if capacity <= self.capacity:
            return
        new = self.capacity
        while new < capacity:
            new *= 2
        grown = np.full(new, -1, np.int64)
        grown[: self.capacity] = self._rows
        self._rows = grown

    def rows(self, keys: np.ndarray, create: bool = False) -> np.ndarray:
        """The row of each of ``keys`` (non-negative); -1 for a key without one.

        ``create``: give the keys without a row one (zeroed: an empty series).
        """
        keys = np.asarray(keys, np.int64)
        if not len(keys):
            return np.zeros(0, np.int64)
        if create:
            self.ensure_capacity(int(keys.max()) + 1)
        inside = keys < self.capacity
        found = np.where(inside, self._rows[np.where(inside, keys, 0)], -1)
        if create and (found < 0).any():
            new = np.unique(keys[found < 0])
            self._add_rows(len(new))
            self._rows[new] = np.arange(self._used - len(new), self._used)
            found = self._rows[keys]
        return found

    def _add_rows(self, count: int) -> None:
        self._used += count
        size = self.counts.shape[0]
        if self._used <= size:
            return
        while size < self._used:
            size *= 2
        self.counts = _grow(self.counts, size)
        self.blocks = [[_grow(a, size) for a in block] for block in self.blocks]

    def reset(self, key: int) -> None:
        """Forget ``key``'s history: its next bar starts a new series."""
        self._check_key(key)
        row = int(self.rows(np.array([key], np.int64))[0])
        if row >= 0:
            self.counts[row] = 0
            for block in self.blocks:
                for array in block:
                    array[row] = 0

    def bar_counts(self, keys: np.ndarray) -> np.ndarray:
        """:meth:`bars` of each of ``keys`` (non-negative)."""
        rows = self.rows(keys)
        return np.where(rows >= 0, self.counts[np.maximum(rows, 0)], 0)

    def snapshot(self, key: int) -> bytes:
        """Return ``key``'s state as bytes, for :meth:`restore` here or elsewhere."""
        self._check_key(key)
        return self.snapshots(np.array([key], np.int64))[0]

    def snapshots(self, keys: np.ndarray) -> list[bytes]:
        """:meth:`snapshot` of each of ``keys`` (non-negative), made in one pass.

        Every key's row, its header included, is gathered into one buffer, array
        by array (one copy of each array's rows), and the buffer is cut into the
        keys' bytes.
        """
        keys = np.asarray(keys, np.int64)
        if len(keys) == 0:
            return []
        found = self.rows(keys)
        rows = np.maximum(found, 0)
        n, width = len(keys), _HEADER + self._row_bytes
        data = np.empty((n, width), np.uint8)
        data[:, : _HEADER - 8] = np.frombuffer(_MAGIC + self.declared.fingerprint, np.uint8)
        at = _HEADER - 8
        for array in [self.counts[:, None]] + [a for block in self.blocks for a in block]:
            size = 8 * array.shape[1]
            part = data[:, at : at + size].view("<f8" if array.dtype == np.float64 else "<i8")
            np.take(array, rows, axis=0, out=part)  # a big-endian host converts here
            at += size
        never = found < 0
        if never.any():
            data[never, _HEADER - 8 :] = 0  # never seen: the state of an empty series
        flat = data.tobytes()
        return [flat[at : at + width] for at in range(0, len(flat), width)]

    def restore(self, key: int, data: bytes) -> None:
        """Set ``key``'s state from bytes made by :meth:`snapshot`.

        Raises:
            StateMismatch: ``data`` was made for another declared set.
            ValueError: ``data`` is not a snapshot of this format.
        """
        self.restore_many(np.array([key], np.int64), [data])

    def restore_many(self, keys: np.ndarray, datas: list[bytes]) -> None:
        """:meth:`restore` of each of ``keys`` from its bytes in ``datas``, in one pass.

        Every snapshot is checked before any key changes.

        Raises:
            StateMismatch: a snapshot was made for another declared set.
            ValueError: a snapshot is not of this format.
        """
        keys = np.asarray(keys, np.int64)
        if len(keys) != len(datas):
            raise ValueError(f"{len(keys)} keys but {len(datas)} snapshots")
        if not len(keys):
            return
        if int(keys.min()) < 0:
            raise ValueError(f"keys are non-negative, not {int(keys.min())}")
        for data in datas:
            self.check_snapshot(data)
        rows = np.frombuffer(b"".join(datas), np.uint8).reshape(len(datas), -1)[:, _HEADER - 8 :]
        at = self.rows(keys, create=True)
        self.counts[at] = rows[:, :8].copy().view("<i8")[:, 0]
        offset = 8
        for block in self.blocks:
            for array in block:
                width = array.shape[1]
                dtype = "<f8" if array.dtype == np.float64 else "<i8"
                part = rows[:, offset : offset + 8 * width].copy().view(dtype)
                array[at] = part.astype(array.dtype, copy=False)
                offset += 8 * width

    def check_snapshot(self, data: bytes) -> None:
        """Raise unless ``data`` is a :meth:`snapshot` of this declared set.

        Raises:
            StateMismatch: ``data`` was made for another declared set.
            ValueError: ``data`` is not a snapshot of this format.
        """
        if not data.startswith(_MAGIC) or len(data) < _HEADER:
            raise ValueError(
                f"not an indicator state snapshot ({len(data)} bytes, starting with "
                f"{bytes(data[:4])!r}, expected {_MAGIC!r})"
            )
        if data[len(_MAGIC) : len(_MAGIC) + 8] != self.declared.fingerprint:
            raise StateMismatch("indicator state was saved for another set of declared indicators")
        if len(data) != _HEADER + self._row_bytes:
            raise ValueError(
                f"indicator state snapshot of {len(data)} bytes, "
                f"expected {_HEADER + self._row_bytes}"
            )

    def copy(self) -> IndicatorState:
        """Return an independent copy of every key's state."""
        other = IndicatorState.__new__(IndicatorState)
        other.declared = self.declared
        other.params = self.params
        other.counts = self.counts.copy()
        other._rows, other._used = self._rows.copy(), self._used
        other.blocks = [[a.copy() for a in block] for block in self.blocks]
        other._row_bytes = self._row_bytes
        return other

    @staticmethod
    def _check_key(key: int) -> None:
        if key < 0:
            raise ValueError(f"keys are non-negative, not {key}")


def _grow(array: np.ndarray, rows: int) -> np.ndarray:
    grown = np.zeros((rows,) + array.shape[1:], dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


def _source(name: str, bars: dict[str, np.ndarray]) -> np.ndarray:
    if name == "hl2":
        return (bars["high"] + bars["low"]) / 2.0
    if name == "hlc3":
        return (bars["high"] + bars["low"] + bars["close"]) / 3.0
    return bars[name]


def update_indicators(
    state: IndicatorState,
    keys: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    pv: np.ndarray,
    session: np.ndarray,
    open_: np.ndarray | None = None,
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
        open_: (n,) bar opens; without them, kinds that read the open give NaN.

    Returns:
        float64 array (n, len(state.columns)), columns in declared order, NaN
        where an indicator is not warmed up yet.

    Raises:
        ValueError: the arrays differ in length or a key is negative.
    """
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    n = keys.shape[0] if keys.ndim == 1 else -1
    if open_ is None:
        open_ = np.full(max(n, 0), np.nan)
    bars = {
        name: np.ascontiguousarray(a, dtype=np.float64)
        for name, a in (("open", open_), ("high", high), ("low", low), ("close", close),
                        ("volume", volume), ("pv", pv))
    }  # fmt: skip
    session = np.ascontiguousarray(session, dtype=np.int64)
    if n < 0 or any(a.shape != (n,) for a in (*bars.values(), session)):
        raise ValueError(
            "keys, high, low, close, volume, pv, session and open must be 1-D of one length"
        )
    # column-major: each kernel writes its own columns front to back, whatever their
    # number, while its keys' state stays in the cache (``out.T`` is C-contiguous)
    out = np.empty((n, len(state.columns)), dtype=np.float64, order="F")
    if n == 0:
        return out
    lowest = int(keys.min())
    if lowest < 0:
        raise ValueError(f"keys are non-negative, not {lowest}")
    keys = state.rows(keys, create=True)  # the kernels index the state by row
    sources = {name: _source(name, bars) for name in {item.source for item in state.declared.items}}
    columns = [bars[name] for name in ("open", "high", "low", "close", "volume", "pv")]
    calls = []
    col = 0
    for item, params, (fs, ints, ring) in zip(
        state.declared.items, state.params, state.blocks, strict=True
    ):
        args = (keys, sources[item.source], *columns, session, params, fs, ints, ring, out, col)
        calls.append((item.kind.kernel, args))
        col += len(item.kind.outputs)
    pool = _pool() if n * len(calls) >= _PARALLEL_WORK and len(calls) > 1 else None
    if pool is None:
        for kernel, args in calls:
            kernel(*args)
    else:  # kernels release the GIL; each writes its own state and columns
        for future in [pool.submit(kernel, *args) for kernel, args in calls]:
            future.result()
    _count(keys, state.counts)
    return out


def compute_indicators(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    pv: np.ndarray,
    session: np.ndarray,
    open_: np.ndarray | None = None,
    declared: DeclaredSet = DEFAULT,
) -> np.ndarray:
    """Return the indicators of one whole series, as :func:`update_indicators` would.

    Returns:
        float64 array (n, len(declared.columns)), NaN where not warmed up.
    """
    n = np.shape(close)[0]
    return update_indicators(
        IndicatorState(capacity=1, declared=declared),
        np.zeros(n, dtype=np.int64),
        high, low, close, volume, pv, session, open_,
    )  # fmt: skip


def kernels(declared: DeclaredSet) -> tuple[Callable[..., None], ...]:
    """Return the kernels :func:`update_indicators` calls for ``declared``: only its kinds'."""
    return (_count, *dict.fromkeys(item.kind.kernel for item in declared.items))


def warm_up(declarations: DeclaredSet | None = None) -> None:
    """Compile (or load from numba's cache) the kernels of ``declarations``, default every kind.

    A few synthetic bars through each, with the argument types the pipeline
    passes, so a later first batch loads nothing. Container images call it at
    build time.
    """
    from marketpulse.indicators.catalog import KINDS
    from marketpulse.indicators.declare import parse_set

    declared = declarations or parse_set([f"{name}()" for name in KINDS])
    n = 64
    close = 100.0 + np.sin(np.arange(n, dtype=np.float64))
    volume = np.full(n, 100.0)
    update_indicators(
        IndicatorState(capacity=1, declared=declared), np.zeros(n, np.int64), close + 1.0,
        close - 1.0, close, volume, close * volume, np.zeros(n, np.int64), close,
    )  # fmt: skip
