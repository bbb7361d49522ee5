"""The shared real series and the checks every indicator test module makes.

Series: the Kaggle daily bars of 13 world indices and the Lean 1-minute trade
bars of 4 symbols on 2013-10-07, loaded once per test process. Checks: a
column against TA-Lib (NaN positions, then values within 1e-9 relative, no
atol), bit equality, and streaming in random chunks across interleaved keys
with snapshot/restore against one batch call per series.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from marketpulse.indicators.catalog import KINDS
from marketpulse.indicators.declare import DEFAULT, DeclaredSet, parse_set
from marketpulse.indicators.kind import Kind
from marketpulse.indicators.state import IndicatorState, compute_indicators, update_indicators

__all__ = [
    "FIELDS",
    "INDICES",
    "SYMBOLS",
    "Series",
    "assert_bits_equal",
    "assert_cases_bit_equal",
    "assert_cases_match",
    "assert_matches",
    "assert_streaming_equals_batch",
    "assert_talib_kinds",
    "compute",
    "declare_cases",
    "expected_columns",
    "hl2",
    "hlc3",
    "inputs",
    "interleave",
    "load",
]

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
INDEX_FILE = DATA / "kaggle-stock-exchange" / "indexProcessed.csv"
TRADES_FILE = DATA / "lean-2013-10-07" / "trades.csv.gz"
INDICES = (
    "000001.SS", "399001.SZ", "GDAXI", "GSPTSE", "HSI", "IXIC", "J203.JO",
    "N100", "N225", "NSEI", "NYA", "SSMI", "TWII",
)  # fmt: skip
SYMBOLS = ("AIG", "BAC", "IBM", "SPY")
#: The price and volume fields of every loaded series.
FIELDS = ("open", "high", "low", "close", "volume")
#: The inputs of :func:`update_indicators`, in its order, ``open`` last.
_INPUTS = ("high", "low", "close", "volume", "pv", "session", "open")

Series = dict[str, np.ndarray]


@functools.cache
def load() -> dict[str, Series]:
    """Return every shared series by name, loaded once per process.

    Each has ``open``, ``high``, ``low``, ``close``, ``volume``, ``pv`` (the
    price times volume: close times volume for the daily files, which carry no
    VWAP; each minute's sum of trade price times size) and ``session`` (one per
    month for the daily bars, for VWAP resets; the day for the minutes). The
    minutes also have ``ts``, their start in UTC nanoseconds. Callers must not
    write into the arrays: every test module shares them.
    """
    out: dict[str, Series] = {}
    frame = pd.read_csv(INDEX_FILE)
    frame["Date"] = pd.to_datetime(frame["Date"])
    for name, group in frame.groupby("Index", sort=False):
        group = group.sort_values("Date")
        bars = {f: group[f.capitalize()].to_numpy(np.float64) for f in FIELDS}
        month = (group["Date"].dt.year * 100 + group["Date"].dt.month).to_numpy(np.int64)
        out[name] = bars | {"pv": bars["close"] * bars["volume"], "session": month}
    trades = pd.read_csv(TRADES_FILE)
    trades["ts"] = pd.to_datetime(trades["timestamp"], utc=True)
    trades["pv"] = trades["price"] * trades["size"]
    for symbol, group in trades.groupby("symbol"):
        resampled = group.set_index("ts").resample("1min")
        bars = pd.DataFrame(
            {
                "open": resampled["price"].first(),
                "high": resampled["price"].max(),
                "low": resampled["price"].min(),
                "close": resampled["price"].last(),
                "volume": resampled["size"].sum().astype(np.float64),
                "pv": resampled["pv"].sum(),
            }
        ).dropna(subset=["close"])
        out[symbol] = {f: bars[f].to_numpy(np.float64) for f in (*FIELDS, "pv")} | {
            "session": np.full(len(bars), 20131007, np.int64),
            "ts": bars.index.as_unit("ns").asi8,
        }
    assert set(out) == {*INDICES, *SYMBOLS}
    return out


def hl2(s: Series) -> np.ndarray:
    """Return the bars' (high + low) / 2, as the ``hl2`` source computes it."""
    return (s["high"] + s["low"]) / 2.0


def hlc3(s: Series) -> np.ndarray:
    """Return the bars' (high + low + close) / 3, as the ``hlc3`` source computes it."""
    return (s["high"] + s["low"] + s["close"]) / 3.0


def inputs(s: Series) -> tuple[np.ndarray | None, ...]:
    """Return the arguments of :func:`compute_indicators` for ``s``, ``open_`` last.

    A series without ``pv`` trades at its close, one without ``session`` is one
    session, one without ``open`` has no opens (None).
    """
    n = len(s["close"])
    pv = s["pv"] if "pv" in s else s["close"] * s["volume"]
    session = s["session"] if "session" in s else np.zeros(n, np.int64)
    return s["high"], s["low"], s["close"], s["volume"], pv, session, s.get("open")


def compute(s: Series, declared: DeclaredSet = DEFAULT) -> np.ndarray:
    """Return the ``declared`` columns of the whole series ``s`` in one batch call."""
    return compute_indicators(*inputs(s), declared=declared)


def assert_matches(got: np.ndarray, want: np.ndarray, label: str) -> None:
    """Assert ``got`` is NaN where ``want`` is and within 1e-9 relative elsewhere.

    No atol anywhere: the kernels repeat TA-Lib's operations, so even values
    near zero (a flat %D, a MACD histogram) agree to the last bits.
    """
    want = np.asarray(want, np.float64)
    warm = ~np.isnan(want)
    assert warm.sum() > 0, label
    np.testing.assert_array_equal(np.isnan(got), ~warm, err_msg=f"{label}: NaN positions")
    np.testing.assert_allclose(got[warm], want[warm], rtol=1e-9, atol=0, err_msg=label)


def assert_bits_equal(got: np.ndarray, want: np.ndarray, label: str = "") -> None:
    """Assert ``got`` and ``want`` hold the same float64 bits."""
    np.testing.assert_array_equal(
        np.ascontiguousarray(got, np.float64).view(np.uint64),
        np.ascontiguousarray(want, np.float64).view(np.uint64),
        err_msg=label,
    )


Cases = Sequence[tuple[str, Callable[[Series], object]]]


def declare_cases(cases: Cases) -> DeclaredSet:
    """Return the set declaring every case, in order, as columns ``c0``, ``c1``, ..."""
    return parse_set([f"c{i}={text}" for i, (text, _) in enumerate(cases)])


def assert_talib_kinds(kinds: Sequence[Kind], names: set[str]) -> None:
    """Assert ``kinds`` are ``names``, catalogued, each equal to its TA-Lib namesake."""
    by_name = {kind.name: kind for kind in kinds}
    assert set(by_name) == names
    for name, kind in by_name.items():
        assert KINDS[name] is kind
        assert kind.talib == name.upper() and kind.reference is None


def expected_columns(cases: Cases, s: Series) -> list[tuple[str, np.ndarray]]:
    """Return each reference output column of ``cases`` on ``s``, in declared order.

    A case's reference returns one array or a tuple of them (the kind's outputs
    in order); each column is labelled ``"<declaration> output <j>"``.
    """
    columns = []
    for text, reference in cases:
        result = reference(s)
        for j, want in enumerate(result if isinstance(result, tuple) else (result,)):
            columns.append((f"{text} output {j}", want))
    return columns


def assert_cases_match(ours: np.ndarray, cases: Cases, s: Series) -> None:
    """Assert every column of ``ours`` matches its case's reference on ``s``."""
    expected = expected_columns(cases, s)
    assert ours.shape[1] == len(expected)
    for col, (label, want) in enumerate(expected):
        assert_matches(ours[:, col], want, label)


def assert_cases_bit_equal(ours: np.ndarray, cases: Cases, s: Series) -> None:
    """Assert every column of ``ours`` holds its case's reference bits where that is not NaN."""
    expected = expected_columns(cases, s)
    assert ours.shape[1] == len(expected)
    for col, (label, want) in enumerate(expected):
        warm = ~np.isnan(want)
        assert warm.sum() > 0, label
        assert_bits_equal(ours[warm, col], want[warm], label)


def interleave(
    parts: Sequence[Series], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Merge ``parts`` into one stream at random, each part's bars in time order.

    Returns:
        The key (the part's index) of each row, its row in its part, and the
        stream's input columns (``pv`` and ``session`` as :func:`inputs` gives
        them; ``open`` only if every part has it).
    """
    owners = np.concatenate([np.full(len(p["close"]), k) for k, p in enumerate(parts)])
    keys = owners[np.argsort(rng.random(len(owners)), kind="stable")]
    rows = np.empty(len(keys), np.int64)
    per_part = [dict(zip(_INPUTS, inputs(p), strict=True)) for p in parts]
    fields = [f for f in _INPUTS if all(q[f] is not None for q in per_part)]
    columns = {f: np.empty(len(keys), per_part[0][f].dtype) for f in fields}
    for k, q in enumerate(per_part):
        mine = keys == k
        rows[mine] = np.arange(np.count_nonzero(mine))
        for f in fields:
            columns[f][mine] = q[f]
    return keys, rows, columns


def assert_streaming_equals_batch(
    parts: Sequence[Series],
    declared: DeclaredSet,
    *,
    seed: int = 22,
    chunks: int = 150,
    restore_every: int = 50,
) -> None:
    """Assert streaming ``parts`` interleaved, in random chunks, gives the batch bits.

    The merged stream is cut into ``chunks`` random batches; after every
    ``restore_every``-th batch (counting from the middle of the first
    ``restore_every``) each key's state is saved and restored into a fresh
    state that carries on. Each part's streamed rows must equal, bit for bit,
    one :func:`compute` of the whole part, which must warm up somewhere.
    """
    rng = np.random.default_rng(seed)
    keys, rows, columns = interleave(parts, rng)
    cuts = np.sort(rng.choice(np.arange(1, len(keys)), size=chunks - 1, replace=False))
    state = IndicatorState(capacity=1, declared=declared)
    got = np.empty((len(keys), len(declared.columns)))
    restores = 0
    for j, (a, b) in enumerate(itertools.pairwise([0, *cuts.tolist(), len(keys)])):
        batch = [columns[f][a:b] for f in _INPUTS if f in columns]
        got[a:b] = update_indicators(state, keys[a:b], *batch)
        if j % restore_every == restore_every // 2:
            saved = state.snapshots(np.arange(len(parts)))
            state = IndicatorState(capacity=1, declared=declared)
            for key, data in enumerate(saved):
                state.restore(key, data)
            restores += 1
    assert restores > 0
    for k, part in enumerate(parts):
        want = compute(part, declared)
        assert np.isfinite(want).any(), f"{declared.columns} never warm up on part {k}"
        mine = keys == k
        assert_bits_equal(got[mine], want[rows[mine]], f"{declared.columns}, part {k}")
