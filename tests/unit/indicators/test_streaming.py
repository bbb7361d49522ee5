"""Every kind of the catalogue: streaming equals batch, bit for bit.

Bars split into random batches, several series interleaved, and the state
saved and restored mid-way all give the bits of one batch call per series.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketpulse.indicators import (
    KINDS,
    IndicatorState,
    StateMismatch,
    compute_indicators,
    parse_set,
    update_indicators,
)

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
INDEX_FILE = DATA / "kaggle-stock-exchange" / "indexProcessed.csv"


def _declaration(name: str) -> str:
    return f"{name}()"


@pytest.fixture(scope="module")
def series() -> list[dict[str, np.ndarray]]:
    """Three real daily index series (the last 1,500 days of each)."""
    frame = pd.read_csv(INDEX_FILE)
    out = []
    for index in ("NYA", "N225", "GDAXI"):
        g = frame[frame["Index"] == index].tail(1500)
        volume = g["Volume"].to_numpy(np.float64)
        out.append({
            "open": g["Open"].to_numpy(np.float64), "high": g["High"].to_numpy(np.float64),
            "low": g["Low"].to_numpy(np.float64), "close": g["Close"].to_numpy(np.float64),
            "volume": volume, "pv": g["Close"].to_numpy(np.float64) * volume,
            "session": pd.to_datetime(g["Date"]).dt.month.to_numpy(np.int64),
        })  # fmt: skip
    return out


_FIELDS = ("high", "low", "close", "volume", "pv", "session")


def _batch(declared, s):
    return compute_indicators(*(s[f] for f in _FIELDS), open_=s["open"], declared=declared)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_streaming_in_random_batches_with_restores_equals_batch(series, kind: str) -> None:
    declared = parse_set(_declaration(kind))
    expected = [_batch(declared, s) for s in series]
    assert all(np.isfinite(e).any() for e in expected), f"{kind} never warms up on 1,500 bars"
    # interleave the three series at random, keeping each one's order
    rng = np.random.default_rng(7)
    owners = rng.permutation(np.repeat(np.arange(3), [len(s["close"]) for s in series]))
    positions = np.zeros(3, np.int64)
    order = []
    for owner in owners:
        order.append((owner, positions[owner]))
        positions[owner] += 1
    keys = np.array([o for o, _ in order], np.int64)
    rows = np.array([i for _, i in order], np.int64)
    columns = {f: np.array([series[o][f][i] for o, i in order]) for f in (*_FIELDS, "open")}
    state = IndicatorState(capacity=1, declared=declared)
    got = np.empty((len(keys), len(declared.columns)))
    cuts = np.sort(rng.choice(np.arange(1, len(keys)), 40, replace=False))
    bounds = [0, *cuts.tolist(), len(keys)]
    for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        got[lo:hi] = update_indicators(
            state, keys[lo:hi], *(columns[f][lo:hi] for f in _FIELDS), columns["open"][lo:hi]
        )
        if j % 7 == 3:  # save every key and carry on in a fresh state
            saved = state.snapshots(np.arange(3))
            state = IndicatorState(capacity=1, declared=declared)
            for key, data in enumerate(saved):
                state.restore(key, data)
    for owner in range(3):
        mine = keys == owner
        want = expected[owner][rows[mine]]
        np.testing.assert_array_equal(
            got[mine].view(np.uint64), want.view(np.uint64), err_msg=f"{kind}, series {owner}"
        )


def test_restore_refuses_a_snapshot_of_another_set(series) -> None:
    a = IndicatorState(declared=parse_set("ema(50)"))
    s = series[0]
    update_indicators(a, np.zeros(10, np.int64), *(s[f][:10] for f in _FIELDS))
    b = IndicatorState(declared=parse_set("ema(51)"))
    with pytest.raises(StateMismatch, match="another set of declared indicators"):
        b.restore(0, a.snapshot(0))
    with pytest.raises(ValueError, match="not an indicator state snapshot"):
        b.restore(0, b"MPI\x01" + bytes(100))
