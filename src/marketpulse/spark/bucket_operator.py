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

Closing by the clock (``settings.idle_timeout``): each input sets a
processing-time timer ``idle_timeout`` after the micro-batch's time; when it
fires (in a later micro-batch of no input for the bucket),
:meth:`BucketOperator.handleExpiredTimer` advances the bucket's watermark as
``process`` does for an idle partition, and sets the next timer one step later
while bars may still be open. The times are Spark's micro-batch times, which
its offset log keeps: a micro-batch run again closes the same bars.
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
from marketpulse.timeframes import parse_intervals

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
#: The bucket's processing times (ms): of its last input, and of its last closing by the clock.
_CLOCK = StructType([StructField("input_ms", LongType()), StructField("closed_ms", LongType())])

#: Where a bucket's processor stands: (next offset, last closing by the clock in ms, or 0).
_Mark = tuple[int, int]
#: Processors kept by this worker between micro-batches: (run, bucket) -> (processor, mark).
_KEPT: dict[tuple[str, int], tuple[Processor, _Mark]] = {}
_KEPT_LOCK = threading.Lock()
_WEEK_NS = 7 * 86_400 * 1_000_000_000


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
        self._handle = handle
        self._state = handle.getMapState("processor_state", _STATE_KEY, _STATE_VALUE)
        self._next = handle.getValueState("next_offset", _NEXT)
        self._clock = handle.getValueState("clock", _CLOCK)
        self._topics = Topics(self.prefix)
        idle = self.settings.idle_timeout
        self._idle_ms = None if idle is None else max(1, round(idle * 1000))
        fixed = [i.length for i in parse_intervals(self.settings.intervals) if i.fixed]
        #: closing by the clock goes on in steps of the shortest bar, for as long as a
        #: bar may be open (the longest fixed bar, a week for session bars)
        self._step_ms = max(1000, min(fixed, default=0) // 1_000_000)
        longest = max(fixed) if len(fixed) == len(self.settings.intervals) else _WEEK_NS
        self._horizon_ms = (longest + round(self.settings.lateness * 1e9)) // 1_000_000

    def handleInputRows(
        self, key: Any, rows: Iterator[pd.DataFrame], timerValues: Any
    ) -> Iterator[pd.DataFrame]:
        """Process a bucket's ticks of one micro-batch; yield the records for the outputs."""
        bucket = int(key[0])
        frame = pd.concat(list(rows), ignore_index=True).sort_values("offset", kind="stable")
        offsets = frame["offset"].to_numpy()
        stored = self._next.get()[0] if self._next.exists() else None
        processor = self._processor(bucket, stored, self._closed())
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
            self._send(recorder, out, bucket, batch)
            self._save(processor, ticks, bucket)
            following = messages[-1].offset + 1
            self._next.update((following,))
            if self._idle_ms is not None:  # quiet from now: the timer moves on
                now = timerValues.getCurrentProcessingTimeInMs()
                self._clock.update((now, 0))
                self._set_timer(now + self._idle_ms)
            with _KEPT_LOCK:
                _KEPT[(self.run, bucket)] = (processor, (following, 0))
        yield recorder.frame()

    def handleExpiredTimer(
        self, key: Any, timerValues: Any, expiredTimerInfo: Any
    ) -> Iterator[pd.DataFrame]:
        """Close the bars of a bucket quiet for ``idle_timeout`` s, as ``process`` does."""
        bucket = int(key[0])
        recorder = Recorder()
        if self._idle_ms is not None and self._next.exists() and self._clock.exists():
            stored = self._next.get()[0]
            input_ms = self._clock.get()[0]
            now = timerValues.getCurrentProcessingTimeInMs()
            processor = self._processor(bucket, stored, self._closed())
            ticks = self._topics.ticks
            processor.quiet_since(ticks, bucket, input_ms / 1000)
            for out in processor.idle_each(now / 1000).values():
                self._send(recorder, out, bucket, None)
            self._save(processor, ticks, bucket)
            self._clock.update((input_ms, now))
            if now - input_ms < self._horizon_ms + self._idle_ms:  # bars may still be open
                self._set_timer(now + self._step_ms, fired=expiredTimerInfo.getExpiryTimeInMs())
            with _KEPT_LOCK:
                _KEPT[(self.run, bucket)] = (processor, (stored, now))
        yield recorder.frame()

    def _closed(self) -> int:
        """When the bucket's bars last closed by the clock (ms; 0: not since its last input)."""
        return self._clock.get()[1] if self._idle_ms is not None and self._clock.exists() else 0

    def _set_timer(self, at_ms: int, fired: int | None = None) -> None:
        """The bucket's one timer, at ``at_ms`` (``fired``: the one firing now, gone already)."""
        for earlier in list(self._handle.listTimers()):
            if earlier != fired:
                self._handle.deleteTimer(earlier)
        self._handle.registerTimer(at_ms)

    def _send(self, recorder: Recorder, out: Any, bucket: int, batch: Batch | None) -> None:
        """Keep ``out`` (of ``batch``, or closed by the clock) as ``process`` would send it."""
        send_output(
            recorder, self._topics, out, bucket, batch,
            dataset=self.settings.dataset, store_trades=self.store_trades, quotes=self.quotes,
        )  # fmt: skip

    def _save(self, processor: Processor, ticks: str, bucket: int) -> None:
        """Write the bucket's changed state to the store."""
        for state_key, value in processor.checkpoint(ticks, bucket):
            if value is None:
                self._state.removeKey((state_key,))
            else:
                self._state.updateValue((state_key,), (value,))

    def _processor(self, bucket: int, stored: int | None, closed: int) -> Processor:
        """The bucket's processor: the one this worker kept if it is current, else restored."""
        with _KEPT_LOCK:
            kept = _KEPT.pop((self.run, bucket), None)
        if kept is not None and kept[1] == (stored, closed):
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
