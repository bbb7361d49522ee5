"""Serving the dashboard with uvicorn on a background thread."""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

from marketpulse.serve.exceptions import ServeError
from marketpulse.serve.settings import ServeSettings

__all__ = ["DashboardServer"]

logger = logging.getLogger(__name__)


class DashboardServer:
    """Run an ASGI app on its own thread; a context manager that stops it.

    The socket is bound in :meth:`start`, so an address in use is reported
    there, and port 0 gets a free port (see :attr:`port`).

    Args:
        app: the ASGI application (see :func:`~marketpulse.serve.app.create_app`).
        settings: host, port and token.
    """

    def __init__(self, app: Any, settings: ServeSettings) -> None:
        self.app = app
        self.settings = settings
        self.port = settings.port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The dashboard's address."""
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def start(self, timeout: float = 10.0) -> None:
        """Bind the socket and start serving; return once the server accepts connections.

        Raises:
            ServeError: the address cannot be bound, or the server did not start in time.
        """
        host = self.settings.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, self.settings.port))
        except OSError as exc:
            sock.close()
            raise ServeError(
                f"cannot serve the dashboard on {host}:{self.settings.port}: {exc.strerror} "
                "(choose another --port)"
            ) from None
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", ws="websockets-sansio"
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="dashboard", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServeError(f"the dashboard server did not start on {host}:{self.port}")
            time.sleep(0.01)
        logger.info("dashboard serving at %s", self.url)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close open connections; stopping twice is allowed."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
