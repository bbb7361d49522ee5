"""WebSocket push with server-side conflation.

Each client has its own loop that wakes at most ``updates_per_s`` times a
second, reads the *current* state and sends what changed since its previous
message: intermediate values are never queued, the latest value wins. The
pipeline only writes into the market view; it never waits on a client. A
client that does not take an update within ``send_timeout_s`` is dropped.

Messages (JSON): first ``{"type": "snapshot", "dataset": ..., "rows": [...],
"alerts": [...], "figures": {...}}``, then ``{"type": "update", ...}`` with the
changed rows, the new alerts and the figures; each message has a number ``n``
and names the ``dataset`` the live rows are of (every row of a bar, indicator
or alert names its own too). A client that sends ``{"symbol": "AAPL"}`` also
gets that symbol's newly closed ``bars`` and ``indicators`` rows (every
timeframe), starting with the few the server keeps. Times are ISO 8601 UTC text.

A client that acknowledges messages (``{"ack": n}`` once it has handled
message ``n``; the pages do) has at most one update in flight: the next one is
composed only once the previous one was handled, so socket buffers never hold
a queue of stale updates for a client slower than the update rate. A client
that stops acknowledging for ``send_timeout_s`` is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from marketpulse.serve.market import MarketSource

__all__ = ["Clients", "Conflator", "stream_to"]

logger = logging.getLogger(__name__)

#: Alerts a new client receives from before it connected.
_BACKLOG_ALERTS = 200


class Clients:
    """How many WebSocket clients are served, and how many were dropped for being too slow.

    A dropped client gets nothing more; what the server had already handed to
    the operating system stays with the connection until the client closes it.
    """

    def __init__(self) -> None:
        self.connected = 0
        self.dropped = 0


class Conflator:
    """Remembers what one client was sent; yields only rows that differ since."""

    def __init__(self) -> None:
        self._sent: dict[str, tuple[Any, ...]] = {}

    def changes(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Return the rows whose values differ from the last ones sent, and remember them."""
        changed = []
        for row in rows:
            values = tuple(row.values())
            if self._sent.get(row["symbol"]) != values:
                self._sent[row["symbol"]] = values
                changed.append(row)
        return changed


async def stream_to(
    websocket: WebSocket,
    source: MarketSource,
    updates_per_s: float,
    send_timeout_s: float,
    clients: Clients,
) -> None:
    """Send ``source``'s state to one client until it goes away or falls too far behind.

    Args:
        websocket: the accepted connection.
        source: where rows, alerts and figures come from.
        updates_per_s: most messages per second to this client.
        send_timeout_s: drop the client when one message takes longer to send.
        clients: counts of the served and dropped clients.
    """
    period = 1.0 / updates_per_s
    conflator = Conflator()
    watch: dict[str, Any] = {"symbol": None, "acked": 0, "acks": False, "ack": asyncio.Event()}
    receiver = asyncio.create_task(_drain(websocket, watch))
    watching, series_seq = None, 0
    clients.connected += 1
    try:
        seq, alerts = await run_in_threadpool(source.alerts_after, 0)
        rows = await run_in_threadpool(source.watchlist)
        sent = 0
        shown = source.dataset
        message = {
            "type": "snapshot",
            "n": 1,
            "dataset": shown,
            "rows": conflator.changes(rows),
            "alerts": alerts[-_BACKLOG_ALERTS:],
            "figures": await run_in_threadpool(source.figures),
        }
        while True:
            started = time.monotonic()
            await asyncio.wait_for(websocket.send_json(message), send_timeout_s)
            sent += 1
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))
            while watch["acks"] and watch["acked"] < sent and not receiver.done():
                watch["ack"].clear()
                await asyncio.wait_for(watch["ack"].wait(), send_timeout_s)
            if receiver.done():
                return
            seq, alerts = await run_in_threadpool(source.alerts_after, seq)
            every_row = await run_in_threadpool(source.watchlist)
            if source.dataset != shown:  # the page drops the other dataset's rows: send all
                shown, conflator = source.dataset, Conflator()
            rows = conflator.changes(every_row)
            message = {
                "type": "update",
                "n": sent + 1,
                "dataset": shown,
                "rows": rows,
                "alerts": alerts,
                "figures": await run_in_threadpool(source.figures),
            }
            if watch["symbol"] != watching:
                watching, series_seq = watch["symbol"], 0
            if watching is not None:
                series_seq, bars, indicators = await run_in_threadpool(
                    source.series_after, watching, series_seq
                )
                message.update(symbol=watching, bars=bars, indicators=indicators)
    except TimeoutError:
        logger.warning("dropping a WebSocket client that took over %.1f s to take an update",
                       send_timeout_s)  # fmt: skip
        clients.dropped += 1
        with contextlib.suppress(TimeoutError, RuntimeError, WebSocketDisconnect):
            await asyncio.wait_for(websocket.close(code=1013), send_timeout_s)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away between two messages
    finally:
        clients.connected -= 1
        receiver.cancel()


async def _drain(websocket: WebSocket, watch: dict[str, Any]) -> None:
    """Read what the client sends: acknowledgements, the symbol it charts, and its close."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                asked = json.loads(message.get("text") or "{}")
            except ValueError:
                continue  # not ours to judge: keep serving the client
            if not isinstance(asked, dict):
                continue
            if isinstance(asked.get("ack"), int):
                watch["acks"] = True
                watch["acked"] = max(watch["acked"], asked["ack"])
                watch["ack"].set()
            if "symbol" in asked and (asked["symbol"] is None or isinstance(asked["symbol"], str)):
                watch["symbol"] = asked["symbol"]
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        watch["ack"].set()  # a sender waiting for an acknowledgement sees the client gone
