"""Validation of incoming ticks, vectorized: a reason code per row."""

from __future__ import annotations

import re

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["REASONS", "SYMBOL_PATTERN", "check_bars", "check_trades"]

#: Reason codes, by the number :func:`check_trades` returns (0 = valid).
REASONS = ("", "schema", "symbol", "nan", "price", "size")
_SCHEMA, _SYMBOL, _NAN, _PRICE, _SIZE = 1, 2, 3, 4, 5

#: What a symbol may look like: tickers (BRK.B), indices (^GSPC, 000001.SS),
#: pairs (BTC-USD, EUR/USD), futures (ES=F). No spaces, at most 32 characters.
SYMBOL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-/^=:_]{0,31}$|^\^[A-Za-z0-9.]{1,31}$")


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


def check_trades(batch: pa.RecordBatch) -> np.ndarray:
    """Return an int8 reason code per trade (index into :data:`REASONS`; 0 = valid)."""
    codes = _symbol_codes(batch.column("symbol"))
    ts = batch.column("ts")
    if ts.null_count:
        codes[np.asarray(ts.is_null())] = _SCHEMA
    _check_numbers(codes, _values(batch.column("price")), _values(batch.column("size")))
    return codes


@nb.njit(cache=True, nogil=True)
def _check_numbers(codes: np.ndarray, price: np.ndarray, size: np.ndarray) -> None:
    """Give rows valid so far the reason of a NaN, a price <= 0, a size < 0 or an infinity."""
    for i in range(codes.shape[0]):
        if codes[i] != 0:
            continue
        p, s = price[i], size[i]
        if np.isnan(p) or np.isnan(s):
            codes[i] = _NAN
        elif not p > 0:
            codes[i] = _PRICE
        elif not s >= 0:
            codes[i] = _SIZE
        elif np.isinf(p) or np.isinf(s):
            codes[i] = _NAN


def check_bars(batch: pa.RecordBatch) -> np.ndarray:
    """Return an int8 reason code per bar (0 = valid)."""
    codes = _symbol_codes(batch.column("symbol"))
    for name in ("start", "end"):
        column = batch.column(name)
        if column.null_count:
            codes[np.asarray(column.is_null())] = _SCHEMA
    prices = [_values(batch.column(name)) for name in ("open", "high", "low", "close")]
    volume = _values(batch.column("volume"))
    with np.errstate(invalid="ignore"):
        nan = np.isnan(volume) | np.isinf(volume)
        positive = np.ones(len(volume), bool)
        for values in prices:
            nan |= np.isnan(values) | np.isinf(values)
            positive &= values > 0
        codes[(codes == 0) & nan] = _NAN
        codes[(codes == 0) & ~positive] = _PRICE
        codes[(codes == 0) & ~(volume >= 0)] = _SIZE
    return codes
