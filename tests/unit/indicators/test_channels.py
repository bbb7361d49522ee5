"""Range and channel kinds on real market data.

natr, trange and midprice against TA-Lib; keltner, donchian, supertrend and
ichimoku (which TA-Lib lacks) against plain pandas implementations of their
published formulas, written here independently of the kernels.
"""

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
        resampled = group.set_index("ts").resample("1min")
        bars = pd.DataFrame(
            {
                "high": resampled["price"].max(),
                "low": resampled["price"].min(),
                "close": resampled["price"].last(),
                "volume": resampled["size"].sum().astype(np.float64),
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


def _assert_close(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    expected = np.asarray(expected, np.float64)
    np.testing.assert_array_equal(
        np.isnan(got), np.isnan(expected), err_msg=f"{what}: NaN positions"
    )
    warm = ~np.isnan(expected)
    assert warm.sum() > 0, what
    np.testing.assert_allclose(got[warm], expected[warm], rtol=1e-9, atol=0, err_msg=what)


def _hlc(b):
    return b["high"], b["low"], b["close"]


TALIB_CASES = {
    "natr": lambda b: talib.NATR(*_hlc(b), 14),
    "natr(1)": lambda b: talib.NATR(*_hlc(b), 1),
    "natr(2)": lambda b: talib.NATR(*_hlc(b), 2),
    "natr(period=50)": lambda b: talib.NATR(*_hlc(b), 50),
    "trange": lambda b: talib.TRANGE(*_hlc(b)),
    "midprice": lambda b: talib.MIDPRICE(b["high"], b["low"], 14),
    "midprice(2)": lambda b: talib.MIDPRICE(b["high"], b["low"], 2),
    "midprice(100)": lambda b: talib.MIDPRICE(b["high"], b["low"], 100),
}


@pytest.mark.parametrize("declaration", TALIB_CASES)
def test_equals_talib_on_every_series(series, declaration: str) -> None:
    for name, bars in series.items():
        got = _compute(declaration, bars)[:, 0]
        _assert_close(got, TALIB_CASES[declaration](bars), f"{declaration} on {name}")


def test_natr_of_a_zero_close_is_zero_as_in_talib(series) -> None:
    bars = {f: v[:300].copy() for f, v in series["SPY"].items()}
    bars["close"][[50, 51, 200]] = 0.0
    got = _compute("natr", bars)[:, 0]
    _assert_close(got, talib.NATR(*_hlc(bars), 14), "natr with zero closes")
    assert (got[[50, 51, 200]] == 0.0).all()


# --- independent references -------------------------------------------------


def _ema(values: pd.Series, n: int) -> pd.Series:
    """EMA with k = 2 / (n + 1), seeded with the SMA of the first n values (ChartSchool)."""
    seed = pd.Series([values.iloc[:n].mean()], index=[values.index[n - 1]])
    smoothed = pd.concat([seed, values.iloc[n:]]).ewm(alpha=2.0 / (n + 1), adjust=False).mean()
    return smoothed.reindex(values.index)


def _wilder_atr(bars, n: int) -> pd.Series:
    """Wilder's ATR: true ranges from the second bar on, seeded with the mean of the first n."""
    high, low, close = (pd.Series(v) for v in _hlc(bars))
    previous = close.shift(1)
    tr = pd.concat([high - low, (high - previous).abs(), (low - previous).abs()], axis=1).max(
        axis=1, skipna=False
    )
    tr = tr.iloc[1:]
    seed = pd.Series([tr.iloc[:n].mean()], index=[tr.index[n - 1]])
    atr = pd.concat([seed, tr.iloc[n:]]).ewm(alpha=1.0 / n, adjust=False).mean()
    return atr.reindex(close.index)


def _keltner_reference(bars, n: int, atr_n: int, multiplier: float):
    """StockCharts ChartSchool, "Keltner Channels": the Raschke (EMA and ATR) definition.

    Middle Line: 20-day EMA of the close; Upper Channel Line: EMA + 2 * ATR(10);
    Lower Channel Line: EMA - 2 * ATR(10). Values start once both are defined.
    """
    middle = _ema(pd.Series(bars["close"]), n)
    atr = _wilder_atr(bars, atr_n)
    ready = middle.notna() & atr.notna()
    middle = middle.where(ready)
    return middle + multiplier * atr, middle, middle - multiplier * atr


def _donchian_reference(bars, n: int):
    """StockCharts ChartSchool, "Donchian Channels" (Richard Donchian).

    Upper Channel: n-period high; Lower Channel: n-period low; Middle
    Channel: (Upper + Lower) / 2. The current bar is inside its window.
    """
    upper = pd.Series(bars["high"]).rolling(n).max()
    lower = pd.Series(bars["low"]).rolling(n).min()
    return upper, (upper + lower) / 2.0, lower


def _supertrend_reference(bars, n: int, factor: float):
    """TradingView's Pine Script reference of ``ta.supertrend``, line by line.

    pine_supertrend(factor, atrPeriod) =>
        src = hl2
        atr = ta.atr(atrPeriod)
        upperBand = src + factor * atr
        lowerBand = src - factor * atr
        prevLowerBand = nz(lowerBand[1])
        prevUpperBand = nz(upperBand[1])
        lowerBand := lowerBand > prevLowerBand or close[1] < prevLowerBand
            ? lowerBand : prevLowerBand
        upperBand := upperBand < prevUpperBand or close[1] > prevUpperBand
            ? upperBand : prevUpperBand
        if na(atr[1])
            _direction := 1
        else if prevSuperTrend == prevUpperBand
            _direction := close > upperBand ? -1 : 1
        else
            _direction := close < lowerBand ? 1 : -1
        superTrend := _direction == -1 ? lowerBand : upperBand

    The ATR is Wilder's as TA-Lib computes it (first value at bar n), and the
    direction is returned with the opposite sign (+1 for up).
    """
    high, low, close = _hlc(bars)
    atr = _wilder_atr(bars, n).to_numpy()
    src = (high + low) / 2.0
    line = np.full(len(close), np.nan)
    direction = np.full(len(close), np.nan)
    upper_band = np.full(len(close), np.nan)
    lower_band = np.full(len(close), np.nan)

    def nz(value: float) -> float:
        return 0.0 if np.isnan(value) else value

    for t in range(len(close)):
        if np.isnan(atr[t]):
            continue
        upper = src[t] + factor * atr[t]
        lower = src[t] - factor * atr[t]
        previous_lower = nz(lower_band[t - 1])
        previous_upper = nz(upper_band[t - 1])
        lower = lower if lower > previous_lower or close[t - 1] < previous_lower else previous_lower
        upper = upper if upper < previous_upper or close[t - 1] > previous_upper else previous_upper
        if np.isnan(atr[t - 1]):
            pine = 1
        elif line[t - 1] == previous_upper:
            pine = -1 if close[t] > upper else 1
        else:
            pine = 1 if close[t] < lower else -1
        line[t] = lower if pine == -1 else upper
        direction[t] = -pine
        upper_band[t], lower_band[t] = upper, lower
    return line, direction


def _ichimoku_reference(bars, tenkan: int, kijun: int, senkou: int):
    """StockCharts ChartSchool, "Ichimoku Cloud" (Goichi Hosoda), unshifted.

    Conversion Line (tenkan-sen) = (9-period high + 9-period low) / 2
    Base Line (kijun-sen) = (26-period high + 26-period low) / 2
    Leading Span A = (Conversion Line + Base Line) / 2, plotted ahead
    Leading Span B = (52-period high + 52-period low) / 2, plotted ahead
    Lagging Span = close plotted back; here chikou = the close kijun - 1 bars ago.
    """
    high, low = pd.Series(bars["high"]), pd.Series(bars["low"])

    def midpoint(n: int) -> pd.Series:
        return (high.rolling(n).max() + low.rolling(n).min()) / 2.0

    conversion, base = midpoint(tenkan), midpoint(kijun)
    chikou = pd.Series(bars["close"]).shift(kijun - 1)
    return conversion, base, (conversion + base) / 2.0, midpoint(senkou), chikou


@pytest.mark.parametrize(
    ("declaration", "args"), [("keltner", (20, 10, 2.0)), ("keltner(10, 20, 1.5)", (10, 20, 1.5)),
                              ("keltner(period=5, atr_period=1, multiplier=3)", (5, 1, 3.0))],
)  # fmt: skip
def test_keltner_matches_chartschool(series, declaration: str, args) -> None:
    for name, bars in series.items():
        got = _compute(declaration, bars)
        for j, expected in enumerate(_keltner_reference(bars, *args)):
            _assert_close(got[:, j], expected, f"{declaration} output {j} on {name}")
        # The parts are TA-Lib's EMA and ATR, bit for bit.
        warm = ~np.isnan(got[:, 1])
        ema = talib.EMA(bars["close"], args[0])
        atr = talib.ATR(*_hlc(bars), args[1])
        np.testing.assert_array_equal(got[warm, 1], ema[warm])
        np.testing.assert_array_equal(got[warm, 0], ema[warm] + args[2] * atr[warm])


def test_keltner_worked_example() -> None:
    """A bar range of 2 around a close of 10: EMA 10, ATR 2, bands 10 +/- 2 * 2."""
    bars = {"high": np.full(30, 11.0), "low": np.full(30, 9.0), "close": np.full(30, 10.0)}
    bars["volume"] = np.ones(30)
    got = _compute("keltner", bars)
    assert np.isnan(got[:19]).all()  # the 20-bar EMA is the last to warm up
    np.testing.assert_array_equal(got[19:], np.tile([14.0, 10.0, 6.0], (11, 1)))


@pytest.mark.parametrize("n", [20, 1, 55])
def test_donchian_matches_chartschool(series, n: int) -> None:
    for name, bars in series.items():
        got = _compute(f"donchian({n})", bars)
        for j, expected in enumerate(_donchian_reference(bars, n)):
            np.testing.assert_array_equal(got[:, j], expected.to_numpy(), err_msg=f"{n} {j} {name}")
        if n > 1:  # the middle is TA-Lib's MIDPRICE
            np.testing.assert_array_equal(got[:, 1], talib.MIDPRICE(bars["high"], bars["low"], n))


@pytest.mark.parametrize(("period", "factor"), [(10, 3.0), (7, 2.0), (1, 0.5)])
def test_supertrend_matches_tradingview(series, period: int, factor: float) -> None:
    flips = 0
    for name, bars in series.items():
        got = _compute(f"supertrend({period}, {factor})", bars)
        line, direction = _supertrend_reference(bars, period, factor)
        _assert_close(got[:, 0], line, f"supertrend line on {name}")
        np.testing.assert_array_equal(got[:, 1], direction, err_msg=f"direction on {name}")
        up = got[:, 1] == 1.0
        down = got[:, 1] == -1.0
        assert (up | down).sum() == len(up) - period
        assert (bars["close"][up] >= got[up, 0]).all() and (
            bars["close"][down] <= got[down, 0]
        ).all()
        flips += int((np.diff(got[period:, 1]) != 0).sum())
    assert flips > 1000  # both trends, many times over


@pytest.mark.parametrize("args", [(9, 26, 52), (7, 22, 44), (1, 1, 3)])
def test_ichimoku_matches_chartschool_unshifted(series, args) -> None:
    declaration = "ichimoku({}, {}, {})".format(*args)
    for name, bars in series.items():
        got = _compute(declaration, bars)
        for j, expected in enumerate(_ichimoku_reference(bars, *args)):
            np.testing.assert_array_equal(got[:, j], expected.to_numpy(), err_msg=f"{j} {name}")
    assert parse_set(declaration).columns == tuple(
        f"ichimoku_{'_'.join(map(str, args))}_{s}"
        for s in ("tenkan", "kijun", "senkou_a", "senkou_b", "chikou")
    )


def test_ichimoku_chikou_reads_the_close_kijun_minus_one_bars_back() -> None:
    close = np.arange(1.0, 41.0)
    bars = {"high": close + 1, "low": close - 1, "close": close, "volume": np.ones(40)}
    got = _compute("i=ichimoku(3, 5, 8)", bars)
    assert np.isnan(got[:4, 4]).all()
    np.testing.assert_array_equal(got[4:, 4], close[:-4])  # kijun - 1 = 4 bars back
    # Rising by 1 a bar, a window of n bars ending at c has midpoint c - (n - 1) / 2.
    np.testing.assert_array_equal(got[2:, 0], close[2:] - 1.0)
    np.testing.assert_array_equal(got[7:, 3], close[7:] - 3.5)


def test_streaming_in_chunks_equals_batch(series) -> None:
    declared = parse_set(
        "natr, trange, midprice(5), keltner(6, 4, 1.5), donchian(9), supertrend(5, 2), "
        "ichimoku(3, 7, 12)"
    )
    parts = [series[n] for n in ("SPY", "IBM", "N225")]
    keys = np.concatenate([np.full(len(p["close"]), i) for i, p in enumerate(parts)])
    rng = np.random.default_rng(22)
    keys = keys[np.argsort(rng.random(len(keys)), kind="stable")]
    columns = {f: np.empty(len(keys)) for f in FIELDS}
    for i, p in enumerate(parts):
        for f in FIELDS:
            columns[f][keys == i] = p[f]
    state = IndicatorState(capacity=1, declared=declared)
    inner = np.sort(rng.choice(np.arange(1, len(keys)), 300, replace=False)).tolist()
    cuts = [0, *inner, len(keys)]
    chunks = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        h, lo, c, v = (columns[f][a:b] for f in FIELDS)
        zeros = np.zeros(b - a, np.int64)
        chunks.append(update_indicators(state, keys[a:b], h, lo, c, v, c * v, zeros))
    streamed = np.concatenate(chunks)
    for i, p in enumerate(parts):
        n = len(p["close"])
        whole = compute_indicators(
            *_hlc(p), p["volume"], p["close"] * p["volume"], np.zeros(n, np.int64),
            declared=declared,
        )  # fmt: skip
        np.testing.assert_array_equal(streamed[keys == i].view(np.uint64), whole.view(np.uint64))


def test_declarations() -> None:
    assert parse_set("keltner").columns == ("keltner_upper", "keltner_middle", "keltner_lower")
    assert parse("keltner").numbers == (20.0, 10.0, 2.0)
    assert parse("st=supertrend").kind.outputs == ("", "direction")
    assert parse_set("st=supertrend").columns == ("st", "st_direction")
    assert parse("supertrend(multiplier=2.5)").numbers == (10.0, 2.5)
    assert parse("ichimoku").numbers == (9.0, 26.0, 52.0)
    assert parse("donchian").numbers == (20.0,) and parse("natr").numbers == (14.0,)
    for bad, words in (
        ("midprice(1)", "between 2"),
        ("keltner(20, 10, -1)", "between 0 and 1000"),
        ("donchian(0)", "between 1"),
        ("ichimoku(9, 26.5)", "whole number"),
        ("supertrend(10, 3, 4)", "at most 2"),
        ("trange(3)", "at most 0"),
        ("keltner(width=2)", "no parameter 'width'"),
    ):
        with pytest.raises(ValueError, match=words):
            parse(bad)
