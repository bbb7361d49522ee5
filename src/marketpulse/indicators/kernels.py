"""Numba kernels that update every indicator of many series in one pass.

A *key* is one series (a symbol at one interval). Its state is one row of a
few arrays (see :class:`~marketpulse.indicators.state.IndicatorState`); the
kernel walks the rows of a batch in order and touches only the state row of
each row's key, so one call may interleave any number of keys, and splitting a
series into batches anywhere gives bit-identical results.

Every indicator repeats the arithmetic of the TA-Lib build installed with the
project (TA-Lib C 0.8.1, through the ``TA-Lib`` 0.8.2 wheel) operation for
operation, so values agree bit for bit once warmed up. Where that build fuses
a multiply-add (its FMA code path, taken on CPUs with FMA), the kernel calls
:func:`fma`, which LLVM computes with one rounding on every CPU. The choices
that differ from the textbook formulas:

* EMA: seeded with the mean of its first ``n`` inputs, then
  ``fma(x - prev, k, prev)`` with ``k = 2 / (n + 1)``.
* MACD: the fast EMA is seeded with the mean of closes 14..25 (its seed
  window ends with the slow one's), so it differs from the ``ema_12`` column;
  the slow EMA is the ``ema_26`` column; the signal line is an EMA(9) of the
  MACD line seeded with its first 9 values. All three start at bar 33.
* RSI: gain and loss sums scaled by ``1/14`` (a multiply), Wilder steps
  ``(s * 13 + delta) * (1/14)``, unfused; 0 when gain + loss is exactly 0.
* ATR: Wilder step ``fma(13/14, prev, (1 - 13/14) * tr)``.
* Bollinger: the standard deviation comes from sums of deviations from a
  *shift* near the window (TA-Lib's cancellation-free ``VAR``): the sums are
  rebuilt from the window when the variance falls below 1e-6 of the mean
  square, when the leaving value dominates, or every 640 bars.

Bars are never checked here: callers pass finite, validated prices.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["COLUMNS", "N_FLOATS", "N_INTS", "RING", "update_rows"]

#: Output columns, in the order of ``INDICATOR_COLUMNS`` in ``marketpulse.models``.
COLUMNS: tuple[str, ...] = (
    "sma_20", "ema_12", "ema_26", "rsi_14", "macd", "macd_signal", "macd_hist",
    "bb_upper", "bb_middle", "bb_lower", "atr_14", "vwap", "volume_sma_20",
)  # fmt: skip

#: Length of the per-key ring buffers of closes and volumes (the longest window).
RING = 20

# Layout of a key's row in the float64 state array.
_SUM_CLOSE = 0  # SMA(20) running total of closes (also the Bollinger middle)
_SUM_VOLUME = 1  # SMA(20) running total of volumes
_VAR_SHIFT = 2  # Bollinger variance: the shift the deviations are measured from
_VAR_SUM1 = 3  # running sum of (close - shift)
_VAR_SUM2 = 4  # running sum of (close - shift) ** 2
_EMA12 = 5  # seed sum until bar 11, then the EMA
_EMA26 = 6  # seed sum until bar 25, then the EMA (also MACD's slow line)
_MACD_FAST = 7  # seed sum of closes 14..25 until bar 25, then MACD's fast EMA
_MACD_SIGNAL = 8  # seed sum of MACD values 25..33 until bar 33, then the EMA
_RSI_GAIN = 9
_RSI_LOSS = 10
_PREV_CLOSE = 11
_ATR = 12  # seed sum of true ranges 1..14 until bar 14, then the ATR
_VWAP_PV = 13
_VWAP_VOLUME = 14
#: Width of a key's row of floats (one spare slot; a row is two cache lines).
N_FLOATS = 16

# Layout of a key's row in the int64 state array.
_COUNT = 0  # bars seen by the key
_SESSION = 1  # session of the key's last bar
_RESEED = 2  # Bollinger variance: bars left before a forced rebuild
#: Width of a key's row of ints.
N_INTS = 4

_NAN = np.nan
_K12 = 2.0 / 13.0
_K26 = 2.0 / 27.0
_K9 = 2.0 / 10.0
_INV14 = 1.0 / 14.0
_INV20 = 1.0 / 20.0
_ATR_BETA = 13.0 / 14.0
_ATR_ALPHA = 1.0 - _ATR_BETA
_RESEED_BARS = 32 * RING


@intrinsic
def fma(typingctx, a, b, c):
    """Return ``a * b + c`` rounded once (LLVM's ``llvm.fma.f64``)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        f64 = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [f64], ir.FunctionType(f64, [f64] * 3))
        return builder.call(fn, args)

    return sig, codegen


@numba.njit(cache=True, inline="always")
def _ema_step(state, x, c, first, period, k):
    """Advance an EMA whose seed is the mean of inputs ``first .. first+period-1``.

    ``state`` is the running seed sum until the seed bar, the EMA after it.
    Returns the new state and the EMA at bar ``c`` (NaN before the seed bar).
    """
    last = first + period - 1
    if c < first:
        return state, _NAN
    if c < last:
        return state + x, _NAN
    value = (state + x) / period if c == last else fma(x - state, k, state)
    return value, value


@numba.njit(cache=True, inline="always")
def _rebuild_variance(ring, key, count):
    """Recompute the shifted variance sums from the window ending at bar ``count``.

    Returns ``(shift, sum1, sum2, variance)``, the sums already without the
    window's oldest close, as TA-Lib's reseed leaves them.
    """
    first = count - (RING - 1)
    total = 0.0
    for j in range(first, count + 1):
        total += ring[key, j % RING]
    shift = total * _INV20
    sum1 = 0.0
    sum2 = 0.0
    for j in range(first, count + 1):
        t = ring[key, j % RING] - shift
        sum1 += t
        sum2 += t * t
    mean1 = sum1 * _INV20
    variance = sum2 * _INV20 - mean1 * mean1
    if variance < 0.000000000001 * (sum2 * _INV20):
        variance = 0.0
    t = ring[key, first % RING] - shift
    sum1 -= t
    sum2 -= t * t
    return shift, sum1, sum2, variance


@numba.njit(cache=True, nogil=True, error_model="numpy")
def update_rows(
    keys, high, low, close, volume, pv, session, fs, ints, close_ring, volume_ring, out
):
    """Advance each row's key by that row's bar and write its indicators.

    Args:
        keys: int64 (n,) state row of each bar; a key's bars in time order.
        high: float64 (n,) bar highs.
        low: float64 (n,) bar lows.
        close: float64 (n,) bar closes.
        volume: float64 (n,) bar volumes.
        pv: float64 (n,) sum of price * size of each bar's trades.
        session: int64 (n,) session of each bar; VWAP restarts when it changes.
        fs: float64 (capacity, N_FLOATS) state, updated in place.
        ints: int64 (capacity, N_INTS) state, updated in place.
        close_ring: float64 (capacity, RING) last closes, updated in place.
        volume_ring: float64 (capacity, RING) last volumes, updated in place.
        out: float64 (n, len(COLUMNS)) filled with the indicators, NaN where a
            key is not warmed up yet.
    """
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        x = close[r]
        v = volume[r]
        pos = c % RING
        close_ring[k, pos] = x
        volume_ring[k, pos] = v
        old = (c + 1) % RING  # the bar leaving a full 20-bar window
        row = out[r]

        # SMA(20) of closes and volumes; the close total is also BBANDS' middle.
        s = fs[k, _SUM_CLOSE] + x
        sv = fs[k, _SUM_VOLUME] + v
        if c >= RING - 1:
            middle = s / 20.0
            row[0] = middle
            row[12] = sv / 20.0
            s -= close_ring[k, old]
            sv -= volume_ring[k, old]
        else:
            middle = _NAN
            row[0] = _NAN
            row[12] = _NAN
        fs[k, _SUM_CLOSE] = s
        fs[k, _SUM_VOLUME] = sv

        # Bollinger bands (20, 2): shifted sums, rebuilt when they lose precision.
        if c == 0:
            fs[k, _VAR_SHIFT] = x
            fs[k, _VAR_SUM1] = 0.0
            fs[k, _VAR_SUM2] = 0.0
            ints[k, _RESEED] = _RESEED_BARS
        shift = fs[k, _VAR_SHIFT]
        t = x - shift
        sum1 = fs[k, _VAR_SUM1] + t
        sum2 = fs[k, _VAR_SUM2] + t * t
        if c >= RING - 1:
            mean1 = sum1 * _INV20
            variance = sum2 * _INV20 - mean1 * mean1
            t = close_ring[k, old] - shift
            sum1 -= t
            t2 = t * t
            sum2 -= t2
            left = ints[k, _RESEED] - 1
            if variance < 0.000001 * (sum2 * _INV20) or t2 > 1000000.0 * sum2 or left <= 0:
                left = _RESEED_BARS
                shift, sum1, sum2, variance = _rebuild_variance(close_ring, k, c)
                fs[k, _VAR_SHIFT] = shift
            ints[k, _RESEED] = left
            deviation = math.sqrt(variance) if variance != 0.0 else 0.0
            band = deviation * 2.0
            row[7] = middle + band
            row[8] = middle
            row[9] = middle - band
        else:
            row[7] = _NAN
            row[8] = _NAN
            row[9] = _NAN
        fs[k, _VAR_SUM1] = sum1
        fs[k, _VAR_SUM2] = sum2

        # EMA(12), EMA(26), and MACD(12, 26, 9) with its own fast EMA.
        e12, row[1] = _ema_step(fs[k, _EMA12], x, c, 0, 12, _K12)
        e26, row[2] = _ema_step(fs[k, _EMA26], x, c, 0, 26, _K26)
        fast, _ = _ema_step(fs[k, _MACD_FAST], x, c, 14, 12, _K12)
        fs[k, _EMA12] = e12
        fs[k, _EMA26] = e26
        fs[k, _MACD_FAST] = fast
        row[4] = _NAN
        row[5] = _NAN
        row[6] = _NAN
        if c >= 25:
            macd = fast - e26
            signal, row[5] = _ema_step(fs[k, _MACD_SIGNAL], macd, c, 25, 9, _K9)
            fs[k, _MACD_SIGNAL] = signal
            if c >= 33:
                row[4] = macd
                row[6] = macd - signal

        # RSI(14) and ATR(14), both from the previous close.
        row[3] = _NAN
        row[10] = _NAN
        if c > 0:
            prev = fs[k, _PREV_CLOSE]
            delta = x - prev
            gain_delta = delta if delta > 0.0 else 0.0
            gain = fs[k, _RSI_GAIN]
            loss = fs[k, _RSI_LOSS]
            if c > 14:
                loss *= 13.0
                gain *= 13.0
            gain += gain_delta
            loss += gain_delta - delta
            if c >= 14:
                loss *= _INV14
                gain *= _INV14
                total = gain + loss
                row[3] = 100.0 * (gain / total) if total > 0.0 else 0.0
            fs[k, _RSI_GAIN] = gain
            fs[k, _RSI_LOSS] = loss

            h = high[r]
            lo = low[r]
            true_range = h - lo
            d = abs(prev - h)
            if d > true_range:
                true_range = d
            d = abs(prev - lo)
            if d > true_range:
                true_range = d
            atr = fs[k, _ATR]
            if c < 14:
                atr += true_range
            elif c == 14:
                atr = (atr + true_range) / 14.0
            else:
                atr = fma(_ATR_BETA, atr, _ATR_ALPHA * true_range)
            if c >= 14:
                row[10] = atr
            fs[k, _ATR] = atr
        fs[k, _PREV_CLOSE] = x

        # Session VWAP.
        if c == 0 or session[r] != ints[k, _SESSION]:
            ints[k, _SESSION] = session[r]
            cum_pv = 0.0
            cum_volume = 0.0
        else:
            cum_pv = fs[k, _VWAP_PV]
            cum_volume = fs[k, _VWAP_VOLUME]
        cum_pv += pv[r]
        cum_volume += v
        fs[k, _VWAP_PV] = cum_pv
        fs[k, _VWAP_VOLUME] = cum_volume
        row[11] = cum_pv / cum_volume if cum_volume > 0.0 else _NAN

        ints[k, _COUNT] = c + 1
