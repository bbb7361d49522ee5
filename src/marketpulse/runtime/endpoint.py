"""A service's own HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz``.

``produce``, ``process`` and the sinks serve it on ``--metrics-port`` (the
``metrics_port`` setting, ``MARKETPULSE_METRICS_PORT``; 0: none), for
Prometheus and for Kubernetes' and Compose's probes:

- ``/metrics``: the service's figures in the Prometheus text format, read from
  its collectors at scrape time (:mod:`marketpulse.runtime.service_figures`);
- ``/healthz``: 200 while the process serves;
- ``/readyz``: 200 once the service is ready (connected, in its group, its
  loop going round), else 503 with the reason, in a JSON body both ways.

The port is bound when the endpoint starts, before the service connects, so
a port in use stops the command at once with one line; until the service is
attached, ``/readyz`` answers 503 (starting). The server is the standard
library's, on a daemon thread: it reads figures and never touches the
service's Kafka clients.

>>> with ServiceEndpoint(9100) as endpoint:  # doctest: +SKIP
...     endpoint.attach(SinkFigures(service))
...     service.run()
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol, Self

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from marketpulse.config import METRICS_HOST
from marketpulse.exceptions import ConfigError

__all__ = ["CONTENT_TYPE", "Readiness", "ServiceEndpoint", "render"]

logger = logging.getLogger(__name__)

#: The Prometheus text format (the dashboard's ``/metrics`` serves the same).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Readiness(Protocol):
    """What ``/readyz`` asks: whether the service is ready, and if not, why."""

    def ready(self) -> tuple[bool, str]:
        """Return (ready, the reason it is not: empty when ready)."""
        ...


def render(collectors: Sequence[Collector]) -> bytes:
    """Return the Prometheus text exposition of ``collectors``, read now."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


class ServiceEndpoint:
    """Serve a service's ``/metrics``, ``/healthz`` and ``/readyz`` on a port of its own.

    Args:
        port: TCP port (0: any free one; :attr:`port` tells which, once started).
        host: address to listen on (default every interface: Prometheus and
            probes come from other containers; only figures are served).
        service: the service's name, for the log line.
    """

    def __init__(self, port: int, host: str = METRICS_HOST, service: str = "service") -> None:
        self.host = host
        self.service = service
        self._port = port
        self._collectors: list[Collector] = []
        self._readiness: Readiness | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._not_ready_because = ""  # the reason logged last: a probe polls, the log hears it once

    @property
    def port(self) -> int:
        """The port served (the bound one, once started)."""
        return self._server.server_address[1] if self._server is not None else self._port

    def start(self) -> Self:
        """Bind the port and serve on a daemon thread.

        Raises:
            ConfigError: the port cannot be bound (in use, not permitted, no such address).
        """
        handler = _handler(self._metrics, self._ready)
        try:
            self._server = ThreadingHTTPServer((self.host, self._port), handler)
        except OSError as exc:
            why = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ConfigError(
                f"metrics port {self._port}: cannot listen on {self.host}:{self._port}: {why} "
                "(choose another --metrics-port or MARKETPULSE_METRICS_PORT, or 0 for none)"
            ) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
            name="metrics-endpoint", daemon=True,
        )  # fmt: skip
        self._thread.start()
        shown = "0.0.0.0" if self.host in ("", "0.0.0.0") else self.host
        logger.info(
            "%s: /metrics, /healthz and /readyz on http://%s:%d/",
            self.service, shown, self.port,
        )  # fmt: skip
        return self

    def attach(self, figures: Collector, *more: Collector) -> None:
        """Show ``figures`` (and ``more``) on ``/metrics``.

        ``figures``, a :class:`Readiness`, answers ``/readyz`` too.
        """
        self._collectors = [figures, *more]
        self._readiness = figures if hasattr(figures, "ready") else None  # type: ignore[assignment]

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _metrics(self) -> bytes:
        return render(self._collectors)

    def _ready(self) -> tuple[bool, str]:
        if self._readiness is None:
            ready, reason = False, "starting"
        else:
            try:
                ready, reason = self._readiness.ready()
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
                ready, reason = False, str(exc) or type(exc).__name__
        if reason != self._not_ready_because:
            if reason and reason != "starting":  # starting, joining: not yet, not wrong
                logger.info("%s not ready: %s", self.service, reason)
            self._not_ready_because = reason
        return ready, reason


def _handler(
    metrics: Callable[[], bytes], ready: Callable[[], tuple[bool, str]]
) -> type[BaseHTTPRequestHandler]:
    """A request handler class answering the three paths (anything else: 404)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "marketpulse"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                try:
                    body = metrics()
                except Exception as exc:  # noqa: BLE001 - a scrape fails, the service goes on
                    logger.warning("metrics not rendered: %s", exc)
                    self._send(500, b"metrics not rendered\n", "text/plain; charset=utf-8")
                    return
                self._send(200, body, CONTENT_TYPE)
            elif path == "/healthz":
                self._json(200, {"status": "ok"})
            elif path == "/readyz":
                ok, reason = ready()
                body = {"status": "ready"} if ok else {"status": "not ready", "reason": reason}
                self._json(200 if ok else 503, body)
            else:
                self._json(404, {"error": "not found: /metrics, /healthz, /readyz"})

        def _json(self, status: int, body: dict[str, str]) -> None:
            self._send(status, json.dumps(body).encode() + b"\n", "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            logger.debug("metrics endpoint: " + format, *args)

    return Handler
