"""Rows of the pipeline's tables as Kafka records, and back.

Every topic carries one JSON object per record (msgspec structs of
:mod:`marketpulse.models`), keyed by symbol: times as integer epoch
nanoseconds, an alert's ``details`` as a JSON object, the ``dataset`` of
every output. Dead letters keep their original bytes; what went wrong, where
the record came from and its dataset travel in headers. Encoding and decoding work on
whole batches: columns in, one ``bytes`` per row out, and the reverse with a
single decoder call per batch, falling back to record by record only when a
batch holds a malformed record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec
import numpy as np
import pyarrow as pa

from marketpulse.bus.json_rows import encode_table
from marketpulse.models import (
    ALERT_SCHEMA,
    BAR_QUOTE_COLUMNS,
    BAR_SCHEMA,
    BAR_TABLE_SCHEMA,
    CUSTOM_SCHEMA,
    DLQ_SCHEMA,
    INDICATOR_KEY_COLUMNS,
    INDICATOR_SCHEMA,
    NEWS_SCHEMA,
    PREDICTION_SCHEMA,
    QUOTE_SCHEMA,
    TRADE_SCHEMA,
    Alert,
    Bar,
    CustomValue,
    DeadLetter,
    NewsItem,
    Prediction,
    Quote,
    QuotedBar,
    Trade,
    indicator_schema,
    indicators_struct,
)

__all__ = [
    "DLQ_HEADERS",
    "decode_rows",
    "dead_letter_headers",
    "decode_dead_letters",
    "encode_alerts",
    "encode_rows",
    "record_dataset",
    "stored_plain_trades",
]


class _StoredTrade(msgspec.Struct, frozen=True, omit_defaults=True):
    """A trade the processor kept, as the ``trades`` topic carries it (:data:`TRADE_SCHEMA`)."""

    symbol: str
    ts: int
    price: float
    size: float
    exchange: str | None = None
    condition: str | None = None
    dataset: str | None = None


class _StoredQuote(msgspec.Struct, frozen=True, omit_defaults=True):
    """A quote as the ``quotes`` topic carries it (:data:`QUOTE_SCHEMA`: with its dataset)."""

    symbol: str
    ts: int
    bid: float
    bid_size: float | None = None
    ask: float | None = None
    ask_size: float | None = None
    dataset: str | None = None


_encoder = msgspec.json.Encoder()
_extra_decoder = msgspec.json.Decoder(dict)
_ROW_TYPES: dict[str, type[msgspec.Struct]] = {
    "bars": QuotedBar,  # plain bars decode as well: their quote fields are null
    "alerts": Alert,
    "custom": CustomValue,
    "predictions": Prediction,
    "trades": _StoredTrade,
    "quotes": _StoredQuote,
    "news": NewsItem,
}
#: Rows from which a batch is written at once (:func:`_written_at_once`); the same bytes.
_AT_ONCE = 256

#: The output tables written at once by their struct (bars and indicators: by their columns).
_WRITTEN_AT_ONCE = {k: _ROW_TYPES[k] for k in ("custom", "predictions", "trades", "quotes")}
_LIST_DECODERS = {kind: msgspec.json.Decoder(list[t]) for kind, t in _ROW_TYPES.items()}
_ONE_DECODERS = {kind: msgspec.json.Decoder(t) for kind, t in _ROW_TYPES.items()}
_SCHEMAS = {
    "bars": BAR_SCHEMA,
    "indicators": INDICATOR_SCHEMA,
    "alerts": ALERT_SCHEMA,
    "custom": CUSTOM_SCHEMA,
    "predictions": PREDICTION_SCHEMA,
    "trades": TRADE_SCHEMA,
    "quotes": QUOTE_SCHEMA,
    "news": NEWS_SCHEMA,
}

#: Header names of a dead letter, in the order they are written.
DLQ_HEADERS = (
    "error", "reason", "topic", "partition", "offset", "file", "line", "vendor", "dataset"
)  # fmt: skip


def encode_rows(kind: str, data: pa.Table | pa.RecordBatch) -> tuple[list[str], list[bytes]]:
    """Encode rows of a ticks kind (``trade``, ``quote``) or an output table (``bars``, ...).

    The output tables: ``bars``, ``indicators``, ``custom``, ``predictions``, ``trades``,
    ``quotes`` and ``news`` (headlines, keyed by symbol as the rest).

    Trades and quotes may have an ``extra`` column: vendor fields as a JSON
    object in text (or null), written as the message's ``extra``. Bars without
    a ``dataset`` column (a feed's, for the ``ticks`` topic) have a null one.
    ``trades`` are the trades the processor kept, as stored (the columns of
    :data:`TRADE_SCHEMA`, no ``extra``, no ``type`` tag), for the ``trades`` topic;
    ``quotes`` likewise the quotes as stored (:data:`QUOTE_SCHEMA`, with their
    dataset), for the ``quotes`` topic.

    Returns:
        the key (symbol) and the JSON value of each row, in row order.
    """
    names = data.column_names
    if kind == "trades":  # only the stored columns (the processor's carry offsets too)
        names = [name for name in TRADE_SCHEMA.names if name in names]
    fast = _written_at_once(kind, data, names)
    if fast is not None:
        return fast
    columns = {name: _pylist(name, data.column(name)) for name in names}
    symbols = columns["symbol"]
    if kind in ("bars", "indicators", "custom", "predictions", "trades") and (
        "dataset" not in columns
    ):
        columns["dataset"] = [None] * len(symbols)
    if kind == "trade":
        exchange = columns.get("exchange") or [None] * len(symbols)
        condition = columns.get("condition") or [None] * len(symbols)
        rows = map(Trade, symbols, columns["ts"], columns["price"], columns["size"], exchange,
                   condition, [None] * len(symbols), _extras(columns, len(symbols)))  # fmt: skip
    elif kind == "quote":
        rows = map(Quote, symbols, columns["ts"], columns["bid"], columns["bid_size"],
                   columns["ask"], columns["ask_size"], [None] * len(symbols),
                   _extras(columns, len(symbols)))  # fmt: skip
    elif kind == "bars" and BAR_QUOTE_COLUMNS[0] in columns:  # a partition with quotes
        rows = map(QuotedBar, *(columns[name] for name in BAR_TABLE_SCHEMA.names))
    elif kind == "bars":
        rows = map(Bar, *(columns[name] for name in BAR_SCHEMA.names))
    elif kind == "indicators":
        declared = tuple(n for n in names if n not in INDICATOR_KEY_COLUMNS and n != "dataset")
        struct = indicators_struct(declared)
        rows = map(struct, *(columns[name] for name in indicator_schema(declared).names))
    elif kind == "custom":
        rows = map(CustomValue, *(columns[name] for name in CUSTOM_SCHEMA.names))
    elif kind == "predictions":
        rows = map(Prediction, *(columns[name] for name in PREDICTION_SCHEMA.names))
    elif kind == "news":
        n = len(symbols)
        rows = map(NewsItem, *(columns.get(name) or [None] * n for name in NEWS_SCHEMA.names))
    elif kind == "trades":
        n = len(symbols)
        rows = map(_StoredTrade, *(columns.get(name) or [None] * n for name in TRADE_SCHEMA.names))
    elif kind == "quotes":
        n = len(symbols)
        rows = map(_StoredQuote, *(columns.get(name) or [None] * n for name in QUOTE_SCHEMA.names))
    else:
        raise ValueError(f"cannot encode rows of kind {kind!r}")
    return symbols, _encode_each(rows)


def _encode_each(rows: Iterable[msgspec.Struct]) -> list[bytes]:
    """The JSON of each row, a msgspec call a row.

    One ``encode_lines`` for all of them, cut at the newlines, took 17% less time
    (100,000 indicator rows), but the process service's resident memory then grew
    with the records it had sent: 4.3-4.6 GB after 5,000,000 ticks of 10,000
    symbols, against 1.4 GB a call a row (measured here).
    """
    return [_encoder.encode(row) for row in rows]


def _written_at_once(
    kind: str, data: pa.Table | pa.RecordBatch, names: list[str]
) -> tuple[list[str], list[bytes]] | None:
    """Keys and records of ``encode_rows``, all rows written in one numba pass.

    The same bytes as a struct a row (:mod:`marketpulse.bus.json_rows`), about
    twice as fast for ``indicators``; ``None`` where the struct path must write
    them (vendor ``extra`` fields, a text JSON escapes, ...) or is the faster
    (fewer than :data:`_AT_ONCE` rows: the columns' set-up costs about 0.25 ms a
    call, measured here).
    """
    if data.num_rows < _AT_ONCE:
        return None
    if kind in ("trade", "quote"):
        if "extra" in names:
            if data.column("extra").null_count != data.num_rows:
                return None
            names = [name for name in names if name != "extra"]
        names = [name for name in names if name != "ts_ingest"]  # never sent
        struct: type[msgspec.Struct] | None = Trade if kind == "trade" else Quote
    elif kind == "bars":
        struct = QuotedBar if BAR_QUOTE_COLUMNS[0] in names else Bar
    elif kind == "indicators":
        declared = tuple(n for n in names if n not in INDICATOR_KEY_COLUMNS and n != "dataset")
        struct = indicators_struct(declared)
    else:
        struct = _WRITTEN_AT_ONCE.get(kind)
    if struct is None or "symbol" not in names:
        return None
    values = encode_table(struct, data, names)
    if values is None:
        return None
    return _pylist("symbol", _plain(data.column("symbol"))), values


def _plain(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A dictionary column decoded (one vectorised cast); others as they are."""
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def stored_plain_trades(values: Sequence[bytes], dataset: str | None) -> list[bytes]:
    """The ``trades`` records of plain trade records: each its own bytes, with its dataset.

    A plain record (one :func:`~marketpulse.stream.json_scan.scan_trades`
    accepts: no ``dataset`` key, no ``extra`` but null) holds a stored trade's
    fields as they were written; its other keys (``type``, ``ts_ingest``,
    ``extra``) are ones the ``trades`` decoder skips. Appending the dataset to
    the record as it came costs a fraction of encoding its columns again, and
    decodes to the same values bit for bit.
    """
    if dataset is None:  # a stored trade's dataset defaults to null
        return list(values)
    tail = b',"dataset":' + _encoder.encode(dataset) + b"}"
    return [
        value[:-1] + tail if value[-1:] == b"}" else value.rstrip(b" \t\r\n")[:-1] + tail
        for value in values
    ]


def _pylist(name: str, column: pa.Array | pa.ChunkedArray) -> list:
    """A column as a Python list; a ``dataset`` column of one value without a lookup per row."""
    if name == "dataset" and len(column) >= _FEW:
        value = _same_text(column)
        if value is not None:
            return [value] * len(column)
    return column.to_pylist()


#: Rows below which a column is read value by value (faster than checking it first).
_FEW = 256


def _same_text(column: pa.Array | pa.ChunkedArray) -> str | None:
    """The value of a string column whose rows all hold the same one (else ``None``)."""
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks != 1:
            return None
        column = column.chunk(0)
    if not pa.types.is_string(column.type) or column.null_count:
        return None
    _, offsets, data = column.buffers()
    ends = np.frombuffer(offsets, np.int32, len(column) + 1, column.offset * 4)
    width = int(ends[1] - ends[0])
    if width == 0 or (np.diff(ends) != width).any():
        return None
    rows = np.frombuffer(data, np.uint8, int(ends[-1] - ends[0]), int(ends[0]))
    rows = rows.reshape(len(column), width)
    return bytes(rows[0]).decode() if (rows == rows[0]).all() else None


def _extras(columns: dict[str, list], n: int) -> list[dict | None]:
    texts = columns.get("extra")
    if texts is None:
        return [None] * n
    return [None if text is None else _extra_decoder.decode(text) for text in texts]


def encode_alerts(alerts: Iterable[Alert]) -> tuple[list[str], list[bytes]]:
    """Encode alerts as JSON records keyed by symbol."""
    alerts = list(alerts)
    return [a.symbol for a in alerts], _encode_each(alerts)


def dead_letter_headers(letter: DeadLetter, dataset: str | None = None) -> list[tuple[str, bytes]]:
    """The headers of a dead letter: what went wrong, where the record came from, its dataset."""
    values = (letter.error, letter.reason, letter.topic, letter.partition, letter.offset,
              letter.file, letter.line, letter.vendor, dataset)  # fmt: skip
    return [
        (name, str(value).encode())
        for name, value in zip(DLQ_HEADERS, values, strict=True)
        if value is not None
    ]


def decode_rows(kind: str, values: Sequence[bytes]) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Decode JSON records of an output table (``bars``, ``indicators``, ``alerts``, ...).

    The tables: ``bars``, ``indicators``, ``alerts``, ``custom``, ``predictions``, ``trades``,
    ``quotes`` and ``news``.

    An alert's ``details`` object becomes a map column.

    Returns:
        the table, and the index and error of every record that failed to decode
        (left out of the table).
    """
    if kind == "indicators":
        return _decode_indicators(values)
    schema = _SCHEMAS[kind]
    errors: list[tuple[int, str]] = []
    try:
        rows = _LIST_DECODERS[kind].decode(b"[" + b",".join(values) + b"]")
    except (msgspec.DecodeError, msgspec.ValidationError):
        rows = []
        one = _ONE_DECODERS[kind]
        for i, value in enumerate(values):
            try:
                rows.append(one.decode(value))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                errors.append((i, str(exc)))
    if not rows:
        return schema.empty_table(), errors
    if kind == "bars" and any(getattr(r, n) is not None for r in rows for n in BAR_QUOTE_COLUMNS):
        schema = BAR_TABLE_SCHEMA
    columns = {name: [getattr(row, name) for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema), errors


_indicator_list_decoder = msgspec.json.Decoder(list[dict[str, str | int | float | None]])
_indicator_decoder = msgspec.json.Decoder(dict[str, str | int | float | None])
_KEY_TYPES = {"symbol": str, "timeframe": str, "bar_start": int, "bar_end": int}


def _decode_indicators(values: Sequence[bytes]) -> tuple[pa.Table, list[tuple[int, str]]]:
    """``indicators`` records with whatever declared columns they carry.

    The columns are those of the first record (every record a processor writes
    with one declared set has the same); a record with other columns, or
    without the bar's key, is an error.
    """
    errors: list[tuple[int, str]] = []
    try:
        rows = _indicator_list_decoder.decode(b"[" + b",".join(values) + b"]")
        good = list(enumerate(rows))
    except (msgspec.DecodeError, msgspec.ValidationError):
        good = []
        for i, value in enumerate(values):
            try:
                good.append((i, _indicator_decoder.decode(value)))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                errors.append((i, str(exc)))
    if not good:
        return INDICATOR_SCHEMA.empty_table(), errors
    first = good[0][1]
    declared = tuple(n for n in first if n not in INDICATOR_KEY_COLUMNS and n != "dataset")
    schema = indicator_schema(declared)
    names = set(schema.names)
    kept = []
    for i, row in good:
        problem = _indicator_problem(row, names)
        if problem:
            errors.append((i, problem))
        else:
            kept.append(row)
    columns = {name: [row.get(name) for row in kept] for name in schema.names}
    try:
        return pa.Table.from_pydict(columns, schema=schema), errors
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # a text where a number belongs
        return schema.empty_table(), errors + [(i, f"indicators: {exc}") for i, _ in good]


def _indicator_problem(row: dict, names: set[str]) -> str | None:
    for name, kind in _KEY_TYPES.items():
        if not isinstance(row.get(name), kind) or isinstance(row.get(name), bool):
            return f"indicators record without a valid {name!r}"
    if not isinstance(row.get("close"), int | float):
        return "indicators record without a valid 'close'"
    other = set(row) - names
    if other:
        extra = ", ".join(sorted(other))
        return f"indicators record with columns {extra} the batch's first record lacks"
    return None


def decode_dead_letters(
    keys: Sequence[bytes | None],
    values: Sequence[bytes | None],
    headers: Sequence[Sequence[tuple[str, bytes]] | None],
    timestamps: Sequence[int],
) -> pa.Table:
    """Build ``dlq`` table rows from dead-letter records and their headers.

    Where the record came from goes to the ``source_*`` columns; the
    ``dataset`` header (the processor's) to ``dataset``, else the record's
    own ``dataset`` field when it is a JSON object that has one.
    """
    columns: dict[str, list] = {name: [] for name in DLQ_SCHEMA.names}
    for key, value, header, ts in zip(keys, values, headers, timestamps, strict=True):
        fields = {name: raw.decode(errors="replace") for name, raw in header or ()}
        columns["ts"].append(ts)
        columns["reason"].append(fields.get("reason", "unknown"))
        columns["error"].append(fields.get("error", ""))
        columns["key"].append(key.decode(errors="replace") if key is not None else None)
        columns["value"].append(value or b"")
        columns["source_topic"].append(fields.get("topic"))
        for name in ("partition", "offset", "line"):
            text = fields.get(name)
            number = int(text) if text and text.lstrip("-").isdigit() else None
            columns[f"source_{name}"].append(number)
        columns["source_file"].append(fields.get("file"))
        columns["dataset"].append(fields.get("dataset") or record_dataset(value))
    return pa.Table.from_pydict(columns, schema=DLQ_SCHEMA)


class _Dataset(msgspec.Struct):
    dataset: str | None = None


_dataset_decoder = msgspec.json.Decoder(_Dataset)


def record_dataset(value: bytes | None) -> str | None:
    """The ``dataset`` field of a JSON object record (``None``: none, or not such a record)."""
    if not value:
        return None
    try:
        return _dataset_decoder.decode(value).dataset
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
