"""Oscillators: stochastics, Williams %R, CCI, rate of change, momentum, TRIX and kin.

Each kernel repeats the arithmetic of the TA-Lib build installed with the
project (TA-Lib C 0.8.1, through the ``TA-Lib`` 0.8.2 wheel) step for step, so
the values agree with TA-Lib's bit for bit, warm-up included. The choices that
differ from textbook formulas:

* Stochastics (``stoch``, ``stochf``, ``stochrsi``): the raw %K is
  ``((close - lowest) / (highest - lowest)) * 100``, 0 when the range is zero
  within ``1e-14 * (|highest| + |lowest|)`` (TA-Lib's ``TA_IS_ZERO_SCALED``);
  Williams %R is ``((highest - close) / (highest - lowest)) * -100`` with the
  same test. %K and %D smoothing are TA-Lib's default simple moving averages:
  running sums (add the new value, divide, subtract the oldest) started at the
  first raw value. ``stoch`` gives its slow %K only from the bar its slow %D
  starts, as TA-Lib does.
* ``stochrsi`` is ``stochf`` applied to TA-Lib's RSI (the ``rsi`` kind's
  recurrence), the RSI serving as high, low and close.
* CCI: the mean and the mean deviation are summed over the window in the
  order of TA-Lib's circular buffer (slot ``bar % period``); 0 when the
  deviation or the distance to the mean is zero within ``1e-14 * |mean|``.
* CMO: Wilder's sums are *divided* by the period (the RSI multiplies by its
  inverse), 0 when gain + loss is within 1e-14 of zero.
* TRIX: three chained EMAs (each seeded with the mean of its first
  ``period`` inputs, the :func:`~..kind.ema_step` recurrence), then the
  one-bar rate of change of the third.
* APO and PPO: TA-Lib's default MA type in this build is 1 (EMA); ``matype``
  0 gives SMAs. Both averages start at the first bar; PPO is 0 when the slow
  average is within 1e-14 of zero.
* Ultimate oscillator: the periods are sorted (weight 4 on the shortest);
  each window's running sums start where TA-Lib's priming loop starts them.
* BOP: 0 for a bar whose high - low is within 1e-14 of zero; NaN without
  opens.
"""

from __future__ import annotations

import math

import numba

from marketpulse.indicators.kind import NAN, Kind, Param, ema_step
from marketpulse.indicators.library.classic import rsi_step
from marketpulse.indicators.library.moving_averages import ema_chain

__all__ = ["KINDS"]

_COUNT = 0  # ints slot 0 of every kind: bars seen by the key
_ZERO = 0.00000000000001  # TA-Lib's TA_EPSILON: |v| below it is "zero"


@numba.njit(cache=True, inline="always")
def _is_zero(value):
    """TA-Lib's ``TA_IS_ZERO``."""
    return -_ZERO < value < _ZERO


@numba.njit(cache=True, inline="always")
def _is_zero_scaled(value, scale):
    """TA-Lib's ``TA_IS_ZERO_SCALED``: zero within epsilon of the operands' magnitude."""
    return abs(value) <= _ZERO * scale


@numba.njit(cache=True, inline="always")
def _extreme(ring, key, base, n, c, slot, value, best, index, highest):
    """Return the greatest (``highest``) or least of the last ``n`` values and its bar.

    ``ring[key, base:base + n]`` holds the window (bars ``c-n+1 .. c``), bar
    ``c``'s ``value`` in ``slot`` (``c % n``); ``best``/``index`` are the
    previous bar's answer (an index before the window, such as -1, makes it
    scan the window, as TA-Lib does when its extreme leaves the window). A
    scan keeps the oldest of equal values, a new bar equal to the extreme
    takes its place, as in TA-Lib.
    """
    trailing = c - n + 1
    if index < trailing:
        s = slot + 1 if slot + 1 < n else 0  # the trailing bar's slot
        index = trailing
        best = ring[key, base + s]
        for j in range(trailing + 1, c + 1):
            s = s + 1 if s + 1 < n else 0
            v = ring[key, base + s]
            if (v > best) if highest else (v < best):
                index = j
                best = v
    elif (value >= best) if highest else (value <= best):
        index = c
        best = value
    return best, index


@numba.njit(cache=True, inline="always")
def _sma_step(ring, key, base, n, j, value, total):
    """Advance TA-Lib's running-sum SMA by input number ``j`` (from 0).

    Returns the new running sum and the average (NaN before ``n`` inputs).
    """
    slot = j % n
    ring[key, base + slot] = value
    total += value
    if j < n - 1:
        return total, NAN
    average = total / n
    total -= ring[key, base + (slot + 1 if slot + 1 < n else 0)]  # the oldest input
    return total, average


# Stochastic state shared by stoch, stochf, stochrsi and willr:
# fs = [lowest, highest, ...], ints = [count, lowest bar, highest bar, ...];
# ring = highs [0, n), lows [n, 2n), then the smoothing windows.
_LOWEST, _HIGHEST = 0, 1
_LOWEST_AT, _HIGHEST_AT = 1, 2


@numba.njit(cache=True, inline="always")
def _window_range(fs, ints, ring, key, n, j, high, low):
    """Push bar ``j`` of the series into the window; return the window's (lowest, highest)."""
    slot = j % n
    ring[key, slot] = high
    ring[key, n + slot] = low
    if j < n - 1:
        return NAN, NAN
    start = j == n - 1  # the first full window: scan it
    lowest, at = _extreme(
        ring, key, n, n, j, slot, low, fs[key, _LOWEST], -1 if start else ints[key, _LOWEST_AT],
        False,
    )  # fmt: skip
    fs[key, _LOWEST] = lowest
    ints[key, _LOWEST_AT] = at
    highest, at = _extreme(
        ring, key, 0, n, j, slot, high, fs[key, _HIGHEST], -1 if start else ints[key, _HIGHEST_AT],
        True,
    )  # fmt: skip
    fs[key, _HIGHEST] = highest
    ints[key, _HIGHEST_AT] = at
    return lowest, highest


@numba.njit(cache=True, inline="always")
def _raw_k(close, lowest, highest):
    """The unsmoothed %K: 0 when the window is flat to TA-Lib's scaled epsilon."""
    span = highest - lowest
    if _is_zero_scaled(span, abs(highest) + abs(lowest)):
        return 0.0
    return ((close - lowest) / span) * 100.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _stoch(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n, slow_k, slow_d = int(params[0]), int(params[1]), int(params[2])
    k_base = 2 * n
    d_base = k_base + slow_k
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        out[r, col] = NAN
        out[r, col + 1] = NAN
        lowest, highest = _window_range(fs, ints, ring, k, n, c, high[r], low[r])
        j = c - (n - 1)  # index of this bar's raw %K
        if j >= 0:
            fs[k, 2], smooth_k = _sma_step(
                ring, k, k_base, slow_k, j, _raw_k(close[r], lowest, highest), fs[k, 2]
            )
            m = j - (slow_k - 1)  # index of this bar's slow %K
            if m >= 0:
                fs[k, 3], smooth_d = _sma_step(ring, k, d_base, slow_d, m, smooth_k, fs[k, 3])
                if m >= slow_d - 1:
                    out[r, col] = smooth_k
                    out[r, col + 1] = smooth_d
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, inline="always")
def _stochf_step(fs, ints, ring, key, n, fast_d, j, high, low, close):
    """Advance a fast stochastic by its input number ``j``; return (%K, %D), NaN before warm-up."""
    lowest, highest = _window_range(fs, ints, ring, key, n, j, high, low)
    i = j - (n - 1)
    if i < 0:
        return NAN, NAN
    raw = _raw_k(close, lowest, highest)
    fs[key, 2], smooth = _sma_step(ring, key, 2 * n, fast_d, i, raw, fs[key, 2])
    if i < fast_d - 1:
        return NAN, NAN
    return raw, smooth


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _stochf(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    n, fast_d = int(params[0]), int(params[1])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        out[r, col], out[r, col + 1] = _stochf_step(
            fs, ints, ring, k, n, fast_d, c, high[r], low[r], close[r]
        )
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _stochrsi(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    period, n, fast_d = int(params[0]), int(params[1]), int(params[2])
    inverse = 1.0 / period
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        v = x[r]
        out[r, col] = NAN
        out[r, col + 1] = NAN
        if c > 0:
            fs[k, 3], fs[k, 4], rsi = rsi_step(fs[k, 3], fs[k, 4], fs[k, 5], v, c, period, inverse)
            if c >= period:
                out[r, col], out[r, col + 1] = _stochf_step(
                    fs, ints, ring, k, n, fast_d, c - period, rsi, rsi, rsi
                )
        fs[k, 5] = v
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _willr(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        lowest, highest = _window_range(fs, ints, ring, k, n, c, high[r], low[r])
        out[r, col] = NAN
        if c >= n - 1:
            span = highest - lowest
            if _is_zero_scaled(span, abs(highest) + abs(lowest)):
                out[r, col] = 0.0
            else:
                out[r, col] = ((highest - close[r]) / span) * -100.0
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cci(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        last = (high[r] + low[r] + close[r]) / 3
        ring[k, c % n] = last
        out[r, col] = NAN
        if c >= n - 1:
            average = 0.0
            for j in range(n):
                average += ring[k, j]
            average /= n
            deviation = 0.0
            for j in range(n):
                deviation += abs(ring[k, j] - average)
            deviation /= n
            distance = last - average
            level = abs(average)
            if not _is_zero_scaled(distance, level) and not _is_zero_scaled(deviation, level):
                out[r, col] = distance / (0.015 * deviation)
            else:
                out[r, col] = 0.0
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, inline="always")
def _lagged(ring, key, c, n, v):
    """Store bar ``c``'s value ``v`` in ``key``'s window of ``n``; return bar ``c - n``'s value.

    The value returned means nothing before bar ``n``.
    """
    slot = c % n
    before = ring[key, slot]
    ring[key, slot] = v
    return before


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _roc(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        v = x[r]
        before = _lagged(ring, k, c, n, v)
        out[r, col] = NAN
        if c >= n:
            out[r, col] = (v / before - 1.0) * 100.0 if before != 0.0 else 0.0
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _mom(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        v = x[r]
        before = _lagged(ring, k, c, n, v)
        out[r, col] = v - before if c >= n else NAN
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cmo(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        v = x[r]
        out[r, col] = NAN
        if c > 0:
            delta = v - fs[k, 2]
            gain = fs[k, 0]
            loss = fs[k, 1]
            if c > n:
                loss *= n - 1
                gain *= n - 1
            if delta < 0:
                loss -= delta
            else:
                gain += delta
            if c >= n:
                loss /= n
                gain /= n
                total = gain + loss
                out[r, col] = 100.0 * ((gain - loss) / total) if not _is_zero(total) else 0.0
            fs[k, 0] = gain
            fs[k, 1] = loss
        fs[k, 2] = v
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _trix(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    alpha = 2.0 / (n + 1)
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        out[r, col] = NAN
        _, _, third = ema_chain(fs, k, c, n, alpha, x[r], 3)
        if c >= 2 * (n - 1):
            if c > 3 * (n - 1):
                before = fs[k, 3]
                out[r, col] = (third / before - 1.0) * 100.0 if before != 0.0 else 0.0
            fs[k, 3] = third
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, inline="always")
def _po_averages(fs, ring, key, c, v, fast_n, slow_n, ema):
    """Advance the fast and slow averages of APO/PPO; return them (NaN before bar ``slow - 1``)."""
    if ema:
        fs[key, 0], fast = ema_step(fs[key, 0], v, c, 0, fast_n, 2.0 / (fast_n + 1))
        fs[key, 1], slow = ema_step(fs[key, 1], v, c, 0, slow_n, 2.0 / (slow_n + 1))
    else:
        fs[key, 0], fast = _sma_step(ring, key, 0, fast_n, c, v, fs[key, 0])
        fs[key, 1], slow = _sma_step(ring, key, fast_n, slow_n, c, v, fs[key, 1])
    return fast, slow


@numba.njit(cache=True, inline="always")
def _po_periods(params):
    fast_n, slow_n = int(params[0]), int(params[1])
    if slow_n < fast_n:  # TA-Lib swaps them
        fast_n, slow_n = slow_n, fast_n
    return fast_n, slow_n, params[2] != 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _apo(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    fast_n, slow_n, ema = _po_periods(params)
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        fast, slow = _po_averages(fs, ring, k, c, x[r], fast_n, slow_n, ema)
        out[r, col] = fast - slow if c >= slow_n - 1 else NAN
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _ppo(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    fast_n, slow_n, ema = _po_periods(params)
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        fast, slow = _po_averages(fs, ring, k, c, x[r], fast_n, slow_n, ema)
        out[r, col] = NAN
        if c >= slow_n - 1:
            out[r, col] = ((fast - slow) / slow) * 100.0 if not _is_zero(slow) else 0.0
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _ultosc(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    p1, p2, p3 = int(params[0]), int(params[1]), int(params[2])
    # sorted shortest to longest: weights 4, 2, 1
    if p1 > p2:
        p1, p2 = p2, p1
    if p2 > p3:
        p2, p3 = p3, p2
    if p1 > p2:
        p1, p2 = p2, p1
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        out[r, col] = NAN
        if c > 0:
            previous = fs[k, 6]
            true_low = min(low[r], previous)
            term = close[r] - true_low
            true_range = high[r] - low[r]
            d = abs(previous - high[r])
            if d > true_range:
                true_range = d
            d = abs(previous - low[r])
            if d > true_range:
                true_range = d
            ring[k, c % p3] = term
            ring[k, p3 + c % p3] = true_range
            # window w's sums start at bar p3 - w + 1, TA-Lib's priming loop
            if c >= p3 - p1 + 1:
                fs[k, 0] += term
                fs[k, 1] += true_range
            if c >= p3 - p2 + 1:
                fs[k, 2] += term
                fs[k, 3] += true_range
            fs[k, 4] += term
            fs[k, 5] += true_range
            if c >= p3:
                output = 0.0
                if not _is_zero(fs[k, 1]):
                    output += 4.0 * (fs[k, 0] / fs[k, 1])
                if not _is_zero(fs[k, 3]):
                    output += 2.0 * (fs[k, 2] / fs[k, 3])
                if not _is_zero(fs[k, 5]):
                    output += fs[k, 4] / fs[k, 5]
                leaving = (c - p1 + 1) % p3
                fs[k, 0] -= ring[k, leaving]
                fs[k, 1] -= ring[k, p3 + leaving]
                leaving = (c - p2 + 1) % p3
                fs[k, 2] -= ring[k, leaving]
                fs[k, 3] -= ring[k, p3 + leaving]
                leaving = (c + 1) % p3
                fs[k, 4] -= ring[k, leaving]
                fs[k, 5] -= ring[k, p3 + leaving]
                out[r, col] = 100.0 * (output / 7.0)
        fs[k, 6] = close[r]
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bop(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    for r in range(keys.shape[0]):
        k = keys[r]
        span = high[r] - low[r]
        if math.isnan(open_[r]):  # no opens given: NaN, not TA-Lib's 0 for a flat bar
            out[r, col] = NAN
        else:
            out[r, col] = (close[r] - open_[r]) / span if not _is_zero(span) else 0.0
        ints[k, _COUNT] += 1


def _period(default: int, minimum: int = 2, name: str = "period") -> Param:
    return Param(name, default, minimum=minimum, maximum=100_000)


_SOURCE = Param("source", "close", source=True)
_MATYPE = Param("matype", 1, minimum=0, maximum=1)  # TA-Lib's MA types 0 (SMA) and 1 (EMA)


def _po_layout(p: tuple[float, ...]) -> tuple[int, int, int]:
    return 2, 1, 0 if p[2] else int(p[0]) + int(p[1])


KINDS: tuple[Kind, ...] = (
    Kind("stoch", "slow stochastic oscillator: %K and %D (simple moving averages)",
         (_period(5, 1, "fastk"), _period(3, 1, "slowk"), _period(3, 1, "slowd")), ("k", "d"),
         lambda p: (4, 3, 2 * int(p[0]) + int(p[1]) + int(p[2])), _stoch, talib="STOCH"),
    Kind("stochf", "fast stochastic oscillator: %K and %D (simple moving average)",
         (_period(5, 1, "fastk"), _period(3, 1, "fastd")), ("k", "d"),
         lambda p: (3, 3, 2 * int(p[0]) + int(p[1])), _stochf, talib="STOCHF"),
    Kind("stochrsi", "stochastic RSI: fast %K and %D of the RSI",
         (_period(14), _period(5, 1, "fastk"), _period(3, 1, "fastd"), _SOURCE), ("k", "d"),
         lambda p: (6, 3, 2 * int(p[1]) + int(p[2])), _stochrsi, talib="STOCHRSI"),
    Kind("willr", "Williams %R", (_period(14),), ("",),
         lambda p: (2, 3, 2 * int(p[0])), _willr, talib="WILLR"),
    Kind("cci", "commodity channel index", (_period(14),), ("",),
         lambda p: (1, 1, int(p[0])), _cci, talib="CCI"),
    Kind("roc", "rate of change, percent: (x / x[n bars ago] - 1) * 100",
         (_period(10, 1), _SOURCE), ("",),
         lambda p: (1, 1, int(p[0])), _roc, talib="ROC"),
    Kind("mom", "momentum: x - x[n bars ago]", (_period(10, 1), _SOURCE), ("",),
         lambda p: (1, 1, int(p[0])), _mom, talib="MOM"),
    Kind("cmo", "Chande momentum oscillator", (_period(14), _SOURCE), ("",),
         lambda p: (3, 1, 0), _cmo, talib="CMO"),
    Kind("apo", "absolute price oscillator: fast minus slow average (matype 0 SMA, 1 EMA)",
         (_period(12, 2, "fast"), _period(26, 2, "slow"), _MATYPE, _SOURCE), ("",),
         _po_layout, _apo, talib="APO"),
    Kind("ppo", "percentage price oscillator: (fast - slow) / slow * 100 (matype 0 SMA, 1 EMA)",
         (_period(12, 2, "fast"), _period(26, 2, "slow"), _MATYPE, _SOURCE), ("",),
         _po_layout, _ppo, talib="PPO"),
    Kind("trix", "one-bar rate of change of a triple EMA, percent",
         (_period(30, 1), _SOURCE), ("",),
         lambda p: (4, 1, 0), _trix, talib="TRIX"),
    Kind("ultosc", "ultimate oscillator",
         (_period(7, 1, "period1"), _period(14, 1, "period2"), _period(28, 1, "period3")), ("",),
         lambda p: (7, 1, 2 * int(max(p))), _ultosc, talib="ULTOSC"),
    Kind("bop", "balance of power: (close - open) / (high - low)", (), ("",),
         lambda p: (1, 1, 0), _bop, talib="BOP"),
)  # fmt: skip
