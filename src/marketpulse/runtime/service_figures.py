"""What each service shows on its endpoint (:mod:`.endpoint`): figures and readiness.

Each class here is a Prometheus collector of one service's figures, read at
scrape time from the service's own counters, and answers ``/readyz``. The
metrics (Prometheus adds the ``job`` and ``instance`` labels):

- ``produce``: ``marketpulse_ticks_total``, ``marketpulse_rejected_total``,
  ``marketpulse_dlq_total``, ``marketpulse_ticks_per_second`` (named as the
  dashboard's), ``marketpulse_produce_quotes_total``,
  ``marketpulse_produce_failed_total``;
- ``process``: every figure of the dashboard's ``/metrics``
  (:class:`~marketpulse.runtime.PipelineCollector`: ticks, bars, indicator
  rows, alerts, dlq, their rates, and ``marketpulse_tick_to_indicator_seconds``,
  from a tick's produce time to its indicators), and
  ``marketpulse_process_records_total``, ``marketpulse_process_transactions_total``,
  ``marketpulse_process_aborted_total``, ``marketpulse_process_clients_replaced_total``;
- the sinks: ``marketpulse_sink_records_total{sink}``,
  ``marketpulse_sink_rows_total{sink,table}`` (the ``dlq`` table: dead
  letters stored), ``marketpulse_sink_undecodable_total{sink}``,
  ``marketpulse_sink_commits_total{sink}``,
  ``marketpulse_sink_failed_commits_total{sink}``,
  ``marketpulse_sink_rejoins_total{sink}``;
- ``process`` and the sinks: ``marketpulse_consumer_lag{group,topic,partition}``,
  records left to read per assigned partition (a sink's partition read to its
  end may show 1: the transaction marker);
- every service: ``marketpulse_ready``, 1 when ``/readyz`` answers 200.

A consumer service is ready once it has joined its group (been assigned its
partitions, maybe none) and its loop went round within
:data:`STALLED_AFTER` seconds; ``produce`` once a batch of its feed went out
within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from marketpulse.runtime.metrics import Metrics, PipelineCollector
from marketpulse.runtime.outputs import OutputObserver

if TYPE_CHECKING:
    from marketpulse.bus.base import Batch
    from marketpulse.runtime.outputs import OutputCounts
    from marketpulse.runtime.process import ProcessService
    from marketpulse.runtime.produce import ProduceStats
    from marketpulse.runtime.sink import SinkService
    from marketpulse.stream import Output

__all__ = [
    "PRODUCE_FIGURES",
    "STALLED_AFTER",
    "ProcessFigures",
    "ProduceFigures",
    "SinkFigures",
    "batch_time",
]

#: Seconds without a pass of a service's loop (``produce``: without a feed
#: batch) after which it is not ready.
STALLED_AFTER = 30.0

#: The figures of :class:`~marketpulse.runtime.PipelineCollector` that ``produce`` has.
PRODUCE_FIGURES = ("ticks", "rejected", "dlq", "ticks_per_second")


def batch_time(batch: Batch | None) -> float | None:
    """When the last record of ``batch`` was produced, epoch seconds (``None``: unknown).

    Kafka's record timestamp (ms), or the in-memory bus's append time.
    """
    if batch is not None and batch.messages:
        return batch.messages[-1].timestamp / 1e3
    if batch is not None and batch.sent_at:
        return batch.sent_at
    return None


def _ready_gauge(ready: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "marketpulse_ready", "1 when the service is ready (/readyz answers 200).", value=int(ready)
    )


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"marketpulse_{name}", doc, value=value)


def _consumer_ready(
    service: ProcessService | SinkService, what: str, now: float | None = None
) -> tuple[bool, str]:
    """Whether a consumer service has joined its group and its loop goes round."""
    now = time.monotonic() if now is None else now
    if service.stop.is_set():
        return False, f"{what} is stopping"
    if not service.joined:
        return False, f"{what} has not joined consumer group {service.options.group} yet"
    quiet = now - service.beat
    if quiet > STALLED_AFTER:
        return False, f"{what}: no pass of its loop for {quiet:.0f} s"
    return True, ""


def _lag_family(group: str, lag: dict[tuple[str, int], int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "marketpulse_consumer_lag",
        "Records left to read per assigned partition (refreshed every second).",
        labels=["group", "topic", "partition"],
    )
    for (topic, partition), records in sorted(lag.items()):
        family.add_metric([group, topic, str(partition)], records)
    return family


class ProduceFigures(Collector):
    """The ``produce`` service's figures: give :meth:`progressed` as its ``on_progress``.

    Args:
        metrics: the counters to fill (a new set by default).
        on_progress: called after, with the same figures (the command's progress display).
    """

    def __init__(
        self,
        metrics: Metrics | None = None,
        on_progress: Callable[[ProduceStats], None] | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self._observer = OutputObserver(self.metrics)
        self._on_progress = on_progress
        self._lock = threading.Lock()
        self._taken = self._dead = self._quotes = self._failed = 0
        self._last: float | None = None

    def progressed(self, stats: ProduceStats) -> None:
        """Take the service's figures after a batch (its ``on_progress``)."""
        with self._lock:  # quotes pass the processor by: not counted as ticks in
            taken = stats.ticks - stats.quotes
            ticks, self._taken = taken - self._taken, taken
            dead, self._dead = stats.dead - self._dead, stats.dead
            self._quotes, self._failed = stats.quotes, stats.failed
            self._last = time.monotonic()
        self._observer.taken(ticks, dead)
        if self._on_progress is not None:
            self._on_progress(stats)

    def ready(self, now: float | None = None) -> tuple[bool, str]:
        """Ready once a batch of the feed went out within :data:`STALLED_AFTER` seconds."""
        now = time.monotonic() if now is None else now
        if self._last is None:
            return False, "produce has sent no batch of its feed yet"
        quiet = now - self._last
        if quiet > STALLED_AFTER:
            return False, f"produce: no batch of its feed for {quiet:.0f} s"
        return True, ""

    def collect(self) -> Iterator[Metric]:
        """Yield the current figures."""
        yield from PipelineCollector(self.metrics, PRODUCE_FIGURES).collect()
        yield _counter("produce_quotes", "Quotes sent to the ticks topic.", self._quotes)
        yield _counter(
            "produce_failed", "Records the broker did not accept (delivery reports).", self._failed
        )
        yield _ready_gauge(self.ready()[0])


class ProcessFigures(Collector):
    """The ``process`` service's figures: the pipeline's, its transactions and its lag.

    Make it before the service: :meth:`on_output` is the service's ``on_output``
    (it counts the ticks and the latency from each tick's produce time) and
    :meth:`on_commit` its ``on_commit`` (the outputs, once committed); then
    :meth:`attach` the service.

    Args:
        metrics: the counters to fill (a new set by default).
    """

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or Metrics()
        # latency samples: from a record's timestamp (epoch seconds) to now
        self._observer = OutputObserver(self.metrics, clock=time.time)
        self.service: ProcessService | None = None

    def attach(self, service: ProcessService) -> None:
        """Read the figures of ``service`` from now on."""
        self.service = service

    def on_output(self, out: Output, batch: Batch | None) -> None:
        """Count one output of the processor and the ticks it came from."""
        if batch is not None:
            self._observer.taken(len(batch.messages) if batch.messages else len(batch))
        self._observer.output(out, since=batch_time(batch), count=False)

    def on_commit(self, counts: OutputCounts) -> None:
        """Count the outputs of a committed transaction (the service's ``on_commit``)."""
        self._observer.committed(counts)

    def ready(self, now: float | None = None) -> tuple[bool, str]:
        """Ready once in its group, with its loop going round."""
        if self.service is None:
            return False, "starting"
        return _consumer_ready(self.service, "process", now)

    def collect(self) -> Iterator[Metric]:
        """Yield the current figures."""
        yield from PipelineCollector(self.metrics).collect()
        service = self.service
        if service is None:
            return
        stats = service.stats
        for name, value, doc in (
            ("records", stats.records, "Records consumed from the ticks topic."),
            ("transactions", stats.transactions, "Kafka transactions committed."),
            ("aborted", stats.aborted, "Transactions aborted (their work redone)."),
            ("clients_replaced", stats.replaced, "Kafka clients replaced after a failure."),
        ):
            yield _counter(f"process_{name}", doc, value)
        ticks = service.topics.ticks
        yield _lag_family(service.options.group, {(ticks, p): n for p, n in service.lag.items()})
        yield _ready_gauge(self.ready()[0])


class SinkFigures(Collector):
    """A sink service's figures: records and rows stored, commits, lag.

    Args:
        service: the sink service.
    """

    def __init__(self, service: SinkService) -> None:
        self.service = service

    def ready(self, now: float | None = None) -> tuple[bool, str]:
        """Ready once in its group, with its loop going round."""
        return _consumer_ready(self.service, f"sink {self.service.sink.name}", now)

    def collect(self) -> Iterator[Metric]:
        """Yield the current figures."""
        service = self.service
        stats, name = service.stats, service.sink.name
        for short, value, doc in (
            ("records", stats.records, "Records consumed from the output topics."),
            ("undecodable", stats.undecodable, "Records not of their topic's kind (to the dlq)."),
            ("commits", stats.commits, "Offset commits after durable writes."),
            ("failed_commits", stats.failed_commits, "Offset commits that failed."),
            ("rejoins", stats.rejoins, "Times the member rejoined its group."),
        ):
            family = CounterMetricFamily(f"marketpulse_sink_{short}", doc, labels=["sink"])
            family.add_metric([name], value)
            yield family
        rows = CounterMetricFamily(
            "marketpulse_sink_rows", "Rows written, per table.", labels=["sink", "table"]
        )
        for table, count in sorted(dict(stats.rows).items()):
            rows.add_metric([name, table], count)
        yield rows
        yield _lag_family(service.options.group, {tuple(tp): n for tp, n in service.lag.items()})
        yield _ready_gauge(self.ready()[0])
