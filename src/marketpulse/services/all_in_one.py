"""Every stage in one process, on any bus of the contract: ``marketpulse run --kafka``.

The produce, process and lake-sink services run on their own threads, exactly
as they do as separate commands (the same classes, the same consumer groups
semantics, the same transactions), on Kafka (``run --kafka``) as on the
in-memory bus (:class:`~marketpulse.bus.MemoryBus`): nothing here depends on
the transport. This module only starts them, feeds the
live view and metrics, and stops them in order so that everything accepted
is flushed: the feed first (the producer flushes), then the processor once it
has had no input for a moment (it commits), then the sink once it has caught
up with the committed outputs (it writes its files and commits). What the
stages read and emit is counted, shown and notified by the same
:class:`~marketpulse.observe.OutputObserver` as the embedded pipeline's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from marketpulse.alerts import JsonLinesNotifier, Rule
from marketpulse.bus.base import Batch, Bus
from marketpulse.bus.topics import Topics, topic_specs
from marketpulse.config import (
    COMPRESSION,
    TOPIC_PARTITIONS,
    TOPIC_REPLICATION,
    TOPIC_RETENTION_HOURS,
    ProcessSettings,
)
from marketpulse.feeds.base import Feed, FeedBatch
from marketpulse.observe import MarketView, Metrics, MetricsSnapshot, OutputObserver
from marketpulse.services.process import ProcessOptions, ProcessService
from marketpulse.services.produce import ProduceOptions, ProduceService, ProduceStats
from marketpulse.services.sink import SinkOptions, SinkService
from marketpulse.sinks import LakeSink
from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.stream import Output, Processor, ProcessorSettings

__all__ = ["ServicesPipeline", "ServicesPipelineOptions"]

logger = logging.getLogger(__name__)

#: Seconds without input after which a draining stage counts as caught up.
_DRAINED_AFTER = 1.0


@dataclass(frozen=True, slots=True)
class ServicesPipelineOptions:
    """How the services run together (``run --kafka``).

    Attributes:
        lake: the Parquet lake the sink writes (a location carries its ``[s3]``
            settings; a root given as text reaches S3 with the SDK's defaults only).
        rules: alert rules.
        processor: bar windowing settings; its ``dataset`` names every output of
            the run, the feed's dead letters too.
        alerts_file: JSON-lines file alerts are appended to ("" for none).
        duration: stop after this many seconds; ``None`` runs until stopped.
        partitions: partitions of topics this run creates (existing ones are kept).
        replication: replication factor of topics this run creates (a bus
            without replicas ignores it).
        retention_hours: retention of the data topics this run creates (a bus
            without retention ignores it).
        compression: codec of the produced records.
        process: the processor service's timings (commit interval, ...).
        group_prefix: prefix of the consumer groups (``<prefix>process``, ``<prefix>sink-lake``).
        drain_timeout: seconds each stage may take to catch up when stopping.
    """

    lake: str | LakeLocation
    rules: list[Rule] = field(default_factory=list)
    processor: ProcessorSettings = field(default_factory=ProcessorSettings)
    alerts_file: str = ""
    duration: float | None = None
    partitions: int = TOPIC_PARTITIONS
    replication: int = TOPIC_REPLICATION
    retention_hours: float = TOPIC_RETENTION_HOURS
    compression: str = COMPRESSION
    process: ProcessSettings = field(default_factory=ProcessSettings)
    group_prefix: str = "marketpulse-run-"
    drain_timeout: float = 60.0


class ServicesPipeline:
    """Run a feed through a bus into the lake, with every stage in this process.

    Args:
        bus: the bus the stages talk through (Kafka: checked reachable).
        topics: topic names; missing topics are created.
        feed: where ticks come from.
        options: how to run.
        metrics: counters to update (a new set by default).
        view: per-symbol view to update for live displays (optional).
        progress: called with (done, total) after each feed batch.
    """

    def __init__(
        self,
        bus: Bus,
        topics: Topics,
        feed: Feed,
        options: ServicesPipelineOptions,
        metrics: Metrics | None = None,
        view: MarketView | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> None:
        self.bus = bus
        self.topics = topics
        self.options = options
        self.metrics = metrics or Metrics()
        self.view = view
        # latency samples are epoch seconds: from a record's timestamp to now
        self._observer = OutputObserver(self.metrics, view, clock=time.time)
        self.feed = _Tapped(feed, self._observer)
        self._progress = progress
        self._produced = 0
        self._dead_in = 0
        self._lock = threading.Lock()
        self._lake: LakeSink | None = None

    def run(self, stop: threading.Event | None = None) -> MetricsSnapshot:
        """Run until the feed ends, ``duration`` passes or ``stop`` is set; drain; report."""
        stop = stop or threading.Event()
        opts = self.options
        self._create_topics()
        feed_stop, process_stop, sink_stop = threading.Event(), threading.Event(), threading.Event()
        producer = ProduceService(
            self.bus, self.topics, self.feed,
            ProduceOptions(compression=opts.compression, duration=opts.duration,
                           dataset=opts.processor.dataset),
            feed_stop, self._produced_some,
        )  # fmt: skip
        processor = ProcessService(
            self.bus, self.topics, Processor(opts.processor, opts.rules),
            ProcessOptions(group=f"{opts.group_prefix}process", compression=opts.compression,
                           **asdict(opts.process)),
            process_stop, self._processed,
        )  # fmt: skip
        self._lake = LakeSink(opts.lake)
        sink = SinkService(
            self.bus, self.topics, self._lake,
            SinkOptions(group=f"{opts.group_prefix}sink-lake"), sink_stop,
        )  # fmt: skip
        if opts.alerts_file:
            self._observer.notifier = JsonLinesNotifier(opts.alerts_file)
        logger.info(
            "services pipeline starting: feed %s, %s, topics %s*, lake %s",
            self.feed.name, self.bus, self.topics.prefix, opts.lake,
        )  # fmt: skip
        if hasattr(self.view, "extra_figures"):  # the dashboard's pipeline page
            self.view.extra_figures = lambda: {  # type: ignore[union-attr]
                "lag": {f"{self.topics.ticks}[{p}]": n for p, n in processor.lag.items()}
            }
        stages = [_Stage("sink", sink.run), _Stage("process", processor.run)]
        for stage in stages:
            stage.start()
        feed = _Stage("produce", producer.run)
        feed.start()
        try:
            while not feed.done.wait(0.1):
                if stop.is_set() or any(s.done.is_set() for s in stages):
                    break
        finally:
            logger.info("services pipeline stopping: flushing what was accepted")
            feed_stop.set()
            feed.join()
            if producer.stats.exhausted:  # a finished replay: its last windows close too
                processor.input_ended.set()
            self._drain(processor, process_stop, stages[1])
            self._drain(sink, sink_stop, stages[0])
            self._observer.close()
        for stage in (feed, *stages):
            stage.raise_failure()
        snapshot = self.metrics.snapshot()
        # the figures once: the caller shows them (the CLI's final summary)
        logger.debug("services pipeline stopped: %s", snapshot.summary())
        return snapshot

    def lake_written(self) -> tuple[int, int] | None:
        """Files and bytes the run's lake sink wrote (``None``: not run yet)."""
        if self._lake is None:
            return None
        stats = self._lake.stats
        return stats.files, stats.bytes

    def _create_topics(self) -> None:
        opts = self.options
        specs = topic_specs(self.topics, opts.retention_hours)
        created = self.bus.create_topics(
            [s.name for s in specs], opts.partitions,
            replication=opts.replication, configs={s.name: s.config for s in specs},
        )  # fmt: skip
        if created:
            logger.info("created topics %s", ", ".join(created))

    def _drain(self, service: ProcessService | SinkService, stop: threading.Event,
               stage: _Stage) -> None:  # fmt: skip
        """Let a stage run until it has had no input for a moment, then stop it."""
        deadline = time.monotonic() + self.options.drain_timeout
        while not stage.done.is_set() and time.monotonic() < deadline:
            if time.monotonic() - service.last_input >= _DRAINED_AFTER:
                break
            time.sleep(0.05)
        stop.set()
        stage.join()

    def _produced_some(self, stats: ProduceStats) -> None:
        with self._lock:
            ticks, self._produced = stats.ticks - self._produced, stats.ticks
            dead, self._dead_in = stats.dead - self._dead_in, stats.dead
        self._observer.taken(ticks, dead)
        if self._progress is not None:
            self._progress(stats.done, stats.total)

    def _processed(self, out: Output, batch: Batch | None) -> None:
        # latency from the batch's last tick's produce time (record timestamp, ms) to now
        since = batch.messages[-1].timestamp / 1e3 if batch is not None and batch.messages else None
        self._observer.output(out, since=since)


class _Tapped:
    """A feed that also shows its trades in the live view as they are read."""

    def __init__(self, feed: Feed, observer: OutputObserver) -> None:
        self._feed = feed
        self._observer = observer
        self.name = feed.name
        self.realtime = getattr(feed, "realtime", True)

    def batches(self) -> Iterator[FeedBatch]:
        for batch in self._feed.batches():
            if batch.kind == "trade":
                self._observer.trades(batch.data)
            yield batch

    def close(self) -> None:
        self._feed.close()


class _Stage:
    """A service's ``run`` on a thread of its own, its failure kept for the caller."""

    def __init__(self, name: str, target: Callable[[], object]) -> None:
        self.name = name
        self.done = threading.Event()
        self._failure: BaseException | None = None
        self._target = target
        self._thread = threading.Thread(target=self._run, name=f"services-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self.done.wait()

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        try:
            self._target()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the caller's thread
            logger.error("%s stage failed: %s", self.name, exc)
            self._failure = exc
        finally:
            self.done.set()
