"""The moving-average kinds (WMA, DEMA, TEMA, KAMA, TRIMA) against TA-Lib on the shared data."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketpulse.indicators.catalog import KINDS
from marketpulse.indicators.declare import parse, parse_set
from marketpulse.indicators.library import moving_averages
from marketpulse.indicators.state import IndicatorState, compute_indicators, update_indicators

talib = pytest.importorskip("talib")

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
INDEX_FILE = DATA / "kaggle-stock-exchange" / "indexProcessed.csv"
TRADES_FILE = DATA / "lean-2013-10-07" / "trades.csv.gz"
INDICES = (
    "000001.SS", "399001.SZ", "GDAXI", "GSPTSE", "HSI", "IXIC", "J203.JO",
    "N100", "N225", "NSEI", "NYA", "SSMI", "TWII",
)  # fmt: skip
SYMBOLS = ("AIG", "BAC", "IBM", "SPY")
FIELDS = ("open", "high", "low", "close", "volume")

Series = dict[str, np.ndarray]


def _hl2(s: Series) -> np.ndarray:
    return (s["high"] + s["low"]) / 2.0


def _hlc3(s: Series) -> np.ndarray:
    return (s["high"] + s["low"] + s["close"]) / 3.0


# Each declaration (defaults first, then other periods and sources) with the
# TA-Lib call it must equal.
CASES: tuple[tuple[str, Callable[[Series], np.ndarray]], ...] = (
    ("wma", lambda s: talib.WMA(s["close"])),
    ("wma(2)", lambda s: talib.WMA(s["close"], 2)),
    ("wma(9, source=high)", lambda s: talib.WMA(s["high"], 9)),
    ("wma(50, source=hlc3)", lambda s: talib.WMA(_hlc3(s), 50)),
    ("dema", lambda s: talib.DEMA(s["close"])),
    ("dema(2)", lambda s: talib.DEMA(s["close"], 2)),
    ("dema(10, source=low)", lambda s: talib.DEMA(s["low"], 10)),
    ("tema", lambda s: talib.TEMA(s["close"])),
    ("tema(2)", lambda s: talib.TEMA(s["close"], 2)),
    ("tema(7, source=hl2)", lambda s: talib.TEMA(_hl2(s), 7)),
    ("kama", lambda s: talib.KAMA(s["close"])),
    ("kama(2)", lambda s: talib.KAMA(s["close"], 2)),
    ("kama(10)", lambda s: talib.KAMA(s["close"], 10)),
    ("kama(10, source=volume)", lambda s: talib.KAMA(s["volume"], 10)),
    ("trima", lambda s: talib.TRIMA(s["close"])),
    ("trima(2)", lambda s: talib.TRIMA(s["close"], 2)),
    ("trima(3)", lambda s: talib.TRIMA(s["close"], 3)),
    ("trima(10, source=open)", lambda s: talib.TRIMA(s["open"], 10)),
    ("trima(11, source=high)", lambda s: talib.TRIMA(s["high"], 11)),
)  # fmt: skip
DECLARED = parse_set([f"c{i}={text}" for i, (text, _) in enumerate(CASES)])


@pytest.fixture(scope="module")
def series() -> dict[str, Series]:
    """Daily bars of each world index and 1-minute trade bars of each Lean symbol on 2013-10-07."""
    out: dict[str, Series] = {}
    frame = pd.read_csv(INDEX_FILE)
    frame["Date"] = pd.to_datetime(frame["Date"])
    for name, group in frame.groupby("Index", sort=False):
        group = group.sort_values("Date")
        out[name] = {f: group[f.capitalize()].to_numpy(np.float64) for f in FIELDS}
    trades = pd.read_csv(TRADES_FILE)
    trades["ts"] = pd.to_datetime(trades["timestamp"], utc=True)
    for symbol, group in trades.groupby("symbol"):
        resampled = group.set_index("ts").resample("1min")["price"]
        bars = pd.DataFrame(
            {
                "open": resampled.first(),
                "high": resampled.max(),
                "low": resampled.min(),
                "close": resampled.last(),
                "volume": group.set_index("ts").resample("1min")["size"].sum().astype(np.float64),
            }
        ).dropna(subset=["close"])
        out[symbol] = {f: bars[f].to_numpy(np.float64) for f in FIELDS}
    assert set(out) == {*INDICES, *SYMBOLS}
    return out


def _compute(s: Series, declared=DECLARED) -> np.ndarray:
    n = len(s["close"])
    return compute_indicators(
        s["high"], s["low"], s["close"], s["volume"], s["close"] * s["volume"],
        np.zeros(n, np.int64), s["open"], declared,
    )  # fmt: skip


def _assert_matches_talib(s: Series) -> None:
    ours = _compute(s)
    assert ours.shape[1] == len(CASES)
    for col, (text, reference) in enumerate(CASES):
        want = reference(s)
        got = ours[:, col]
        warm = ~np.isnan(want)
        assert warm.sum() > 0, text
        np.testing.assert_array_equal(np.isnan(got), ~warm, err_msg=f"{text}: NaN positions")
        np.testing.assert_allclose(got[warm], want[warm], rtol=1e-9, atol=0, err_msg=text)


@pytest.mark.parametrize("name", INDICES + SYMBOLS)
def test_matches_talib_on_real_series(series, name: str) -> None:
    _assert_matches_talib(series[name])


def test_bit_equal_to_talib_on_the_longest_series(series) -> None:
    """The kernels repeat TA-Lib's operations (WMA re-anchored every 8 n bars, KAMA's fmas)."""
    s = series["NYA"]  # 13947 days
    ours = _compute(s)
    for col, (text, reference) in enumerate(CASES):
        want = reference(s)
        warm = ~np.isnan(want)
        np.testing.assert_array_equal(
            ours[warm, col].view(np.uint64), want[warm].view(np.uint64), err_msg=text
        )


def test_flat_tiny_and_huge_series_match_talib(series) -> None:
    """Flat stretches, prices scaled by 1e-9 and 1e9, a zero-mean series."""
    gdaxi = series["GDAXI"]
    flat = {f: np.repeat(v[:3], 60) for f, v in gdaxi.items()}
    _assert_matches_talib(flat)
    out = _compute(flat)
    # over a flat stretch the averages settle on its value (WMA to its running sums' rounding)
    settled = ("wma", "wma(2)", "dema(2)", "tema(2)", "kama(2)", "trima(2)", "trima(3)")
    short = [i for i, (text, _) in enumerate(CASES) if text in settled]
    assert len(short) == 7
    np.testing.assert_allclose(out[-1, short], gdaxi["close"][2], rtol=1e-12)
    for scale in (1e-9, 1e9):
        _assert_matches_talib({f: v if f == "volume" else v * scale for f, v in gdaxi.items()})
    # a zero-mean series (the index's daily changes) with a flat stretch: KAMA's change sum
    # is reset once the window is flat, and its ratio held at 1 against rounding residue
    changes = {f: np.diff(v) * 1e-12 for f, v in gdaxi.items()}
    for v in changes.values():
        v[400:460] = v[399]
    _assert_matches_talib(changes)


def test_streaming_in_chunks_and_interleaved_equals_batch(series) -> None:
    names = ("SPY", "IBM", "GDAXI")
    whole = [_compute(series[n]) for n in names]
    keys = np.concatenate([np.full(len(series[n]["close"]), k) for k, n in enumerate(names)])
    rng = np.random.default_rng(22)
    keys_mixed = keys[np.argsort(rng.random(len(keys)), kind="stable")]
    columns = {f: np.empty(len(keys)) for f in FIELDS}
    for k, n in enumerate(names):  # each key's bars in time order, keys interleaved
        for f in FIELDS:
            columns[f][keys_mixed == k] = series[n][f]
    cuts = np.sort(rng.choice(np.arange(1, len(keys)), size=150, replace=False))
    state = IndicatorState(capacity=1, declared=DECLARED)
    chunks = []
    for i, (a, b) in enumerate(itertools.pairwise([0, *cuts.tolist(), len(keys)])):
        if i == 60:  # a snapshot and restore part-way through
            blobs = [state.snapshot(k) for k in range(len(names))]
            state = IndicatorState(capacity=1, declared=DECLARED)
            for k, blob in enumerate(blobs):
                state.restore(k, blob)
        c = {f: v[a:b] for f, v in columns.items()}
        chunks.append(update_indicators(
            state, keys_mixed[a:b], c["high"], c["low"], c["close"], c["volume"],
            c["close"] * c["volume"], np.zeros(b - a, np.int64), c["open"],
        ))  # fmt: skip
    streamed = np.concatenate(chunks)
    for k in range(len(names)):
        np.testing.assert_array_equal(
            streamed[keys_mixed == k].view(np.uint64), whole[k].view(np.uint64), err_msg=names[k]
        )


def test_kinds_are_in_the_catalogue_with_talib_names() -> None:
    names = {kind.name: kind for kind in moving_averages.KINDS}
    assert set(names) == {"wma", "dema", "tema", "kama", "trima"}
    for name, kind in names.items():
        assert KINDS[name] is kind
        assert kind.talib == name.upper() and kind.reference is None


def test_declared_columns_and_defaults() -> None:
    assert parse("wma").canonical == "wma=wma(period=30, source=close)"
    assert parse("k=kama(10, source=hl2)").columns == ("k",)
    assert parse("k=kama(10, source=hl2)").canonical == "k=kama(period=10, source=hl2)"
    for kind in ("dema", "tema", "trima"):
        assert parse(kind).numbers == (30.0,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wma(1)", "period must be between 2"),
        ("dema(0)", "period must be between 2"),
        ("tema(100001)", "period must be between 2 and 100000"),
        ("kama(2.5)", "period must be a whole number"),
        ("trima(source=vwap)", "source"),
        ("wma(5, 3)", "source '3' is not one of"),
        ("wma(5, close, 3)", "at most 2 arguments"),
        ("kama(fast=2)", "no parameter 'fast'"),
    ],
)
def test_bad_parameters_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)
