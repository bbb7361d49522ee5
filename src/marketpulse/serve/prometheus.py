"""The pipeline's figures in the Prometheus text format.

A collector reads :class:`~marketpulse.runtime.Metrics` at scrape time, into a
registry of its own (never the process-wide default one).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from marketpulse.runtime import LATENCY_BUCKETS, Metrics
from marketpulse.serve.push import Clients

__all__ = ["CONTENT_TYPE", "ClientsCollector", "PipelineCollector", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PipelineCollector(Collector):
    """Expose a pipeline's counters, rates and latency histogram.

    Args:
        metrics: the running pipeline's metrics.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        """Yield the current figures."""
        snap = self.metrics.snapshot()
        for name, value, doc in (
            ("ticks", snap.ticks_in, "Ticks taken in."),
            ("rejected", snap.rejected, "Input rows rejected by validation."),
            ("bars", snap.bars, "Bars closed."),
            ("indicator_rows", snap.indicator_rows, "Indicator rows computed."),
            ("alerts", snap.alerts, "Alerts raised."),
            ("dlq", snap.dlq, "Records sent to the dead-letter topic."),
        ):
            yield CounterMetricFamily(f"marketpulse_{name}", doc, value=value)
        yield GaugeMetricFamily(
            "marketpulse_ticks_per_second", "Ticks in per second, recent.", value=snap.ticks_per_s
        )
        yield GaugeMetricFamily(
            "marketpulse_bars_per_second", "Bars out per second, recent.", value=snap.bars_per_s
        )
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


class ClientsCollector(Collector):
    """Expose the dashboard's WebSocket clients.

    Args:
        clients: the dashboard's client counts.
    """

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """Yield the current counts."""
        yield GaugeMetricFamily(
            "marketpulse_dashboard_clients",
            "WebSocket clients being served.",
            value=self.clients.connected,
        )
        yield CounterMetricFamily(
            "marketpulse_dashboard_clients_dropped",
            "WebSocket clients dropped for taking too long to receive an update.",
            value=self.clients.dropped,
        )


def render(metrics: Metrics | None, clients: Clients) -> bytes:
    """Return the Prometheus text exposition of the pipeline's ``metrics`` and the ``clients``."""
    registry = CollectorRegistry(auto_describe=False)
    if metrics is not None:
        registry.register(PipelineCollector(metrics))
    registry.register(ClientsCollector(clients))
    return generate_latest(registry)
