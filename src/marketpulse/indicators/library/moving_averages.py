"""Moving averages beyond SMA and EMA: WMA, DEMA, TEMA, KAMA, TRIMA.

Each kernel repeats the arithmetic of the installed TA-Lib build (C 0.8.1)
operation for operation, so values agree with TA-Lib to the last bits once
warmed up, and NaN exactly where TA-Lib has no value. The choices that differ
from textbook formulas:

* WMA: a running weighted sum and a running plain sum; each bar adds
  ``n * x`` to the weighted sum, divides by ``n (n + 1) / 2``, then subtracts
  the plain sum (TA-Lib's O(1) slide); both sums are rebuilt from the window,
  oldest first, every ``8 n`` bars.
* DEMA and TEMA: TA-Lib's EMA (seeded with the mean of its first ``n``
  inputs, see :func:`~..kind.ema_step`), the second EMA seeded with the first
  ``n`` values of the first, the third likewise.
* KAMA: Kaufman's efficiency ratio over ``n`` one-bar changes (a running sum
  of absolute changes, set to exactly 0 once ``n`` changes in a row are
  exactly 0; the ratio is 1 when that sum is not above 0 or the net change,
  and at most 1), smoothing constant ``fma(er, 2/3 - 2/31, 2/31)^2``, step
  ``fma(x - kama, sc, kama)``; the first value, at bar ``n``, starts from the
  input of bar ``n - 1``.
* TRIMA: the SMA of the SMA (periods ``n // 2 + 1`` and ``(n + 1) // 2``),
  kept as TA-Lib's running triangular sums.
"""

from __future__ import annotations

import numba

from marketpulse.indicators.kind import NAN, Kind, Param, ema_step, fma

__all__ = ["KINDS", "ema_chain"]

_COUNT = 0  # ints slot 0 of every kind: bars seen by the key


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _wma(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    # fs = [plain sum, weighted sum, trailing value]; ring = the last n inputs.
    n = int(params[0])
    divider = float((n * (n + 1)) >> 1)
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        v = x[r]
        pos = c % n
        ring[k, pos] = v
        oldest = pos + 1 if pos + 1 < n else 0
        plain = fs[k, 0] + v
        weighted = fs[k, 1]
        if c < n - 1:
            weighted += v * (c + 1.0)
            out[r, col] = NAN
        else:
            plain -= fs[k, 2]
            weighted += v * n
            left = (8 * n if c == n - 1 else ints[k, 1]) - 1
            if left <= 0:  # TA-Lib re-anchors both sums every 8 n bars
                left = 8 * n
                plain = 0.0
                weighted = 0.0
                for j in range(n):
                    value = ring[k, oldest + j if oldest + j < n else oldest + j - n]
                    plain += value
                    weighted += value * (j + 1.0)
            ints[k, 1] = left
            fs[k, 2] = ring[k, oldest]
            out[r, col] = weighted / divider
            weighted -= plain
        fs[k, 0] = plain
        fs[k, 1] = weighted
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, inline="always")
def ema_chain(fs, key, c, n, alpha, v, depth):
    """Advance ``depth`` (2 or 3) chained EMAs of period ``n`` by bar ``c`` (value ``v``).

    Each EMA is seeded with the mean of the first ``n`` values of the one
    before (its state in ``fs[key, i]``), so EMA ``i`` (from 0) starts at bar
    ``i * (n - 1)``. Returns the three values, NaN where not started (the
    third always NaN at depth 2).
    """
    fs[key, 0], first = ema_step(fs[key, 0], v, c, 0, n, alpha)
    second = NAN
    third = NAN
    if c >= n - 1:
        fs[key, 1], second = ema_step(fs[key, 1], first, c, n - 1, n, alpha)
        if depth > 2 and c >= 2 * (n - 1):
            fs[key, 2], third = ema_step(fs[key, 2], second, c, 2 * (n - 1), n, alpha)
    return first, second, third


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _dema(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    alpha = 2.0 / (n + 1)
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        first, second, _ = ema_chain(fs, k, c, n, alpha, x[r], 2)
        out[r, col] = 2.0 * first - second if c >= 2 * (n - 1) else NAN
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tema(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    n = int(params[0])
    alpha = 2.0 / (n + 1)
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        first, second, third = ema_chain(fs, k, c, n, alpha, x[r], 3)
        out[r, col] = 3.0 * first - 3.0 * second + third if c >= 3 * (n - 1) else NAN
        ints[k, _COUNT] = c + 1


_KAMA_FASTEST = 2.0 / (2.0 + 1.0)
_KAMA_SLOWEST = 2.0 / (30.0 + 1.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _kama(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    # fs = [sum of |one-bar change| over the window, KAMA]; ints = [count, run of zero
    # changes]; ring = the last n + 1 inputs.
    n = int(params[0])
    size = n + 1
    slowest = _KAMA_SLOWEST
    spread = _KAMA_FASTEST - slowest
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        v = x[r]
        out[r, col] = NAN
        total = fs[k, 0]
        pos = c % size  # the slot of bar c, and of bar c - n - 1 until overwritten
        back = pos + 1 if pos + 1 < size else 0  # the slot of bar c - n
        if c > 0:
            previous = ring[k, pos - 1 if pos > 0 else size - 1]
            if c > n:
                # bars c - n - 1 and c - n leave the window of changes
                total -= abs(ring[k, pos] - ring[k, back])
            total += abs(previous - v) if c <= n else abs(v - previous)
            # a run of n exact zero changes: the window is flat and its sum exactly 0
            flat = ints[k, 1] + 1 if v - previous == 0.0 else 0
            if flat >= n and c > n:
                flat = n
                total = 0.0
            ints[k, 1] = flat
            if c >= n:
                change = v - ring[k, back]
                if total <= 0.0 or total <= change:
                    ratio = 1.0
                else:
                    ratio = abs(change / total)
                    if ratio > 1.0:  # a down move over a sum carrying rounding residue
                        ratio = 1.0
                smoothing = fma(ratio, spread, slowest)
                smoothing *= smoothing
                kama = previous if c == n else fs[k, 1]
                kama = fma(v - kama, smoothing, kama)
                fs[k, 1] = kama
                out[r, col] = kama
        fs[k, 0] = total
        ring[k, pos] = v
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _trima(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    # fs = [numerator, its falling part, its rising part]; ring = the last n inputs.
    n = int(params[0])
    half = n >> 1
    odd = n % 2 == 1
    factor = 1.0 / ((half + 1.0) * (half + 1.0) if odd else half * (half + 1.0))
    middle_offset = half + 1 if odd else half  # the middle input's age from the window start
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        v = x[r]
        out[r, col] = NAN
        pos = c % n
        if c >= n:
            numerator = fs[k, 0]
            falling = fs[k, 1]
            rising = fs[k, 2]
            numerator -= falling
            falling -= ring[k, pos]  # the input n bars ago
            mid = ring[
                k, pos + middle_offset if pos + middle_offset < n else pos + middle_offset - n
            ]
            falling += mid
            if odd:
                numerator += rising
                rising -= mid
            else:
                rising -= mid
                numerator += rising
            rising += v
            numerator += v
            fs[k, 0] = numerator
            fs[k, 1] = falling
            fs[k, 2] = rising
            out[r, col] = numerator * factor
        ring[k, pos] = v
        if c == n - 1:
            # TA-Lib's first window: the falling part summed from the middle back
            middle = half if odd else half - 1
            numerator = 0.0
            falling = 0.0
            for j in range(middle, -1, -1):
                falling += ring[k, j % n]
                numerator += falling
            rising = 0.0
            for j in range(middle + 1, n):
                rising += ring[k, j % n]
                numerator += rising
            fs[k, 0] = numerator
            fs[k, 1] = falling
            fs[k, 2] = rising
            out[r, col] = numerator * factor
        ints[k, _COUNT] = c + 1


def _period(default: int, minimum: int = 2) -> Param:
    return Param("period", default, minimum=minimum, maximum=100_000)


_SOURCE = Param("source", "close", source=True)

KINDS: tuple[Kind, ...] = (
    Kind("wma", "weighted moving average (linear weights)", (_period(30), _SOURCE), ("",),
         lambda p: (3, 2, int(p[0])), _wma, talib="WMA"),
    Kind("dema", "double exponential moving average", (_period(30), _SOURCE), ("",),
         lambda p: (2, 1, 0), _dema, talib="DEMA"),
    Kind("tema", "triple exponential moving average", (_period(30), _SOURCE), ("",),
         lambda p: (3, 1, 0), _tema, talib="TEMA"),
    Kind("kama", "Kaufman adaptive moving average", (_period(30), _SOURCE), ("",),
         lambda p: (2, 2, int(p[0]) + 1), _kama, talib="KAMA"),
    Kind("trima", "triangular moving average (SMA of an SMA)", (_period(30), _SOURCE), ("",),
         lambda p: (3, 1, int(p[0])), _trima, talib="TRIMA"),
)  # fmt: skip
