"""The indicator kernels against TA-Lib, pandas and themselves, on real market data."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import marketpulse.indicators as indicators
from marketpulse.indicators import COLUMNS, IndicatorState, update_indicators

from .series import INDICES, SYMBOLS, assert_bits_equal, assert_matches, compute, interleave

talib = pytest.importorskip("talib")


def _talib(series: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    high, low, close, volume = series["high"], series["low"], series["close"], series["volume"]
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    return {
        "sma_20": talib.SMA(close, 20),
        "ema_12": talib.EMA(close, 12),
        "ema_26": talib.EMA(close, 26),
        "rsi_14": talib.RSI(close, 14),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "atr_14": talib.ATR(high, low, close, 14),
        "volume_sma_20": talib.SMA(volume, 20),
    }


def _assert_matches_talib(series: dict[str, np.ndarray]) -> None:
    ours = compute(series)
    for name, expected in _talib(series).items():
        assert_matches(ours[:, COLUMNS.index(name)], expected, name)


def test_public_api() -> None:
    from marketpulse.models import INDICATOR_COLUMNS

    assert set(indicators.__all__) == {
        "COLUMNS",
        "DEFAULT",
        "KINDS",
        "Declared",
        "DeclaredSet",
        "IndicatorState",
        "StateMismatch",
        "bars_needed",
        "compute",
        "compute_indicators",
        "parse",
        "parse_set",
        "update_indicators",
        "warm_up",
    }
    assert COLUMNS == INDICATOR_COLUMNS


@pytest.mark.parametrize("index", INDICES)
def test_daily_index_matches_talib(daily, index: str) -> None:
    _assert_matches_talib(daily[index])


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_minute_bars_match_talib(minute, symbol: str) -> None:
    _assert_matches_talib(minute[symbol])


def test_flat_and_finely_quoted_series_match_talib(daily) -> None:
    """Conventions real series rarely reach: a flat window, a sub-cent quote."""
    gdaxi = daily["GDAXI"]
    flat = {key: np.repeat(values[:3], 40) for key, values in gdaxi.items()}
    _assert_matches_talib(flat)  # RSI of no change is 0; bands collapse onto the SMA
    out = compute(flat)
    assert out[14, COLUMNS.index("rsi_14")] == 0.0
    assert out[39, COLUMNS.index("bb_upper")] == out[39, COLUMNS.index("bb_middle")]
    scale = 1e-9  # TA-Lib 0.8 no longer zeroes a standard deviation below 1e-7
    tiny = dict(
        gdaxi, high=gdaxi["high"] * scale, low=gdaxi["low"] * scale, close=gdaxi["close"] * scale
    )
    _assert_matches_talib(tiny)


def _assert_vwap(got: np.ndarray, expected: np.ndarray) -> None:
    # pandas sums a group's cumsum with Kahan compensation, the kernel (as a
    # stream must) adds plainly: they part in the last bits, hence rtol.
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def _expected_vwap(series: dict[str, np.ndarray]) -> np.ndarray:
    frame = pd.DataFrame(
        {"pv": series["pv"], "volume": series["volume"], "session": series["session"]}
    )
    grouped = frame.groupby("session", sort=False)
    cum_volume = grouped["volume"].cumsum()
    return (grouped["pv"].cumsum() / cum_volume).where(cum_volume > 0).to_numpy()


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_vwap_over_the_day(minute, symbol: str) -> None:
    series = minute[symbol]
    got = compute(series)[:, COLUMNS.index("vwap")]
    expected = _expected_vwap(series)
    assert not np.isnan(expected).any()
    _assert_vwap(got, expected)
    day = series["pv"].sum() / series["volume"].sum()
    np.testing.assert_allclose(got[-1], day, rtol=1e-12)


def test_vwap_resets_each_session(minute, daily) -> None:
    spy = dict(minute["SPY"])
    spy["session"] = spy["ts"] // (3600 * 10**9)  # one session per UTC hour
    got = compute(spy)[:, COLUMNS.index("vwap")]
    _assert_vwap(got, _expected_vwap(spy))
    first = np.flatnonzero(np.diff(spy["session"]) != 0) + 1
    assert len(first) > 10
    np.testing.assert_array_equal(got[first], spy["pv"][first] / spy["volume"][first])

    # Monthly sessions of an index whose early years report no volume: NaN, never 0.
    hsi = daily["HSI"]
    got = compute(hsi)[:, COLUMNS.index("vwap")]
    expected = _expected_vwap(hsi)
    assert np.isnan(expected).sum() > 100 and (~np.isnan(expected)).sum() > 100
    _assert_vwap(got, expected)


def _interleaved(minute, daily, rng: np.random.Generator):
    """Several real series merged into one stream, each key's bars in order."""
    names = [*SYMBOLS, "GDAXI", "N225", "J203.JO"]
    series = [minute[name] if name in minute else daily[name] for name in names]
    keys, _, columns = interleave(series, rng)
    return series, keys, columns


def _update(state, keys, columns, start=0, stop=None):
    window = slice(start, stop)
    return update_indicators(
        state,
        keys[window],
        *(columns[field][window] for field in ("high", "low", "close", "volume", "pv", "session")),
    )


def test_streaming_in_random_chunks_equals_batch(minute, daily) -> None:
    rng = np.random.default_rng(20131007)
    series, keys, columns = _interleaved(minute, daily, rng)
    one_shot = _update(IndicatorState(capacity=1), keys, columns)
    for key, s in enumerate(series):
        assert_bits_equal(one_shot[keys == key], compute(s))

    for _ in range(3):
        cuts = np.sort(rng.choice(np.arange(1, len(keys)), size=200, replace=False))
        bounds = [0, *cuts.tolist(), len(keys)]
        state = IndicatorState(capacity=2)
        chunks = [_update(state, keys, columns, a, b) for a, b in itertools.pairwise(bounds)]
        assert_bits_equal(np.concatenate(chunks), one_shot)

    single_rows = IndicatorState()
    rows = [_update(single_rows, keys, columns, i, i + 1) for i in range(3000)]
    assert_bits_equal(np.concatenate(rows), one_shot[:3000])


def test_snapshot_restore_continues_identically(minute) -> None:
    spy = minute["SPY"]
    fields = ("high", "low", "close", "volume", "pv", "session")
    whole = compute(spy)
    for cut in (1, 19, 30, 400, len(spy["close"]) - 1):
        before = IndicatorState()
        update_indicators(before, np.full(cut, 3), *(spy[f][:cut] for f in fields))
        data = before.snapshot(3)
        assert isinstance(data, bytes)

        after = IndicatorState(capacity=4)
        after.restore(200, data)  # another key, past the capacity
        assert after.capacity >= 201 and after.bars(200) == cut
        assert after.snapshot(200) == data
        rest = len(spy["close"]) - cut
        got = update_indicators(after, np.full(rest, 200), *(spy[f][cut:] for f in fields))
        assert_bits_equal(got, whole[cut:])
        assert after.bars(200) == len(spy["close"])


def test_restore_rejects_foreign_bytes() -> None:
    state = IndicatorState()
    good = state.snapshot(0)
    for bad in (b"", good[:-8], b"XXXX" + good[4:], good + b"\0"):
        with pytest.raises(ValueError):
            state.restore(0, bad)


def test_copy_and_reset(minute) -> None:
    ibm = minute["IBM"]
    fields = ("high", "low", "close", "volume", "pv", "session")
    whole = compute(ibm)
    state = IndicatorState()
    keys = np.zeros(100, dtype=np.int64)
    update_indicators(state, keys, *(ibm[f][:100] for f in fields))
    fork = state.copy()
    state.reset(0)
    assert state.bars(0) == 0 and fork.bars(0) == 100
    fresh = update_indicators(state, keys, *(ibm[f][:100] for f in fields))
    assert_bits_equal(fresh, whole[:100])
    later = update_indicators(
        fork, np.zeros(200, dtype=np.int64), *(ibm[f][100:300] for f in fields)
    )
    assert_bits_equal(later, whole[100:300])


def test_state_grows_by_doubling_and_checks_input() -> None:
    state = IndicatorState(capacity=3)
    one = np.ones(1)
    out = update_indicators(
        state, np.array([40], dtype=np.int32), one, one, one, one, one, np.zeros(1)
    )
    assert state.capacity == 48 and out.shape == (1, len(COLUMNS))
    assert np.isnan(out[0]).sum() == len(COLUMNS) - 1 and out[0, COLUMNS.index("vwap")] == 1.0
    assert update_indicators(state, *(np.empty(0),) * 7).shape == (0, len(COLUMNS))
    with pytest.raises(ValueError):
        update_indicators(state, np.array([-1]), one, one, one, one, one, np.zeros(1))
    with pytest.raises(ValueError):
        update_indicators(state, np.array([0, 1]), one, one, one, one, one, np.zeros(1))
    with pytest.raises(ValueError):
        IndicatorState(capacity=0)
