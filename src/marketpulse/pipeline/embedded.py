"""The whole pipeline in one process, on the embedded bus.

feed → ``ticks`` → processor → ``trades``/``bars``/``indicators``/``alerts``/``dlq``
(and ``custom``, the values of plugins) → lake sink, each stage a consumer
group of the embedded bus, exactly as the services are on Kafka; here one
thread drives them in turn. ``trades`` holds
the trades the processor kept (:attr:`.Output.trades`): the lake stores its
decision, never a trade it refused.

A replayed file is processed segment by segment (:mod:`.segments`), so that
a rerun of the same input writes the same lake files, replacing the earlier
run's, whether it finished or was killed.

Every row stored carries the run's dataset (:attr:`PipelineOptions.dataset`,
by default the feed's own: :func:`~marketpulse.feeds.dataset.feed_dataset`):
the processor stamps it on what it publishes, the pipeline on the dead
letters of the feed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pyarrow as pa

from marketpulse.alerts import JsonLinesNotifier, Rule
from marketpulse.bus import MemoryBus, TopicPartition
from marketpulse.config import STORE_TRADES
from marketpulse.feeds.base import Feed, FeedBatch
from marketpulse.feeds.dataset import check_dataset, feed_dataset
from marketpulse.observe import MarketView, Metrics, MetricsSnapshot, OutputObserver
from marketpulse.pipeline.pacing import paced
from marketpulse.pipeline.segments import Segments, input_origin, tagged
from marketpulse.pipeline.threads import Prefetch, SinkWorker, interrupter
from marketpulse.sinks import LakeSink, Sink
from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.stream import Output, Processor, ProcessorSettings
from marketpulse.stream.output import Constant, alerts_table, dlq_table, stamp

__all__ = ["LAKE_FILE_ROWS", "TOPICS", "EmbeddedPipeline", "PipelineOptions"]

logger = logging.getLogger(__name__)

#: Most ticks taken into one processing step while the feed is ahead.
_COALESCE_ROWS = 131_072

#: Rows per lake file before a flush: writes then overlap with processing
#: instead of piling up at the end of a replay (about 3 MB of trades a file).
LAKE_FILE_ROWS = 262_144

#: A paced replay ends a segment after this many seconds too, so the lake follows it.
_PACED_SEGMENT_S = 5.0

#: The prefix of the embedded topics' names, as on Kafka by default.
_TOPIC_PREFIX = "marketpulse."
#: Topic names (without prefix) and the lake table each one fills (the feed's
#: ``ticks``, the processor's input, fills none). Quotes pass the processor by:
#: it builds nothing from them, so the feed's quotes go straight to ``quotes``.
TOPICS: dict[str, str | None] = {
    "ticks": None,
    "trades": "trades",
    "quotes": "quotes",
    "bars": "bars",
    "indicators": "indicators",
    "alerts": "alerts",
    "dlq": "dlq",
    "custom": "custom",
}


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """How the embedded pipeline runs.

    Attributes:
        lake: the Parquet lake (a location carries its ``[s3]`` settings).
        rules: alert rules.
        processor: bar windowing settings (its ``dataset`` is replaced by the run's).
        alerts_file: JSON-lines file alerts are appended to ("" for none).
        partitions: partitions of each embedded topic.
        speed: replay speed as a multiple of real time; ``None`` is as fast as possible.
        duration: stop after this many seconds; ``None`` runs until the feed ends.
        sinks: where the tables go (the trades the processor kept and the feed's
            quotes included), each drained by its own thread and consumer
            group; empty: the Parquet lake at ``lake``. The pipeline closes them.
        dataset: the dataset every stored row carries; ``None``: the feed's
            (``simulator``, a file's name, the vendor: see
            :func:`~marketpulse.feeds.dataset.feed_dataset`).
        store_trades: store the trades the processor kept (``[process]
            store_trades``, as the Kafka ``process`` service does).
    """

    lake: str | LakeLocation
    rules: list[Rule] = field(default_factory=list)
    processor: ProcessorSettings = field(default_factory=ProcessorSettings)
    alerts_file: str = ""
    partitions: int = 1
    speed: float | None = None
    duration: float | None = None
    sinks: tuple[Sink, ...] = ()
    dataset: str | None = None
    store_trades: bool = STORE_TRADES


class EmbeddedPipeline:
    """Runs a feed through the processor into the lake, in this process.

    Args:
        feed: where ticks come from.
        options: how to run.
        metrics: counters to update (a new set by default).
        view: per-symbol view to update for live displays (optional).
        progress: called with (done, total) after each feed batch.

    Attributes:
        dataset: the dataset of the run's rows.

    Raises:
        InputError: ``options.dataset`` is not a dataset name.
    """

    def __init__(
        self,
        feed: Feed,
        options: PipelineOptions,
        metrics: Metrics | None = None,
        view: MarketView | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> None:
        self.feed = feed
        self.dataset = (
            feed_dataset(feed) if options.dataset is None else check_dataset(options.dataset)
        )
        self.options = replace(options, processor=replace(options.processor, dataset=self.dataset))
        self._quote_dataset = Constant(self.dataset)
        self.metrics = metrics or Metrics()
        self.view = view
        self._progress = progress
        self._topic = {name: _TOPIC_PREFIX + name for name in TOPICS}
        self._table = {topic: TOPICS[name] for name, topic in self._topic.items() if TOPICS[name]}
        self._origin: str | None = None
        self._segments: Segments | None = None
        self._tag: int | None = None  # the first line of the segment being processed

    def run(self, stop: threading.Event | None = None) -> MetricsSnapshot:
        """Run until the feed ends, ``duration`` passes or ``stop`` is set; flush; report.

        ``duration`` passing sets ``stop``. Either ends the run within a fraction
        of a second, whether or not the feed is delivering batches.
        """
        stop = stop or threading.Event()
        options = self.options
        bus = MemoryBus()
        bus.create_topics(list(self._topic.values()), options.partitions)
        self._producer = bus.producer()
        self._processing = bus.consumer("processor", [self._topic["ticks"]])
        self._processor = Processor(options.processor, options.rules)
        self._processor.warm_up()  # before the feed's clock starts
        # partitions quiet by the clock close their windows only when the feed
        # keeps to the clock: a replay at full speed that stalls (a loaded
        # machine) must give the bars of one that does not
        self._clocked = options.speed is not None or getattr(self.feed, "realtime", True)
        self._origin = input_origin(self.feed, options.processor, options.rules)
        if self._origin is not None:
            paced_s = None if options.speed is None else _PACED_SEGMENT_S
            self._segments = Segments(max_age_s=paced_s)
        sinks = options.sinks or (LakeSink(options.lake, max_rows=LAKE_FILE_ROWS),)
        self._sink_workers = [
            SinkWorker(
                bus.consumer(f"sink-{sink.name}", list(self._table)),
                sink,
                self._table,
                self._origin,
            )
            for sink in sinks
        ]
        notifier = JsonLinesNotifier(options.alerts_file) if options.alerts_file else None
        self._observer = OutputObserver(self.metrics, self.view, notifier)
        logger.info(
            "embedded pipeline starting: feed %s, dataset %s, sinks %s, intervals %s, "
            "%d alert rules",
            self.feed.name, self.dataset, ", ".join(w.sink.name for w in self._sink_workers),
            ",".join(options.processor.intervals), len(options.rules),
        )  # fmt: skip
        # the deadline sets ``stop``: the wait for a feed's next batch ends at once
        # even when none comes (a live feed that cannot connect)
        timer = None
        if options.duration is not None:
            timer = threading.Timer(options.duration, stop.set)
            timer.daemon = True
            timer.start()
        exhausted = False
        for worker in self._sink_workers:
            worker.start()
        try:
            ahead = Prefetch(self.feed.batches(), stop=stop, interrupt=interrupter(self.feed))
            batches = paced(iter(ahead), options.speed, stop)
            pending, received = 0, 0.0
            for batch in batches:
                received = received or time.perf_counter()
                for first, item in self._segments.split(batch) if self._segments else [(0, batch)]:
                    if isinstance(item, FeedBatch):
                        self._tag = first if self._segments else None
                        self._ingest(item)
                        pending += item.data.num_rows
                    else:  # every tick of the segment goes through before it ends
                        self._process(received)
                        pending = 0
                        self._end_segment(first, item)
                if self._progress:
                    self._progress(batch.done, batch.total)
                if stop.is_set():
                    break
                # when the processor is behind the feed, process more ticks per step:
                # per-step costs (alerts, output tables) then weigh less
                if options.speed is None and ahead.ready and pending < _COALESCE_ROWS:
                    continue
                self._process(received)
                pending, received = 0, 0.0
            else:
                exhausted = not stop.is_set()
        finally:
            if timer is not None:
                timer.cancel()
            self._shutdown(exhausted)
        return self._final

    def _shutdown(self, exhausted: bool) -> None:
        logger.info("embedded pipeline stopping: flushing what was accepted")
        try:
            self._process(time.perf_counter())
            if exhausted:
                self._publish(self._processor.finish(), time.perf_counter())
            if self._segments is not None:
                ended = self._segments.end()
                if ended is not None:
                    self._end_segment(*ended)
                if exhausted:
                    for worker in self._sink_workers:
                        worker.end_source()
        finally:
            _drain_all(self._sink_workers)
            self._observer.close()
            self.feed.close()
        # the figures of the run, once: the caller shows them (the CLI's final summary)
        self._final = self.metrics.snapshot()
        logger.debug("embedded pipeline stopped: %s", self._final.summary())

    def lake_written(self) -> tuple[int, int] | None:
        """Files and bytes the run wrote to the Parquet lake (``None``: no run, or no lake)."""
        for worker in getattr(self, "_sink_workers", ()):
            if isinstance(worker.sink, LakeSink):
                stats = worker.sink.stats
                return stats.files, stats.bytes
        return None

    def _end_segment(self, first: int, last: int) -> None:
        for worker in self._sink_workers:
            worker.end_segment(first, last)

    def _ingest(self, batch: FeedBatch) -> None:
        data = tagged(batch.data.replace_schema_metadata({"source": self.feed.name}), self._tag)
        if batch.dead:
            dead = dlq_table(batch.dead, time.time_ns(), self.dataset)
            self._producer.send_columns(self._topic["dlq"], "dlq", tagged(dead, self._tag))
            self._observer.taken(0, len(batch.dead))
        if batch.kind == "quote":  # stored as they are, not counted as ticks
            quotes = stamp(data, self._quote_dataset)
            self._producer.send_columns(self._topic["quotes"], "quote", quotes)
            return
        self._producer.send_columns(self._topic["ticks"], batch.kind, data)
        self._observer.taken(data.num_rows)
        if batch.kind == "trade":
            self._observer.trades(data)

    def _process(self, received: float) -> None:
        offsets: dict[TopicPartition, int] = {}
        for batch in self._processing.poll(max_records=1 << 30):
            self._publish(self._processor.process(batch), received)
            offsets[batch.tp] = batch.last_offset + 1
        if self._clocked:
            self._publish(self._processor.idle(), received)
        if offsets:
            self._processing.commit(offsets)

    def _publish(self, out: Output, received: float) -> None:
        topic, tag = self._topic, self._tag

        def send(name: str, data: pa.Table) -> None:
            self._producer.send_columns(topic[name], name, tagged(data, tag))

        if out.bars.num_rows:
            send("bars", out.bars)
        if out.indicators.num_rows:
            send("indicators", out.indicators)
        if out.alerts:
            send("alerts", alerts_table(out.alerts, self.dataset))
        if out.dead:
            send("dlq", dlq_table(out.dead, time.time_ns(), self.dataset))
        if out.custom.num_rows:
            send("custom", out.custom)
        for trades in out.trades if self.options.store_trades else ():
            if trades.num_rows:  # tagged with their segment when ingested
                self._producer.send_columns(topic["trades"], "trade", trades)
        # latency from the receipt of the feed batch (perf_counter) to now
        self._observer.output(out, since=received)


def _drain_all(workers: list[SinkWorker]) -> None:
    """Drain and stop every sink worker, then raise the first one's failure."""
    errors = []
    for worker in workers:
        try:
            worker.drain_and_stop()
        except Exception as exc:  # the other sinks still get what was accepted
            errors.append(exc)
    if errors:
        raise errors[0]
