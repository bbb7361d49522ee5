"""Polygon.io stocks: trades and aggregates over WebSocket; history and news over REST.

WebSocket ``wss://socket.polygon.io/stocks`` (``delayed.polygon.io`` on
delayed plans): the server greets with ``[{"ev": "status", "status":
"connected"}]``, the client sends ``{"action": "auth", "params": KEY}`` then
``{"action": "subscribe", "params": "T.AAPL,AM.AAPL"}``. Messages are JSON
arrays of events, times in Unix milliseconds::

    {"ev": "T", "sym": "MSFT", "x": 4, "i": "12345", "z": 3, "p": 114.125,
     "s": 100, "c": [0, 12], "t": 1536036818784, "q": 3681328}
    {"ev": "AM", "sym": "MSFT", "v": 4110, "av": 9470157, "op": 114.0, "vw": 114.1,
     "o": 114.05, "c": 114.12, "h": 114.2, "l": 114.0, "a": 114.06, "z": 685,
     "s": 1610144640000, "e": 1610144700000}

(``A`` is the per-second aggregate.) ``auth_failed`` stops the feed;
``max_connections`` is logged and the server's close reconnects.
History: ``GET /v2/aggs/ticker/{T}/range/1/minute/{from}/{to}`` with the key
as a bearer token, ``results`` of ``{"t", "o", "h", "l", "c", "v", "vw", "n"}``
and a ``next_url`` while more pages remain, within the free plan's 5
requests a minute.
News: ``GET /v2/reference/news?ticker=AAPL&published_utc.gte=2024-06-24T00:00:00Z
&order=asc&sort=published_utc&limit=1000``, paged by ``next_url`` too::

    {"status": "OK", "next_url": "https://api.polygon.io/v2/reference/news?cursor=...",
     "results": [{"id": "8ec638777ca03b553ae516761c2a22ba2fdd2f37befae3ab6fdab74e9e5193eb",
                  "publisher": {"name": "Investing.com", ...}, "title": "...",
                  "author": "...", "published_utc": "2024-06-24T18:33:53Z",
                  "article_url": "...", "tickers": ["AAPL", "MSFT"], "description": "..."}]}

One :class:`~marketpulse.models.NewsItem` per followed ticker of an article
(``id`` ``polygon:8ec6...``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Collection
from functools import partial
from typing import Any

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection

from marketpulse.config import Secret
from marketpulse.feeds.vendors.base import Events, VendorError
from marketpulse.feeds.vendors.messages import (
    DeadLetters,
    article_id,
    decode,
    field,
    number,
    optional_text,
    published,
    put_each,
    read_each,
    symbol_list,
    text,
)
from marketpulse.feeds.vendors.polling import Poller
from marketpulse.feeds.vendors.timestamps import epoch_ns
from marketpulse.feeds.vendors.websocket import Reconnect
from marketpulse.models import NS_PER_S, Bar, NewsItem, Trade, interval_ns

__all__ = ["DEFAULT_REST_URL", "DEFAULT_URL", "Polygon", "backfill", "news"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://socket.polygon.io/stocks"
DEFAULT_REST_URL = "https://api.polygon.io"
#: Polygon's free plan: 5 API requests a minute.
REST_LIMIT = (5, 60.0)
_CHANNELS = ("T", "AM")


def _trade(item: dict[str, Any]) -> Trade:
    conditions = item.get("c")
    return Trade(
        symbol=text(item["sym"]), ts=epoch_ns(item["t"]), price=number(item["p"]),
        size=number(item["s"]), exchange=str(item["x"]) if "x" in item else None,
        condition=",".join(map(str, conditions)) if conditions else None,
        extra={"id": item.get("i"), "tape": item.get("z"), "sequence": item.get("q")},
    )  # fmt: skip


def _aggregate(item: dict[str, Any], interval: str, symbol: str | None = None) -> Bar:
    start = epoch_ns(item["s"] if "s" in item else item["t"])
    vwap = item.get("vw")
    return Bar(
        symbol=text(symbol or item["sym"]), timeframe=interval, bar_start=start,
        bar_end=epoch_ns(item["e"]) if "e" in item else start + interval_ns(interval),
        open=number(item["o"]), high=number(item["h"]), low=number(item["l"]),
        close=number(item["c"]), volume=number(item["v"]),
        vwap=None if vwap is None else number(vwap), trades=int(item.get("n") or 0),
    )  # fmt: skip


def _article(item: dict[str, Any], followed: Collection[str]) -> list[NewsItem]:
    """One item per ticker of the article that is followed."""
    article = f"polygon:{field(item, 'id', article_id)}"
    ts = field(item, "published_utc", published)
    headline = field(item, "title", text)
    publisher = item.get("publisher")
    source = optional_text(publisher.get("name")) if isinstance(publisher, dict) else None
    url = optional_text(item.get("article_url"))
    return [NewsItem(article, ticker, ts, headline, source, url)
            for ticker in field(item, "tickers", symbol_list) if ticker in followed]  # fmt: skip


def _event(item: Any) -> Trade | Bar | None:
    kind = item["ev"]
    if kind == "T":
        return _trade(item)
    if kind == "AM":
        return _aggregate(item, "1m")
    if kind == "A":
        return _aggregate(item, "1s")
    if kind == "status":
        _status(item)
        return None
    raise ValueError(f"unknown event {kind!r}")


def _status(item: dict[str, Any]) -> None:
    status = item.get("status")
    if status == "auth_failed":
        raise VendorError(f"polygon: the key was refused ({item.get('message')})")
    if status in ("max_connections", "error"):
        logger.warning("polygon: %s: %s", status, item.get("message"))
    else:
        logger.info("polygon: %s: %s", status, item.get("message"))


def _params(symbols: tuple[str, ...]) -> str:
    return ",".join(f"{channel}.{s}" for s in symbols for channel in _CHANNELS)


class Polygon:
    """Polygon's stocks stream: trades and minute aggregates."""

    name = "polygon"

    def __init__(self, key: Secret) -> None:
        self._key = key

    def url(self, base: str, symbols: tuple[str, ...]) -> str:
        """The cluster's URL, as given."""
        return base

    async def _status(self, ws: ClientConnection, wanted: str) -> None:
        data = msgspec.json.decode(await ws.recv())
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and item.get("ev") == "status":
                _status(item)
                if item.get("status") == wanted:
                    return
        raise Reconnect(f"polygon: expected status {wanted!r}, got {data!r}")

    async def start(self, ws: ClientConnection, symbols: tuple[str, ...]) -> None:
        """Wait for the greeting, authenticate, subscribe to trades and minute aggregates."""
        await self._status(ws, "connected")
        auth = {"action": "auth", "params": self._key.reveal()}
        await ws.send(msgspec.json.encode(auth).decode())
        await self._status(ws, "auth_success")
        await self.change(ws, symbols, ())

    async def change(
        self, ws: ClientConnection, added: tuple[str, ...], removed: tuple[str, ...]
    ) -> None:
        """Subscribe and unsubscribe on the live connection."""
        for action, symbols in (("subscribe", added), ("unsubscribe", removed)):
            if symbols:
                message = {"action": action, "params": _params(symbols)}
                await ws.send(msgspec.json.encode(message).decode())

    def handle(self, message: str | bytes, out: Events) -> None:
        """Read an array of events."""
        data = decode(message, out)
        if data is not None:
            put_each(out, data if isinstance(data, list) else [data], _event)


def rest_client(base: str, key: Secret) -> httpx.AsyncClient:
    """An HTTP client for Polygon's REST API, the key as a bearer token."""
    return httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key.reveal()}"},
                             timeout=30.0)  # fmt: skip


async def backfill(poller: Poller, symbols: tuple[str, ...], start: str, end: str) -> None:
    """Fetch minute aggregates of each symbol from ``start`` to ``end`` (dates), page by page."""
    for symbol in symbols:
        path = f"/v2/aggs/ticker/{symbol}/range/1/minute/{start}/{end}"
        params = {"adjusted": "true", "sort": "asc", "limit": 50000}
        async for results in _pages(poller, poller.out, symbol, path, params):
            put_each(poller.out, results, partial(_aggregate, interval="1m", symbol=symbol))
        logger.info("polygon: history of %s from %s to %s fetched", symbol, start, end)


async def news(poller: Poller, symbol: str, start_ns: int, followed: Collection[str],
               dead: DeadLetters | None = None) -> list[NewsItem]:  # fmt: skip
    """Fetch the articles about ``symbol`` published from ``start_ns`` on, page by page.

    Each article gives one item per ticker of it in ``followed``; articles that
    do not read are dead letters in ``dead`` (``poller.out`` by default).
    """
    sink = dead or poller.out
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_ns // NS_PER_S))
    params = {"ticker": symbol, "published_utc.gte": since, "order": "asc",
              "sort": "published_utc", "limit": 1000}  # fmt: skip
    items: list[NewsItem] = []
    async for results in _pages(poller, sink, symbol, "/v2/reference/news", params):
        items += read_each(sink, results, lambda item: _article(item, followed), symbol)
    return items


async def _pages(
    poller: Poller, dead: DeadLetters, symbol: str, path: str, params: dict[str, Any]
) -> AsyncIterator[list[Any]]:
    """The ``results`` of each page of an answer; an ``ERROR`` status is a dead letter."""
    page: str | None = path
    query: dict[str, Any] | None = params
    while page:
        data = await poller.get(page, query)
        if not isinstance(data, dict):
            return
        if data.get("status") == "ERROR":
            dead.dead("vendor", f"{symbol}: {data.get('error')}", msgspec.json.encode(data), symbol)
            return
        yield data.get("results") or []
        page, query = _next_page(data.get("next_url")), None


def _next_page(url: str | None) -> str | None:
    """The path and query of ``next_url`` (the client keeps its own base and key)."""
    if not url:
        return None
    parts = httpx.URL(url)
    return parts.raw_path.decode()
