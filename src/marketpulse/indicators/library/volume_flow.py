"""Volume-flow kinds: OBV, accumulation/distribution, the Chaikin oscillator, MFI.

Each repeats the arithmetic of the TA-Lib build installed with the project
(TA-Lib C 0.8.1) operation for operation, its conventions for bars that carry
no information included (daily index files report a volume of 0 on many
days):

* OBV starts from the first bar's volume, adds the volume of a bar whose
  source rose, subtracts it when the source fell, and keeps it otherwise.
* A/D adds nothing for a bar whose high equals its low (no range to place
  the close in).
* ADOSC: both EMAs of the A/D line are seeded with its first value (not an
  SMA) and step ``fma(1 - k, ema, k * ad)`` (TA-Lib's ``k * ad + (1 - k) *
  ema`` as its build fuses it); the first value is output after
  ``max(fast, slow) - 1`` bars.
* MFI: a bar whose typical price moved by at most 1e-14 of the two prices'
  magnitudes, or that traded no volume, adds no money flow; a move up adds
  to the positive flow, a move down to the negative one. After ``period``
  such bars in a row both sums are reset to exactly 0 (dropping rounding
  residue), and a window whose total flow is 0 gives an MFI of 0.
"""

from __future__ import annotations

import numba

from marketpulse.indicators.kind import NAN, Kind, Param, fma

__all__ = ["KINDS"]

_COUNT = 0  # ints slot 0 of every kind: bars seen by the key
_EPSILON = 1e-14  # TA-Lib's TA_EPSILON


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _obv(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    # fs = [obv, previous source value]
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        v = x[r]
        if c == 0:
            obv = volume[r]
        else:
            obv = fs[k, 0]
            previous = fs[k, 1]
            if v > previous:
                obv += volume[r]
            elif v < previous:
                obv -= volume[r]
        out[r, col] = obv
        fs[k, 0] = obv
        fs[k, 1] = v
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, inline="always")
def _ad_step(ad, high, low, close, volume):
    """Add one bar's money-flow volume to the A/D line ``ad`` (TA-Lib's order)."""
    spread = high - low
    if spread > 0.0:
        ad += (close - low - (high - close)) / spread * volume
    return ad


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _ad(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    # fs = [ad]
    for r in range(keys.shape[0]):
        k = keys[r]
        ad = _ad_step(fs[k, 0], high[r], low[r], close[r], volume[r])
        out[r, col] = ad
        fs[k, 0] = ad
        ints[k, _COUNT] += 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _adosc(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    # fs = [ad, fast EMA, slow EMA]
    fast_n, slow_n = params[0], params[1]
    start = int(max(fast_n, slow_n)) - 1  # TA-Lib's EMA lookback of the slower one
    fast_k = 2.0 / (fast_n + 1.0)
    slow_k = 2.0 / (slow_n + 1.0)
    fast_rest = 1.0 - fast_k
    slow_rest = 1.0 - slow_k
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        ad = _ad_step(fs[k, 0], high[r], low[r], close[r], volume[r])
        if c == 0:
            fast = ad
            slow = ad
        else:
            fast = fma(fast_rest, fs[k, 1], fast_k * ad)
            slow = fma(slow_rest, fs[k, 2], slow_k * ad)
        out[r, col] = fast - slow if c >= start else NAN
        fs[k, 0] = ad
        fs[k, 1] = fast
        fs[k, 2] = slow
        ints[k, _COUNT] = c + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _mfi(keys, x, open_, high, low, close, volume, pv, session, params, fs, ints, ring, out, col):
    # fs = [positive flow sum, negative flow sum, previous typical price];
    # ints = [count, bars in a row without money flow];
    # ring = positive flows at [0, n), negative flows at [n, 2n).
    n = int(params[0])
    for r in range(keys.shape[0]):
        k = keys[r]
        c = ints[k, _COUNT]
        typical = (high[r] + low[r] + close[r]) / 3.0
        out[r, col] = NAN
        if c > 0:
            slot = (c - 1) % n
            positive = fs[k, 0]
            negative = fs[k, 1]
            if c > n:
                positive -= ring[k, slot]
                negative -= ring[k, n + slot]
            previous = fs[k, 2]
            change = typical - previous
            scale = abs(typical) + abs(previous)
            flow = 0.0 if abs(change) <= _EPSILON * scale else typical * volume[r]
            up = 0.0 if change < 0.0 else flow
            down = flow if change < 0.0 else 0.0
            ring[k, slot] = up
            ring[k, n + slot] = down
            positive += up
            negative += down
            idle = ints[k, 1] + 1 if flow == 0.0 else 0
            if idle >= n:  # the window holds no flow: drop the sums' rounding residue
                idle = n
                positive = 0.0
                negative = 0.0
            ints[k, 1] = idle
            if c >= n:
                total = positive + negative
                part = 0.0 if positive < 0.0 else (total if positive > total else positive)
                out[r, col] = 0.0 if total <= 0.0 else 100.0 * (part / total)
            fs[k, 0] = positive
            fs[k, 1] = negative
        fs[k, 2] = typical
        ints[k, _COUNT] = c + 1


def _period(name: str, default: int) -> Param:
    return Param(name, default, minimum=2, maximum=100_000)


KINDS: tuple[Kind, ...] = (
    Kind("obv", "on-balance volume: volume added on up bars, subtracted on down bars",
         (Param("source", "close", source=True),), ("",), lambda p: (2, 1, 0), _obv, talib="OBV"),
    Kind("ad", "Chaikin accumulation/distribution line", (), ("",),
         lambda p: (1, 1, 0), _ad, talib="AD"),
    Kind("adosc", "Chaikin oscillator: fast EMA minus slow EMA of the A/D line",
         (_period("fast", 3), _period("slow", 10)), ("",), lambda p: (3, 1, 0), _adosc,
         talib="ADOSC"),
    Kind("mfi", "money flow index", (_period("period", 14),), ("",),
         lambda p: (3, 2, 2 * int(p[0])), _mfi, talib="MFI"),
)  # fmt: skip
