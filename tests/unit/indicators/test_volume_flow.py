"""Volume-flow kinds (obv, ad, adosc, mfi) against TA-Lib on real market data."""

from __future__ import annotations

import numpy as np
import pytest

from marketpulse.indicators.declare import parse, parse_set

from .series import Series, assert_matches, assert_streaming_equals_batch, compute

talib = pytest.importorskip("talib")


def _compute(declaration: str, bars: Series) -> np.ndarray:
    return compute(bars, parse_set(declaration))


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
        assert_matches(got, CASES[declaration](bars), f"{declaration} on {name}")


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
    assert_matches(mfi, talib.MFI(*_hlcv(hsi), 14), "mfi on HSI")


def test_small_flows_and_flat_windows_follow_talib(series) -> None:
    """A total money flow below 1 still gives a ratio; a flat or range-less bar adds nothing."""
    gdaxi = series["GDAXI"]
    tiny = dict(gdaxi, volume=np.where(gdaxi["volume"] > 0, 1e-9, 0.0))  # flows far below 1.0
    flat = {f: np.repeat(v[3000:3003], 30) for f, v in gdaxi.items()}  # runs of equal bars
    rangeless = dict(gdaxi, high=gdaxi["close"], low=gdaxi["close"])  # high == low: no A/D
    for bars in (tiny, flat, rangeless):
        for declaration, expected in CASES.items():
            assert_matches(_compute(declaration, bars)[:, 0], expected(bars), declaration)
    mfi = _compute("mfi", tiny)[:, 0]
    assert ((mfi > 0) & (mfi < 100)).sum() > 1000
    assert (_compute("ad", rangeless)[:, 0] == 0.0).all()


def test_streaming_in_chunks_equals_batch(series) -> None:
    declared = parse_set("obv, ad, adosc(5, 21), mfi(7)")
    assert_streaming_equals_batch([series[n] for n in ("SPY", "IBM", "N225")], declared, chunks=301)


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
