"""The whole pipeline in one process, on the in-memory bus: ``marketpulse run``.

It is the runner of ``run --kafka`` and of the separate services
(:class:`~marketpulse.runtime.runner.Runner`) on a
:class:`~marketpulse.bus.MemoryBus`: the produce, process and sink services
on their threads, the same consumer groups, transactions and rebalancing
callbacks, Arrow columns for records, and the same options
(:class:`~marketpulse.runtime.runner.RunnerOptions`): one partition per topic
by default, and batch sizes of its own.

A replayed file is cut into segments (:mod:`marketpulse.runtime.segments`) whose marks travel
with the records, so that a rerun of the same input writes the same lake
files, replacing the earlier run's, whether it finished or was killed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from marketpulse.bus import MemoryBus
from marketpulse.bus.topics import Topics
from marketpulse.feeds.base import Feed
from marketpulse.runtime import MarketView, Metrics
from marketpulse.runtime.runner import (
    LAKE_FILE_ROWS,
    Runner,
    RunnerOptions,
)

__all__ = ["LAKE_FILE_ROWS", "EmbeddedPipeline", "RunnerOptions"]

#: Most records (here rows) the processor takes into one step. A step takes what
#: is there, so a feed the processor keeps up with is processed as it comes; one
#: that runs ahead is processed in large steps, whose fixed costs (alert rules,
#: output tables) then weigh less.
_MAX_BATCH = 131_072
#: Most records (rows) a sink takes per poll: what was published since its last
#: poll, in as few writes as it can (each write's casts and splits cost per call).
_SINK_BATCH = 1 << 20


class EmbeddedPipeline(Runner):
    """Runs a feed through the processor into the sinks, in this process, on the in-memory bus.

    Args:
        feed: where ticks come from.
        options: how to run: the options of :class:`~marketpulse.runtime.runner.Runner`,
            of which the embedded pipeline sets its own consumer groups and
            batch sizes; ``partitions`` ``None`` is one partition per topic.
        metrics: counters to update (a new set by default).
        view: per-symbol view to update for live displays (optional).
        progress: called with (done, total) after each feed batch.

    Attributes:
        dataset: the dataset of the run's rows (``options.dataset``, or the feed's own).

    Raises:
        InputError: ``options.dataset`` is not a dataset name.
    """

    def __init__(
        self,
        feed: Feed,
        options: RunnerOptions,
        metrics: Metrics | None = None,
        view: MarketView | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> None:
        embedded = replace(
            options,
            process=replace(options.process, max_batch=_MAX_BATCH),
            group_prefix="",
            sink_batch=_SINK_BATCH,
        )
        super().__init__(MemoryBus(), Topics(), feed, embedded, metrics, view, progress)
