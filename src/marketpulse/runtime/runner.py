"""Every stage in one process, on any bus of the contract: ``run`` and ``run --kafka``.

The produce, process and sink services run on their own threads, exactly
as they do as separate commands (the same classes, the same consumer groups
semantics, the same transactions), on Kafka (``run --kafka``) as on the
in-memory bus (:class:`~marketpulse.bus.MemoryBus`: ``run``, the embedded
pipeline). This module only starts them (a feed on the wall clock once the
processor's kernels are loaded), feeds the live view and metrics, and
stops them in order so that everything accepted is flushed: the feed first
(the producer flushes), then the processor once it has caught up (it
commits), then each sink once it has caught up with the committed outputs
(it writes its files and commits). A stage has caught up when it has read its
partitions to their ends, which the in-memory bus knows exactly; on Kafka,
whose transaction markers keep a read partition from looking read to its
end, when it has had no input for a moment. What the stages read and emit is
counted, shown and notified by one :class:`~marketpulse.runtime.OutputObserver`.

Where the bus's offsets cannot name files (the in-memory bus: they restart
with every run), a file replay's segments do (:mod:`marketpulse.runtime.segments`):
the produce service marks them, and a rerun of the same input rewrites the
same lake files.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from marketpulse.alerts import JsonLinesNotifier, Notifier, Notifiers, Rule
from marketpulse.alerts.channels import Notifications
from marketpulse.bus.base import Batch, Bus, Producer, TopicPartition
from marketpulse.bus.topics import Topics, topic_specs
from marketpulse.config import (
    COMPRESSION,
    TOPIC_PARTITIONS,
    TOPIC_REPLICATION,
    TOPIC_RETENTION_HOURS,
    ProcessSettings,
)
from marketpulse.exceptions import BusError, RunFailure
from marketpulse.feeds.base import Feed, FeedBatch
from marketpulse.feeds.dataset import check_dataset, feed_dataset
from marketpulse.models import DeadLetter
from marketpulse.runtime import MarketView, Metrics, MetricsSnapshot, OutputObserver
from marketpulse.runtime.idle import JOIN_GRACE_S
from marketpulse.runtime.process import ProcessOptions, ProcessService
from marketpulse.runtime.produce import ProduceOptions, ProduceService, ProduceStats
from marketpulse.runtime.segments import input_origin
from marketpulse.runtime.service_figures import batch_time
from marketpulse.runtime.sink import SINK_BATCH, SinkOptions, SinkService
from marketpulse.sinks import LakeSink, Sink
from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.sinks.lake_lock import DatasetLock
from marketpulse.stream import Output, Processor, ProcessorSettings

__all__ = ["LAKE_FILE_ROWS", "PipelineIncomplete", "Runner", "RunnerOptions"]

logger = logging.getLogger(__name__)

#: Seconds without input after which a draining stage counts as caught up (Kafka).
_DRAINED_AFTER = 1.0
#: Seconds between the lines a draining stage logs while it catches up.
_DRAIN_REPORT_S = 5.0


class PipelineIncomplete(RunFailure):
    """A run on Kafka stopped before all it took in was processed and stored.

    What is left stays in the topics under ``prefix``: a run (or ``process``
    and ``sink``) with the same prefix later picks it up.
    """

    def __init__(self, what: str, prefix: str) -> None:
        super().__init__(
            f"{what}: they stay in the {prefix}* topics, and a run with the same "
            "--topic-prefix (or `process` and `sink` on them) picks them up"
        )


def _count(n: int | None) -> str:
    return "an unknown number of" if n is None else f"{n:,}"


#: Rows per lake file before a flush: writes then overlap with processing
#: instead of piling up at the end of a replay (about 3 MB of trades a file).
LAKE_FILE_ROWS = 262_144


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """How the services run together (``run --kafka``).

    Attributes:
        lake: the Parquet lake the sink writes (a location carries its ``[s3]``
            settings; a root given as text reaches S3 with the SDK's defaults only).
        rules: alert rules.
        processor: bar windowing settings (its ``dataset`` is replaced by the run's).
        dataset: the dataset every output of the run carries, the feed's dead
            letters too; ``None``: the feed's own (``simulator``, a file's name,
            the vendor: see :func:`~marketpulse.feeds.dataset.feed_dataset`).
        alerts_file: JSON-lines file alerts are appended to ("" for none).
        notifications: the rules file's notification channels and routes
            (``None``: none); what they cannot deliver goes to the ``dlq`` topic.
        speed: replay a file at this multiple of its event-time pace; ``None``:
            as fast as the stages go (the bars then depend on the input alone:
            windows close by processing time only for a live feed).
        duration: stop after this many seconds; ``None`` runs until stopped.
        partitions: partitions of topics this run creates (existing ones are kept);
            ``None``: the ``[kafka]`` default on a cluster, one on the in-memory bus.
        replication: replication factor of topics this run creates (a bus
            without replicas ignores it).
        retention_hours: retention of the data topics this run creates (a bus
            without retention ignores it).
        compression: codec of the produced records.
        process: the processor service's timings (commit interval, ...).
        group_prefix: prefix of the consumer groups (``<prefix>process``,
            ``<prefix>sink-<sink name>``).
        drain_timeout: seconds a stage may read nothing while it catches up when
            stopping (on the in-memory bus, one that keeps reading is waited for);
            on a cluster, seconds each stage may take to catch up.
        sinks: where the outputs go, each drained by its own sink service and
            consumer group (closed when the run ends); empty: the Parquet lake
            at ``lake``.
        sink_batch: records each sink service consumes per poll at most.
    """

    lake: str | LakeLocation
    rules: list[Rule] = field(default_factory=list)
    processor: ProcessorSettings = field(default_factory=ProcessorSettings)
    dataset: str | None = None
    alerts_file: str = ""
    notifications: Notifications | None = None
    speed: float | None = None
    duration: float | None = None
    partitions: int | None = None
    replication: int = TOPIC_REPLICATION
    retention_hours: float = TOPIC_RETENTION_HOURS
    compression: str = COMPRESSION
    process: ProcessSettings = field(default_factory=ProcessSettings)
    group_prefix: str = "marketpulse-run-"
    drain_timeout: float = 60.0
    sinks: tuple[Sink, ...] = ()
    sink_batch: int = SINK_BATCH


class Runner:
    """Run a feed through a bus into the lake, with every stage in this process.

    Args:
        bus: the bus the stages talk through (Kafka: checked reachable).
        topics: topic names; missing topics are created.
        feed: where ticks come from.
        options: how to run.
        metrics: counters to update (a new set by default).
        view: per-symbol view to update for live displays (optional).
        progress: called with (done, total) after each feed batch.

    Attributes:
        dataset: the dataset of the run's outputs.
        partitions: partitions of the topics the run creates.
        options: ``options`` with the run's dataset and partitions filled in.

    Raises:
        InputError: ``options.dataset`` is not a dataset name.
    """

    def __init__(
        self,
        bus: Bus,
        topics: Topics,
        feed: Feed,
        options: RunnerOptions,
        metrics: Metrics | None = None,
        view: MarketView | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> None:
        self.bus = bus
        self.topics = topics
        self.dataset = (
            feed_dataset(feed) if options.dataset is None else check_dataset(options.dataset)
        )
        #: Partitions of the topics the run creates.
        self.partitions = options.partitions or (TOPIC_PARTITIONS if bus.durable else 1)
        self.options = replace(
            options,
            dataset=self.dataset,
            processor=replace(options.processor, dataset=self.dataset),
            partitions=self.partitions,
        )
        self.metrics = metrics or Metrics()
        self.view = view
        # latency samples are epoch seconds: from a record's timestamp to now
        self._observer = OutputObserver(self.metrics, view, clock=time.time)
        self.feed = _Tapped(feed, self._observer)
        self._progress = progress
        self._produced = 0
        self._dead_in = 0
        self._lock = threading.Lock()
        self._sinks: tuple[Sink, ...] = ()
        self._dlq_lock = threading.Lock()
        self._dlq_producer: Producer | None = None

    def run(self, stop: threading.Event | None = None) -> MetricsSnapshot:
        """Run until the feed ends, ``duration`` passes or ``stop`` is set; drain; report.

        The run holds its dataset's lock of the lake meanwhile
        (:class:`~marketpulse.sinks.lake_lock.DatasetLock`), alone when it
        replays a file (it replaces what an earlier replay stored), so it waits
        for a command replacing the same dataset to end first.
        """
        stop = stop or threading.Event()
        opts = self.options
        # offsets name the lake's files where a rerun reads them again; elsewhere
        # (the in-memory bus) a replay's segments do
        origin = None if self.bus.durable else input_origin(self.feed, opts.processor, opts.rules)
        self._sinks = opts.sinks or (LakeSink(opts.lake, max_rows=LAKE_FILE_ROWS),)
        lock = self._dataset_lock(replaces=origin is not None)
        if lock is not None and not lock.acquire(stop.is_set):
            for sink in self._sinks:  # stopped while waiting: nothing was written
                sink.close()
            return self.metrics.snapshot()
        if lock is not None and lock.waited:
            self.metrics.start_clock()  # the rates are the run's, not the wait's
        try:
            return self._run(stop, origin)
        finally:
            if lock is not None:
                lock.release()

    def _dataset_lock(self, replaces: bool) -> DatasetLock | None:
        """The lock of the run's dataset in the lake it writes (``None``: it writes no lake)."""
        lake = next((s.location for s in self._sinks if isinstance(s, LakeSink)), None)
        if lake is None:
            return None
        what = f"{'replay' if replaces else 'run'} {self.feed.name}"
        return DatasetLock(lake, self.options.processor.dataset, exclusive=replaces, holder=what)

    def _run(self, stop: threading.Event, origin: str | None) -> MetricsSnapshot:
        opts = self.options
        self._create_topics()
        # windows close by processing time only where the input keeps to the clock: a
        # replay at full speed that stalls (a loaded machine) gives the bars of one that
        # does not
        clocked = opts.speed is not None or self.feed.realtime
        feed_stop, process_stop = threading.Event(), threading.Event()
        producer = ProduceService(
            self.bus, self.topics, self.feed,
            ProduceOptions(compression=opts.compression, speed=opts.speed,
                           duration=opts.duration, dataset=opts.processor.dataset,
                           segments=not self.bus.durable),
            feed_stop, self._produced_some,
        )  # fmt: skip
        processor = ProcessService(
            self.bus, self.topics, Processor(opts.processor, opts.rules),
            ProcessOptions(group=f"{opts.group_prefix}process", compression=opts.compression,
                           close_idle=clocked, settings=opts.process),
            process_stop, self._processed, self._observer.committed,
        )  # fmt: skip
        sinks = [
            SinkService(
                self.bus,
                self.topics,
                sink,
                SinkOptions(
                    group=f"{opts.group_prefix}sink-{sink.name}",
                    origin=origin,
                    max_batch=opts.sink_batch,
                ),
                threading.Event(),
            )  # fmt: skip
            for sink in self._sinks
        ]
        self._observer.notifier = self._notifier()
        logger.info(
            "pipeline starting: feed %s, dataset %s, %s, topics %s*, sinks %s, intervals %s, "
            "%d alert rules",
            self.feed.name, opts.processor.dataset, self.bus, self.topics.prefix,
            ", ".join(s.name for s in self._sinks), ",".join(opts.processor.intervals),
            len(opts.rules),
        )  # fmt: skip
        if hasattr(self.view, "extra_figures"):  # the dashboard's pipeline page
            self.view.extra_figures = lambda: {  # type: ignore[union-attr]
                "lag": {f"{self.topics.ticks}[{p}]": n for p, n in processor.lag.items()}
            }
        sink_stages = [_Stage(f"sink-{s.sink.name}", s.run) for s in sinks]
        process_stage = _Stage("process", processor.run)
        for stage in (*sink_stages, process_stage):
            stage.start()
        if clocked:
            # ticks on the wall clock would wait in the bus while the kernels load (tenths
            # of a second on a warm cache) and reach their bars that much late: the feed
            # starts once they are loaded (a replay at full speed reads ahead meanwhile)
            while not processor.warm.wait(0.05):
                if stop.is_set() or process_stage.done.is_set():
                    break
        feed = _Stage("produce", producer.run)
        feed.start()
        stages = [process_stage, *sink_stages]
        try:
            while not feed.done.wait(0.1):
                if stop.is_set() or any(s.done.is_set() for s in stages):
                    break
        finally:
            logger.info("pipeline stopping: flushing what was accepted")
            feed_stop.set()
            if any(s.done.is_set() for s in stages) and not self.bus.durable:
                self.bus.close()  # a stage failed: the feed must not wait for it
            feed.join()
            if producer.stats.exhausted:  # a finished replay: its last windows close too
                processor.input_ended.set()
            target = self._ticks_end() if self.bus.durable else None
            self._drain(processor, process_stop, process_stage, target)
            self._observer.close()  # notifications drain: their dead letters reach the sinks
            self._close_dlq()
            unstored = {
                service.sink.name: _plus(
                    self._drain(service, service.stop, stage), service.stats.unwritten
                )
                for service, stage in zip(sinks, sink_stages, strict=True)
            }
        for stage in (*stages, feed):
            stage.raise_failure()
        if target is not None:
            self._check_stored(target, unstored)
        snapshot = self.metrics.snapshot()
        # the figures once: the caller shows them (the CLI's final summary)
        logger.debug("pipeline stopped: %s", snapshot.summary())
        return snapshot

    def lake_written(self) -> tuple[int, int] | None:
        """Files and bytes the run's lake sink wrote (``None``: not run yet, or no lake)."""
        for sink in self._sinks:
            if isinstance(sink, LakeSink):
                return sink.stats.files, sink.stats.bytes
        return None

    def _notifier(self) -> Notifier | None:
        opts = self.options
        notifiers: list[Notifier] = []
        if opts.alerts_file:
            notifiers.append(JsonLinesNotifier(opts.alerts_file))
        if opts.notifications:
            from marketpulse.alerts.dispatch import Dispatcher  # httpx, smtplib: when configured

            notifiers.append(Dispatcher(opts.notifications, self.metrics.notified, self._dead))
        return Notifiers(notifiers) if len(notifiers) > 1 else next(iter(notifiers), None)

    def _dead(self, letters: Sequence[DeadLetter]) -> None:
        """Send dead letters of the notifiers to the ``dlq`` topic (from their threads)."""
        with self._dlq_lock:
            if self._dlq_producer is None:
                self._dlq_producer = self.bus.producer(compression=self.options.compression)
            self._dlq_producer.send_dead(self.topics.name("dlq"), letters,
                                         dataset=self.options.processor.dataset)  # fmt: skip
            self._dlq_producer.flush(30.0)
        self.metrics.add(dlq=len(letters))

    def _close_dlq(self) -> None:
        with self._dlq_lock:
            if self._dlq_producer is not None:
                self._dlq_producer.close()
                self._dlq_producer = None

    def _create_topics(self) -> None:
        opts = self.options
        specs = topic_specs(self.topics, opts.retention_hours)
        created = self.bus.create_topics(
            [s.name for s in specs], self.partitions,
            replication=opts.replication, configs={s.name: s.config for s in specs},
        )  # fmt: skip
        if created:
            level = logging.INFO if self.bus.durable else logging.DEBUG
            logger.log(level, "created topics %s", ", ".join(created))

    def _drain(self, service: ProcessService | SinkService, stop: threading.Event,
               stage: _Stage, target: list[int] | None = None) -> int | None:  # fmt: skip
        """Let a stage run until it has caught up, then stop it; return the records it left.

        On the in-memory bus a stage that keeps reading is waited for however long
        it takes (a loaded machine must not lose what a quick one keeps); one that
        reads nothing for ``drain_timeout`` seconds with records left is stopped,
        with a warning (:meth:`_stuck_after`). On a cluster the process stage is
        caught up once it has read ``ticks`` to ``target`` (its end offsets when
        the feed stopped: others may write on), a sink once it has been quiet
        for a second with nothing but transaction markers left. A stage that
        reads nothing there for ``drain_timeout`` seconds (a broker away, a
        group rejoining) is stopped, with a warning and the records it left.

        Returns:
            The records the stage was stopped without (0: none; ``None``: not known).
        """
        started = last_report = time.monotonic()
        left: int | None = None
        open_: list[str] = []
        checked = 0.0
        while not stage.done.is_set():
            now = time.monotonic()
            quiet = now - max(service.last_input, started)
            if self.bus.durable:
                left = self._left_on_cluster(service, target)
                if left == 0 and target is not None:
                    break
                writing = getattr(service, "writing", False)
                if left == 0 and not writing and quiet >= _DRAINED_AFTER and now - checked >= 0.5:
                    checked = now
                    open_ = self._open_transactions(service)
                    if not open_:
                        break
            else:
                left = self._records_left(service)  # None: still starting (kernels, state, group)
                if left is not None and left <= 0:  # caught up (exact on the in-memory bus)
                    break
            if target is None and self.bus.durable and now - started >= self.options.drain_timeout:
                break  # others may keep writing to a cluster's output topics
            if quiet >= self._stuck_after(left):
                logger.warning(
                    "pipeline stopping: %s read nothing for %.1f s with %s records left; "
                    "stopping it without them", stage.name, quiet, _count(left),
                )  # fmt: skip
                break
            if now - last_report >= _DRAIN_REPORT_S:
                last_report = now
                if open_:
                    logger.info("pipeline stopping: %s waits for the transactions open on %s",
                                stage.name, ", ".join(open_[:5]))  # fmt: skip
                elif left is None:
                    logger.info("pipeline stopping: waiting for %s to start reading", stage.name)
                else:
                    logger.info("pipeline stopping: %s catching up, %s records left",
                                stage.name, f"{left:,}")  # fmt: skip
            time.sleep(0.005)
        stop.set()
        stage.join()
        return left

    def _left_on_cluster(
        self, service: ProcessService | SinkService, target: list[int] | None
    ) -> int | None:
        """Records a stage on Kafka has left to read (``None``: not known yet).

        With ``target`` (the process stage), the records of ``ticks`` before
        those end offsets whose work it has not committed yet, by the offsets
        its thread keeps (a partition it does not own now counts whole); else
        what its own lag figure shows past the transaction marker that ends
        each partition of a topic written in transactions.
        """
        if target is None:
            # a sink, the lone member of its group: caught up once its lag covers every
            # partition it reads (one not assigned again yet after a rejoin, or not
            # fetched from since, has records not known: a broker restart left a run
            # that counted only the others caught up, with the rest of trades unstored)
            assert isinstance(service, SinkService)
            lag = dict(service.lag)
            if not lag or len(lag) < service.partitions:
                return None
            return sum(n for n in lag.values() if n > 1)
        assert isinstance(service, ProcessService)
        try:
            # committed, not consumed: a commit that fails redoes the work since the last
            # one (a broker restarting refused one as "skipped sequence numbers"), and a
            # stop meanwhile left 25,403 ticks unprocessed
            consumed = {tp.partition: n for tp, n in dict(service.policy.committed).items()}
        except RuntimeError:  # changed by the stage's thread meanwhile: asked again
            return None
        return sum(max(end - max(consumed.get(p, 0), 0), 0) for p, end in enumerate(target))

    def _open_transactions(self, service: ProcessService | SinkService) -> list[str]:
        """The partitions a sink reads where a transaction is still open, once process stopped.

        Such a partition's last stable offset stays behind its high watermark,
        and a read_committed reader sees nothing past it: a sink there looks
        caught up with the records after it unread (a transaction whose markers
        a restarting broker skipped). ``["?"]``: the offsets could not be read.
        """
        assert isinstance(service, SinkService)
        last_offsets = getattr(self.bus, "last_offsets", None)  # a Kafka bus's
        if last_offsets is None:
            return []
        try:
            parts = [TopicPartition(topic, p) for topic in service.topic_names
                     for p in range(self.bus.partitions(topic))]  # fmt: skip
            deadline = time.monotonic() + 10.0
            stable, high = last_offsets(parts, True, deadline), last_offsets(parts, False, deadline)
        except BusError as exc:
            logger.debug("pipeline stopping: transactions not checked: %s", exc)
            return ["?"]
        return [f"{tp.topic}[{tp.partition}]" for tp in parts if stable[tp] < high[tp]]

    def _ticks_end(self) -> list[int] | None:
        """The end offsets of ``ticks`` once the feed has stopped (``None``: not readable now)."""
        try:
            return self.bus.end_offsets(self.topics.ticks)
        except BusError as exc:
            logger.warning("pipeline stopping: cannot read the end of %s: %s",
                           self.topics.ticks, exc)  # fmt: skip
            return None

    def _check_stored(self, target: list[int], unstored: dict[str, int | None]) -> None:
        """Say what a run on Kafka leaves unprocessed or unstored, by the group's offsets.

        Raises:
            PipelineIncomplete: ticks the feed sent were not processed (their
                outputs not committed), or a sink stopped with records to store.
        """
        group = f"{self.options.group_prefix}process"
        try:
            committed = self.bus.committed_offsets(group, self.topics.ticks)
        except BusError as exc:
            raise PipelineIncomplete(
                f"cannot tell whether every tick was processed: {exc}", self.topics.prefix
            ) from None
        missed = sum(max(end - max(done, 0), 0)
                     for end, done in zip(target, committed, strict=False))  # fmt: skip
        parts = []
        if missed:
            parts.append(f"{missed:,} ticks of {self.topics.ticks} were not processed")
        parts += [f"the {name} sink stopped with {_count(n)} records of the output topics "
                  "not stored" for name, n in unstored.items() if n != 0]  # fmt: skip
        if parts:
            raise PipelineIncomplete("; ".join(parts), self.topics.prefix)

    def _records_left(self, service: ProcessService | SinkService) -> int | None:
        """Records ``service`` has left to read (``None``: not known yet).

        A Kafka client serves one thread at a time: asked from here, it would
        wait for the stage's poll, and a stage polling without pause could
        starve this thread for good (a run on Kafka hung so in its drain).
        There the figure the stage's own thread refreshes every second is read.
        """
        if self.bus.durable:
            return sum(service.lag.values()) if service.lag else None
        return service.records_left()

    def _stuck_after(self, left: int | None) -> float:
        """Seconds without input after which a draining stage on the in-memory bus is stuck.

        One not reading yet (``left`` unknown: still starting, its kernels, state or
        first assignment) gets at least a group member's grace for its first partitions.
        """
        if left is None:
            return max(self.options.drain_timeout, JOIN_GRACE_S)
        return self.options.drain_timeout

    def _produced_some(self, stats: ProduceStats) -> None:
        with self._lock:  # quotes pass the processor by: not counted as ticks in
            taken = stats.ticks - stats.quotes
            ticks, self._produced = taken - self._produced, taken
            dead, self._dead_in = stats.dead - self._dead_in, stats.dead
        self._observer.taken(ticks, dead)
        if self._progress is not None:
            self._progress(stats.done, stats.total)

    def _processed(self, out: Output, batch: Batch | None) -> None:
        # latency from the batch's last tick's produce time to now
        # counted when their transaction commits (the service's on_commit)
        self._observer.output(out, since=batch_time(batch), count=False)


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

    def __getattr__(self, name: str) -> object:
        # what else the feed offers (a replay's ``identity``, ``damage``) as it is
        return getattr(self._feed, name)


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


def _plus(left: int | None, unwritten: int) -> int | None:
    """Records a sink stopped without: those left to read, and those read but not written."""
    return left if left is None else left + unwritten
