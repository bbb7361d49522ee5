"""Trend kinds: ADX and the DIs, Aroon, parabolic SAR, linear regression, STDDEV, VAR.

Each kernel repeats the arithmetic of the installed TA-Lib build (C 0.8.1)
operation for operation, so values agree with TA-Lib to the last bits once
warmed up, and NaN exactly where TA-Lib has no value. The choices that differ
from textbook formulas:

* Directional movement: the first ``n - 1`` one-bar +DM, -DM and true ranges
  are summed, then Wilder steps ``s - s / n + today``; a DI is
  ``100 * (dm / tr)`` (0 while the true-range sum is exactly 0; at period 1
  TA-Lib gives the bar's DM over its true range, not in percent). DX is 0 on
  its first bar when undefined (the DIs summing to within 1e-8 of 0) and
  repeats its last value afterwards; ADX starts as the mean of the first
  ``n`` DX, then ``(adx * (n - 1) + dx) / n``, unchanged on a bar whose DX is
  undefined.
* Aroon: the window holds ``n + 1`` bars; ties go to the newest bar; the
  oscillator is ``100 / n * (bar of the high - bar of the low)``.
* SAR: the first two bars' -DM sets the first direction (short if positive);
  the first SAR is the first bar's low (long) or high (short); steps are
  ``fma(af, ep - sar, sar)``.
* Linear regression: running sums of ``y`` and ``bars ago * y``, rebuilt from
  the window every ``32 n`` bars or when the leaving value times ``n``
  outweighs 100 times the window's sum of ``|y|``; the line's last value is
  ``fma(m, n - 1, b)``.
* Variance: TA-Lib's cancellation-free form (deviations from a shift, rebuilt
  now and then), :mod:`.classic`'s ``variance_step`` that the Bollinger bands
  use too; STDDEV is ``sqrt(VAR) * nbdev``.
"""

from __future__ import annotations

import math

import numba

from marketpulse.indicators.kind import NAN, Kind, Param, fma
from marketpulse.indicators.library.classic import true_range, variance_step

__all__ = ["KINDS"]

_COUNT = 0  # ints slot 0 of every kind: bars seen by the key

# Directional movement state: fs = [high, low, close (of the last bar), -DM, +DM, TR, ADX or DX].
_HIGH, _LOW, _CLOSE, _MINUS_DM, _PLUS_DM, _TR, _LAST = 0, 1, 2, 3, 4, 5, 6


@numba.njit(cache=True, inline="always")
def _directional_step(fs, k, c, high, low, close, n):
    """Advance key ``k``'s smoothed -DM, +DM and true range by bar ``c``."""
    if c > 0:
        diff_plus = high - fs[k, _HIGH]
        diff_minus = fs[k, _LOW] - low
        minus_dm = diff_minus if diff_minus - diff_plus > 0.0 and diff_minus > 0.0 else 0.0
        plus_dm = diff_plus if diff_plus - diff_minus > 0.0 and diff_plus > 0.0 else 0.0
        tr = true_range(high, low, fs[k, _CLOSE])
        if c < n:
            fs[k, _MINUS_DM] += minus_dm
            fs[k, _PLUS_DM] += plus_dm
            fs[k, _TR] += tr
        else:
            s = fs[k, _MINUS_DM]
            fs[k, _MINUS_DM] = s - s / n + minus_dm
            s = fs[k, _PLUS_DM]
            fs[k, _PLUS_DM] = s - s / n + plus_dm
            s = fs[k, _TR]
            fs[k, _TR] = s - s / n + tr
    fs[k, _HIGH] = high
    fs[k, _LOW] = low
    fs[k, _CLOSE] = close


@numba.njit(cache=True, inline="always")
def _is_zero(value):
    return -0.00000001 < value and value < 0.00000001


@numba.njit(cache=True, inline="always")
def _dx(fs, k):
    """DX of key ``k``'s current sums, or -1.0 when undefined."""
    tr = fs[k, _TR]
    if tr > 0.0:
        minus_di = 100.0 * (fs[k, _MINUS_DM] / tr)
        plus_di = 100.0 * (fs[k, _PLUS_DM] / tr)
        total = minus_di + plus_di
        if not _is_zero(total):
            return 100.0 * (abs(minus_di - plus_di) / total)
    return -1.0


@numba.njit(cache=True, inline="always")
def _one_bar_di(fs, k, high, low, close, plus):
    """TA-Lib's DI at period 1: the bar's DM over its true range, not in percent."""
    diff_plus = high - fs[k, _HIGH]
    diff_minus = fs[k, _LOW] - low
    value = 0.0
    if plus and diff_plus > 0.0 and diff_plus > diff_minus:
        tr = true_range(high, low, fs[k, _CLOSE])
        value = diff_plus / tr if tr > 0.0 else 0.0
    elif not plus and diff_minus > 0.0 and diff_minus > diff_plus:
        tr = true_range(high, low, fs[k, _CLOSE])
        value = diff_minus / tr if tr > 0.0 else 0.0
    fs[k, _HIGH] = high
    fs[k, _LOW] = low
    fs[k, _CLOSE] = close
    return value


@numba.njit(cache=True, inline="always")
def _di_loop(keys, high, low, close, params, fs, ints, out, col, plus):
    """+DI (``plus``) or -DI of each bar, in percent of the smoothed true range."""
    n = int(params[0])
    dm = _PLUS_DM if plus else _MINUS_DM
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        out[r, col] = NAN
        if n == 1:
            value = _one_bar_di(fs, k, high[r], low[r], close[r], plus)
            if c > 0:
                out[r, col] = value
        else:
            _directional_step(fs, k, c, high[r], low[r], close[r], n)
            if c >= n:
                tr = fs[k, _TR]
                out[r, col] = 100.0 * (fs[k, dm] / tr) if tr > 0.0 else 0.0
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _plus_di(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    _di_loop(keys, high, low, close, params, fs, ints, out, col, True)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _minus_di(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    _di_loop(keys, high, low, close, params, fs, ints, out, col, False)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _dx_kernel(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    n = int(params[0])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        out[r, col] = NAN
        _directional_step(fs, k, c, high[r], low[r], close[r], n)
        if c >= n:
            value = _dx(fs, k)
            if value < 0.0:  # undefined: 0 on the first bar, else the last value
                value = 0.0 if c == n else fs[k, _LAST]
            fs[k, _LAST] = value
            out[r, col] = value
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _adx(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        out[r, col] = NAN
        _directional_step(fs, k, c, high[r], low[r], close[r], n)
        if c >= n:
            dx = _dx(fs, k)
            adx = fs[k, _LAST]
            if c < 2 * n:  # the first n DX are summed
                if dx >= 0.0:
                    adx += dx
                if c == 2 * n - 1:
                    adx = adx / n
            elif dx >= 0.0:
                adx = (adx * (n - 1) + dx) / n
            fs[k, _LAST] = adx
            if c >= 2 * n - 1:
                out[r, col] = adx
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, inline="always")
def _extreme_age(ring, k, c, pos, n, stored, start, highest):
    """The bar of the window's newest highest (or lowest) value, TA-Lib's way.

    ``stored`` is the bar of the previous extreme (-1 for none); the window's
    ``n + 1`` values sit in ``ring[k, start : start + n + 1]``, bar ``c`` at
    slot ``pos``. Rescans the window only when the extreme has left it.
    """
    size = n + 1
    trailing = c - n
    if stored < trailing:
        slot = pos + 1 if pos + 1 < size else 0  # bar c - n
        index = trailing
        best = ring[k, start + slot]
        for i in range(trailing + 1, c + 1):
            slot = slot + 1 if slot + 1 < size else 0
            candidate = ring[k, start + slot]
            if (candidate >= best) if highest else (candidate <= best):
                index = i
                best = candidate
        return index
    slot = pos - (c - stored)
    best = ring[k, start + (slot if slot >= 0 else slot + size)]
    value = ring[k, start + pos]
    if (value >= best) if highest else (value <= best):
        return c
    return stored


@numba.njit(cache=True, inline="always")
def _aroon_step(ring, ints, k, c, n, high, low):
    """Add bar ``c``'s high and low to key ``k``'s window of ``n + 1`` bars.

    Returns the bars of the window's highest high and lowest low (ties: the
    newest), kept in ``ints[k, 1]`` and ``ints[k, 2]``; -1 before bar ``n``.
    """
    size = n + 1
    pos = c % size
    ring[k, pos] = high
    ring[k, size + pos] = low
    if c == 0:
        ints[k, 1] = -1
        ints[k, 2] = -1
    if c >= n:
        ints[k, 1] = _extreme_age(ring, k, c, pos, n, ints[k, 1], 0, True)
        ints[k, 2] = _extreme_age(ring, k, c, pos, n, ints[k, 2], size, False)
    return ints[k, 1], ints[k, 2]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _aroon(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    # ints = [count, bar of the highest high, bar of the lowest low]; ring = highs, then lows.
    n = int(params[0])
    factor = 100.0 / n
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        highest, lowest = _aroon_step(ring, ints, k, c, n, high[r], low[r])
        out[r, col] = NAN
        out[r, col + 1] = NAN
        if c >= n:
            out[r, col] = factor * (n - (c - lowest))
            out[r, col + 1] = factor * (n - (c - highest))
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _aroonosc(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    n = int(params[0])
    factor = 100.0 / n
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        highest, lowest = _aroon_step(ring, ints, k, c, n, high[r], low[r])
        out[r, col] = factor * (highest - lowest) if c >= n else NAN
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, inline="always")
def _beyond(sar, a, b, above):
    """Move ``sar`` up to at least ``a`` and ``b`` (``above``) or down to at most, in that order."""
    if above:
        if sar < a:
            sar = a
        if sar < b:
            sar = b
    else:
        if sar > a:
            sar = a
        if sar > b:
            sar = b
    return sar


# Parabolic SAR state: fs = [last high, last low, SAR, extreme point, acceleration factor];
# ints = [count, long (1) or short (0)].
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sar(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    acceleration, maximum = params[0], params[1]
    if acceleration > maximum:  # TA-Lib caps the step at the maximum
        acceleration = maximum
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        new_high = high[r]
        new_low = low[r]
        out[r, col] = NAN
        if c == 0:
            fs[k, 0] = new_high
            fs[k, 1] = new_low
            ints[k, _COUNT] = 1
            continue
        if c == 1:
            # direction from the first two bars' -DM: short if it is positive
            diff_plus = new_high - fs[k, 0]
            diff_minus = fs[k, 1] - new_low
            is_long = not (diff_minus > 0.0 and diff_plus < diff_minus)
            if is_long:
                ep = new_high
                sar = fs[k, 1]
            else:
                ep = new_low
                sar = fs[k, 0]
            af = acceleration
            prev_high = new_high
            prev_low = new_low
        else:
            is_long = ints[k, 1] == 1
            sar = fs[k, 2]
            ep = fs[k, 3]
            af = fs[k, 4]
            prev_high = fs[k, 0]
            prev_low = fs[k, 1]
        if is_long:
            if new_low <= sar:  # switch to short
                is_long = False
                sar = _beyond(ep, prev_high, new_high, True)
                out[r, col] = sar
                af = acceleration
                ep = new_low
                sar = fma(af, ep - sar, sar)
                sar = _beyond(sar, prev_high, new_high, True)
            else:
                out[r, col] = sar
                if new_high > ep:
                    ep = new_high
                    af += acceleration
                    if af > maximum:
                        af = maximum
                sar = fma(af, ep - sar, sar)
                sar = _beyond(sar, prev_low, new_low, False)
        elif new_high >= sar:  # switch to long
            is_long = True
            sar = _beyond(ep, prev_low, new_low, False)
            out[r, col] = sar
            af = acceleration
            ep = new_high
            sar = fma(af, ep - sar, sar)
            sar = _beyond(sar, prev_low, new_low, False)
        else:
            out[r, col] = sar
            if new_low < ep:
                ep = new_low
                af += acceleration
                if af > maximum:
                    af = maximum
            sar = fma(af, ep - sar, sar)
            sar = _beyond(sar, prev_high, new_high, True)
        fs[k, 0] = new_high
        fs[k, 1] = new_low
        fs[k, 2] = sar
        fs[k, 3] = ep
        fs[k, 4] = af
        ints[k, 1] = 1 if is_long else 0
        ints[k, _COUNT] = c + 1


# Linear regression state: fs = [sum of y, sum of bars-ago * y, sum of |y|];
# ints = [count, bars to the next rebuild]; ring = the last n inputs.
@numba.njit(cache=True, inline="always")
def _regression_sums(ring, k, c, n, v, fs, ints):
    """Slide key ``k``'s window sums to bar ``c`` (value ``v``), TA-Lib's way.

    Returns ``(sum_y, sum_xy)``; call only from bar ``n - 1`` on, and only
    after reading the value ``n`` bars back (it is overwritten here).
    """
    pos = c % n
    if c == n - 1:
        ring[k, pos] = v
        sum_y = 0.0
        sum_xy = 0.0
        sum_abs = 0.0
        for i in range(n - 1, -1, -1):
            value = ring[k, (c - i) % n]
            sum_y += value
            sum_xy += i * value
            sum_abs += abs(value)
        left = 32 * n
    else:
        trailing = ring[k, pos]
        ring[k, pos] = v
        weighted = n * trailing
        sum_xy = fs[k, 1] + fs[k, 0] - weighted
        sum_y = fs[k, 0] - trailing + v
        sum_abs = fs[k, 2] - abs(trailing) + abs(v)
        left = ints[k, 1] - 1
        if left <= 0 or abs(weighted) > 100.0 * sum_abs:  # rebuild from the window
            left = 32 * n
            sum_y = 0.0
            sum_xy = 0.0
            sum_abs = 0.0
            weight = n - 1.0
            for j in range(c - n + 1, c + 1):
                value = ring[k, j % n]
                sum_y += value
                sum_xy += weight * value
                sum_abs += abs(value)
                weight -= 1.0
    fs[k, 0] = sum_y
    fs[k, 1] = sum_xy
    fs[k, 2] = sum_abs
    ints[k, 1] = left
    return sum_y, sum_xy


@numba.njit(cache=True, inline="always")
def _regression_constants(n):
    sum_x = float(n) * (n - 1) * 0.5
    sum_x_squared = float(n) * (n - 1) * (2 * n - 1) / 6.0
    return sum_x, sum_x * sum_x - n * sum_x_squared


@numba.njit(cache=True, inline="always")
def _regression_slope(ring, k, c, n, v, fs, ints, sum_x, divisor):
    """Add bar ``c``'s value ``v`` to key ``k``'s window; return its line's slope and sum of y.

    The slope is NaN (and the sum 0) before bar ``n - 1``.
    """
    if c < n - 1:
        ring[k, c % n] = v
        return NAN, 0.0
    sum_y, sum_xy = _regression_sums(ring, k, c, n, v, fs, ints)
    return (n * sum_xy - sum_x * sum_y) / divisor, sum_y


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _linearreg_slope(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    n = int(params[0])
    sum_x, divisor = _regression_constants(n)
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        out[r, col], _ = _regression_slope(ring, k, c, n, x[r], fs, ints, sum_x, divisor)
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _linearreg(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    n = int(params[0])
    sum_x, divisor = _regression_constants(n)
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        m, sum_y = _regression_slope(ring, k, c, n, x[r], fs, ints, sum_x, divisor)
        if c >= n - 1:
            b = (sum_y - m * sum_x) / n
            out[r, col] = fma(m, n - 1.0, b)
        else:
            out[r, col] = NAN
        ints[k, _COUNT] = c + 1


# Variance state: fs = [shift, sum of deviations, sum of squared deviations];
# ints = [count, bars to the next rebuild]; ring = the last n inputs (classic's variance_step).
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _var(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        out[r, col] = variance_step(ring, k, c, n, x[r], fs, ints, 0)
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _stddev(
    keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col
):
    n = int(params[0])
    deviations = params[1]
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        variance = variance_step(ring, k, c, n, x[r], fs, ints, 0)
        out[r, col] = math.sqrt(variance) * deviations if c >= n - 1 else NAN
        ints[k, _COUNT] = c + 1


def _period(default: int, minimum: int = 2) -> Param:
    return Param("period", default, minimum=minimum, maximum=100_000)


_SOURCE = Param("source", "close", source=True)

KINDS: tuple[Kind, ...] = (
    Kind("adx", "average directional movement index (Wilder)", (_period(14),), ("",),
         lambda p: (7, 1, 0), _adx, talib="ADX"),
    Kind("plus_di", "plus directional indicator (Wilder)", (_period(14, minimum=1),), ("",),
         lambda p: (6, 1, 0), _plus_di, talib="PLUS_DI"),
    Kind("minus_di", "minus directional indicator (Wilder)", (_period(14, minimum=1),), ("",),
         lambda p: (6, 1, 0), _minus_di, talib="MINUS_DI"),
    Kind("dx", "directional movement index (Wilder)", (_period(14),), ("",),
         lambda p: (7, 1, 0), _dx_kernel, talib="DX"),
    Kind("aroon", "Aroon down and up: bars since the lowest low and highest high, in percent",
         (_period(14),), ("down", "up"), lambda p: (1, 3, 2 * (int(p[0]) + 1)), _aroon,
         talib="AROON"),
    Kind("aroonosc", "Aroon oscillator: Aroon up minus Aroon down", (_period(14),), ("",),
         lambda p: (1, 3, 2 * (int(p[0]) + 1)), _aroonosc, talib="AROONOSC"),
    Kind("sar", "parabolic stop and reverse (Wilder)",
         (Param("acceleration", 0.02, integer=False, minimum=0),
          Param("maximum", 0.2, integer=False, minimum=0)),
         ("",), lambda p: (5, 2, 0), _sar, talib="SAR"),
    Kind("linearreg_slope", "slope of the least-squares line over the window",
         (_period(14), _SOURCE), ("",), lambda p: (3, 2, int(p[0])), _linearreg_slope,
         talib="LINEARREG_SLOPE"),
    Kind("linearreg", "least-squares line's value at the window's last bar",
         (_period(14), _SOURCE), ("",), lambda p: (3, 2, int(p[0])), _linearreg, talib="LINEARREG"),
    Kind("stddev", "rolling standard deviation (population) times nbdev",
         (_period(5), Param("nbdev", 1.0, integer=False, minimum=0, maximum=1000), _SOURCE), ("",),
         lambda p: (3, 2, int(p[0])), _stddev, talib="STDDEV"),
    Kind("var", "rolling variance (population)",
         (_period(5, minimum=1), _SOURCE), ("",),
         lambda p: (3, 2, int(p[0])), _var, talib="VAR"),
)  # fmt: skip
