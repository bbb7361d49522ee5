"""The kinds of the default set: SMA, EMA, RSI, MACD, Bollinger bands, ATR, VWAP.

Each repeats the arithmetic of the TA-Lib build installed with the project
(TA-Lib C 0.8.1, through the ``TA-Lib`` 0.8.2 wheel) operation for operation,
so values agree bit for bit once warmed up. Where that build fuses a
multiply-add (its FMA code path), the kernel calls :func:`~..kind.fma`. The
choices that differ from textbook formulas:

* EMA: seeded with the mean of its first ``n`` inputs, then
  ``fma(x - prev, k, prev)`` with ``k = 2 / (n + 1)``.
* MACD: the fast EMA's seed window ends with the slow one's (closes
  ``slow - fast .. slow - 1``), so it differs from an ``ema(fast)`` column;
  the signal line is an EMA of the MACD line seeded with its first values.
* RSI: gain and loss sums scaled by ``1/n`` (a multiply), Wilder steps
  ``(s * (n - 1) + delta) * (1/n)``, unfused; 0 when gain + loss is exactly 0.
* ATR: Wilder step ``fma((n-1)/n, prev, (1 - (n-1)/n) * tr)``.
* Bollinger: the standard deviation comes from sums of deviations from a
  *shift* near the window (TA-Lib's cancellation-free ``VAR``): the sums are
  rebuilt from the window when the variance falls below 1e-6 of the mean
  square, when the leaving value dominates, or every ``32 * n`` bars.
"""

from __future__ import annotations

import math

import numba

from marketpulse.indicators.kind import NAN, Kind, Param, ema_step, fma

__all__ = ["KINDS", "atr_bar", "atr_step", "rsi_step", "true_range", "variance_step"]

_COUNT = 0  # ints slot 0 of every kind: bars seen by the key


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sma(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        v = x[r]
        ring[k, c % n] = v
        s = fs[k, 0] + v
        if c >= n - 1:
            out[r, col] = s / n
            s -= ring[k, (c + 1) % n]
        else:
            out[r, col] = NAN
        fs[k, 0] = s
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _ema(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    alpha = 2.0 / (n + 1)
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        fs[k, 0], out[r, col] = ema_step(fs[k, 0], x[r], c, 0, n, alpha)
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, inline="always")
def rsi_step(gain, loss, previous, value, c, n, inverse):
    """Advance TA-Lib's RSI by bar ``c`` (``c >= 1``) of value ``value``.

    ``gain`` and ``loss`` are the Wilder sums after the previous bar (``previous``
    its value), ``inverse`` is ``1 / n``. Returns the new sums and the RSI (NaN
    before bar ``n``).
    """
    delta = value - previous
    gain_delta = delta if delta > 0.0 else 0.0
    if c > n:
        loss *= n - 1.0
        gain *= n - 1.0
    gain += gain_delta
    loss += gain_delta - delta
    if c < n:
        return gain, loss, NAN
    loss *= inverse
    gain *= inverse
    total = gain + loss
    return gain, loss, 100.0 * (gain / total) if total > 0.0 else 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rsi(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    inverse = 1.0 / n
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        v = x[r]
        out[r, col] = NAN
        if c > 0:
            gain, loss, out[r, col] = rsi_step(fs[k, 0], fs[k, 1], fs[k, 2], v, c, n, inverse)
            fs[k, 0] = gain
            fs[k, 1] = loss
        fs[k, 2] = v
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _macd(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    fast_n, slow_n, signal_n = int(params[0]), int(params[1]), int(params[2])
    if slow_n < fast_n:  # TA-Lib swaps them
        fast_n, slow_n = slow_n, fast_n
    k_fast, k_slow, k_signal = 2.0 / (fast_n + 1), 2.0 / (slow_n + 1), 2.0 / (signal_n + 1)
    first_fast = slow_n - fast_n
    start = slow_n - 1  # first MACD value
    warm = start + signal_n - 1  # first signal value
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        v = x[r]
        slow, _ = ema_step(fs[k, 0], v, c, 0, slow_n, k_slow)
        fast, _ = ema_step(fs[k, 1], v, c, first_fast, fast_n, k_fast)
        fs[k, 0] = slow
        fs[k, 1] = fast
        out[r, col] = NAN
        out[r, col + 1] = NAN
        out[r, col + 2] = NAN
        if c >= start:
            macd = fast - slow
            signal, out[r, col + 1] = ema_step(fs[k, 2], macd, c, start, signal_n, k_signal)
            fs[k, 2] = signal
            if c >= warm:
                out[r, col] = macd
                out[r, col + 2] = macd - signal
        ints[k, _COUNT] = c + 1


# Bollinger state: fs = [sum, shift, sum1, sum2], ints = [count, bars to the next rebuild].
@numba.njit(cache=True, inline="always")
def _rebuild_variance(ring, key, count, n):
    """Recompute the shifted variance sums from the window ending at bar ``count``.

    Returns ``(shift, sum1, sum2, variance)``, the sums already without the
    window's oldest value, as TA-Lib's reseed leaves them.
    """
    inverse = 1.0 / n
    first = count - (n - 1)
    total = 0.0
    for j in range(first, count + 1):
        total += ring[key, j % n]
    shift = total * inverse
    sum1 = 0.0
    sum2 = 0.0
    for j in range(first, count + 1):
        t = ring[key, j % n] - shift
        sum1 += t
        sum2 += t * t
    mean1 = sum1 * inverse
    variance = sum2 * inverse - mean1 * mean1
    if variance < 0.000000000001 * (sum2 * inverse):
        variance = 0.0
    t = ring[key, first % n] - shift
    sum1 -= t
    sum2 -= t * t
    return shift, sum1, sum2, variance


@numba.njit(cache=True, inline="always")
def variance_step(ring, key, c, n, v, fs, ints, base):
    """TA-Lib's cancellation-free rolling variance of ``key`` at bar ``c`` (value ``v``).

    Deviations are summed from a *shift* near the window, kept with the sums in
    ``fs[key, base : base + 3]`` (shift, sum of deviations, sum of squares);
    ``ints[key, 1]`` counts down to the next rebuild and ``ring[key, :n]``
    holds the window. The sums are rebuilt from the window (shift = its mean)
    when the variance falls below 1e-6 of the mean square, when the leaving
    value's square dominates, or every ``32 * n`` bars. Returns the variance,
    NaN before bar ``n - 1``.
    """
    inverse = 1.0 / n
    pos = c % n
    ring[key, pos] = v
    if c == 0:
        fs[key, base] = v
        fs[key, base + 1] = 0.0
        fs[key, base + 2] = 0.0
        ints[key, 1] = 32 * n
    shift = fs[key, base]
    t = v - shift
    sum1 = fs[key, base + 1] + t
    sum2 = fs[key, base + 2] + t * t
    variance = NAN
    if c >= n - 1:
        mean1 = sum1 * inverse
        variance = sum2 * inverse - mean1 * mean1
        t = ring[key, pos + 1 if pos + 1 < n else 0] - shift  # the window's oldest value
        sum1 -= t
        t2 = t * t
        sum2 -= t2
        left = ints[key, 1] - 1
        if variance < 0.000001 * (sum2 * inverse) or t2 > 1000000.0 * sum2 or left <= 0:
            left = 32 * n
            shift, sum1, sum2, variance = _rebuild_variance(ring, key, c, n)
            fs[key, base] = shift
        ints[key, 1] = left
    fs[key, base + 1] = sum1
    fs[key, base + 2] = sum2
    return variance


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bbands(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    n = int(params[0])
    up, down = params[1], params[2]
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        v = x[r]
        variance = variance_step(ring, k, c, n, v, fs, ints, 1)
        s = fs[k, 0] + v
        if c >= n - 1:
            middle = s / n
            s -= ring[k, (c + 1) % n]  # the window's oldest value
            deviation = math.sqrt(variance) if variance != 0.0 else 0.0
            out[r, col] = middle + deviation * up
            out[r, col + 1] = middle
            out[r, col + 2] = middle - deviation * down
        else:
            out[r, col] = NAN
            out[r, col + 1] = NAN
            out[r, col + 2] = NAN
        fs[k, 0] = s
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, inline="always")
def true_range(high, low, prev):
    """TA-Lib's true range of a bar after a close of ``prev``."""
    result = high - low
    d = abs(prev - high)
    if d > result:
        result = d
    d = abs(prev - low)
    if d > result:
        result = d
    return result


@numba.njit(cache=True, inline="always")
def atr_step(atr, tr, c, n, beta, alpha):
    """Advance TA-Lib's ATR by the true range ``tr`` of bar ``c`` (``c >= 1``).

    ``atr`` is the running sum of true ranges until bar ``n``, the ATR after;
    ``beta`` is ``(n - 1) / n`` and ``alpha`` is ``1 - beta``.
    """
    if c < n:
        return atr + tr
    if c == n:
        return (atr + tr) / n
    return fma(beta, atr, alpha * tr)


@numba.njit(cache=True, inline="always")
def atr_bar(fs, key, c, n, beta, alpha, high, low, close, base):
    """Advance ``key``'s ATR by bar ``c``; return the bar's true range and the ATR.

    ``fs[key, base]`` holds the ATR (the running sum of true ranges until bar
    ``n``), ``fs[key, base + 1]`` the previous close; both NaN on bar 0.
    """
    tr = NAN
    atr = NAN
    if c > 0:
        tr = true_range(high, low, fs[key, base + 1])
        atr = atr_step(fs[key, base], tr, c, n, beta, alpha)
        fs[key, base] = atr
    fs[key, base + 1] = close
    return tr, atr


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _atr(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    beta = (n - 1.0) / n
    alpha = 1.0 - beta
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        _, atr = atr_bar(fs, k, c, n, beta, alpha, high[r], low[r], close[r], 0)
        out[r, col] = atr if c >= n else NAN
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _vwap(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        if c == 0 or session[r] != ints[k, 1]:
            ints[k, 1] = session[r]
            cum_pv = 0.0
            cum_volume = 0.0
        else:
            cum_pv = fs[k, 0]
            cum_volume = fs[k, 1]
        cum_pv += pv[r]
        cum_volume += volume[r]
        fs[k, 0] = cum_pv
        fs[k, 1] = cum_volume
        out[r, col] = cum_pv / cum_volume if cum_volume > 0.0 else NAN
        ints[k, _COUNT] = c + 1


def _period(default: int, minimum: int = 2, talib: int | None = None) -> Param:
    return Param("period", default, minimum=minimum, maximum=100_000, talib_default=talib)


_SOURCE = Param("source", "close", source=True)

KINDS: tuple[Kind, ...] = (
    # sma and bbands default to the default set's 20 bars (sma_20, bb): a declaration
    # without a period gives what the pipeline computes (TA-Lib's defaults: 30 and 5)
    Kind("sma", "simple moving average", (_period(20, talib=30), _SOURCE), ("",),
         lambda p: (1, 1, int(p[0])), _sma, talib="SMA"),
    Kind("ema", "exponential moving average, seeded with the SMA", (_period(30), _SOURCE), ("",),
         lambda p: (1, 1, 0), _ema, talib="EMA"),
    Kind("rsi", "relative strength index (Wilder)", (_period(14), _SOURCE), ("",),
         lambda p: (3, 1, 0), _rsi, talib="RSI"),
    Kind("macd", "moving average convergence/divergence: line, signal, histogram",
         (Param("fast", 12, minimum=2, maximum=100_000),
          Param("slow", 26, minimum=2, maximum=100_000),
          Param("signal", 9, minimum=1, maximum=100_000), _SOURCE),
         ("", "signal", "hist"), lambda p: (3, 1, 0), _macd, talib="MACD"),
    Kind("bbands", "Bollinger bands (population standard deviation): upper, middle, lower",
         (_period(20, talib=5), Param("up", 2.0, integer=False, minimum=0, maximum=1000),
          Param("down", "up", integer=False, minimum=0, maximum=1000), _SOURCE),
         ("upper", "middle", "lower"), lambda p: (4, 2, int(p[0])), _bbands, talib="BBANDS"),
    Kind("atr", "average true range (Wilder)", (_period(14, minimum=1),), ("",),
         lambda p: (2, 1, 0), _atr, talib="ATR"),
    Kind("vwap", "volume-weighted average price since the session start", (), ("",),
         lambda p: (2, 2, 0), _vwap,
         reference="cumulative sum of price * size over cumulative size, reset each session"),
)  # fmt: skip
