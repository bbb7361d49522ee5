"""Finnhub: trades over WebSocket, last bid and ask and company news over REST.

WebSocket (``wss://ws.finnhub.io?token=KEY``): one ``{"type": "subscribe",
"symbol": ...}`` per symbol (and ``unsubscribe`` for watchlist removals);
trades arrive in batches, timestamps in milliseconds::

    {"type": "trade", "data": [{"s": "AAPL", "p": 189.5, "t": 1575526691134,
                                "v": 100, "c": ["1", "12"]}]}

plus ``{"type": "ping"}`` heartbeats and ``{"type": "error", "msg": ...}``.
REST quotes poll ``/api/v1/stock/bidask?symbol=AAPL`` (the "Last Bid-Ask"
endpoint: ``{"a": ask, "av": ask size, "b": bid, "bv": bid size, "t": ms}``)
within Finnhub's published limit of 60 calls a minute, only during market
hours. The key goes in the ``X-Finnhub-Token`` header for REST.

Company news: ``/api/v1/company-news?symbol=AAPL&from=2024-01-05&to=2024-01-05``
(whole days) answers a list of articles, times in Unix seconds::

    [{"category": "company", "datetime": 1569550360, "headline": "...", "id": 25286,
      "image": "...", "related": "AAPL", "source": "Reuters", "summary": "...", "url": "..."}]

Each is one :class:`~marketpulse.models.NewsItem` of the symbol asked (``id``
``finnhub:25286``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection

from marketpulse.calendars import MarketHours
from marketpulse.config import Secret
from marketpulse.feeds.vendors.base import Events
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
    text,
)
from marketpulse.feeds.vendors.polling import Poller
from marketpulse.feeds.vendors.symbols import Symbols
from marketpulse.feeds.vendors.timestamps import epoch_ns
from marketpulse.models import NS_PER_S, NewsItem, Quote, Trade

__all__ = ["DEFAULT_REST_URL", "DEFAULT_URL", "Finnhub", "company_news", "poll_quotes"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://ws.finnhub.io"
DEFAULT_REST_URL = "https://finnhub.io/api/v1"
#: Finnhub's free plan: 60 API calls a minute.
REST_LIMIT = (60, 60.0)


def _trade(item: dict[str, Any]) -> Trade:
    conditions = item.get("c")
    return Trade(
        symbol=text(item["s"]),
        ts=epoch_ns(item["t"]),
        price=number(item["p"]),
        size=number(item["v"]),
        condition=",".join(map(str, conditions)) if conditions else None,
    )


def _quote(symbol: str, item: dict[str, Any]) -> Quote | None:
    if not item.get("t"):  # Finnhub answers an unknown symbol with zeros
        raise ValueError(f"no bid/ask for {symbol}")
    return Quote(symbol=symbol, ts=epoch_ns(item["t"]), bid=number(item["b"]),
                 bid_size=number(item["bv"]), ask=number(item["a"]),
                 ask_size=number(item["av"]))  # fmt: skip


def _article(symbol: str, item: dict[str, Any]) -> NewsItem:
    return NewsItem(
        id=f"finnhub:{field(item, 'id', article_id)}", symbol=symbol,
        ts=field(item, "datetime", published), headline=field(item, "headline", text),
        source=optional_text(item.get("source")), url=optional_text(item.get("url")),
    )  # fmt: skip


class Finnhub:
    """Finnhub's trade stream."""

    name = "finnhub"

    def __init__(self, key: Secret) -> None:
        self._key = key

    def url(self, base: str, symbols: tuple[str, ...]) -> str:
        """The stream URL with the key (never logged: logs name the base URL only)."""
        joiner = "&" if "?" in base else "?"
        return f"{base}{joiner}{urlencode({'token': self._key.reveal()})}"

    async def _send(self, ws: ClientConnection, kind: str, symbols: tuple[str, ...]) -> None:
        for symbol in symbols:
            await ws.send(msgspec.json.encode({"type": kind, "symbol": symbol}).decode())

    async def start(self, ws: ClientConnection, symbols: tuple[str, ...]) -> None:
        """Subscribe each symbol."""
        await self._send(ws, "subscribe", symbols)

    async def change(
        self, ws: ClientConnection, added: tuple[str, ...], removed: tuple[str, ...]
    ) -> None:
        """Subscribe added symbols, unsubscribe removed ones."""
        await self._send(ws, "subscribe", added)
        await self._send(ws, "unsubscribe", removed)

    def handle(self, message: str | bytes, out: Events) -> None:
        """Read trades; pings are heartbeats; errors are logged."""
        data = decode(message, out)
        if data is None:
            return
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "trade" and isinstance(data.get("data"), list):
            put_each(out, data["data"], _trade)
        elif kind == "error":
            logger.warning("finnhub: %s", data.get("msg"))
        elif kind != "ping":
            out.dead("parse", f"unknown message type {kind!r}", message)


def rest_client(base: str, key: Secret) -> httpx.AsyncClient:
    """An HTTP client for Finnhub's REST API, the key in its header."""
    return httpx.AsyncClient(base_url=base, headers={"X-Finnhub-Token": key.reveal()},
                             timeout=10.0)  # fmt: skip


async def poll_quotes(
    poller: Poller,
    symbols: Symbols,
    hours: MarketHours,
    every: float,
    now_ns: Callable[[], int] = time.time_ns,
) -> None:
    """Poll the last bid and ask of every symbol each ``every`` seconds, during market hours."""
    out = poller.out
    while True:
        await poller.until_open(hours, now_ns)
        # the trade stream's watcher reads the watchlist; this loop follows its current list
        for symbol in symbols.current:
            data = await poller.get("/stock/bidask", {"symbol": symbol})
            if data is not None:
                put_each(out, [data], partial(_quote, symbol))
        await poller.sleep(every)


async def company_news(poller: Poller, symbol: str, start_ns: int, end_ns: int,
                       dead: DeadLetters | None = None) -> list[NewsItem]:  # fmt: skip
    """Fetch the articles about ``symbol`` of the UTC days from ``start_ns`` to ``end_ns``.

    Articles that do not read are dead letters in ``dead`` (``poller.out`` by
    default); the others come back.
    """
    sink = dead or poller.out
    days = {"from": _day(start_ns), "to": _day(end_ns)}
    data = await poller.get("/company-news", {"symbol": symbol, **days})
    if data is None:
        return []
    if not isinstance(data, list):  # {"error": ...}: a symbol the plan does not cover
        sink.dead("vendor", f"company news of {symbol}: {str(data)[:200]}",
                  msgspec.json.encode(data), symbol)  # fmt: skip
        return []
    return read_each(sink, data, lambda item: _article(symbol, item), symbol)


def _day(ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ns // NS_PER_S))
