"""What the process service (and the Spark route) sends of a processor's output, and how.

:func:`send_output` sends one :class:`~marketpulse.stream.output.Output` to
the output topics, as ``process`` writes them; the Spark route records the
same records (:mod:`marketpulse.spark`), so both routes' topics hold the same.

Every trade the processor keeps goes to the ``trades`` topic, as many records
as the input. Encoding their columns again cost more than all the processing
of a catch-up; a plain trade record's own bytes, with the dataset appended
(:func:`~marketpulse.bus.codec.stored_plain_trades`), serve instead.
"""

from __future__ import annotations

import bisect

import numpy as np
import pyarrow as pa

from marketpulse.bus.base import Batch, Producer, offsets_of, values_of
from marketpulse.bus.codec import stored_plain_trades
from marketpulse.bus.topics import Topics
from marketpulse.models import DeadLetter
from marketpulse.stream.decode import from_plain
from marketpulse.stream.output import Output

__all__ = ["originals", "send_output", "send_trades"]


def send_output(
    producer: Producer,
    topics: Topics,
    out: Output,
    partition: int,
    batch: Batch | None,
    *,
    dataset: str,
    store_trades: bool,
    quotes: str | None,
) -> None:
    """Send ``out`` (the output of ``batch``, or of none: closed by the clock) to ``partition``.

    Bars, indicators, plugins' values, alerts and dead letters go to their
    topics; the trades kept to ``trades`` when ``store_trades``; quotes to
    ``quotes`` (its name; ``None``: not kept).
    """
    for kind, rows in (("bars", out.bars), ("indicators", out.indicators), ("custom", out.custom)):
        if rows.num_rows:
            producer.send_rows(topics.name(kind), kind, rows, partition)
    if out.alerts:
        producer.send_alerts(topics.name("alerts"), out.alerts, partition)
    if out.dead:
        producer.send_dead(topics.name("dlq"), out.dead, partition, dataset)
    if store_trades:
        for trades in out.trades:
            if trades.num_rows:
                send_trades(producer, topics.name("trades"), trades, partition, batch, dataset)
    if quotes is not None:
        for rows in out.quotes:
            producer.send_rows(quotes, "quotes", rows, partition)


def send_trades(
    producer: Producer,
    topic: str,
    trades: pa.RecordBatch | pa.Table,
    partition: int,
    batch: Batch | None,
    dataset: str | None,
) -> None:
    """Send the trades kept (rows of ``batch``, each with its input ``offset``) to ``topic``.

    Rows decoded from plain records (:func:`~marketpulse.stream.decode.from_plain`)
    are sent as those records, with ``dataset``; any other rows (columns, or
    records msgspec decoded) are encoded from their columns.
    """
    if batch is None or batch.columns is not None or not from_plain(trades):
        producer.send_rows(topic, "trades", trades, partition)
        return
    values = values_of(batch.messages)
    kept = trades.column("offset").to_numpy()
    if len(kept) == len(values) and batch.last_offset - batch.first_offset + 1 == len(values):
        picked = values  # every record of the batch, whose offsets have no gaps
    else:
        at = np.searchsorted(np.asarray(offsets_of(batch.messages), np.int64), kept)
        picked = [values[i] for i in at.tolist()]
    keys = _keys(trades.column("symbol"))
    producer.send_encoded(topic, keys, stored_plain_trades(picked, dataset), partition)


def _keys(symbol: pa.Array | pa.ChunkedArray) -> list[str]:
    """The symbols of a column as Python strings (a dictionary column without a lookup a row)."""
    if isinstance(symbol, pa.ChunkedArray):
        symbol = symbol.combine_chunks()
    if pa.types.is_dictionary(symbol.type):
        names = np.asarray(symbol.dictionary.to_pylist(), object)
        return names[symbol.indices.to_numpy(zero_copy_only=False)].tolist()
    return symbol.to_pylist()


def originals(letters: list[DeadLetter], batch: Batch) -> list[DeadLetter]:
    """Give dead letters of consumed records their original key and bytes."""
    offsets = offsets_of(batch.messages)
    out = []
    for letter in letters:
        index = bisect.bisect_left(offsets, letter.offset) if letter.topic == batch.topic else -1
        if 0 <= index < len(offsets) and offsets[index] == letter.offset:
            message = batch.messages[index]
            if message.value is not None:
                key = message.key.decode(errors="replace") if message.key else letter.key
                letter = DeadLetter(
                    reason=letter.reason, error=letter.error, value=message.value, key=key,
                    topic=letter.topic, partition=letter.partition, offset=letter.offset,
                    file=letter.file, line=letter.line, ts=letter.ts,
                )  # fmt: skip
        out.append(letter)
    return out
