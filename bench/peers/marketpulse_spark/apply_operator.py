"""The bucket operator again, for ``applyInPandasWithState``: a bench-only variant.

The Spark route (``marketpulse spark``) runs each bucket (a ``ticks``
partition) through MarketPulse's processor in ``transformWithStateInPandas``,
its state a ``MapState`` of the processor's checkpoint records (one entry per
symbol: only the symbols a micro-batch changed are written) and a
``ValueState`` of the next offset (src/marketpulse/spark/bucket_operator.py).
:class:`ApplyOperator` does the same work in ``applyInPandasWithState``, whose
state is one ``GroupState`` value per bucket: the same checkpoint records, all
of them (:data:`STATE_SCHEMA`: the keys, the values and the next offset),
written whole after every micro-batch with input.

It imports no Spark itself, so the bench's tests run it with a stand-in
``GroupState``. Spark's Python workers import this module by name (the driver
ships it with ``SparkContext.addPyFile``): :data:`_KEPT`, the processors a
worker keeps between micro-batches, then lives as long as the worker.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd

from marketpulse.bus.base import Batch, Message
from marketpulse.bus.topics import Topics
from marketpulse.runtime.forward import originals, send_output
from marketpulse.spark.records import Recorder
from marketpulse.stream import Processor, ProcessorSettings

__all__ = ["STATE_SCHEMA", "ApplyOperator", "decode_records", "encode_records", "merge_state"]

#: A bucket's state in its ``GroupState``: every checkpoint record (:func:`encode_records`),
#: and the next offset. (One binary value: pyspark 4.2's workers cannot read an array type
#: back from the state schema Spark sends them.)
STATE_SCHEMA = "records BINARY, next_offset LONG"
_LENGTH = struct.Struct(">I")

#: Processors kept by this worker between micro-batches: (run, bucket) -> (processor, next offset).
_KEPT: dict[tuple[str, int], tuple[Processor, int]] = {}
_KEPT_LOCK = threading.Lock()


def encode_records(records: dict[bytes, bytes]) -> bytes:
    """The records as one value: each key and value preceded by its length (4 bytes)."""
    parts = []
    for key, value in records.items():
        parts += [_LENGTH.pack(len(key)), key, _LENGTH.pack(len(value)), value]
    return b"".join(parts)


def decode_records(data: bytes) -> dict[bytes, bytes]:
    """The records of :func:`encode_records`."""
    records, at, view = {}, 0, memoryview(data)
    while at < len(view):
        fields = []
        for _ in range(2):
            (size,) = _LENGTH.unpack_from(view, at)
            fields.append(bytes(view[at + 4 : at + 4 + size]))
            at += 4 + size
        records[fields[0]] = fields[1]
    return records


def merge_state(
    records: dict[bytes, bytes], changed: Iterable[tuple[bytes, bytes | None]]
) -> dict[bytes, bytes]:
    """Apply a checkpoint's changed records to the bucket's records (``None``: removed)."""
    for key, value in changed:
        if value is None:
            records.pop(key, None)
        else:
            records[key] = value
    return records


class ApplyOperator:
    """``applyInPandasWithState``'s function: a bucket's ticks of a micro-batch through its processor.

    Args: as :class:`marketpulse.spark.bucket_operator.BucketOperator`'s.
    """

    def __init__(
        self,
        settings: ProcessorSettings,
        rules: list,
        prefix: str,
        store_trades: bool,
        quotes: str | None,
        run: str,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.prefix = prefix
        self.store_trades = store_trades
        self.quotes = quotes
        self.run = run

    def __call__(
        self, key: Any, rows: Iterator[pd.DataFrame], state: Any
    ) -> Iterator[pd.DataFrame]:
        """Process a bucket's ticks; update its ``GroupState``; yield the records to write."""
        topics = Topics(self.prefix)
        bucket = int(key[0])
        frame = pd.concat(list(rows), ignore_index=True).sort_values("offset", kind="stable")
        if state.exists:
            data, stored = state.get
            records = decode_records(bytes(data))
        else:
            records, stored = {}, None
        processor = self._processor(topics, bucket, stored, records)
        messages = [
            Message(k, v, int(o), int(t))
            for k, v, o, t in zip(
                frame["key"], frame["value"], frame["offset"], frame["timestamp"], strict=True
            )  # fmt: skip
        ]
        if stored is not None:  # records the bucket has seen (a source replayed from earlier)
            messages = [m for m in messages if m.offset >= stored]
        recorder = Recorder()
        if messages:
            batch = Batch(topics.ticks, bucket, messages[0].offset, messages[-1].offset,
                          messages=messages)  # fmt: skip
            out = processor.process(batch)
            if out.dead:
                out.dead = originals(out.dead, batch)
            send_output(
                recorder, topics, out, bucket, batch, dataset=self.settings.dataset,
                store_trades=self.store_trades, quotes=self.quotes,
            )  # fmt: skip
            merge_state(records, processor.checkpoint(topics.ticks, bucket))
            following = messages[-1].offset + 1
            state.update((encode_records(records), following))
            with _KEPT_LOCK:
                _KEPT[(self.run, bucket)] = (processor, following)
        yield recorder.frame()

    def _processor(
        self, topics: Topics, bucket: int, stored: int | None, records: dict[bytes, bytes]
    ) -> Processor:
        """The bucket's processor: the one this worker kept if it is current, else restored."""
        with _KEPT_LOCK:
            kept = _KEPT.pop((self.run, bucket), None)
        if kept is not None and kept[1] == stored:
            return kept[0]
        processor = Processor(self.settings, self.rules)
        processor.restore(topics.ticks, bucket, dict(records) if stored is not None else {})
        return processor
