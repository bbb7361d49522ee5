"""``foreachBatch``: one micro-batch's records to the output topics, the lake and the databases.

Spark runs a micro-batch again after a failure (from its checkpoint, with the
same input and state), so every write here is idempotent by batch id:

* the topics: the records and a progress record (this query's last batch id,
  in a compacted topic of its own) commit in one Kafka transaction; a batch
  whose id is not above the committed one is not written again. The
  transactional id is the query's, so a restarted driver fences its
  predecessor and aborts what it left open.
* the lake: a bucket's rows of a batch go to files named after the bucket
  and the batch id, which a rerun replaces.
* PostgreSQL and InfluxDB: upserts on the rows' natural keys.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import confluent_kafka as ck
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.bus.codec import decode_dead_letters, decode_rows
from marketpulse.bus.topics import Topics
from marketpulse.exceptions import BusError
from marketpulse.sinks.base import Sink, SourceRange

if TYPE_CHECKING:
    from marketpulse.bus.kafka import KafkaBus

__all__ = ["BatchWriter", "WriterStats"]

logger = logging.getLogger(__name__)

#: Seconds a transaction's steps may take.
_STEP_S = 60.0


class WriterStats:
    """What the writer wrote: micro-batches, records per topic, batches found committed."""

    def __init__(self) -> None:
        self.batches = 0
        self.skipped = 0
        self.records: dict[str, int] = {}

    def line(self) -> str:
        """The figures in one line, for the command's summary."""
        counts = ", ".join(f"{n:,} {t}" for t, n in self.records.items() if n) or "no records"
        again = f" ({self.skipped} already on the topics)" if self.skipped else ""
        return f"{self.batches} micro-batches{again}: {counts}"


class BatchWriter:
    """Writes each micro-batch's records (the operator's output) where they go.

    Args:
        bus: the Kafka cluster of the output topics.
        topics: the topic names.
        query: the query's name: the transactional id and progress key derive from it.
        sinks: storage written besides the topics (the lake, databases).
        to_kafka: write the output topics.
    """

    def __init__(
        self,
        bus: KafkaBus,
        topics: Topics,
        query: str,
        sinks: Sequence[Sink] = (),
        to_kafka: bool = True,
    ) -> None:
        self.bus = bus
        self.topics = topics
        self.query = query
        self.sinks = tuple(sinks)
        self.to_kafka = to_kafka
        self.progress_topic = f"{topics.prefix}spark-progress"
        self.stats = WriterStats()
        self._producer: ck.Producer | None = None
        self._committed: int | None = None  # the last batch id on the topics (-1: none)

    def __call__(self, frame: Any, batch_id: int) -> None:
        """Spark's ``foreachBatch`` function: write micro-batch ``batch_id``."""
        self.write(frame.toArrow(), batch_id)

    def write(self, records: pa.Table, batch_id: int) -> None:
        """Write the records of micro-batch ``batch_id`` (columns of the operator's output)."""
        started = time.monotonic()
        if records.num_rows:
            records = records.sort_by([("partition", "ascending"), ("seq", "ascending")])
        if self.to_kafka:
            self._to_topics(records, batch_id)
        for sink in self.sinks:
            _to_sink(sink, self.topics, records, batch_id)
        self.stats.batches += 1
        for topic, count in _counts(records).items():
            short = self.topics.table(topic)
            self.stats.records[short] = self.stats.records.get(short, 0) + count
        logger.debug("spark: batch %d: %d records written in %.2f s",
                     batch_id, records.num_rows, time.monotonic() - started)  # fmt: skip

    def close(self) -> None:
        """Close the producer and the sinks (flushing what they hold)."""
        if self._producer is not None:
            self._producer.flush(_STEP_S)
            self._producer = None
        for sink in self.sinks:
            sink.close()

    # -- the topics ----------------------------------------------------------------

    def _to_topics(self, records: pa.Table, batch_id: int) -> None:
        producer = self._transactional()
        if self._committed is not None and batch_id <= self._committed:
            self.stats.skipped += 1
            logger.info("spark: batch %d is already on the topics: not written again", batch_id)
            return
        if not records.num_rows:
            return
        try:
            producer.begin_transaction()
            _produce(producer, records)
            progress = json.dumps({"batch": batch_id}).encode()
            producer.produce(self.progress_topic, progress, self.query.encode(), 0)
            producer.commit_transaction(_STEP_S)
        except ck.KafkaException as exc:
            error = exc.args[0]
            if not error.fatal() and error.txn_requires_abort():
                producer.abort_transaction(_STEP_S)
            raise BusError(f"spark: batch {batch_id} not written to the topics: "
                           f"{error.str()}") from None  # fmt: skip
        self._committed = batch_id

    def _transactional(self) -> ck.Producer:
        """The query's transactional producer; its start fences an earlier driver's."""
        if self._producer is not None:
            return self._producer
        self._ensure_progress_topic()
        config = self.bus.transactional_config(f"{self.topics.prefix}spark.{self.query}")
        producer = ck.Producer(config)
        try:
            producer.init_transactions(_STEP_S)
        except ck.KafkaException as exc:
            raise BusError(
                f"spark: cannot start the output transactions: {exc.args[0].str()}"
            ) from None
        latest = self.bus.read_partition(self.progress_topic, 0).get(self.query.encode())
        self._committed = json.loads(latest)["batch"] if latest else -1
        self._producer = producer
        return producer

    def _ensure_progress_topic(self) -> None:
        from confluent_kafka.admin import NewTopic

        admin = self.bus.admin()
        if self.progress_topic in admin.list_topics(timeout=10).topics:
            return
        spec = NewTopic(self.progress_topic, num_partitions=1, replication_factor=-1,
                        config={"cleanup.policy": "compact"})  # fmt: skip
        try:
            admin.create_topics([spec])[self.progress_topic].result(timeout=30)
        except ck.KafkaException as exc:
            if exc.args[0].code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                raise BusError(
                    f"cannot create {self.progress_topic}: {exc.args[0].str()}"
                ) from None


def _produce(producer: ck.Producer, records: pa.Table) -> None:
    """Hand the records to the client (each to the partition it names), serving its queue."""
    columns = [records.column(n).to_pylist() for n in ("topic", "partition", "key", "value")]
    headers = records.column("headers").to_pylist()
    for (topic, partition, key, value), header in zip(zip(*columns, strict=True), headers,
                                                      strict=True):  # fmt: skip
        extra = {"headers": [(h["key"], h["value"]) for h in header]} if header else {}
        while True:
            try:
                producer.produce(topic, value, key, partition, **extra)
                break
            except BufferError:
                producer.poll(0.05)


def _counts(records: pa.Table) -> dict[str, int]:
    if not records.num_rows:
        return {}
    counted = records.group_by("topic").aggregate([("seq", "count")])
    return dict(zip(counted.column("topic").to_pylist(), counted.column("seq_count").to_pylist(),
                    strict=True))  # fmt: skip


def _to_sink(sink: Sink, topics: Topics, records: pa.Table, batch_id: int) -> None:
    """Decode the records per topic and bucket; write them as from offsets ``batch_id``."""
    if records.num_rows:
        for topic in pc.unique(records.column("topic")).to_pylist():
            table = topics.table(topic)
            of_topic = records.filter(pc.equal(records.column("topic"), topic))
            for partition in pc.unique(of_topic.column("partition")).to_pylist():
                part = of_topic.filter(pc.equal(of_topic.column("partition"), partition))
                rows = _rows(table, part, f"{topic}[{partition}] of batch {batch_id}")
                sink.write(table, rows, SourceRange(partition, batch_id, batch_id))
    sink.flush()


def _rows(table: str, records: pa.Table, where: str) -> pa.Table:
    values = records.column("value").to_pylist()
    if table == "dlq":
        headers = [
            [(h["key"], h["value"]) for h in header] if header else []
            for header in records.column("headers").to_pylist()
        ]
        now = time.time_ns()
        keys = records.column("key").to_pylist()
        return decode_dead_letters(keys, values, headers, [now] * len(values))
    rows, errors = decode_rows(table, values)
    if errors:  # the operator encoded them: a bug, not bad input
        raise BusError(f"spark: {where}: record {errors[0][0]}: {errors[0][1]}")
    return rows
