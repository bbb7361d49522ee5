"""A feed as a Kafka service: simulator or file in, the ``ticks`` topic out.

Records are JSON (the tagged union of the ticks topic), keyed by symbol, so
Kafka's partitioner keeps every symbol on one partition. The producer is
idempotent with ``acks=all``: a retried batch is never written twice and a
record counts as delivered only once every in-sync replica has it. Rows a
file feed cannot read go to ``dlq`` with the file, line and reason in their
headers. Whatever way the run ends (end of the feed, ``duration``, ``stop``),
everything sent is flushed before :meth:`ProduceService.run` returns.

Batches are encoded whole (:func:`marketpulse.bus.codec.encode_rows`); the
feed reads ahead on its own thread, so parsing a file overlaps with encoding
and sending.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from marketpulse.bus.kafka import KafkaBus, KafkaProducer
from marketpulse.bus.topics import Topics
from marketpulse.config import COMPRESSION, KAFKA_COMPRESSIONS
from marketpulse.exceptions import BusError, ConfigError
from marketpulse.feeds.base import Feed, FeedBatch
from marketpulse.feeds.dataset import feed_dataset
from marketpulse.human import human_bytes, human_duration, human_rate
from marketpulse.pipeline.pacing import paced
from marketpulse.pipeline.threads import Prefetch, interrupter

__all__ = ["ProduceOptions", "ProduceService", "ProduceStats"]

logger = logging.getLogger(__name__)

#: Feed batch kind -> row kind of :func:`~marketpulse.bus.codec.encode_rows`.
_ROW_KINDS = {"trade": "trade", "bar": "bars", "quote": "quote"}


@dataclass(frozen=True, slots=True)
class ProduceOptions:
    """How the produce service runs.

    Attributes:
        compression: codec of the records (one of ``config.KAFKA_COMPRESSIONS``).
        speed: replay a file at this multiple of its event-time pace; ``None``
            sends as fast as the broker takes it.
        duration: stop after this many seconds (by setting the service's ``stop``);
            ``None`` runs until the feed ends.
        linger_ms: how long the producer waits to fill a batch.
        flush_timeout: seconds the final flush waits for acknowledgements.
        dataset: the dataset of the feed's dead letters (their ``dataset``
            header); ``None``: the feed's default (``feeds.dataset.feed_dataset``).

    Raises:
        ConfigError: a value is out of range.
    """

    compression: str = COMPRESSION
    speed: float | None = None
    duration: float | None = None
    linger_ms: float = 5.0
    flush_timeout: float = 30.0
    dataset: str | None = None

    def __post_init__(self) -> None:
        if self.compression not in KAFKA_COMPRESSIONS:
            raise ConfigError(
                f"compression: unknown codec {self.compression!r} "
                f"(choose {', '.join(KAFKA_COMPRESSIONS)})"
            )
        for name in ("speed", "duration"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{name}: expected a positive number, got {value!r}")
        if self.linger_ms < 0 or not self.flush_timeout > 0:
            raise ConfigError("linger_ms must be >= 0 and flush_timeout > 0")


@dataclass(slots=True)
class ProduceStats:
    """What the service has sent since it started.

    Attributes:
        ticks: records sent to ``ticks``.
        dead: unreadable rows sent to ``dlq``.
        failed: records the cluster did not accept (delivery reports).
        unacknowledged: records still unconfirmed when the final flush gave up.
        errors: the first delivery errors.
        done: progress through the feed (bytes of a file, events of a simulator).
        total: size of the feed in the same unit, when known.
        exhausted: the feed ran to its end.
    """

    ticks: int = 0
    dead: int = 0
    failed: int = 0
    unacknowledged: int = 0
    errors: list[str] = field(default_factory=list)
    done: int = 0
    total: int | None = None
    exhausted: bool = False
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def elapsed(self) -> float:
        """Seconds since the start (until the end, once ended)."""
        return (self.ended or time.monotonic()) - self.started

    @property
    def ok(self) -> bool:
        """Whether every record sent was acknowledged."""
        return not self.failed and not self.unacknowledged

    def line(self) -> str:
        """One line of figures for logs and the terminal."""
        rate = human_rate(self.ticks, self.elapsed)
        read = "" if self.total is None else f" ({human_bytes(self.done)} read)"
        text = (
            f"produced {self.ticks:,} ticks{read} in {human_duration(self.elapsed)}, {rate}/s, "
            f"failed {self.failed:,}, "
            f"{self.dead:,} malformed rows to dlq"
        )
        if self.unacknowledged:
            text += f", {self.unacknowledged:,} unacknowledged"
        return text


class ProduceService:
    """Publish a feed to the ticks topic of a Kafka cluster.

    Args:
        bus: the Kafka cluster.
        topics: topic names (``ticks`` and ``dlq`` must exist).
        feed: where ticks come from; closed when the service stops.
        options: compression, pacing, duration.
        stop: set it to stop; the service flushes what it sent and returns.
        on_progress: called with the figures after each batch (in the service's thread).
    """

    def __init__(
        self,
        bus: KafkaBus,
        topics: Topics,
        feed: Feed,
        options: ProduceOptions | None = None,
        stop: threading.Event | None = None,
        on_progress: Callable[[ProduceStats], None] | None = None,
    ) -> None:
        self.bus = bus
        self.topics = topics
        self.feed = feed
        self.options = options or ProduceOptions()
        #: the dataset of the feed's dead letters (their ``dataset`` header)
        self._dataset = self.options.dataset or feed_dataset(feed)
        self.stop = stop or threading.Event()
        self.on_progress = on_progress
        self.stats = ProduceStats()

    def run(self) -> ProduceStats:
        """Send the feed until it ends, ``duration`` passes or ``stop`` is set; flush; report.

        Raises:
            BusError: ``ticks`` or ``dlq`` does not exist, or the cluster refused a record.
        """
        opts, topics = self.options, self.topics
        partitions = self.bus.partitions(topics.ticks)
        self.bus.partitions(topics.name("dlq"))
        logger.info(
            "produce: feed %s to %s (%d partitions), compression %s, bootstrap %s",
            self.feed.name, topics.ticks, partitions, opts.compression,
            self.bus.settings.bootstrap,
        )  # fmt: skip
        producer = self.bus.producer(compression=opts.compression, linger_ms=opts.linger_ms)
        timer = None
        if opts.duration is not None:
            timer = threading.Timer(opts.duration, self.stop.set)
            timer.daemon = True
            timer.start()
        self.stats = ProduceStats()
        try:
            self._loop(producer)
        finally:
            if timer is not None:
                timer.cancel()
            self.feed.close()
            self._flush(producer)
        logger.debug("produce: stopped after %s", self.stats.line())  # the command prints it
        return self.stats

    def _loop(self, producer: KafkaProducer) -> None:
        # ``stop`` ends the wait for the next batch too: a live feed that cannot
        # connect yields none, and the deadline or Ctrl-C must not wait for one
        ahead = iter(Prefetch(self.feed.batches(), stop=self.stop,
                              interrupt=interrupter(self.feed)))  # fmt: skip
        batches = paced(ahead, self.options.speed, self.stop)
        try:
            for batch in batches:
                self._send(producer, batch)
                if self.stop.is_set():
                    break
            else:
                self.stats.exhausted = not self.stop.is_set()
        finally:
            batches.close()
            ahead.close()  # stops the read-ahead thread

    def _send(self, producer: KafkaProducer, batch: FeedBatch) -> None:
        stats = self.stats
        if batch.dead:
            producer.send_dead(self.topics.name("dlq"), batch.dead, dataset=self._dataset)
            stats.dead += len(batch.dead)
        if batch.data.num_rows:
            producer.send_columns(self.topics.ticks, _ROW_KINDS[batch.kind], _fields(batch.data))
            stats.ticks += batch.data.num_rows
        stats.done, stats.total = batch.done, batch.total
        stats.failed = producer.failed
        if self.on_progress is not None:
            self.on_progress(stats)

    def _flush(self, producer: KafkaProducer) -> None:
        """Wait for every record to be acknowledged (up to ``flush_timeout``)."""
        stats = self.stats
        try:
            producer.flush(self.options.flush_timeout)
        except BusError as exc:
            stats.unacknowledged = producer.sent - producer.failed - producer.delivered
            logger.error("produce: %s", exc)
        stats.failed = producer.failed
        stats.errors = list(producer.errors)
        stats.ended = time.monotonic()


def _fields(data: pa.RecordBatch) -> pa.RecordBatch:
    """Return the message's columns, dictionaries decoded, for the encoder.

    The file's ``line`` column is not part of the message, nor is a ``dataset``
    column (the processor names the dataset of what it reads). Dictionary columns
    (the symbol) are decoded here in one vectorised cast: the encoder reads
    columns as Python lists, and a dictionary array converts to one about 40
    times slower than a plain string array.
    """
    dropped = [name for name in ("line", "dataset") if name in data.schema.names]
    if dropped:
        data = data.drop_columns(dropped)
    for index, column in enumerate(data.columns):
        if pa.types.is_dictionary(column.type):
            name = data.schema.field(index).name
            data = data.set_column(index, name, column.cast(column.type.value_type))
    return data
