"""The trend kinds (ADX and DIs, Aroon, SAR, linear regression, STDDEV, VAR) against TA-Lib."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketpulse.indicators.catalog import KINDS
from marketpulse.indicators.declare import parse, parse_set
from marketpulse.indicators.library import trend
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


# Each declaration (defaults first, then other parameters and sources) with
# the TA-Lib call it must equal; a tuple of outputs in the kind's order.
CASES: tuple[tuple[str, Callable[[Series], object]], ...] = (
    ("adx", lambda s: talib.ADX(s["high"], s["low"], s["close"])),
    ("adx(2)", lambda s: talib.ADX(s["high"], s["low"], s["close"], 2)),
    ("adx(5)", lambda s: talib.ADX(s["high"], s["low"], s["close"], 5)),
    ("adx(30)", lambda s: talib.ADX(s["high"], s["low"], s["close"], 30)),
    ("plus_di", lambda s: talib.PLUS_DI(s["high"], s["low"], s["close"])),
    ("plus_di(1)", lambda s: talib.PLUS_DI(s["high"], s["low"], s["close"], 1)),
    ("plus_di(2)", lambda s: talib.PLUS_DI(s["high"], s["low"], s["close"], 2)),
    ("plus_di(30)", lambda s: talib.PLUS_DI(s["high"], s["low"], s["close"], 30)),
    ("minus_di", lambda s: talib.MINUS_DI(s["high"], s["low"], s["close"])),
    ("minus_di(1)", lambda s: talib.MINUS_DI(s["high"], s["low"], s["close"], 1)),
    ("minus_di(2)", lambda s: talib.MINUS_DI(s["high"], s["low"], s["close"], 2)),
    ("minus_di(30)", lambda s: talib.MINUS_DI(s["high"], s["low"], s["close"], 30)),
    ("dx", lambda s: talib.DX(s["high"], s["low"], s["close"])),
    ("dx(2)", lambda s: talib.DX(s["high"], s["low"], s["close"], 2)),
    ("dx(30)", lambda s: talib.DX(s["high"], s["low"], s["close"], 30)),
    ("aroon", lambda s: talib.AROON(s["high"], s["low"])),
    ("aroon(2)", lambda s: talib.AROON(s["high"], s["low"], 2)),
    ("aroon(25)", lambda s: talib.AROON(s["high"], s["low"], 25)),
    ("aroonosc", lambda s: talib.AROONOSC(s["high"], s["low"])),
    ("aroonosc(2)", lambda s: talib.AROONOSC(s["high"], s["low"], 2)),
    ("aroonosc(25)", lambda s: talib.AROONOSC(s["high"], s["low"], 25)),
    ("sar", lambda s: talib.SAR(s["high"], s["low"])),
    ("sar(0.01, 0.1)", lambda s: talib.SAR(s["high"], s["low"], 0.01, 0.1)),
    ("sar(acceleration=0.05, maximum=0.5)", lambda s: talib.SAR(s["high"], s["low"], 0.05, 0.5)),
    ("sar(0.3, 0.2)", lambda s: talib.SAR(s["high"], s["low"], 0.3, 0.2)),  # step capped
    ("linearreg_slope", lambda s: talib.LINEARREG_SLOPE(s["close"])),
    ("linearreg_slope(2)", lambda s: talib.LINEARREG_SLOPE(s["close"], 2)),
    ("linearreg_slope(5)", lambda s: talib.LINEARREG_SLOPE(s["close"], 5)),
    ("linearreg_slope(50, source=hlc3)", lambda s: talib.LINEARREG_SLOPE(_hlc3(s), 50)),
    ("linearreg_slope(9, source=volume)", lambda s: talib.LINEARREG_SLOPE(s["volume"], 9)),
    ("linearreg", lambda s: talib.LINEARREG(s["close"])),
    ("linearreg(2)", lambda s: talib.LINEARREG(s["close"], 2)),
    ("linearreg(5)", lambda s: talib.LINEARREG(s["close"], 5)),
    ("linearreg(50, source=high)", lambda s: talib.LINEARREG(s["high"], 50)),
    ("stddev", lambda s: talib.STDDEV(s["close"])),
    ("stddev(2)", lambda s: talib.STDDEV(s["close"], 2)),
    ("stddev(20, 2.5)", lambda s: talib.STDDEV(s["close"], 20, 2.5)),
    ("stddev(10, 0.5, source=hl2)", lambda s: talib.STDDEV(_hl2(s), 10, 0.5)),
    ("stddev(7, source=volume)", lambda s: talib.STDDEV(s["volume"], 7)),
    ("var", lambda s: talib.VAR(s["close"])),
    ("var(1)", lambda s: talib.VAR(s["close"], 1)),
    ("var(2)", lambda s: talib.VAR(s["close"], 2)),
    ("var(20, source=low)", lambda s: talib.VAR(s["low"], 20)),
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


def _expected(s: Series) -> list[tuple[str, np.ndarray]]:
    """TA-Lib's value of each output column, in declared order."""
    columns = []
    for text, reference in CASES:
        result = reference(s)
        for j, want in enumerate(result if isinstance(result, tuple) else (result,)):
            columns.append((f"{text} output {j}", want))
    return columns


def _assert_matches_talib(s: Series) -> None:
    ours = _compute(s)
    expected = _expected(s)
    assert ours.shape[1] == len(expected) == len(DECLARED.columns)
    for col, (label, want) in enumerate(expected):
        got = ours[:, col]
        warm = ~np.isnan(want)
        assert warm.sum() > 0, label
        np.testing.assert_array_equal(np.isnan(got), ~warm, err_msg=f"{label}: NaN positions")
        np.testing.assert_allclose(got[warm], want[warm], rtol=1e-9, atol=0, err_msg=label)


@pytest.mark.parametrize("name", INDICES + SYMBOLS)
def test_matches_talib_on_real_series(series, name: str) -> None:
    _assert_matches_talib(series[name])


def test_bit_equal_to_talib_on_the_longest_series(series) -> None:
    """The kernels repeat TA-Lib's operations (Wilder steps, SAR's fma, re-anchored sums)."""
    s = series["NYA"]  # 13947 days
    ours = _compute(s)
    for col, (label, want) in enumerate(_expected(s)):
        warm = ~np.isnan(want)
        np.testing.assert_array_equal(
            ours[warm, col].view(np.uint64), want[warm].view(np.uint64), err_msg=label
        )


def _column(text: str, output: int = 0) -> int:
    index = [t for t, _ in CASES].index(text)
    return sum(len(item.columns) for item in DECLARED.items[:index]) + output


def test_flat_constant_tiny_and_huge_series_match_talib(series) -> None:
    """Flat stretches, a constant series (true ranges exactly 0), scaled, zero-mean, spiked."""
    gdaxi = series["GDAXI"]
    flat = {f: np.repeat(v[:3], 60) for f, v in gdaxi.items()}
    _assert_matches_talib(flat)
    out = _compute(flat)[-1]
    assert out[_column("var")] == 0.0 and out[_column("stddev(20, 2.5)")] == 0.0
    assert out[_column("aroon", 0)] == out[_column("aroon", 1)] == 100.0  # ties: the newest bar
    assert out[_column("aroonosc")] == 0.0
    constant = {f: np.full(80, 7.5) for f in FIELDS}
    _assert_matches_talib(constant)
    out = _compute(constant)[-1]
    for text in ("adx(2)", "plus_di", "minus_di(1)", "dx", "linearreg_slope", "var(2)"):
        assert out[_column(text)] == 0.0, text
    assert out[_column("linearreg")] == 7.5
    for scale in (1e-9, 1e9):
        _assert_matches_talib({f: v if f == "volume" else v * scale for f, v in gdaxi.items()})
    # a zero-mean series (the index's daily changes) with a flat stretch, and one bar printed
    # a million times too high: the sums the kernels carry are rebuilt as TA-Lib's are
    changes = {f: np.diff(v) * 1e-12 for f, v in gdaxi.items()}
    for v in changes.values():
        v[400:460] = v[399]
    _assert_matches_talib(changes)
    spiked = {f: v.copy() for f, v in gdaxi.items()}
    for f in ("high", "close"):
        spiked[f][3000] *= 1e6
    _assert_matches_talib(spiked)


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
    names = {kind.name: kind for kind in trend.KINDS}
    assert set(names) == {
        "adx", "plus_di", "minus_di", "dx", "aroon", "aroonosc", "sar",
        "linearreg_slope", "linearreg", "stddev", "var",
    }  # fmt: skip
    for name, kind in names.items():
        assert KINDS[name] is kind
        assert kind.talib == name.upper() and kind.reference is None


def test_declared_columns_and_defaults() -> None:
    assert parse("aroon").columns == ("aroon_down", "aroon_up")
    assert parse("ar=aroon(25)").columns == ("ar_down", "ar_up")
    assert parse("adx").canonical == "adx=adx(period=14)"
    assert parse("sar").canonical == "sar=sar(acceleration=0.02, maximum=0.2)"
    assert parse("sar").numbers == (0.02, 0.2)
    assert parse("stddev").canonical == "stddev=stddev(period=5, nbdev=1, source=close)"
    assert parse("s=stddev(20, 2.5, source=hl2)").numbers == (20.0, 2.5)
    assert parse("var").numbers == (5.0,)
    assert parse("linearreg_slope").numbers == (14.0,)
    assert parse("plus_di(1)").numbers == (1.0,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("adx(1)", "period must be between 2"),
        ("dx(1)", "period must be between 2"),
        ("plus_di(0)", "period must be between 1"),
        ("minus_di(2.5)", "period must be a whole number"),
        ("aroon(1)", "period must be between 2"),
        ("aroonosc(100001)", "period must be between 2 and 100000"),
        ("aroon(14, source=high)", "no parameter 'source'"),
        ("sar(-0.01)", "acceleration must be"),
        ("sar(0.02, maximum=-1)", "maximum must be"),
        ("linearreg_slope(1)", "period must be between 2"),
        ("linearreg(source=vwap)", "source"),
        ("stddev(1)", "period must be between 2"),
        ("stddev(5, -1)", "nbdev must be between 0 and 1000"),
        ("var(0)", "period must be between 1"),
        ("var(5, 2)", "source '2' is not one of"),
        ("adx(14, 2)", "at most 1 argument"),
    ],
)
def test_bad_parameters_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)
