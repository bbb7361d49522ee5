"""What the process service (and the Spark route) sends of a processor's output, and how.

:func:`send_output` sends one :class:`~marketpulse.stream.output.Output` to
the output topics, as ``process`` writes them; the Spark route records the
same records (:mod:`marketpulse.spark`).

Every trade the processor keeps is stored (the ``trades`` table). From raw
messages (Kafka) ``process`` sends, by default, references to the kept trades'
offsets on ``ticks`` (:mod:`marketpulse.stream.trade_refs`) instead of copies,
so a trade crosses the broker once; the sinks read them there. Otherwise
(columns on the embedded bus, or the Spark route, whose topics hold copies) the
trades themselves go to ``trades``: a plain trade record's own bytes, with the
dataset appended (:func:`~marketpulse.stream.trade_refs.trade_records`), or
their columns.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from marketpulse.bus.base import Batch, Producer, offsets_of
from marketpulse.bus.codec import encode_rows
from marketpulse.bus.topics import Topics
from marketpulse.models import DeadLetter
from marketpulse.stream.decode import from_plain
from marketpulse.stream.output import Output
from marketpulse.stream.trade_refs import refs_of, trade_records

__all__ = ["Encoded", "encode_together", "originals", "send_output", "send_trades"]

#: An output table's records, encoded already: their keys and values.
Encoded = Mapping[str, tuple[Sequence[str], Sequence[bytes]]]

#: The output tables :func:`encode_together` encodes for all the outputs of a poll.
_TOGETHER = ("bars", "indicators")


def encode_together(outputs: Sequence[Output]) -> list[Encoded]:
    """Each output's ``bars`` and ``indicators`` records, encoded in one call for all of them.

    A consumer keeping up gets a few trades per partition in a poll, and at a
    bar close each partition's output holds a few rows: encoding them all at
    once pays the fixed cost of an encoding (the columns read, the records set
    up) once a poll rather than once a partition. The bytes are the same: a
    record depends on its row alone. A table whose columns differ from the
    others' (quote columns) is left out, for :func:`send_output` to encode.
    """
    done: list[dict[str, tuple[Sequence[str], Sequence[bytes]]]] = [{} for _ in outputs]
    for kind in _TOGETHER:
        tables = [(i, t) for i, t in enumerate(getattr(o, kind) for o in outputs) if t.num_rows]
        schema = tables[0][1].schema if tables else None
        tables = [(i, t) for i, t in tables if t.schema.equals(schema)]
        if len(tables) < 2:
            continue
        keys, values = encode_rows(kind, pa.concat_tables([t for _, t in tables]))
        at = 0
        for i, table in tables:
            end = at + table.num_rows
            done[i][kind] = (keys[at:end], values[at:end])
            at = end
    return done


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
    by_reference: bool = False,
    encoded: Encoded | None = None,
) -> None:
    """Send ``out`` (the output of ``batch``, or of none: closed by the clock) to ``partition``.

    Bars, indicators, plugins' values, alerts and dead letters go to their
    topics; the trades kept to ``trades`` when ``store_trades`` (with
    ``by_reference``, those of raw messages as references to their offsets);
    quotes to ``quotes`` (its name; ``None``: not kept). ``encoded``: the
    records of some of these tables, encoded already (:func:`encode_together`).
    """
    for kind, rows in (
        ("bars", out.bars), ("indicators", out.indicators), ("custom", out.custom),
        ("predictions", out.predictions),
    ):  # fmt: skip
        if encoded and kind in encoded:
            keys, values = encoded[kind]
            producer.send_encoded(topics.name(kind), keys, values, partition)
        elif rows.num_rows:
            producer.send_rows(topics.name(kind), kind, rows, partition)
    if out.alerts:
        producer.send_alerts(topics.name("alerts"), out.alerts, partition)
    if out.dead:
        producer.send_dead(topics.name("dlq"), out.dead, partition, dataset)
    if store_trades and by_reference and batch is not None and batch.columns is None:
        offsets = [t.column("offset").to_numpy() for t in out.trades if t.num_rows]
        if offsets:
            kept = offsets[0] if len(offsets) == 1 else np.concatenate(offsets)
            refs = refs_of(batch.topic, partition, kept, dataset)
            producer.send_encoded(topics.name("trades"), [""] * len(refs), refs, partition)
    elif store_trades:
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
    keys = _keys(trades.column("symbol"))
    producer.send_encoded(topic, keys, trade_records(trades, batch, dataset), partition)


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
