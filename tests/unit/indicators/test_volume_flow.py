"""Volume-flow kinds (obv, ad, adosc, mfi) against TA-Lib on real market data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketpulse.indicators.declare import parse, parse_set
from marketpulse.indicators.state import IndicatorState, compute_indicators, update_indicators

talib = pytest.importorskip("talib")

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
INDEX_FILE = DATA / "kaggle-stock-exchange" / "indexProcessed.csv"
TRADES_FILE = DATA / "lean-2013-10-07" / "trades.csv.gz"
FIELDS = ("high", "low", "close", "volume")


@pytest.fixture(scope="module")
def series() -> dict[str, dict[str, np.ndarray]]:
    """The 13 Kaggle daily index series and the 4 Lean 1-minute trade-bar series."""
    out = {}
    frame = pd.read_csv(INDEX_FILE, parse_dates=["Date"])
    for name, group in frame.groupby("Index", sort=False):
        group = group.sort_values("Date")
        out[name] = {f: group[f.capitalize()].to_numpy(np.float64) for f in FIELDS}
    trades = pd.read_csv(TRADES_FILE)
    trades["ts"] = pd.to_datetime(trades["timestamp"], utc=True)
    for symbol, group in trades.groupby("symbol"):
        resampled = group.set_index("ts").resample("1min")["price"]
        bars = pd.DataFrame(
            {
                "high": resampled.max(),
                "low": resampled.min(),
                "close": resampled.last(),
                "volume": group.set_index("ts").resample("1min")["size"].sum().astype(np.float64),
            }
        ).dropna(subset=["close"])
        out[symbol] = {f: bars[f].to_numpy(np.float64) for f in FIELDS}
    assert len(out) == 17
    return out


def _compute(declaration: str, bars: dict[str, np.ndarray]) -> np.ndarray:
    n = len(bars["close"])
    return compute_indicators(
        bars["high"], bars["low"], bars["close"], bars["volume"],
        bars["close"] * bars["volume"], np.zeros(n, np.int64), declared=parse_set(declaration),
    )  # fmt: skip


def _assert_equal_to(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    np.testing.assert_array_equal(
        np.isnan(got), np.isnan(expected), err_msg=f"{what}: NaN positions"
    )
    warm = ~np.isnan(expected)
    assert warm.sum() > 0, what
    np.testing.assert_allclose(got[warm], expected[warm], rtol=1e-9, atol=0, err_msg=what)


def _hlcv(b):
    return b["high"], b["low"], b["close"], b["volume"]


CASES = {
    "obv": lambda b: talib.OBV(b["close"], b["volume"]),
    "obv(source=high)": lambda b: talib.OBV(b["high"], b["volume"]),
    "obv(source=hlc3)": lambda b: talib.OBV((b["high"] + b["low"] + b["close"]) / 3.0, b["volume"]),
    "ad": lambda b: talib.AD(*_hlcv(b)),
    "adosc": lambda b: talib.ADOSC(*_hlcv(b), 3, 10),
    "adosc(10, 3)": lambda b: talib.ADOSC(*_hlcv(b), 10, 3),
    "adosc(fast=5, slow=21)": lambda b: talib.ADOSC(*_hlcv(b), 5, 21),
    "adosc(2, 2)": lambda b: talib.ADOSC(*_hlcv(b), 2, 2),
    "mfi": lambda b: talib.MFI(*_hlcv(b), 14),
    "mfi(2)": lambda b: talib.MFI(*_hlcv(b), 2),
    "mfi(60)": lambda b: talib.MFI(*_hlcv(b), 60),
}


@pytest.mark.parametrize("declaration", CASES)
def test_equals_talib_on_every_series(series, declaration: str) -> None:
    for name, bars in series.items():
        got = _compute(declaration, bars)[:, 0]
        _assert_equal_to(got, CASES[declaration](bars), f"{declaration} on {name}")


def test_zero_volume_conventions(series) -> None:
    """Daily index files report no volume on many days: TA-Lib's answers, not NaN or inf."""
    johannesburg = series["J203.JO"]  # never any volume
    assert not johannesburg["volume"].any()
    out = _compute("obv, ad, adosc, mfi", johannesburg)
    assert (out[:, 0] == 0.0).all() and (out[:, 1] == 0.0).all()
    assert (out[9:, 2] == 0.0).all() and np.isnan(out[:9, 2]).all()
    assert (out[14:, 3] == 0.0).all() and np.isnan(out[:14, 3]).all()

    hsi = series["HSI"]  # volume starts years into the file
    silent = int(np.argmax(hsi["volume"] > 0))
    assert silent > 100
    mfi = _compute("mfi", hsi)[:, 0]
    assert (mfi[14:silent] == 0.0).all()
    _assert_equal_to(mfi, talib.MFI(*_hlcv(hsi), 14), "mfi on HSI")


def test_small_flows_and_flat_windows_follow_talib(series) -> None:
    """A total money flow below 1 still gives a ratio; a flat or range-less bar adds nothing."""
    gdaxi = series["GDAXI"]
    tiny = dict(gdaxi, volume=np.where(gdaxi["volume"] > 0, 1e-9, 0.0))  # flows far below 1.0
    flat = {f: np.repeat(v[3000:3003], 30) for f, v in gdaxi.items()}  # runs of equal bars
    rangeless = dict(gdaxi, high=gdaxi["close"], low=gdaxi["close"])  # high == low: no A/D
    for bars in (tiny, flat, rangeless):
        for declaration, expected in CASES.items():
            _assert_equal_to(_compute(declaration, bars)[:, 0], expected(bars), declaration)
    mfi = _compute("mfi", tiny)[:, 0]
    assert ((mfi > 0) & (mfi < 100)).sum() > 1000
    assert (_compute("ad", rangeless)[:, 0] == 0.0).all()


def test_streaming_in_chunks_equals_batch(series) -> None:
    declared = parse_set("obv, ad, adosc(5, 21), mfi(7)")
    names = ["SPY", "IBM", "N225"]
    parts = [series[n] for n in names]
    keys = np.concatenate([np.full(len(p["close"]), i) for i, p in enumerate(parts)])
    rng = np.random.default_rng(22)
    order = np.argsort(rng.random(len(keys)), kind="stable")
    keys = keys[order]
    columns = {f: np.empty(len(keys)) for f in FIELDS}
    for i, p in enumerate(parts):
        for f in FIELDS:
            columns[f][keys == i] = p[f]
    state = IndicatorState(capacity=1, declared=declared)
    cuts = [
        0,
        *np.sort(rng.choice(np.arange(1, len(keys)), 300, replace=False)).tolist(),
        len(keys),
    ]
    chunks = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        h, lo, c, v = (columns[f][a:b] for f in FIELDS)
        chunks.append(
            update_indicators(state, keys[a:b], h, lo, c, v, c * v, np.zeros(b - a, np.int64))
        )
    streamed = np.concatenate(chunks)
    for i, p in enumerate(parts):
        n = len(p["close"])
        whole = compute_indicators(
            *_hlcv(p), p["close"] * p["volume"], np.zeros(n, np.int64), declared=declared
        )
        np.testing.assert_array_equal(streamed[keys == i].view(np.uint64), whole.view(np.uint64))


def test_declarations() -> None:
    assert parse_set("obv, ad, adosc, mfi").columns == ("obv", "ad", "adosc", "mfi")
    assert parse("adosc").numbers == (3.0, 10.0) and parse("mfi").numbers == (14.0,)
    assert parse("obv(source=low)").source == "low"
    for bad, words in (
        ("mfi(1)", "between 2"),
        ("mfi(2.5)", "whole number"),
        ("adosc(3, 100001)", "between 2 and 100000"),
        ("ad(5)", "at most 0"),
        ("obv(source=vwap)", "source 'vwap'"),
    ):
        with pytest.raises(ValueError, match=words):
            parse(bad)
