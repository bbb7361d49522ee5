"""``--metrics-port``: the services' own ``/metrics``, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import typer

from marketpulse.config import Settings

if TYPE_CHECKING:
    from marketpulse.runtime.endpoint import ServiceEndpoint

__all__ = ["METRICS_PORT_OPTION", "metrics_endpoint"]

METRICS_PORT_OPTION = typer.Option(
    None,
    "--metrics-port",
    min=0,
    max=65535,
    metavar="PORT",
    help="Serve /metrics (Prometheus), /healthz and /readyz on this TCP port, on every "
    "interface (metrics_host or MARKETPULSE_METRICS_HOST to change it); 0: none "
    "[default: metrics_port or MARKETPULSE_METRICS_PORT, else 0].",
)


@contextlib.contextmanager
def metrics_endpoint(settings: Settings, service: str) -> Iterator[ServiceEndpoint | None]:
    """Serve the endpoint on the settings' port while the block runs (``None``: port 0, none).

    The port is bound on entry: a port in use stops the command before it connects.
    """
    if not settings.metrics_port:
        yield None
        return
    from marketpulse.runtime.endpoint import ServiceEndpoint

    with ServiceEndpoint(settings.metrics_port, settings.metrics_host, service) as endpoint:
        yield endpoint
