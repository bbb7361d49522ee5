"""Reading ``ticks`` into the processor's columns, whatever the bus carries.

The in-memory bus carries Arrow columns (a transport optimisation behind the
bus contract), Kafka raw JSON messages; :func:`decode_batch` gives the
processor the same columns from either.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence

import msgspec
import numpy as np
import pyarrow as pa

from marketpulse.bus.base import Batch, Message, offsets_of, values_of
from marketpulse.models import (
    BAR_SCHEMA,
    QUOTE_SCHEMA,
    TRADE_SCHEMA,
    Bar,
    DeadLetter,
    Quote,
    Trade,
    decode_tick,
    decode_tick_json,
)
from marketpulse.stream.json_scan import scan_trades

__all__ = [
    "PLAIN_RECORDS",
    "decode_batch",
    "decode_messages",
    "decode_plain_ticks",
    "from_plain",
    "tick_columns",
]

#: Schema metadata of the trade columns :func:`decode_plain_ticks` makes: every
#: row came from a plain trade record (as :func:`~marketpulse.stream.json_scan.scan_trades`
#: takes them) at its ``offset``. Arrow keeps it through slices, filters and new columns.
PLAIN_RECORDS = {b"marketpulse.records": b"plain trades"}
_PLAIN_KEY, _PLAIN_VALUE = next(iter(PLAIN_RECORDS.items()))


def from_plain(data: pa.RecordBatch | pa.Table) -> bool:
    """Whether every row of ``data`` came from a plain trade record (:data:`PLAIN_RECORDS`)."""
    metadata = data.schema.metadata
    return metadata is not None and metadata.get(_PLAIN_KEY) == _PLAIN_VALUE


def decode_batch(
    batch: Batch,
) -> tuple[list[tuple[str, pa.RecordBatch | None]], list[DeadLetter]]:
    """The columns of a batch of ``ticks`` by kind (``quote``, ``trade``, ``bar``); dead letters.

    Columns (the in-memory bus) are taken as they came; raw messages (Kafka)
    are decoded as by :func:`decode_messages`, and their quotes come first
    (``models.QUOTE_SCHEMA`` columns; they wait for the trades of their time).
    """
    if batch.columns is not None:
        data = batch.columns
        if isinstance(data, pa.Table):
            data = data.combine_chunks().to_batches()[0] if data.num_rows else None
        return [(batch.kind, data)], []
    trades, bars, quotes, dead = _decode_ticks(batch)
    return [("quote", quotes), ("trade", trades), ("bar", bars)], dead


def tick_columns(ticks: Sequence[Trade | Quote]) -> list[tuple[str, pa.RecordBatch]]:
    """Return trades and quotes as the in-memory bus carries them: columns, by kind.

    Quotes come first, as :func:`decode_batch` gives those of a batch of messages.
    """
    quotes = _quote_columns([tick for tick in ticks if isinstance(tick, Quote)])
    trades = _trade_columns([tick for tick in ticks if isinstance(tick, Trade)])
    kinds = (("quote", quotes), ("trade", trades))
    return [(kind, data) for kind, data in kinds if data is not None]


def decode_messages(
    batch: Batch,
) -> tuple[pa.RecordBatch | None, pa.RecordBatch | None, list[DeadLetter]]:
    """Decode a batch of JSON messages into trade and bar columns.

    Malformed bytes and JSON that is not a tick become dead letters with
    reason ``schema``, naming the topic, partition and offset. Quotes are left
    out here (:func:`decode_batch` gives them too). Each returned batch has an extra
    ``offset`` column: the offset of the message every row came from.

    A batch of plain trades, as our producer writes them, is decoded straight
    into columns by :func:`~marketpulse.stream.json_scan.scan_trades`; any
    other batch by msgspec.
    """
    trades, bars, _, dead = _decode_ticks(batch)
    return trades, bars, dead


def _decode_ticks(
    batch: Batch,
) -> tuple[pa.RecordBatch | None, pa.RecordBatch | None, pa.RecordBatch | None, list[DeadLetter]]:
    """Decode a batch of JSON messages into trade, bar and quote columns, and dead letters.

    Plain trade records are scanned into columns (:func:`scan_trades`); when
    the records left are no trades (a feed's quotes among its trades), they
    alone are decoded by msgspec, and the trades stay plain (:data:`PLAIN_RECORDS`).
    """
    values = values_of(batch.messages)
    scanned, accepted = scan_trades(values)
    if scanned is not None:
        offsets = _offsets(batch)
        if accepted.all():
            return _plain(scanned, offsets), None, None, []
        mixed = _with_others(values, scanned, accepted, offsets)
        if mixed is not None:
            return mixed
    try:  # the whole batch at C speed; any bad record sends it down the careful path
        ticks = list(map(decode_tick_json, values))
        return (*_tick_columns(ticks, offsets_of(batch.messages)), [])
    except (*_DECODE_ERRORS, TypeError, OverflowError):
        return _decode_each(batch)


def decode_plain_ticks(
    batches: Sequence[Batch],
) -> tuple[pa.RecordBatch, list[pa.RecordBatch | None], list[int]] | None:
    """Decode the records of ``batches`` together, when all are plain trades or quotes.

    Plain trades, as our producer writes them, are what
    :func:`~marketpulse.stream.json_scan.scan_trades` takes; the records it
    leaves are decoded by msgspec and must all be quotes (a feed's quotes among
    its trades, as the simulator sends them). ``None`` otherwise (bars, a trade
    the scanner leaves, a malformed record: each batch then goes its own way).

    Returns:
        the trades, rows following the batches in order, each with its record's
        ``offset``; each batch's quotes (``None``: it has none); each batch's
        count of trades.
    """
    values = [value for batch in batches for value in values_of(batch.messages)]
    trades, accepted = scan_trades(values)
    if trades is None:
        return None
    offsets = np.concatenate([_offsets(batch) for batch in batches])
    bounds = np.cumsum([0, *(len(batch.messages) for batch in batches)]).tolist()
    quotes: list[pa.RecordBatch | None] = [None] * len(batches)
    if not accepted.all():
        left = np.flatnonzero(~accepted)
        try:  # the quotes of all the batches in one set of columns, then sliced
            ticks = [decode_tick_json(values[j]) for j in left.tolist()]
            if any(type(tick) is not Quote for tick in ticks):
                return None
            columns = _quote_columns(ticks)  # type: ignore[arg-type]
        except (*_DECODE_ERRORS, TypeError, OverflowError):
            return None
        assert columns is not None
        cuts = np.searchsorted(left, bounds).tolist()
        for i, (lo, hi) in enumerate(itertools.pairwise(cuts)):
            quotes[i] = columns.slice(lo, hi - lo) if hi > lo else None
    counts = [int(np.count_nonzero(accepted[lo:hi])) for lo, hi in itertools.pairwise(bounds)]
    return _plain(trades, offsets[accepted]), quotes, counts


def _plain(trades: pa.RecordBatch, offsets: np.ndarray) -> pa.RecordBatch:
    """Scanned trade columns with their offsets, tagged as from plain records."""
    data = _with_offsets(trades, offsets)
    assert data is not None
    return data.replace_schema_metadata(PLAIN_RECORDS)


def _with_others(
    values: list[bytes | None],
    scanned: pa.RecordBatch,
    accepted: np.ndarray,
    offsets: np.ndarray,
) -> tuple[pa.RecordBatch, pa.RecordBatch | None, pa.RecordBatch | None, list[DeadLetter]] | None:
    """The scanned trades, and the other records decoded by msgspec, if none is a trade.

    ``None``: a record left is a trade (trades from both would have to be
    merged in offset order), or does not decode (the careful path names it).
    """
    others = np.flatnonzero(~accepted)
    try:
        ticks = [decode_tick_json(values[i]) for i in others.tolist()]
        if any(type(t) is Trade for t in ticks):
            return None
        _, bars, quotes = _tick_columns(ticks, offsets[others].tolist())
    except (*_DECODE_ERRORS, TypeError, OverflowError):
        return None
    return _plain(scanned, offsets[accepted]), bars, quotes, []


def _decode_each(
    batch: Batch,
) -> tuple[pa.RecordBatch | None, pa.RecordBatch | None, pa.RecordBatch | None, list[DeadLetter]]:
    """Decode record by record, each bad one a dead letter."""
    ticks: list[Trade | Quote | Bar] = []
    offsets: list[int] = []
    dead: list[DeadLetter] = []
    for message in batch.messages:
        try:
            tick = decode_tick(message.value or b"")
        except _DECODE_ERRORS as exc:
            dead.append(_dead(batch, message, str(exc)))
            continue
        if not _in_int64(tick):
            dead.append(_dead(batch, message, "a timestamp does not fit in 64 bits"))
            continue
        ticks.append(tick)
        offsets.append(message.offset)
    return (*_tick_columns(ticks, offsets), dead)


#: What decoding a malformed record raises: invalid UTF-8 in a string is no DecodeError.
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)
_INT64 = range(-(2**63), 2**63)


def _in_int64(tick: Trade | Quote | Bar) -> bool:
    """Whether the tick's integer times fit the int64 columns (msgspec's ints do not stop there)."""
    if isinstance(tick, Bar):
        return tick.bar_start in _INT64 and tick.bar_end in _INT64 and tick.trades in _INT64
    return tick.ts in _INT64 and (tick.ts_ingest is None or tick.ts_ingest in _INT64)


def _columns(
    ticks: list[Trade | Quote | Bar], offsets: list[int]
) -> tuple[pa.RecordBatch | None, pa.RecordBatch | None]:
    """Split decoded ticks into trade and bar columns with their offsets (quotes left out)."""
    trades, bars, _ = _tick_columns(ticks, offsets)
    return trades, bars


def _tick_columns(
    ticks: list[Trade | Quote | Bar], offsets: list[int]
) -> tuple[pa.RecordBatch | None, pa.RecordBatch | None, pa.RecordBatch | None]:
    """Split decoded ticks into trade and bar columns with their offsets, and quote columns."""
    if all(type(t) is Trade for t in ticks):
        return _with_offsets(_trade_columns(ticks), offsets), None, None  # type: ignore[arg-type]
    trades: list[Trade] = []
    bars: list[Bar] = []
    quotes: list[Quote] = []
    trade_offsets: list[int] = []
    bar_offsets: list[int] = []
    for tick, offset in zip(ticks, offsets, strict=True):
        if isinstance(tick, Trade):
            trades.append(tick)
            trade_offsets.append(offset)
        elif isinstance(tick, Bar):
            bars.append(tick)
            bar_offsets.append(offset)
        else:
            quotes.append(tick)
    return (
        _with_offsets(_trade_columns(trades), trade_offsets),
        _with_offsets(_bar_columns(bars), bar_offsets),
        _quote_columns(quotes),
    )


def _offsets(batch: Batch) -> np.ndarray:
    """Each record's offset; read from the records only when the batch has gaps.

    Offsets increase within a partition, so a batch holding as many records as
    its offset range spans holds every offset of the range (on a transactional
    topic, markers and aborted records leave gaps).
    """
    if len(batch) == len(batch.messages):
        return np.arange(batch.first_offset, batch.last_offset + 1, dtype=np.int64)
    return np.asarray(offsets_of(batch.messages), np.int64)


def _with_offsets(
    data: pa.RecordBatch | None, offsets: list[int] | np.ndarray
) -> pa.RecordBatch | None:
    """Append each record's own offset, so that rejections name it exactly."""
    if data is None:
        return None
    return data.append_column("offset", pa.array(offsets, pa.int64()))


def _dead(batch: Batch, message: Message, error: str) -> DeadLetter:
    key = message.key.decode(errors="replace") if message.key else None
    return DeadLetter(
        reason="schema",
        error=f"{batch.topic}[{batch.partition}]@{message.offset}: {error}",
        value=message.value or b"",
        key=key,
        topic=batch.topic,
        partition=batch.partition,
        offset=message.offset,
    )


def _trade_columns(trades: list[Trade]) -> pa.RecordBatch | None:
    if not trades:
        return None
    return pa.RecordBatch.from_arrays(
        [
            pa.array(list(map(_SYMBOL, trades))).dictionary_encode(),
            pa.array(list(map(_TS, trades)), pa.int64()),
            pa.array(list(map(_PRICE, trades)), pa.float64()),
            pa.array(list(map(_SIZE, trades)), pa.float64()),
            pa.array(list(map(_EXCHANGE, trades)), pa.string()),
            pa.array(list(map(_CONDITION, trades)), pa.string()),
            pa.nulls(len(trades), pa.string()),  # the dataset: the processor's
        ],
        schema=TRADE_SCHEMA,
    )


_SYMBOL, _TS, _PRICE, _SIZE, _EXCHANGE, _CONDITION = map(
    operator.attrgetter, ("symbol", "ts", "price", "size", "exchange", "condition")
)


def _quote_columns(quotes: list[Quote]) -> pa.RecordBatch | None:
    """Build the quote columns, each from its field.

    ``from_pydict`` cost 57 µs a call even for a few quotes, and the quotes of
    one poll come a few per partition.
    """
    if not quotes:
        return None
    return pa.RecordBatch.from_arrays(
        [
            pa.array(list(map(_SYMBOL, quotes)), pa.string()),
            pa.array(list(map(_TS, quotes)), pa.int64()),
            *(pa.array(list(map(get, quotes)), pa.float64()) for get in _QUOTE_NUMBERS),
            pa.nulls(len(quotes), pa.string()),  # the dataset: the processor's
        ],
        schema=QUOTE_SCHEMA,
    )


_QUOTE_NUMBERS = tuple(map(operator.attrgetter, ("bid", "bid_size", "ask", "ask_size")))


def _bar_columns(bars: list[Bar]) -> pa.RecordBatch | None:
    if not bars:
        return None
    return pa.RecordBatch.from_pylist([msgspec.structs.asdict(b) for b in bars], schema=BAR_SCHEMA)
