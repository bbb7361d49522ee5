"""Every kind of the catalogue: streaming equals batch, bit for bit.

Bars split into random batches, several series interleaved, and the state
saved and restored mid-way all give the bits of one batch call per series.
"""

from __future__ import annotations

import numpy as np
import pytest

from marketpulse.indicators import (
    KINDS,
    IndicatorState,
    StateMismatch,
    parse_set,
    update_indicators,
)

from .series import Series, assert_streaming_equals_batch, inputs


def _declaration(name: str) -> str:
    return f"{name}()"


@pytest.fixture(scope="module")
def tails(series) -> list[Series]:
    """Three real daily index series (the last 1,500 days of each)."""
    return [{f: v[-1500:] for f, v in series[index].items()} for index in ("NYA", "N225", "GDAXI")]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_streaming_in_random_batches_with_restores_equals_batch(tails, kind: str) -> None:
    """40 random cuts; every key saved and restored into a fresh state every 7 batches."""
    declared = parse_set(_declaration(kind))
    assert_streaming_equals_batch(tails, declared, seed=7, chunks=41, restore_every=7)


def test_restore_refuses_a_snapshot_of_another_set(tails) -> None:
    a = IndicatorState(declared=parse_set("ema(50)"))
    update_indicators(a, np.zeros(10, np.int64), *(v[:10] for v in inputs(tails[0])[:6]))
    b = IndicatorState(declared=parse_set("ema(51)"))
    with pytest.raises(StateMismatch, match="another set of declared indicators"):
        b.restore(0, a.snapshot(0))
    with pytest.raises(ValueError, match="not an indicator state snapshot"):
        b.restore(0, b"MPI\x01" + bytes(100))


def test_restore_many_equals_restoring_each_key_and_checks_every_snapshot_first(tails) -> None:
    """Keys restored in one pass (the state topic's restore) get the state each would alone."""
    declared = parse_set("sma(20), ema(12), rsi(14), bb=bbands(20, 2), atr(14)")
    source = IndicatorState(declared=declared)
    keys = np.repeat(np.arange(5, dtype=np.int64), 30)
    columns = [np.tile(v[:30], 5) for v in inputs(tails[0])[:6]]
    update_indicators(source, keys, *columns)
    wanted = np.array([0, 3, 4, 200], np.int64)  # 200: never seen, the empty state
    snapshots = source.snapshots(wanted)
    each, together = IndicatorState(declared=declared), IndicatorState(declared=declared)
    for key, data in zip(wanted.tolist(), snapshots, strict=True):
        each.restore(key, data)
    together.restore_many(wanted, snapshots)
    assert together.snapshots(wanted) == each.snapshots(wanted) == snapshots
    assert together.capacity >= 201 and together.bars(3) == 30 and together.bars(200) == 0
    with pytest.raises(ValueError, match="not an indicator state snapshot"):
        together.restore_many(np.array([1, 2]), [snapshots[0], b"junk"])
    assert together.bars(1) == 0  # nothing restored from a set with a bad snapshot
    with pytest.raises(ValueError, match="2 keys but 1 snapshots"):
        together.restore_many(np.array([1, 2]), [snapshots[0]])


def test_sparse_keys_take_rows_for_the_keys_used_alone(tails) -> None:
    """A symbol's intervals are 16 keys apart: rows are made for the keys used, not for the gaps."""
    declared = parse_set("ema(3), sma(2)")
    sparse, dense = IndicatorState(declared=declared), IndicatorState(declared=declared)
    columns = [v[:6] for v in inputs(tails[0])[:6]]
    got = update_indicators(sparse, np.array([5, 1_000_000, 5, 5, 1_000_000, 5]), *columns)
    want = update_indicators(dense, np.array([0, 1, 0, 0, 1, 0]), *columns)
    np.testing.assert_array_equal(got, want)
    assert sparse.bars(5) == 4 and sparse.bars(1_000_000) == 2 and sparse.bars(6) == 0
    assert sparse.counts.shape[0] == 64  # the first rows, not a million
    assert sparse.snapshots(np.array([5, 1_000_000])) == dense.snapshots(np.array([0, 1]))


def test_warm_up_readies_the_kernel_of_every_kind() -> None:
    from marketpulse.indicators import warm_up

    warm_up()
    for name, kind in KINDS.items():
        assert kind.kernel.signatures, f"{name}: no compiled signature after warm_up()"


def test_a_snapshot_is_the_header_then_each_array_row_little_endian(tails) -> None:
    """The layout the ``state`` topic holds: gathering the rows at once must not change it."""
    declared = parse_set("sma(20), ema(12), rsi(14), bb=bbands(20, 2), atr(14), vwap")
    state = IndicatorState(declared=declared)
    keys = np.repeat(np.array([7, 2, 40], np.int64), 25)
    update_indicators(state, keys, *(np.tile(v[:25], 3) for v in inputs(tails[0])[:6]))
    wanted = np.array([40, 3, 7, 2], np.int64)  # 3: never seen, the empty state
    rows = state.rows(wanted)
    expected = []
    for row in rows.tolist():
        parts = [b"MPI\x02", declared.fingerprint]
        arrays = [state.counts[:, None]] + [a for block in state.blocks for a in block]
        for array in arrays:
            values = array[row] if row >= 0 else np.zeros_like(array[0])
            parts.append(values.astype("<f8" if array.dtype == np.float64 else "<i8").tobytes())
        expected.append(b"".join(parts))
    assert state.snapshots(wanted) == expected
    assert state.snapshot(7) == expected[2]
