"""WebSocket push: the newest state, composed once for every client, conflated.

At most ``updates_per_s`` times a second, the *current* state is read once
for every client (:class:`~marketpulse.serve.broadcast.Broadcast`); each
client's loop sends it what changed since its previous message: intermediate
values are never queued, the latest value wins. The pipeline only writes into
the market view; it never waits on a client. A client that does not take an
update within ``send_timeout_s`` is dropped.

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
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from marketpulse.serve.broadcast import Broadcast, dumps

__all__ = ["Clients", "stream_to"]

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


async def stream_to(
    websocket: WebSocket,
    broadcast: Broadcast,
    send_timeout_s: float,
    clients: Clients,
) -> None:
    """Send a source's state to one client until it goes away or falls too far behind.

    Each update is the newest version of ``broadcast`` (composed once for
    every client, at most ``updates_per_s`` times a second): the rows that
    changed since the version this client was last sent, the new alerts and
    the figures.

    Args:
        websocket: the accepted connection.
        broadcast: the source's versions.
        send_timeout_s: drop the client when one message takes longer to send.
        clients: counts of the served and dropped clients.
    """
    source = broadcast.source
    watch: dict[str, Any] = {"symbol": None, "acked": 0, "acks": False, "ack": asyncio.Event()}
    receiver = asyncio.create_task(_drain(websocket, watch))
    watching, series_seq = None, 0
    clients.connected += 1
    joined = False
    try:
        version = await broadcast.join()
        joined = True
        shown = broadcast.dataset
        seq, alerts = broadcast.alerts_after(0, _BACKLOG_ALERTS)
        message = _message("snapshot", 1, shown, broadcast.rows_since(0), alerts,
                           broadcast.figures)  # fmt: skip
        sent = 0
        while True:
            await asyncio.wait_for(websocket.send_text(message), send_timeout_s)
            sent += 1
            while watch["acks"] and watch["acked"] < sent and not receiver.done():
                watch["ack"].clear()
                await asyncio.wait_for(watch["ack"].wait(), send_timeout_s)
            if receiver.done():
                return
            # composed after this client took the last one (acknowledged it, if it does)
            floor = max(version, broadcast.version if watch["acks"] else 0)
            # the server's own wait (a version every period; longer while a read of the
            # source is slow): not the client's, so the send timeout does not apply
            newest = await broadcast.newer_than(floor)
            if broadcast.dataset != shown:  # the page drops the other dataset's rows: send all
                shown, version = broadcast.dataset, 0
            rows = broadcast.rows_since(version)
            version = newest
            seq, alerts = broadcast.alerts_after(seq)
            message = _message("update", sent + 1, shown, rows, alerts, broadcast.figures)
            if watch["symbol"] != watching:
                watching, series_seq = watch["symbol"], 0
            if watching is not None:
                series_seq, bars, indicators = await run_in_threadpool(
                    source.series_after, watching, series_seq
                )
                message = (
                    message[:-1]
                    + ","
                    + dumps({"symbol": watching, "bars": bars, "indicators": indicators})[1:]
                )
    except TimeoutError:
        logger.warning("dropping a WebSocket client that took over %.1f s to take an update",
                       send_timeout_s)  # fmt: skip
        clients.dropped += 1
        with contextlib.suppress(TimeoutError, RuntimeError, WebSocketDisconnect):
            await asyncio.wait_for(websocket.close(code=1013), send_timeout_s)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away between two messages
    finally:
        if joined:
            broadcast.leave()
        clients.connected -= 1
        receiver.cancel()


def _message(kind: str, n: int, dataset: str | None, rows: str, alerts: str, figures: str) -> str:
    """One message's JSON text from its parts (rows, alerts and figures already JSON)."""
    return (
        f'{{"type":"{kind}","n":{n},"dataset":{dumps(dataset)},"rows":{rows},'
        f'"alerts":{alerts},"figures":{figures}}}'
    )


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
