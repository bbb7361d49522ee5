"""Turn file columns (text or typed) into the columns of TRADE_SCHEMA and BAR_SCHEMA.

A column converts in one vectorised call. When that call fails, the column is
bisected to find the rows whose values do not convert; those rows are reported
(row index → message) and set to null, so one bad cell costs a few extra calls
on its batch and never the rest of the file. Timestamps are read by
:class:`~marketpulse.feeds.timestamps.TimestampParser`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.feeds.adjust import SplitHistory, adjust_prices, row_factors
from marketpulse.feeds.timestamps import CONVERT_ERRORS as _ERRORS
from marketpulse.feeds.timestamps import TimestampParser, is_text, text
from marketpulse.models import INTERVALS, QUOTE_SCHEMA, interval_ns

__all__ = ["Converted", "Options", "checked_text", "convert_bars", "convert_trades", "value_at"]

logger = logging.getLogger(__name__)

_SYMBOL = pa.dictionary(pa.int32(), pa.string())
_TRUE = pa.array(["1", "1.0", "true", "True", "TRUE", "t", "T", "yes", "Yes", "YES", "y", "Y"])
_TRUE_CHARS = np.frombuffer(b"1tTyY", np.uint8)  # the one-character values of _TRUE

Convert = Callable[[pa.Array], pa.Array]


@dataclass(slots=True)
class Options:
    """How rows of one file are converted.

    Attributes:
        symbol: the instrument for files without a symbol column; for files with
            one, only that symbol's rows are kept. ``None``: every row.
        include_suspicious: keep trades flagged ``suspicious``.
        shift_ns: added to every timestamp.
        interval: interval of bars; ``"auto"``: the file's own, inferred from
            its first batch (:func:`infer_interval`) and kept for the rest.
        adjust: bars: ``"none"``, ``"splits"`` or ``"all"``
            (:mod:`~marketpulse.feeds.adjust`).
        splits: the file's splits, for ``adjust="splits"`` (``None``: the factors
            are computed and checked, the prices left as they are).
    """

    symbol: str | None = None
    include_suspicious: bool = False
    shift_ns: int = 0
    interval: str = "auto"
    timestamps: TimestampParser = field(default_factory=TimestampParser)
    adjust: str = "none"
    splits: SplitHistory | None = None


@dataclass(slots=True)
class Converted:
    """One batch converted: columns in schema order, and what went wrong.

    Attributes:
        columns: the schema's columns (bad rows null).
        errors: row index → messages, for rows that cannot be used.
        keep: rows to keep among the good ones (filters), ``None`` for all.
        suspicious: how many good rows ``keep`` drops as suspicious.
        factor: bars adjusted: each row's ``adj_close / close``.
        quotes: trades with ``bid`` and ``ask`` columns: the quote in force at each
            row (``models.QUOTE_SCHEMA``, row for row; null bid or ask where the
            file's cell is empty or not a number: no quote).
    """

    columns: list[pa.Array]
    errors: dict[int, list[str]]
    keep: pa.Array | None = None
    suspicious: int = 0
    factor: pa.Array | None = None
    quotes: pa.RecordBatch | None = None


def _to_float(arr: pa.Array) -> pa.Array:
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.float64())
    if is_text(arr):
        arr = text(arr)
    return pc.cast(arr, pa.float64(), safe=not pa.types.is_integer(arr.type))


def _convert_pieces(arr: pa.Array, convert: Convert) -> tuple[pa.Array, list[int]]:
    """Convert ``arr`` value by value where it must: the rows that fail become null.

    Text is converted through its distinct values (a file of one bad line
    repeated costs one bad value, not one per line); the values that fail are
    found by bisection, then the rest converts in one call.
    """
    kind = arr.type
    if not (is_text(arr) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        return _convert_bisected(arr, convert)
    encoded = arr if pa.types.is_dictionary(kind) else pc.dictionary_encode(arr)
    values, failed = _convert_bisected(encoded.dictionary, convert)
    converted = pc.take(values, encoded.indices)
    if not failed:
        return converted, []
    is_bad = np.zeros(len(values) + 1, dtype=bool)  # the last: a null index (-1), not bad
    is_bad[failed] = True
    indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return converted, np.flatnonzero(is_bad[indices]).tolist()


def _convert_bisected(arr: pa.Array, convert: Convert) -> tuple[pa.Array, list[int]]:
    """Convert ``arr`` by bisection: the rows that fail become null and are returned.

    Each piece converts on its own, so a column mixing forms (ISO times and
    epoch numbers) converts piece by piece where no one form reads it all.
    """
    pieces: list[pa.Array] = []
    bad: list[int] = []
    stack = [(0, len(arr))]
    while stack:
        offset, length = stack.pop()
        try:
            pieces.append(convert(arr.slice(offset, length)))
            continue
        except _ERRORS:
            pass
        if length == 1:
            bad.append(offset)
            pieces.append(convert(pa.nulls(1, arr.type)))
        else:
            half = length // 2
            stack += [(offset + half, length - half), (offset, half)]
    return pa.concat_arrays(pieces), bad


def value_at(arr: pa.Array, row: int) -> object:
    """The Python value of ``arr[row]``; for a time Python cannot hold, its stored number.

    A Parquet timestamp in seconds can lie far past year 9999, where
    ``datetime`` ends: such a value must still be described, never raise.
    """
    try:
        return arr[row].as_py()
    except (ValueError, OverflowError):
        kind = arr.type
        if pa.types.is_temporal(kind) and kind.bit_width in (32, 64):
            raw = pa.int64() if kind.bit_width == 64 else pa.int32()
            return arr.slice(row, 1).view(raw)[0].as_py()
        return f"<{kind} value>"


def _describe(value: object, what: str) -> str:
    if value is None:
        return "missing"
    if value == "":
        return "empty"
    text = repr(value)
    return f"{text[:60]}... is not {what}" if len(text) > 60 else f"{text} is not {what}"


def _convert(
    arr: pa.Array,
    convert: Convert,
    name: str,
    what: str,
    errors: dict[int, list[str]],
    *,
    required: bool = True,
) -> pa.Array:
    """Convert ``arr``; record rows that fail (and nulls, if ``required``) in ``errors``."""
    if not required and is_text(arr):
        arr = text(arr)
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    try:
        result = convert(arr)
    except _ERRORS:
        result, bad = _convert_pieces(arr, convert)
        for row in bad:
            errors.setdefault(row, []).append(f"{name}: {_describe(value_at(arr, row), what)}")
        if not required:
            return result
        mask = np.zeros(len(arr), dtype=bool)
        mask[bad] = True
        for row in np.flatnonzero(~mask & arr.is_null().to_numpy(zero_copy_only=False)):
            errors.setdefault(int(row), []).append(f"{name}: missing")
        return result
    if required and result.null_count:
        for row in np.flatnonzero(result.is_null().to_numpy(zero_copy_only=False)):
            errors.setdefault(int(row), []).append(f"{name}: missing")
    return result


def _symbols(fields: dict[str, pa.Array], n: int, opts: Options, dictionary: bool) -> pa.Array:
    if "symbol" not in fields:
        if dictionary:
            return pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, dtype=np.int32)), pa.array([opts.symbol], pa.string())
            )
        return pa.repeat(pa.scalar(opts.symbol, pa.string()), n)
    arr = fields["symbol"]
    if dictionary:
        if arr.type != _SYMBOL:
            arr = text(arr).dictionary_encode() if not pa.types.is_dictionary(arr.type) else arr
            arr = arr.cast(_SYMBOL)
        return arr
    return text(arr)


def _symbol_filter(symbols: pa.Array, opts: Options, from_file: bool) -> pa.Array | None:
    if opts.symbol is None or not from_file:
        return None
    if pa.types.is_dictionary(symbols.type):
        symbols = symbols.dictionary_decode()
    return pc.fill_null(pc.equal(symbols, opts.symbol), False)


def _text_or_null(arr: pa.Array | None, n: int) -> pa.Array:
    if arr is None:
        return pa.nulls(n, pa.string())
    arr = text(arr)
    ends = _value_ends(arr)
    if ends is not None and (np.diff(ends) > 0).all():  # no empty value: the column as it is
        return arr
    empty = pc.equal(arr, "")
    if not pc.any(empty).as_py():
        return arr
    return pc.if_else(empty, pa.scalar(None, pa.string()), arr)


def _flag(arr: pa.Array) -> pa.Array:
    if pa.types.is_boolean(arr.type):
        return pc.fill_null(arr, False)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        return pc.fill_null(pc.not_equal(arr, 0), False)
    arr = text(arr)
    chars = _one_char_each(arr)
    if chars is not None:  # a 0/1 column: its bytes are its values
        return pa.array(np.isin(chars, _TRUE_CHARS))
    return pc.fill_null(pc.is_in(arr, _TRUE), False)


def _one_char_each(arr: pa.Array) -> np.ndarray | None:
    """A text column's bytes when every value is one byte long and none is null."""
    ends = _value_ends(arr)
    if ends is None or ends[-1] - ends[0] != len(arr) or not (np.diff(ends) == 1).all():
        return None
    return np.frombuffer(arr.buffers()[2], np.uint8)[ends[0] : ends[-1]]


def _value_ends(arr: pa.Array) -> np.ndarray | None:
    """The offsets of a text column's values (n + 1), when it has values and no null."""
    if arr.null_count or not pa.types.is_string(arr.type) or len(arr) == 0:
        return None
    return np.frombuffer(arr.buffers()[1], np.int32)[arr.offset : arr.offset + len(arr) + 1]


def _utf8(arr: pa.Array) -> pa.Array:
    return arr.cast(pa.string())


def checked_text(arr: pa.Array) -> pa.Array:
    """A text column read without a UTF-8 check (Parquet): as is, or as binary if it fails one.

    Parquet readers take a string column's bytes as they are; one value that
    is not UTF-8 would fail every later step that reads the text (the lake
    sink, JSON). As binary, the column is converted value by value, and such a
    value costs only its row (a dead letter).
    """
    kind = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return arr
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        return arr.view(pa.large_binary() if pa.types.is_large_string(kind) else pa.binary())
    return arr


def _decoded(fields: dict[str, pa.Array], errors: dict[int, list[str]]) -> dict[str, pa.Array]:
    """Binary columns (Parquet) as text; a value that is not UTF-8 costs its row."""
    out = dict(fields)
    for name, arr in fields.items():
        t = arr.type
        if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
            out[name] = _convert(arr, _utf8, name, "UTF-8 text", errors, required=False)
    return out


def _and(a: pa.Array | None, b: pa.Array | None) -> pa.Array | None:
    if a is None or b is None:
        return a if b is None else b
    return pc.and_(a, b)


def convert_trades(fields: dict[str, pa.Array], n: int, opts: Options) -> Converted:
    """Convert a batch's file columns (our name → array) to TRADE_SCHEMA columns."""
    errors: dict[int, list[str]] = {}
    fields = _decoded(fields, errors)
    ts = _convert(fields["timestamp"], opts.timestamps, "timestamp", "a timestamp", errors)
    if opts.shift_ns:
        ts = pc.add(ts, opts.shift_ns)
    price = _convert(fields["price"], _to_float, "price", "a number", errors)
    size = _convert(fields["size"], _to_float, "size", "a number", errors)
    symbols = _symbols(fields, n, opts, dictionary=True)
    keep = _symbol_filter(symbols, opts, "symbol" in fields)
    suspicious = 0
    if "suspicious" in fields and not opts.include_suspicious:
        flagged = _flag(fields["suspicious"])
        suspicious = pc.sum(flagged if keep is None else pc.and_(flagged, keep)).as_py() or 0
        keep = _and(keep, pc.invert(flagged)) if suspicious else keep
    columns = [
        symbols,
        ts,
        price,
        size,
        _text_or_null(fields.get("exchange"), n),
        _text_or_null(fields.get("condition"), n),
        pa.nulls(n, pa.string()),  # dataset: set by the processor
    ]
    quotes = _quotes(fields, n, symbols, ts) if {"bid", "ask"} <= fields.keys() else None
    return Converted(columns, errors, keep, suspicious, quotes=quotes)


def _quotes(fields: dict[str, pa.Array], n: int, symbols: pa.Array, ts: pa.Array) -> pa.RecordBatch:
    """The quote in force at each trade row, from the file's bid and ask (and sizes) columns.

    A bid or ask that is empty or not a number leaves the row without a quote
    (null), not the trade without its row.
    """
    ignored: dict[int, list[str]] = {}  # a bad quote cell costs the quote, not the trade

    def number(name: str) -> pa.Array:
        if name not in fields:
            return pa.nulls(n, pa.float64())
        return _convert(fields[name], _to_float, name, "a number", ignored, required=False)

    return pa.RecordBatch.from_arrays(
        [pc.cast(symbols, pa.string()), ts, number("bid"), number("bid_size"), number("ask"),
         number("ask_size"), pa.nulls(n, pa.string())],
        schema=QUOTE_SCHEMA,
    )  # fmt: skip


def infer_interval(symbols: pa.Array | None, start: pa.Array) -> str:
    """The interval of a file's bars: the longest known one within their closest spacing.

    The closest spacing of two bars of one symbol is the bar length, whatever
    gaps quiet periods leave (a minute file's illiquid minutes, a daily file's
    weekends). A batch with at most one bar per symbol says nothing: ``1d``.
    """
    times = pc.fill_null(start.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    if symbols is None:
        keys = np.zeros(len(times), np.int64)
    else:
        keys = pc.dictionary_encode(symbols.cast(pa.string())).indices
        keys = pc.fill_null(keys, -1).to_numpy(zero_copy_only=False)
    order = np.lexsort((times, keys))
    gaps = np.diff(times[order])[np.diff(keys[order]) == 0]
    gaps = gaps[gaps > 0]
    if not len(gaps):
        return "1d"
    spacing = int(gaps.min())
    fitting = [name for name, ns in INTERVALS.items() if ns <= spacing]
    return (
        max(fitting, key=INTERVALS.__getitem__)
        if fitting
        else min(INTERVALS, key=INTERVALS.__getitem__)
    )


def convert_bars(fields: dict[str, pa.Array], n: int, opts: Options) -> Converted:
    """Convert a batch's file columns (our name → array) to BAR_SCHEMA columns."""
    errors: dict[int, list[str]] = {}
    fields = _decoded(fields, errors)
    start = _convert(
        fields["timestamp"], opts.timestamps, "timestamp", "a date or timestamp", errors
    )
    if opts.shift_ns:
        start = pc.add(start, opts.shift_ns)
    if opts.interval == "auto":
        opts.interval = infer_interval(fields.get("symbol"), start)
    end = pc.add(start, interval_ns(opts.interval))
    prices = [
        _convert(fields[name], _to_float, name, "a number", errors)
        for name in ("open", "high", "low", "close")
    ]
    if "volume" in fields:
        volume = _convert(fields["volume"], _to_float, "volume", "a number", errors)
    else:
        volume = pa.repeat(pa.scalar(0.0), n)
    if "vwap" in fields:
        vwap = _convert(fields["vwap"], _to_float, "vwap", "a number", errors, required=False)
        vwap = pc.if_else(pc.is_nan(vwap), pa.scalar(None, pa.float64()), vwap)
    else:
        vwap = pa.nulls(n, pa.float64())
    if "trades" in fields:
        trades = _convert(fields["trades"], _to_float, "trades", "a number", errors, required=False)
        trades = pc.if_else(pc.is_finite(trades), trades, pa.scalar(None, pa.float64()))
        trades = pc.fill_null(pc.cast(trades, pa.int64(), safe=False), 0)
    else:
        trades = pa.repeat(pa.scalar(0, pa.int64()), n)
    symbols = _symbols(fields, n, opts, dictionary=False)
    keep = _symbol_filter(symbols, opts, "symbol" in fields)
    factor = None
    if opts.adjust != "none":
        adj = _convert(fields["adj_close"], _to_float, "adj_close", "a number", errors)
        factor = row_factors(prices[3], adj, errors)
        scale = factor if opts.adjust == "all" else None
        if opts.adjust == "splits" and opts.splits is not None:
            scale = opts.splits.factors(symbols, start)
        if scale is not None:
            prices, volume, vwap = adjust_prices(prices, volume, vwap, scale)
    timeframe = pa.repeat(pa.scalar(opts.interval, pa.string()), n)
    dataset = pa.nulls(n, pa.string())  # set by the processor
    columns = [symbols, timeframe, start, end, *prices, volume, vwap, trades, dataset]
    return Converted(columns, errors, keep, factor=factor)
