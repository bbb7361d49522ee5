"""Pipeline figures: counters, rates and tick-to-indicator latency, and their Prometheus form.

:class:`PipelineCollector` is what every ``/metrics`` shows of a
:class:`Metrics`: the dashboard's and the services' own endpoints
(:mod:`marketpulse.runtime.endpoint`) alike, so the names never differ.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from marketpulse.human import human_bytes, human_duration, human_rate

__all__ = ["LATENCY_BUCKETS", "PIPELINE_FIGURES", "Metrics", "MetricsSnapshot", "PipelineCollector"]

#: Upper bounds (seconds) of the tick-to-indicator latency histogram.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """The pipeline's figures at one moment."""

    elapsed: float
    ticks_in: int
    rejected: int
    bars: int
    indicator_rows: int
    alerts: int
    dlq: int
    ticks_per_s: float
    bars_per_s: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None

    def line(self) -> str:
        """Render as one log line."""
        latency = (
            f"latency p50 {self.latency_p50_ms:.1f} ms p99 {self.latency_p99_ms:.1f} ms"
            if self.latency_p50_ms is not None
            else "latency -"
        )
        return (
            f"ticks {self.ticks_in:,} ({self.ticks_per_s:,.0f}/s) | bars {self.bars:,} "
            f"({self.bars_per_s:,.0f}/s) | indicators {self.indicator_rows:,} | "
            f"alerts {self.alerts:,} | dlq {self.dlq:,} | {latency}"
        )

    def summary(
        self, read_bytes: int | None = None, lake_written: tuple[int, int] | None = None
    ) -> str:
        """Render as the final summary line: counts, then the mean rate since the start.

        Args:
            read_bytes: bytes of input read (a file), shown when given.
            lake_written: files and bytes written to the Parquet lake, shown when given.
        """
        read = "" if read_bytes is None else f" ({human_bytes(read_bytes)} read)"
        lake = ""
        if lake_written is not None:
            lake = f"lake files {lake_written[0]:,} ({human_bytes(lake_written[1])}), "
        return (
            f"done: ticks in {self.ticks_in:,}{read}, bars {self.bars:,}, indicator rows "
            f"{self.indicator_rows:,}, alerts {self.alerts:,}, DLQ rows {self.dlq:,} "
            f"(rejected input rows {self.rejected:,}), {lake}"
            f"{human_rate(self.ticks_in, self.elapsed)} ticks/s over {human_duration(self.elapsed)}"
        )


class Metrics:
    """Thread-safe counters updated by the pipeline, read by views.

    ``elapsed`` and the rates run from the first tick counted: what came
    before (loading or compiling the kernels, opening the sinks, waiting for
    a feed) is not the pipeline's throughput.
    """

    def __init__(self, window: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._ticking = False
        self._window = window
        self._ticks = 0
        self._rejected = 0
        self._bars = 0
        self._indicators = 0
        self._alerts = 0
        self._dlq = 0
        self._history: deque[tuple[float, int, int]] = deque([(self._start, 0, 0)])
        self._latency: deque[float] = deque(maxlen=4096)
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one: above every bound
        self._latency_sum = 0.0
        self._notifications: dict[tuple[str, str], int] = {}

    def add(
        self,
        ticks: int = 0,
        bars: int = 0,
        indicators: int = 0,
        alerts: int = 0,
        dlq: int = 0,
        rejected: int = 0,
    ) -> None:
        """Add to the counters; the first ticks start the clock."""
        with self._lock:
            if ticks and not self._ticking:
                self._ticking = True
                self._restart()
            self._ticks += ticks
            self._bars += bars
            self._indicators += indicators
            self._alerts += alerts
            self._dlq += dlq
            self._rejected += rejected

    @property
    def ticking(self) -> bool:
        """Whether the first ticks are in (the clock runs from them)."""
        return self._ticking

    def notified(self, channel: str, outcome: str, count: int = 1) -> None:
        """Count ``count`` alerts of a notification ``channel`` with ``outcome`` (``sent``, ...)."""
        with self._lock:
            key = (channel, outcome)
            self._notifications[key] = self._notifications.get(key, 0) + count

    def notifications(self) -> dict[tuple[str, str], int]:
        """Return the notification counts by (channel, outcome)."""
        with self._lock:
            return dict(self._notifications)

    def start_clock(self) -> None:
        """Measure time (``elapsed``, rates) from now, until the first tick restarts it.

        What came before (loading the kernels, opening the sinks) is not the
        pipeline's throughput.
        """
        with self._lock:
            self._restart()

    def _restart(self) -> None:
        self._start = time.monotonic()
        self._history = deque([(self._start, self._ticks, self._bars)])

    def latency(self, seconds: float) -> None:
        """Record one tick-to-indicator latency sample."""
        with self._lock:
            self._latency.append(seconds)
            self._buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._latency_sum += seconds

    def latency_histogram(self) -> tuple[list[int], float]:
        """Return the samples per bucket of :data:`LATENCY_BUCKETS` (plus one above), and their sum.

        Unlike the percentiles of :meth:`snapshot`, these count every sample since the start.
        """
        with self._lock:
            return list(self._buckets), self._latency_sum

    def snapshot(self) -> MetricsSnapshot:
        """Return the current figures; rates over the last ``window`` seconds."""
        now = time.monotonic()
        with self._lock:
            self._history.append((now, self._ticks, self._bars))
            while len(self._history) > 2 and now - self._history[0][0] > self._window:
                self._history.popleft()
            t0, ticks0, bars0 = self._history[0]
            span = now - t0
            ticks_rate = (self._ticks - ticks0) / span if span > 0 else 0.0
            bars_rate = (self._bars - bars0) / span if span > 0 else 0.0
            samples = np.fromiter(self._latency, float) if self._latency else None
            return MetricsSnapshot(
                elapsed=now - self._start,
                ticks_in=self._ticks,
                rejected=self._rejected,
                bars=self._bars,
                indicator_rows=self._indicators,
                alerts=self._alerts,
                dlq=self._dlq,
                ticks_per_s=ticks_rate,
                bars_per_s=bars_rate,
                latency_p50_ms=None if samples is None else float(np.percentile(samples, 50) * 1e3),
                latency_p99_ms=None if samples is None else float(np.percentile(samples, 99) * 1e3),
            )


#: The figures :class:`PipelineCollector` shows, by their short names
#: (``marketpulse_<name>``, ``_total`` added to counters).
PIPELINE_FIGURES: tuple[str, ...] = (
    "ticks", "rejected", "bars", "indicator_rows", "alerts", "dlq",
    "ticks_per_second", "bars_per_second", "tick_to_indicator_seconds",
)  # fmt: skip


class PipelineCollector(Collector):
    """Expose a pipeline's counters, rates and latency histogram to Prometheus.

    Args:
        metrics: the running pipeline's metrics.
        figures: the short names (:data:`PIPELINE_FIGURES`) to show; default all
            (a stage shows only what it counts: ``produce`` no bars).
    """

    def __init__(self, metrics: Metrics, figures: Collection[str] = PIPELINE_FIGURES) -> None:
        self.metrics = metrics
        self.figures = frozenset(figures)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        """Yield the current figures."""
        snap = self.metrics.snapshot()
        shown = self.figures
        for name, value, doc in (
            ("ticks", snap.ticks_in, "Ticks taken in."),
            ("rejected", snap.rejected, "Input rows rejected by validation."),
            ("bars", snap.bars, "Bars closed."),
            ("indicator_rows", snap.indicator_rows, "Indicator rows computed."),
            ("alerts", snap.alerts, "Alerts raised."),
            ("dlq", snap.dlq, "Records sent to the dead-letter topic."),
        ):
            if name in shown:
                yield CounterMetricFamily(f"marketpulse_{name}", doc, value=value)
        if "ticks_per_second" in shown:
            yield GaugeMetricFamily(
                "marketpulse_ticks_per_second",
                "Ticks in per second, recent.",
                value=snap.ticks_per_s,
            )
        if "bars_per_second" in shown:
            yield GaugeMetricFamily(
                "marketpulse_bars_per_second", "Bars out per second, recent.", value=snap.bars_per_s
            )
        notified = self.metrics.notifications()
        if notified and "alerts" in shown:
            family = CounterMetricFamily(
                "marketpulse_notifications",
                "Alerts per notification channel and outcome (sent, digested, retried, "
                "failed, dropped).",
                labels=("channel", "outcome"),
            )
            for (channel, outcome), value in sorted(notified.items()):
                family.add_metric((channel, outcome), value)
            yield family
        if "tick_to_indicator_seconds" not in shown:
            return
        counts, total = self.metrics.latency_histogram()
        cumulative, buckets = 0, []
        for bound, count in zip([*map(str, LATENCY_BUCKETS), "+Inf"], counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "marketpulse_tick_to_indicator_seconds",
            "Latency from a batch of ticks received to its indicators computed.",
            buckets=buckets,
            sum_value=total,
        )
