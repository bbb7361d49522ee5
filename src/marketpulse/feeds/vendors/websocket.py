"""One loop for every WebSocket vendor: connect, authenticate, subscribe, read, reconnect.

Heartbeats are WebSocket pings (``ping_interval``; a connection whose pong
does not come back within ``ping_timeout`` is dropped) plus, optionally, an
idle limit on data. A dropped connection is retried with exponential backoff
and jitter; a vendor's refusal that no retry can cure (a bad key, an
unauthorised plan) raises :class:`~marketpulse.feeds.vendors.base.VendorError`.
While connected, a changed watchlist is subscribed without a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import websockets
from websockets.asyncio.client import ClientConnection

from marketpulse.feeds.vendors.base import Events, VendorError
from marketpulse.feeds.vendors.pacing import Backoff, retry_after_seconds, wait
from marketpulse.feeds.vendors.symbols import Symbols

__all__ = ["Connection", "Reconnect", "WsVendor", "stream"]

logger = logging.getLogger(__name__)
# websockets' own logger: its debug lines show the handshake's URL, and some
# vendors (Finnhub) take the key in it; INFO and above hold no URL
_protocol_logger = logging.getLogger(f"{__name__}.protocol")
_protocol_logger.setLevel(logging.INFO)

#: HTTP answers to the WebSocket handshake that no retry cures.
_REFUSED = {401: "the key was refused", 403: "the plan has no access to this stream",
            404: "no such stream at this URL"}  # fmt: skip


class Reconnect(Exception):  # noqa: N818 - a signal, not a failure
    """Raised by a vendor's message handler: drop this connection and connect again."""


class WsVendor(Protocol):
    """What one WebSocket vendor module provides."""

    name: str

    def url(self, base: str, symbols: tuple[str, ...]) -> str:
        """The URL to connect to (some vendors name the streams in it)."""
        ...

    async def start(self, ws: ClientConnection, symbols: tuple[str, ...]) -> None:
        """Authenticate and subscribe; raise VendorError when refused."""
        ...

    async def change(
        self, ws: ClientConnection, added: tuple[str, ...], removed: tuple[str, ...]
    ) -> None:
        """Subscribe ``added`` and unsubscribe ``removed`` on a live connection."""
        ...

    def handle(self, message: str | bytes, out: Events) -> None:
        """Read one message into ``out``; raise Reconnect or VendorError on control messages."""
        ...


@dataclass(slots=True)
class Connection:
    """How a WebSocket feed connects and reconnects.

    Attributes:
        url: the vendor's endpoint (or a proxy's, a test server's).
        backoff: waits between attempts.
        ping_interval: seconds between heartbeat pings (``None``: none).
        ping_timeout: seconds a pong may take before the connection is dropped.
        idle_timeout: reconnect after this many seconds without a message (``None``: never).
        open_timeout: seconds the handshake and authentication may take.
        watch_every: seconds between looks at the watchlist file.
        sleep: the coroutine that waits (injected by tests to record the schedule).
        monotonic: seconds of a monotonic clock.
    """

    url: str
    backoff: Backoff = field(default_factory=Backoff)
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    idle_timeout: float | None = None
    open_timeout: float = 10.0
    watch_every: float = 2.0
    sleep: Callable[[float], Awaitable[None]] = wait
    monotonic: Callable[[], float] = time.monotonic


async def _watch(ws: ClientConnection, vendor: WsVendor, symbols: Symbols, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        added, removed = symbols.refresh()
        if added or removed:
            await vendor.change(ws, added, removed)


async def _session(vendor: WsVendor, conn: Connection, symbols: Symbols, out: Events) -> float:
    """Run one connection until it drops; return how long it was up (seconds)."""
    url = vendor.url(conn.url, symbols.current)
    async with websockets.connect(
        url, ping_interval=conn.ping_interval, ping_timeout=conn.ping_timeout,
        open_timeout=conn.open_timeout, close_timeout=2, max_size=2**23, logger=_protocol_logger,
    ) as ws:  # fmt: skip
        opened = conn.monotonic()
        try:
            await asyncio.wait_for(vendor.start(ws, symbols.current), conn.open_timeout)
            out.connected()
            watcher = asyncio.create_task(_watch(ws, vendor, symbols, conn.watch_every))
            try:
                while True:
                    message = await asyncio.wait_for(ws.recv(), conn.idle_timeout)
                    vendor.handle(message, out)
            finally:
                watcher.cancel()
        except (websockets.ConnectionClosed, Reconnect, TimeoutError) as exc:
            logger.warning("%s: connection lost: %s", vendor.name, _why(exc))
        except asyncio.CancelledError:  # the feed is closing: say goodbye with 1000, not 1011
            await ws.close()
            raise
        return conn.monotonic() - opened


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no message within the time limit"
    return str(exc) or type(exc).__name__


def _refused(vendor: WsVendor, exc: Any) -> float | None:
    """Raise VendorError for a handshake no retry cures; return a Retry-After, if any."""
    status = exc.response.status_code
    if status in _REFUSED:
        raise VendorError(f"{vendor.name}: HTTP {status} on connect: {_REFUSED[status]}")
    return retry_after_seconds(exc.response.headers.get("Retry-After"))


async def stream(vendor: WsVendor, conn: Connection, symbols: Symbols, out: Events) -> None:
    """Stream ``vendor`` into ``out`` until cancelled, reconnecting as needed.

    Raises:
        VendorError: the vendor refused the key, the plan or the symbols.
    """
    backoff = conn.backoff
    while True:
        retry_after = None
        try:
            backoff.connected_for(await _session(vendor, conn, symbols, out))
        except websockets.InvalidStatus as exc:
            retry_after = _refused(vendor, exc)
            logger.warning("%s: connect refused: %s", vendor.name, exc)
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.ConnectionClosed,
                Reconnect) as exc:  # fmt: skip
            logger.warning("%s: cannot connect to %s: %s", vendor.name, conn.url, _why(exc))
        out.lost()
        delay = backoff.next_delay()
        if retry_after is not None:
            out.status.rate_limited += 1
            delay = max(delay, retry_after)
        out.status.delays.append(delay)
        logger.info("%s: reconnecting in %.2f s (attempt %d)", vendor.name, delay, backoff.attempts)
        await conn.sleep(delay)
