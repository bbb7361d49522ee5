"""The moving-average kinds (WMA, DEMA, TEMA, KAMA, TRIMA) against TA-Lib on the shared data."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from marketpulse.indicators.declare import parse
from marketpulse.indicators.library import moving_averages

from .series import (
    INDICES,
    SYMBOLS,
    Series,
    assert_cases_bit_equal,
    assert_cases_match,
    assert_streaming_equals_batch,
    assert_talib_kinds,
    compute,
    declare_cases,
    hl2,
    hlc3,
)

talib = pytest.importorskip("talib")


# Each declaration (defaults first, then other periods and sources) with the
# TA-Lib call it must equal.
CASES: tuple[tuple[str, Callable[[Series], np.ndarray]], ...] = (
    ("wma", lambda s: talib.WMA(s["close"])),
    ("wma(2)", lambda s: talib.WMA(s["close"], 2)),
    ("wma(9, source=high)", lambda s: talib.WMA(s["high"], 9)),
    ("wma(50, source=hlc3)", lambda s: talib.WMA(hlc3(s), 50)),
    ("dema", lambda s: talib.DEMA(s["close"])),
    ("dema(2)", lambda s: talib.DEMA(s["close"], 2)),
    ("dema(10, source=low)", lambda s: talib.DEMA(s["low"], 10)),
    ("tema", lambda s: talib.TEMA(s["close"])),
    ("tema(2)", lambda s: talib.TEMA(s["close"], 2)),
    ("tema(7, source=hl2)", lambda s: talib.TEMA(hl2(s), 7)),
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
DECLARED = declare_cases(CASES)


def _compute(s: Series) -> np.ndarray:
    return compute(s, DECLARED)


def _assert_matches_talib(s: Series) -> None:
    assert_cases_match(_compute(s), CASES, s)


@pytest.mark.parametrize("name", INDICES + SYMBOLS)
def test_matches_talib_on_real_series(series, name: str) -> None:
    _assert_matches_talib(series[name])


def test_bit_equal_to_talib_on_the_longest_series(series) -> None:
    """The kernels repeat TA-Lib's operations (WMA re-anchored every 8 n bars, KAMA's fmas)."""
    s = series["NYA"]  # 13947 days
    assert_cases_bit_equal(_compute(s), CASES, s)


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
    assert_streaming_equals_batch([series[n] for n in ("SPY", "IBM", "GDAXI")], DECLARED)


def test_kinds_are_in_the_catalogue_with_talib_names() -> None:
    assert_talib_kinds(moving_averages.KINDS, {"wma", "dema", "tema", "kama", "trima"})


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
