"""The whole pipeline in one process, on the in-memory bus: ``marketpulse run``.

It is the runner of ``run --kafka`` and of the separate services
(:class:`~marketpulse.runtime.runner.Runner`) on a
:class:`~marketpulse.bus.MemoryBus`: the produce, process and sink services
on their threads, the same consumer groups, transactions and rebalancing
callbacks, Arrow columns for records. Only the options differ: one partition
by default, sinks chosen by the caller, and the run's dataset by default the
feed's own (:func:`~marketpulse.feeds.dataset.feed_dataset`).

A replayed file is cut into segments (:mod:`marketpulse.runtime.segments`) whose marks travel
with the records, so that a rerun of the same input writes the same lake
files, replacing the earlier run's, whether it finished or was killed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from marketpulse.alerts import Rule
from marketpulse.alerts.channels import Notifications
from marketpulse.bus import MemoryBus
from marketpulse.bus.topics import Topics
from marketpulse.config import STORE_TRADES, ProcessSettings
from marketpulse.feeds.base import Feed
from marketpulse.feeds.dataset import check_dataset, feed_dataset
from marketpulse.runtime import MarketView, Metrics
from marketpulse.runtime.runner import (
    LAKE_FILE_ROWS,
    Runner,
    RunnerOptions,
)
from marketpulse.sinks import Sink
from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.stream import ProcessorSettings

__all__ = ["LAKE_FILE_ROWS", "EmbeddedPipeline", "PipelineOptions"]

#: Most records (here rows) the processor takes into one step. A step takes what
#: is there, so a feed the processor keeps up with is processed as it comes; one
#: that runs ahead is processed in large steps, whose fixed costs (alert rules,
#: output tables) then weigh less.
_MAX_BATCH = 131_072
#: Most records (rows) a sink takes per poll: what was published since its last
#: poll, in as few writes as it can (each write's casts and splits cost per call).
_SINK_BATCH = 1 << 20


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """How the embedded pipeline runs.

    Attributes:
        lake: the Parquet lake (a location carries its ``[s3]`` settings).
        rules: alert rules.
        processor: bar windowing settings (its ``dataset`` is replaced by the run's).
        alerts_file: JSON-lines file alerts are appended to ("" for none).
        notifications: the rules file's notification channels and routes (``None``: none).
        partitions: partitions of each embedded topic.
        speed: replay speed as a multiple of real time; ``None`` is as fast as possible.
        duration: stop after this many seconds; ``None`` runs until the feed ends.
        sinks: where the tables go (the trades the processor kept and the feed's
            quotes included), each drained by its own sink service and consumer
            group; empty: the Parquet lake at ``lake``. The pipeline closes them.
        dataset: the dataset every stored row carries; ``None``: the feed's
            (``simulator``, a file's name, the vendor: see
            :func:`~marketpulse.feeds.dataset.feed_dataset`).
        store_trades: store the trades the processor kept (``[process]
            store_trades``, as on Kafka).
    """

    lake: str | LakeLocation
    rules: list[Rule] = field(default_factory=list)
    processor: ProcessorSettings = field(default_factory=ProcessorSettings)
    alerts_file: str = ""
    notifications: Notifications | None = None
    partitions: int = 1
    speed: float | None = None
    duration: float | None = None
    sinks: tuple[Sink, ...] = ()
    dataset: str | None = None
    store_trades: bool = STORE_TRADES


class EmbeddedPipeline(Runner):
    """Runs a feed through the processor into the sinks, in this process, on the in-memory bus.

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
        self.dataset = (
            feed_dataset(feed) if options.dataset is None else check_dataset(options.dataset)
        )
        services = RunnerOptions(
            lake=options.lake,
            rules=options.rules,
            processor=replace(options.processor, dataset=self.dataset),
            alerts_file=options.alerts_file,
            notifications=options.notifications,
            speed=options.speed,
            duration=options.duration,
            partitions=options.partitions,
            process=ProcessSettings(max_batch=_MAX_BATCH, store_trades=options.store_trades),
            group_prefix="",
            sinks=options.sinks,
            sink_batch=_SINK_BATCH,
        )
        super().__init__(MemoryBus(), Topics(), feed, services, metrics, view, progress)
