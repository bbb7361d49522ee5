"""Range and channel kinds: NATR, true range, midprice, Keltner, Donchian, SuperTrend, Ichimoku.

``natr``, ``trange`` and ``midprice`` repeat the arithmetic of the installed
TA-Lib build operation for operation: NATR is TA-Lib's ATR (as the ``atr``
kind computes it) / close * 100, 0 for a close within 1e-14 of 0, and for a
period of 1 the true range itself, not normalized (as TA-Lib returns it).
The others TA-Lib lacks; each follows the published formula named in its
``reference``:

* Keltner channels, as StockCharts ChartSchool defines them (Linda Raschke's
  version): middle = EMA(close, ``period``), seeded with the SMA like
  TA-Lib's EMA; upper/lower = middle +/- ``multiplier`` * ATR(``atr_period``),
  the ATR Wilder's, equal to TA-Lib's ATR. Output once both are warmed up.
* Donchian channels (ChartSchool): the highest high and lowest low of the
  last ``period`` bars, the current one included, and their mean.
* SuperTrend, TradingView's ``ta.supertrend``: bands ``hl2 +/- multiplier *
  ATR`` that only tighten while the close stays inside them; the line is the
  lower band in an up-trend (``direction`` +1) and the upper band in a
  down-trend (``direction`` -1; TradingView reports the opposite signs). The
  ATR is TA-Lib's, so the first value comes at bar ``period``
  (TradingView's ATR starts one bar earlier, its seed taking the first
  bar's high - low as a true range, so its early values differ).
* Ichimoku (Goichi Hosoda; ChartSchool's "Ichimoku Cloud"): the conversion
  (``tenkan``), base (``kijun``) and leading span B (``senkou``) lines are
  the midpoints of the highest high and lowest low over their windows, span
  A the mean of conversion and base lines. A stream cannot write into the
  future, so the leading spans are output on the bar they are computed on,
  *unshifted*: to draw the cloud, plot them ``kijun - 1`` bars ahead (as
  TradingView does; ChartSchool says 26 bars). The lagging span plots the
  close ``kijun - 1`` bars back; its streaming-safe form here, ``chikou``,
  is the close ``kijun - 1`` bars ago: the price the lagging span is read
  against, so ``close > chikou`` is the lagging span above the price.
"""

from __future__ import annotations

import numba

from marketpulse.indicators.kind import NAN, Kind, Param, ema_step
from marketpulse.indicators.library.classic import atr_bar, true_range

__all__ = ["KINDS"]

_COUNT = 0  # ints slot 0 of every kind: bars seen by the key
_EPSILON = 1e-14  # TA-Lib's TA_EPSILON


@numba.njit(cache=True, inline="always")
def _extremes(ring, key, width, count, length):
    """Highest high and lowest low of the last ``length`` bars.

    The ring holds highs at ``[0, width)`` and lows at ``[width, 2 * width)``,
    bar ``j`` at slot ``j % width``; ``count`` bars were written so far and
    ``length`` must not exceed ``min(count, width)``.
    """
    slot = (count - 1) % width
    highest = ring[key, slot]
    lowest = ring[key, width + slot]
    for _ in range(length - 1):
        slot = slot - 1 if slot > 0 else width - 1
        h = ring[key, slot]
        lo = ring[key, width + slot]
        if h > highest:
            highest = h
        if lo < lowest:
            lowest = lo
    return highest, lowest


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _natr(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    # fs = [ATR (the sum of true ranges until it is seeded), previous close]
    n = int(params[0])
    beta = (n - 1.0) / n
    alpha = 1.0 - beta
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        tr, atr = atr_bar(fs, k, c, n, beta, alpha, high[r], low[r], close[r], 0)
        out[r, col] = NAN
        if n == 1:  # TA-Lib returns the true range itself, not normalized
            out[r, col] = tr
        elif c >= n:
            v = close[r]
            out[r, col] = 0.0 if -_EPSILON < v < _EPSILON else atr / v * 100.0
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _trange(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    # fs = [previous close]
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        out[r, col] = true_range(high[r], low[r], fs[k, 0]) if c > 0 else NAN
        fs[k, 0] = close[r]
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, inline="always")
def _channel(ring, key, c, n, high, low):
    """Add bar ``c``'s high and low to ``key``'s window of ``n`` bars; return its extremes.

    The ring holds highs at ``[0, n)`` and lows at ``[n, 2n)``. Returns the
    highest high and lowest low, meaningful from bar ``n - 1`` on.
    """
    slot = c % n
    ring[key, slot] = high
    ring[key, n + slot] = low
    if c < n - 1:
        return NAN, NAN
    return _extremes(ring, key, n, c + 1, n)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _midprice(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    n = int(params[0])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        highest, lowest = _channel(ring, k, c, n, high[r], low[r])
        out[r, col] = (highest + lowest) / 2.0 if c >= n - 1 else NAN
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _donchian(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    n = int(params[0])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        upper, lower = _channel(ring, k, c, n, high[r], low[r])
        if c >= n - 1:
            out[r, col] = upper
            out[r, col + 1] = (upper + lower) / 2.0
            out[r, col + 2] = lower
        else:
            out[r, col] = NAN
            out[r, col + 1] = NAN
            out[r, col + 2] = NAN
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _keltner(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    # fs = [EMA (its seed sum first), ATR (its seed sum first), previous close]
    n, atr_n, multiplier = int(params[0]), int(params[1]), params[2]
    alpha = 2.0 / (n + 1)
    beta = (atr_n - 1.0) / atr_n
    warm = max(n - 1, atr_n)
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        fs[k, 0], middle = ema_step(fs[k, 0], close[r], c, 0, n, alpha)
        _, atr = atr_bar(fs, k, c, atr_n, beta, 1.0 - beta, high[r], low[r], close[r], 1)
        if c >= warm:
            width = multiplier * atr
            out[r, col] = middle + width
            out[r, col + 1] = middle
            out[r, col + 2] = middle - width
        else:
            out[r, col] = NAN
            out[r, col + 1] = NAN
            out[r, col + 2] = NAN
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _supertrend(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    # fs = [ATR (its seed sum first), previous close, upper band, lower band, line]
    n, multiplier = int(params[0]), params[1]
    beta = (n - 1.0) / n
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        out[r, col] = NAN
        out[r, col + 1] = NAN
        previous_close = fs[k, 1]
        _, atr = atr_bar(fs, k, c, n, beta, 1.0 - beta, high[r], low[r], close[r], 0)
        if c >= n:
            middle = (high[r] + low[r]) / 2.0
            upper = middle + multiplier * atr
            lower = middle - multiplier * atr
            if c == n:  # the first bands: nothing to tighten yet
                up_trend = False
            else:
                previous_upper = fs[k, 2]
                previous_lower = fs[k, 3]
                if not (lower > previous_lower or previous_close < previous_lower):
                    lower = previous_lower
                if not (upper < previous_upper or previous_close > previous_upper):
                    upper = previous_upper
                if fs[k, 4] == previous_upper:  # was down: up once the close breaks above
                    up_trend = close[r] > upper
                else:  # was up: down once the close breaks below
                    up_trend = not close[r] < lower
            line = lower if up_trend else upper
            out[r, col] = line
            out[r, col + 1] = 1.0 if up_trend else -1.0
            fs[k, 2] = upper
            fs[k, 3] = lower
            fs[k, 4] = line
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _ichimoku(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    # ring = highs at [0, w), lows at [w, 2w), closes at [2w, 2w + kijun);
    # w is the longest of the three windows.
    tenkan_n, kijun_n, senkou_n = int(params[0]), int(params[1]), int(params[2])
    w = max(tenkan_n, kijun_n, senkou_n)
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        seen = c + 1
        ring[k, c % w] = high[r]
        ring[k, w + c % w] = low[r]
        ring[k, 2 * w + c % kijun_n] = close[r]
        tenkan = NAN
        kijun = NAN
        senkou_b = NAN
        # One pass back from the newest bar, noting the midpoint at each window's length.
        slot = c % w
        highest = ring[k, slot]
        lowest = ring[k, w + slot]
        for length in range(1, min(seen, w) + 1):
            if length > 1:
                slot = slot - 1 if slot > 0 else w - 1
                h = ring[k, slot]
                lo = ring[k, w + slot]
                if h > highest:
                    highest = h
                if lo < lowest:
                    lowest = lo
            if length == tenkan_n:
                tenkan = (highest + lowest) / 2.0
            if length == kijun_n:
                kijun = (highest + lowest) / 2.0
            if length == senkou_n:
                senkou_b = (highest + lowest) / 2.0
        if seen >= kijun_n:
            out[r, col + 4] = ring[k, 2 * w + (c - (kijun_n - 1)) % kijun_n]
        else:
            out[r, col + 4] = NAN
        out[r, col] = tenkan
        out[r, col + 1] = kijun
        out[r, col + 2] = (tenkan + kijun) / 2.0  # NaN until both are
        out[r, col + 3] = senkou_b
        ints[k, _COUNT] = c + 1


def _period(default: int, minimum: int = 2, name: str = "period") -> Param:
    return Param(name, default, minimum=minimum, maximum=100_000)


def _multiplier(default: float) -> Param:
    return Param("multiplier", default, integer=False, minimum=0, maximum=1000)


def _ichimoku_layout(p: tuple[float, ...]) -> tuple[int, int, int]:
    return 0, 1, 2 * int(max(p)) + int(p[1])


KINDS: tuple[Kind, ...] = (
    Kind("natr", "normalized average true range: ATR as a percentage of the close",
         (_period(14, minimum=1),), ("",), lambda p: (2, 1, 0), _natr, talib="NATR"),
    Kind("trange", "true range", (), ("",), lambda p: (1, 1, 0), _trange, talib="TRANGE"),
    Kind("midprice", "midpoint of the highest high and lowest low over the period",
         (_period(14),), ("",), lambda p: (0, 1, 2 * int(p[0])), _midprice, talib="MIDPRICE"),
    Kind("keltner", "Keltner channels: EMA of the close +/- multiplier * ATR",
         (_period(20), _period(10, minimum=1, name="atr_period"), _multiplier(2.0)),
         ("upper", "middle", "lower"), lambda p: (3, 1, 0), _keltner,
         reference="StockCharts ChartSchool, Keltner Channels: EMA(20) +/- 2 * ATR(10)"),
    Kind("donchian", "Donchian channels: highest high, midpoint, lowest low over the period",
         (_period(20, minimum=1),), ("upper", "middle", "lower"),
         lambda p: (0, 1, 2 * int(p[0])), _donchian,
         reference="StockCharts ChartSchool, Donchian Channels (Richard Donchian)"),
    Kind("supertrend", "SuperTrend line and direction (+1 up, -1 down)",
         (_period(10, minimum=1), _multiplier(3.0)), ("", "direction"),
         lambda p: (5, 1, 0), _supertrend,
         reference="TradingView Pine Script reference, ta.supertrend (pine_supertrend)"),
    Kind("ichimoku", "Ichimoku lines, leading spans unshifted; chikou = close kijun-1 bars ago",
         (_period(9, minimum=1, name="tenkan"), _period(26, minimum=1, name="kijun"),
          _period(52, minimum=1, name="senkou")),
         ("tenkan", "kijun", "senkou_a", "senkou_b", "chikou"), _ichimoku_layout, _ichimoku,
         reference="Goichi Hosoda; StockCharts ChartSchool, Ichimoku Cloud"),
)  # fmt: skip
