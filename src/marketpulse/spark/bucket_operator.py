"""The stateful operator: one bucket (a ``ticks`` partition) at a time through the processor.

Spark calls :meth:`BucketOperator.handleInputRows` once per micro-batch for
each bucket with input, in a Python worker. The bucket's processor state
lives in Spark's state store: a map of the processor's checkpoint records
(:meth:`~marketpulse.stream.Processor.checkpoint`: the changed symbols' state,
as the ``state`` topic holds it for ``process``) and the next offset expected.
A worker keeps the processor of each bucket it ran between micro-batches, and
uses it again only while the store's next offset is the one it left: after a
failed task, a retried batch or another worker's turn, the bucket is restored
from the store (:meth:`~marketpulse.stream.Processor.restore`), so the outputs
of a micro-batch run again are those of its first run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd
from pyspark.sql.streaming import StatefulProcessor, StatefulProcessorHandle
from pyspark.sql.types import BinaryType, LongType, StructField, StructType

from marketpulse.bus.base import Batch, Message
from marketpulse.bus.topics import Topics
from marketpulse.runtime.forward import originals, send_output
from marketpulse.spark.records import Recorder
from marketpulse.stream import Processor, ProcessorSettings
from marketpulse.stream.checkpoint import CheckpointError

if TYPE_CHECKING:
    from marketpulse.alerts import Rule

__all__ = ["OUTPUT_SCHEMA", "BucketOperator"]

#: The operator's output rows: the records ``process`` would produce, in order per bucket.
OUTPUT_SCHEMA = (
    "topic STRING, partition INT, seq LONG, key BINARY, value BINARY, "
    "headers ARRAY<STRUCT<key: STRING, value: BINARY>>"
)
_STATE_KEY = StructType([StructField("key", BinaryType())])
_STATE_VALUE = StructType([StructField("value", BinaryType())])
_NEXT = StructType([StructField("offset", LongType())])

#: Processors kept by this worker between micro-batches: (run, bucket) -> (processor, next offset).
_KEPT: dict[tuple[str, int], tuple[Processor, int]] = {}
_KEPT_LOCK = threading.Lock()


class BucketOperator(StatefulProcessor):
    """Runs a bucket's ticks through its processor; yields the records to write.

    Args:
        settings: the processor's settings (as ``process`` builds them).
        rules: the alert rules.
        prefix: the topics' prefix: the records name the output topics as ``process``'s do.
        store_trades: keep the trades read (``trades`` topic), as ``process`` does.
        quotes: the ``quotes`` topic's name where it exists (``None``: quotes not kept).
        run: this run's id: processors kept by a worker serve only the run that made them.
    """

    def __init__(
        self,
        settings: ProcessorSettings,
        rules: list[Rule],
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

    def init(self, handle: StatefulProcessorHandle) -> None:
        """Open the bucket's state: the processor's checkpoint records and the next offset."""
        self._state = handle.getMapState("processor_state", _STATE_KEY, _STATE_VALUE)
        self._next = handle.getValueState("next_offset", _NEXT)
        self._topics = Topics(self.prefix)

    def handleInputRows(
        self, key: Any, rows: Iterator[pd.DataFrame], timerValues: Any
    ) -> Iterator[pd.DataFrame]:
        """Process a bucket's ticks of one micro-batch; yield the records for the outputs."""
        bucket = int(key[0])
        frame = pd.concat(list(rows), ignore_index=True).sort_values("offset", kind="stable")
        offsets = frame["offset"].to_numpy()
        stored = self._next.get()[0] if self._next.exists() else None
        processor = self._processor(bucket, stored)
        ticks = self._topics.ticks
        messages = [
            Message(k, v, int(o), int(t))
            for k, v, o, t in zip(
                frame["key"], frame["value"], offsets, frame["timestamp"], strict=True
            )  # fmt: skip
        ]
        if stored is not None:  # records the bucket has seen (a source replayed from earlier)
            messages = [m for m in messages if m.offset >= stored]
        recorder = Recorder()
        if messages:
            batch = Batch(ticks, bucket, messages[0].offset, messages[-1].offset,
                          messages=messages)  # fmt: skip
            out = processor.process(batch)
            if out.dead:
                out.dead = originals(out.dead, batch)
            send_output(
                recorder, self._topics, out, bucket, batch,
                dataset=self.settings.dataset, store_trades=self.store_trades,
                quotes=self.quotes,
            )  # fmt: skip
            for state_key, value in processor.checkpoint(ticks, bucket):
                if value is None:
                    self._state.removeKey((state_key,))
                else:
                    self._state.updateValue((state_key,), (value,))
            following = messages[-1].offset + 1
            self._next.update((following,))
            with _KEPT_LOCK:
                _KEPT[(self.run, bucket)] = (processor, following)
        yield recorder.frame()

    def _processor(self, bucket: int, stored: int | None) -> Processor:
        """The bucket's processor: the one this worker kept if it is current, else restored."""
        with _KEPT_LOCK:
            kept = _KEPT.pop((self.run, bucket), None)
        if kept is not None and kept[1] == stored:
            return kept[0]
        processor = Processor(self.settings, self.rules)
        records = {k[0]: v[0] for k, v in self._state.iterator()} if stored is not None else {}
        try:
            processor.restore(self._topics.ticks, bucket, records)
        except CheckpointError as exc:  # the query stops; the command prints this line
            advice = str(exc).replace("start over on new topics", "start a new --checkpoint")
            raise CheckpointError(f"bucket {bucket} of the checkpoint: {advice}") from None
        return processor

    def close(self) -> None:
        """Nothing to release: the kept processors serve the next micro-batches."""
