"""Validation of incoming ticks, vectorized: a reason code per row."""

from __future__ import annotations

import re

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
    indices = column.indices.fill_null(len(good) - 1).to_numpy(zero_copy_only=False)
    return good[indices]


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
    price = _values(batch.column("price"))
    size = _values(batch.column("size"))
    with np.errstate(invalid="ignore"):
        codes[(codes == 0) & (np.isnan(price) | np.isnan(size))] = _NAN
        codes[(codes == 0) & ~(price > 0) & ~np.isnan(price)] = _PRICE
        codes[(codes == 0) & ~(size >= 0) & ~np.isnan(size)] = _SIZE
        codes[(codes == 0) & (np.isinf(price) | np.isinf(size))] = _NAN
    return codes


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
