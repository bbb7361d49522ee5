"""The pipeline's figures in the Prometheus text format.

A collector reads :class:`~marketpulse.runtime.Metrics` at scrape time, into a
registry of its own (never the process-wide default one); the pipeline's
figures are :class:`~marketpulse.runtime.PipelineCollector`'s, which the
services' own endpoints show too.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from marketpulse.runtime import Metrics, PipelineCollector
from marketpulse.serve.push import Clients

__all__ = ["CONTENT_TYPE", "ClientsCollector", "PipelineCollector", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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
