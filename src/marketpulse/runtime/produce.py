"""A feed as a service: simulator or file in, the ``ticks`` topic out.

It runs on any bus of the contract (:mod:`marketpulse.bus.base`). Records are
keyed by symbol, so every symbol stays on one partition
(:func:`~marketpulse.bus.base.partition_for`); rows a file feed cannot read go
to ``dlq`` with the file, line, reason and dataset. Each bus carries them its
own way: on Kafka, JSON records (the tagged union of the ticks topic, encoded
a batch at a time) and dead letters with what went wrong in their headers,
from an idempotent producer with ``acks=all`` (a retried batch is never
written twice, a record counts as delivered once every in-sync replica has
it); on the embedded bus, the feed's Arrow columns as they are. Whatever way
the run ends (end of the feed, ``duration``, ``stop``), everything sent is
flushed before :meth:`ProduceService.run` returns.

The feed reads ahead on its own thread, so parsing a file overlaps with
encoding and sending. With :attr:`ProduceOptions.segments`, a file replay
also marks where each of its segments begins and ends on every ``ticks``
partition (:mod:`marketpulse.runtime.segments`): on a bus whose offsets
restart with every run, the lake names its files after them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from marketpulse.bus.base import Bus, Producer
from marketpulse.bus.topics import Topics
from marketpulse.config import COMPRESSION, KAFKA_COMPRESSIONS
from marketpulse.exceptions import BusError, ConfigError
from marketpulse.feeds.base import Feed, FeedBatch
from marketpulse.feeds.dataset import feed_dataset
from marketpulse.human import human_bytes, human_duration, human_rate
from marketpulse.runtime.heap_trim import start_trimming
from marketpulse.runtime.pacing import paced
from marketpulse.runtime.prefetch import Prefetch, interrupter
from marketpulse.runtime.segments import (
    MARK_KIND,
    Segments,
    begin_mark,
    end_mark,
    source_end_mark,
)

__all__ = ["ProduceOptions", "ProduceService", "ProduceStats"]

logger = logging.getLogger(__name__)

#: A paced replay (``speed``) also ends a segment after this many seconds, so
#: that the lake follows it.
_PACED_SEGMENT_S = 5.0


@dataclass(frozen=True, slots=True)
class ProduceOptions:
    """How the produce service runs.

    Attributes:
        compression: codec of the records (one of ``config.KAFKA_COMPRESSIONS``;
            a bus that does not compress ignores it).
        speed: replay a file at this multiple of its event-time pace; ``None``
            sends as fast as the broker takes it.
        duration: stop after this many seconds (by setting the service's ``stop``);
            ``None`` runs until the feed ends.
        linger_ms: how long the producer waits to fill a batch (Kafka). 1 ms:
            a tick waits at most that long for others before it leaves (it
            was 5 ms, the largest single part of a tick's way to its
            indicator at 10,000 ticks/s, ``bench/bench_kafka_latency.py``);
            a replay at full speed fills its batches regardless.
        flush_timeout: seconds the final flush waits for acknowledgements.
        dataset: the dataset of the feed's dead letters (their ``dataset``
            header); ``None``: the feed's default (``feeds.dataset.feed_dataset``).
        segments: mark the bounds of a file replay's segments on every
            ``ticks`` partition (the in-memory bus: see
            :mod:`marketpulse.runtime.segments`), and send the feed's dead
            letters through ``ticks`` too, within their segment's marks.

    Raises:
        ConfigError: a value is out of range.
    """

    compression: str = COMPRESSION
    speed: float | None = None
    duration: float | None = None
    linger_ms: float = 1.0
    flush_timeout: float = 30.0
    dataset: str | None = None
    segments: bool = False

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
        ticks: records sent to ``ticks`` (trades, bars, quotes).
        quotes: of those, quotes.
        dead: unreadable rows sent to ``dlq``.
        failed: records the bus did not accept (Kafka's delivery reports).
        unacknowledged: records still unconfirmed when the final flush gave up.
        errors: the first delivery errors.
        done: progress through the feed (bytes of a file, events of a simulator).
        total: size of the feed in the same unit, when known.
        exhausted: the feed ran to its end.
    """

    ticks: int = 0
    quotes: int = 0
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
    """Publish a feed to the ticks topic of a bus.

    Args:
        bus: the bus (Kafka, or the embedded one).
        topics: topic names (``ticks`` and ``dlq`` must exist).
        feed: where ticks come from; closed when the service stops.
        options: compression, pacing, duration.
        stop: set it to stop; the service flushes what it sent and returns.
        on_progress: called with the figures after each batch (in the service's thread).
    """

    def __init__(
        self,
        bus: Bus,
        topics: Topics,
        feed: Feed,
        options: ProduceOptions | None = None,
        stop: threading.Event | None = None,
        on_progress: Callable[[ProduceStats], None] | None = None,
    ) -> None:
        self.bus = bus
        self._durable = getattr(bus, "durable", True)
        #: The level of the service's own progress lines: INFO on a bus of its own
        #: (Kafka), DEBUG as a stage of one process (the in-memory bus: the runner speaks).
        self._info = logging.INFO if self._durable else logging.DEBUG
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
            BusError: ``ticks`` or ``dlq`` does not exist, or the bus refused a record.
        """
        start_trimming()  # a queue that waited for the broker is given back once sent
        opts, topics = self.options, self.topics
        partitions = self.bus.partitions(topics.ticks)
        self.bus.partitions(topics.name("dlq"))
        logger.log(
            self._info,
            "produce: feed %s to %s (%d partitions), compression %s, on %s",
            self.feed.name, topics.ticks, partitions, opts.compression, self.bus,
        )  # fmt: skip
        producer = self.bus.producer(compression=opts.compression, linger_ms=opts.linger_ms)
        timer = None
        if opts.duration is not None:
            timer = threading.Timer(opts.duration, self.stop.set)
            timer.daemon = True
            timer.start()
        self.stats = ProduceStats()
        self._partitions = partitions
        try:
            self._loop(producer)
        finally:
            if timer is not None:
                timer.cancel()
            self.feed.close()
            self._flush(producer)
        logger.debug("produce: stopped after %s", self.stats.line())  # the command prints it
        return self.stats

    def _loop(self, producer: Producer) -> None:
        # ``stop`` ends the wait for the next batch too: a live feed that cannot
        # connect yields none, and the deadline or Ctrl-C must not wait for one
        ahead = iter(Prefetch(self.feed.batches(), stop=self.stop,
                              interrupt=interrupter(self.feed)))  # fmt: skip
        batches = paced(ahead, self.options.speed, self.stop)
        segments = None
        if self.options.segments and getattr(self.feed, "identity", None) is not None:
            segments = Segments(max_age_s=None if self.options.speed is None else _PACED_SEGMENT_S)
        begun = 0  # the first line of the segment last begun (0: none)
        try:
            for batch in batches:
                if segments is None:
                    self._send(producer, batch)
                else:
                    for first, item in segments.split(batch):
                        if isinstance(item, FeedBatch):
                            if first != begun:
                                begun = first
                                self._mark(producer, begin_mark(first))
                            self._send(producer, item)
                        else:
                            self._mark(producer, end_mark(first, item))
                self._progressed(producer, batch)
                if self.stop.is_set():
                    break
            else:
                self.stats.exhausted = not self.stop.is_set()
        finally:
            batches.close()
            ahead.close()  # stops the read-ahead thread
            if segments is not None:
                if self.stats.exhausted:  # the last windows close within the last segment
                    self._mark(producer, source_end_mark())
                ended = segments.end()
                if ended is not None:
                    self._mark(producer, end_mark(*ended))

    def _send(self, producer: Producer, batch: FeedBatch) -> None:
        stats = self.stats
        if batch.dead:
            # with segments, the feed's dead letters travel in theirs, through ``ticks``:
            # the process service passes them on to ``dlq`` between the same marks
            topic = self.topics.ticks if self.options.segments else self.topics.name("dlq")
            producer.send_dead(topic, batch.dead, dataset=self._dataset)
            stats.dead += len(batch.dead)
        if batch.data.num_rows:
            producer.send_columns(self.topics.ticks, batch.kind, self._columns(batch.data))
            stats.ticks += batch.data.num_rows
            if batch.kind == "quote":
                stats.quotes += batch.data.num_rows

    def _columns(self, data: pa.RecordBatch) -> pa.RecordBatch:
        """What goes to ``ticks``: a message's fields (Kafka), or every column.

        On the in-memory bus the columns keep the file's lines and the feed's
        name: the processor's dead letters then name where a row it refuses is.
        """
        if self._durable:
            return _fields(data)
        return data.replace_schema_metadata({"source": self.feed.name})

    def _mark(self, producer: Producer, mark: pa.Table) -> None:
        """Send a segment's mark to every ``ticks`` partition."""
        for partition in range(self._partitions):
            producer.send_rows(self.topics.ticks, MARK_KIND, mark, partition)

    def _progressed(self, producer: Producer, batch: FeedBatch) -> None:
        stats = self.stats
        stats.done, stats.total = batch.done, batch.total
        stats.failed = producer.failed
        if self.on_progress is not None:
            self.on_progress(stats)

    def _flush(self, producer: Producer) -> None:
        """Wait for every record to be acknowledged (up to ``flush_timeout``)."""
        stats = self.stats
        try:
            producer.flush(self.options.flush_timeout)
        except BusError as exc:
            stats.unacknowledged = producer.in_flight
            logger.error("produce: %s", exc)
        stats.failed = producer.failed
        stats.errors = list(producer.errors)
        stats.ended = time.monotonic()


def _fields(data: pa.RecordBatch) -> pa.RecordBatch:
    """Return the message's columns.

    The file's ``line`` column is not part of the message, nor is a ``dataset``
    column (the processor names the dataset of what it reads).
    """
    dropped = [name for name in ("line", "dataset") if name in data.schema.names]
    return data.drop_columns(dropped) if dropped else data
