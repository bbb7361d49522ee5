"""Validation of incoming ticks, vectorized: a reason code per row.

Besides well-formed symbols and numbers, values must be plausible: a price
from :data:`MIN_PRICE` to :data:`MAX_PRICE`, a size (or volume) from 0 to
:data:`MAX_SIZE`, a time from :data:`EARLIEST_TRADE` (trades) or
:data:`EARLIEST_BAR` (bars) to :data:`LATEST` and, for live sources, no more
than :data:`MAX_CLOCK_SKEW` ahead of the wall clock. Within those bounds no
sum the bars or indicators make can overflow to an infinity.
"""

from __future__ import annotations

import re

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.models import NS_PER_S
from marketpulse.numba_blas import defer_blas_check

defer_blas_check()

__all__ = [
    "EARLIEST_BAR",
    "EARLIEST_TRADE",
    "LATEST",
    "MAX_CLOCK_SKEW",
    "MAX_PRICE",
    "MAX_SIZE",
    "MIN_PRICE",
    "REASONS",
    "SYMBOL_PATTERN",
    "TRADE_KERNELS",
    "check_bars",
    "check_trades",
    "latest_for",
]

#: Reason codes, by the number :func:`check_trades` returns (0 = valid).
REASONS = ("", "schema", "symbol", "nan", "price", "size", "time", "future", "ohlc")
_SCHEMA, _SYMBOL, _NAN, _PRICE, _SIZE, _TIME, _FUTURE, _OHLC = range(1, 9)

#: Lowest plausible price: below the cheapest crypto tokens (~1e-7 USDT).
MIN_PRICE = 1e-10
#: Highest plausible price: above any share or index level, hyperinflation quotes included.
MAX_PRICE = 1e12
#: Largest plausible trade size or bar volume: more units than any asset has in circulation.
MAX_SIZE = 1e18
#: Earliest trade time, ns (1970-01-01): trade-by-trade records are younger than the epoch.
EARLIEST_TRADE = 0
#: Earliest bar start, ns (1800-01-01): daily index histories reach back to the 1890s.
EARLIEST_BAR = -5_364_662_400 * NS_PER_S
#: Latest time of anything, ns (2100-01-01): far from the limits of int64 nanoseconds.
LATEST = 4_102_444_800 * NS_PER_S
#: How far ahead of the wall clock a live tick may be, ns (5 minutes: clocks disagree).
MAX_CLOCK_SKEW = 300 * NS_PER_S

#: What a symbol may look like: tickers (BRK.B), indices (^GSPC, 000001.SS),
#: pairs (BTC-USD, EUR/USD), futures (ES=F). No spaces, at most 32 characters.
SYMBOL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-/^=:_]{0,31}$|^\^[A-Za-z0-9.]{1,31}$")


def latest_for(now: int | None) -> int:
    """The latest time a tick may have (ns).

    :data:`LATEST`, or for a live source (``now``, the wall clock in ns)
    :data:`MAX_CLOCK_SKEW` after ``now`` if that is sooner.
    """
    return LATEST if now is None else min(LATEST, now + MAX_CLOCK_SKEW)


def _symbol_codes(column: pa.Array) -> np.ndarray:
    """Return per row: 0 when the symbol is well formed, else the reason."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    names = column.dictionary.to_pylist()
    known = _symbol_code_cache
    if len(known) > _SYMBOL_CACHE_SIZE:
        known.clear()
    good = np.array([_symbol_code(s, known) for s in names] + [_SYMBOL], np.int8)
    indices = column.indices
    if indices.null_count:
        indices = indices.fill_null(len(good) - 1)
    return good[indices.to_numpy()]


#: Symbols checked so far and their codes: a stream repeats the same few thousand.
_symbol_code_cache: dict[str | None, int] = {}
_SYMBOL_CACHE_SIZE = 100_000


def _symbol_code(symbol: str | None, known: dict[str | None, int]) -> int:
    code = known.get(symbol)
    if code is None:
        code = known[symbol] = _SYMBOL if not symbol or not SYMBOL_PATTERN.match(symbol) else 0
    return code


def _values(column: pa.Array) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _times(column: pa.Array, codes: np.ndarray) -> np.ndarray:
    """Return a time column as int64 (nulls as 0), giving null rows the reason ``schema``."""
    if column.null_count:
        codes[np.asarray(column.is_null())] = _SCHEMA
        column = column.fill_null(0)
    return column.to_numpy()


def check_trades(batch: pa.RecordBatch, now: int | None = None) -> np.ndarray:
    """Return an int8 reason code per trade (index into :data:`REASONS`; 0 = valid).

    Args:
        batch: trades (``TRADE_SCHEMA`` columns).
        now: the wall clock (ns) for a live source: times more than
            :data:`MAX_CLOCK_SKEW` after it are ``future``. ``None``: only
            :data:`LATEST` bounds them.
    """
    codes = _symbol_codes(batch.column("symbol"))
    ts = _times(batch.column("ts"), codes)
    price, size = _values(batch.column("price")), _values(batch.column("size"))
    _check_trade_rows(codes, ts, price, size, EARLIEST_TRADE, latest_for(now))
    return codes


@nb.njit(cache=True, nogil=True)
def _check_trade_rows(codes, ts, price, size, earliest, latest):  # type: ignore[no-untyped-def]
    """Give rows valid so far the reason of their first bad field (price, size, then time).

    A NaN or an infinity is ``nan``, except a negative infinite price or size,
    which fails its sign check first.
    """
    for i in range(codes.shape[0]):
        if codes[i] != 0:
            continue
        p, s, t = price[i], size[i], ts[i]
        if np.isnan(p) or np.isnan(s):
            codes[i] = _NAN
        elif not p > 0:
            codes[i] = _PRICE
        elif not s >= 0:
            codes[i] = _SIZE
        elif np.isinf(p) or np.isinf(s):
            codes[i] = _NAN
        elif p < MIN_PRICE or p > MAX_PRICE:
            codes[i] = _PRICE
        elif s > MAX_SIZE:
            codes[i] = _SIZE
        elif t < earliest:
            codes[i] = _TIME
        elif t > latest:
            codes[i] = _FUTURE


def check_bars(batch: pa.RecordBatch, now: int | None = None) -> np.ndarray:
    """Return an int8 reason code per bar (0 = valid); ``now`` as in :func:`check_trades`.

    Besides the checks of trades (on open, high, low, close, vwap and volume;
    the bar's ``bar_start`` is its time), ``bar_end`` must follow ``bar_start`` (``time``)
    and high, low, open and close must agree (``ohlc``). A missing or NaN
    vwap is allowed: it is not known.
    """
    codes = _symbol_codes(batch.column("symbol"))
    start = _times(batch.column("bar_start"), codes)
    end = _times(batch.column("bar_end"), codes)
    o, h, lo, c = (_values(batch.column(name)) for name in ("open", "high", "low", "close"))
    volume = _values(batch.column("volume"))
    names = batch.schema.names
    vwap = _values(batch.column("vwap")) if "vwap" in names else np.full(len(volume), np.nan)
    _check_bar_rows(codes, start, end, o, h, lo, c, volume, vwap, latest_for(now))
    return codes


@nb.njit(cache=True, nogil=True)
def _check_bar_rows(codes, start, end, o, h, lo, c, volume, vwap, latest):  # type: ignore[no-untyped-def]
    for i in range(codes.shape[0]):
        if codes[i] != 0:
            continue
        prices = (o[i], h[i], lo[i], c[i])
        nan = np.isnan(volume[i]) or np.isinf(volume[i]) or np.isinf(vwap[i])
        positive = True
        in_range = True
        for p in prices:
            nan = nan or np.isnan(p) or np.isinf(p)
            positive = positive and p > 0
            in_range = in_range and MIN_PRICE <= p <= MAX_PRICE
        w = vwap[i]
        if nan:
            codes[i] = _NAN
        elif not positive:
            codes[i] = _PRICE
        elif not volume[i] >= 0:
            codes[i] = _SIZE
        elif not in_range or (not np.isnan(w) and not MIN_PRICE <= w <= MAX_PRICE):
            codes[i] = _PRICE
        elif volume[i] > MAX_SIZE:
            codes[i] = _SIZE
        elif start[i] < EARLIEST_BAR or end[i] <= start[i]:
            codes[i] = _TIME
        elif start[i] > latest:
            codes[i] = _FUTURE
        elif h[i] < lo[i] or not lo[i] <= o[i] <= h[i] or not lo[i] <= c[i] <= h[i]:
            codes[i] = _OHLC


#: The kernel that checks trades (marketpulse.kernel_progress reads its callees off it).
TRADE_KERNELS = (_check_trade_rows,)
