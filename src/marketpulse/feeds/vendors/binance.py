"""Binance spot trades over WebSocket: crypto pairs around the clock, no key needed.

Streams are named in the URL (``/stream?streams=btcusdt@trade/ethusdt@trade``,
the combined-stream form, each message ``{"stream": ..., "data": {...}}``);
a watchlist change is sent as a ``SUBSCRIBE``/``UNSUBSCRIBE`` request on the
live connection. Binance drops every connection after 24 hours; the feed
reconnects. Trade payload (Binance spot WebSocket streams, "Trade Streams")::

    {"e": "trade", "E": 1672515782136, "s": "BNBBTC", "t": 12345,
     "p": "0.001", "q": "100", "T": 1672515782136, "m": true, "M": true}
"""

from __future__ import annotations

import itertools
import logging
from typing import Any
from urllib.parse import urlencode

import msgspec
from websockets.asyncio.client import ClientConnection

from marketpulse.feeds.vendors.base import Events
from marketpulse.feeds.vendors.messages import decode, number, put_each, text
from marketpulse.feeds.vendors.timestamps import epoch_ns
from marketpulse.models import Trade

__all__ = ["DEFAULT_URL", "Binance"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://stream.binance.com:9443/stream"


def _streams(symbols: tuple[str, ...]) -> list[str]:
    return [f"{s.lower()}@trade" for s in symbols]


def _trade(item: dict[str, Any]) -> Trade | None:
    if item.get("e") != "trade":
        return None
    return Trade(
        symbol=text(item["s"]).upper(),
        ts=epoch_ns(item["T"]),
        price=number(item["p"]),
        size=number(item["q"]),
        exchange="BINANCE",
        extra={"trade_id": item.get("t"), "buyer_is_maker": item.get("m"),
               "event_ts": epoch_ns(item["E"]) if "E" in item else None},
    )  # fmt: skip


class Binance:
    """The Binance trade streams of some pairs (``BTCUSDT``, ``ETHUSDT``)."""

    name = "binance"

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def url(self, base: str, symbols: tuple[str, ...]) -> str:
        """The combined-stream URL naming every pair's trade stream."""
        joiner = "&" if "?" in base else "?"
        return f"{base}{joiner}{urlencode({'streams': '/'.join(_streams(symbols))}, safe='/@')}"

    async def start(self, ws: ClientConnection, symbols: tuple[str, ...]) -> None:
        """Nothing to send: the URL subscribes."""

    async def change(
        self, ws: ClientConnection, added: tuple[str, ...], removed: tuple[str, ...]
    ) -> None:
        """Subscribe and unsubscribe trade streams on the live connection."""
        for method, symbols in (("SUBSCRIBE", added), ("UNSUBSCRIBE", removed)):
            if symbols:
                request = {"method": method, "params": _streams(symbols), "id": next(self._ids)}
                await ws.send(msgspec.json.encode(request).decode())

    def handle(self, message: str | bytes, out: Events) -> None:
        """Read one message: a trade, or the answer to a (un)subscribe request."""
        data = decode(message, out)
        if data is None:
            return
        if isinstance(data, dict) and "id" in data and ("result" in data or "error" in data):
            if data.get("error"):
                logger.warning("binance: request %s refused: %s", data["id"], data["error"])
            return
        payload = data.get("data", data) if isinstance(data, dict) else data
        put_each(out, [payload], _trade)
