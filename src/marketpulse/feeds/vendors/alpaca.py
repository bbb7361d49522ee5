"""Alpaca over WebSocket: trades, quotes and minute bars (IEX or SIP), and company news.

``wss://stream.data.alpaca.markets/v2/{iex|sip}`` (IEX on the free plan, SIP
with a paid one). The server greets with ``[{"T": "success", "msg":
"connected"}]``; the client sends ``{"action": "auth", "key": ..., "secret":
...}`` and, once ``authenticated``, ``{"action": "subscribe", "trades": [...],
"quotes": [...], "bars": [...]}``. Data messages are JSON arrays of::

    {"T": "t", "S": "AAPL", "i": 52983525029461, "x": "V", "p": 189.5, "s": 100,
     "t": "2024-01-05T15:51:44.208123456Z", "c": ["@"], "z": "C"}
    {"T": "q", "S": "AAPL", "bx": "V", "bp": 189.49, "bs": 3, "ax": "V",
     "ap": 189.51, "as": 2, "t": "2024-01-05T15:51:45.335689322Z", "c": ["R"], "z": "C"}
    {"T": "b", "S": "AAPL", "o": 189.4, "h": 189.6, "l": 189.3, "c": 189.5,
     "v": 5231, "t": "2024-01-05T15:51:00Z", "n": 61, "vw": 189.47}

Errors are ``{"T": "error", "code": 402, "msg": "auth failed"}``: a bad key
(402), a plan without the feed (409) or too many symbols (405) stop the feed
with a clear error; a connection limit (406), slow client (407) or internal
error (500) reconnect.

News (``wss://stream.data.alpaca.markets/v1beta1/news``, Benzinga's) greets
and authenticates alike; the client subscribes ``{"action": "subscribe",
"news": ["AAPL", "TSLA"]}`` (``["*"]``: all) and articles arrive as arrays of::

    {"T": "n", "id": 24918784, "headline": "...", "summary": "...", "author": "...",
     "created_at": "2022-01-05T22:00:37Z", "updated_at": "2022-01-05T22:00:38Z",
     "url": "...", "content": "...", "symbols": ["AAPL", "TSLA"], "source": "benzinga"}

One :class:`~marketpulse.models.NewsItem` per followed symbol of the article
(``id`` ``alpaca:24918784``), published at ``created_at``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection

from marketpulse.config import Secret
from marketpulse.feeds.vendors.base import Events, VendorError
from marketpulse.feeds.vendors.messages import (
    article_id,
    decode,
    field,
    number,
    optional_text,
    put_each,
    symbol_list,
    text,
)
from marketpulse.feeds.vendors.timestamps import epoch_ns
from marketpulse.feeds.vendors.websocket import Reconnect
from marketpulse.models import Bar, NewsItem, Quote, Trade, interval_ns

__all__ = ["DATA_FEEDS", "DEFAULT_URL", "NEWS_URL", "Alpaca", "AlpacaNews"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://stream.data.alpaca.markets/v2"
NEWS_URL = "wss://stream.data.alpaca.markets/v1beta1/news"
#: Alpaca's stock feeds: IEX (free plan) and SIP (all US exchanges, paid plan).
DATA_FEEDS = ("iex", "sip")

_FATAL = {
    401: "not authenticated",
    402: "the key and secret were refused",
    405: "symbol limit of the plan exceeded",
    409: "the plan does not include this feed",
}
_RECONNECT = {406, 407, 500}  # fmt: skip
_MINUTE = interval_ns("1m")


def _trade(item: dict[str, Any]) -> Trade:
    conditions = item.get("c")
    return Trade(
        symbol=text(item["S"]), ts=epoch_ns(item["t"]), price=number(item["p"]),
        size=number(item["s"]), exchange=item.get("x"),
        condition=",".join(conditions) if conditions else None,
        extra={"id": item.get("i"), "tape": item.get("z")},
    )  # fmt: skip


def _quote(item: dict[str, Any]) -> Quote:
    return Quote(
        symbol=text(item["S"]), ts=epoch_ns(item["t"]), bid=number(item["bp"]),
        bid_size=number(item["bs"]), ask=number(item["ap"]), ask_size=number(item["as"]),
        extra={"bid_exchange": item.get("bx"), "ask_exchange": item.get("ax"),
               "conditions": item.get("c"), "tape": item.get("z")},
    )  # fmt: skip


def _bar(item: dict[str, Any]) -> Bar:
    start = epoch_ns(item["t"])
    vwap = item.get("vw")
    return Bar(
        symbol=text(item["S"]), timeframe="1m", bar_start=start, bar_end=start + _MINUTE,
        open=number(item["o"]), high=number(item["h"]), low=number(item["l"]),
        close=number(item["c"]), volume=number(item["v"]),
        vwap=None if vwap is None else number(vwap), trades=int(item.get("n") or 0),
    )  # fmt: skip


_PARSERS: dict[str, Callable[[dict[str, Any]], Trade | Quote | Bar]] = {
    "t": _trade,
    "q": _quote,
    "b": _bar,
}


def _event(item: dict[str, Any]) -> Trade | Quote | Bar:
    parse = _PARSERS.get(item["T"])
    if parse is None:
        raise ValueError(f"unknown message type {item['T']!r}")
    return parse(item)


def _article(item: dict[str, Any], followed: Collection[str]) -> list[NewsItem]:
    """One item per symbol of the article that is followed (all of them under ``*``)."""
    if item["T"] != "n":
        raise ValueError(f"unknown message type {item['T']!r}")
    article = f"alpaca:{field(item, 'id', article_id)}"
    ts = field(item, "created_at", epoch_ns)
    headline = field(item, "headline", text)
    source, url = optional_text(item.get("source")), optional_text(item.get("url"))
    symbols = field(item, "symbols", symbol_list)
    return [NewsItem(article, symbol, ts, headline, source, url) for symbol in symbols
            if symbol in followed or "*" in followed]  # fmt: skip


def _control(item: Any) -> None:
    """Act on a control message: raise for errors, log the rest."""
    kind = item.get("T")
    if kind == "error":
        code = item.get("code")
        if code in _FATAL:
            raise VendorError(f"alpaca: error {code}: {_FATAL[code]} ({item.get('msg')})")
        if code in _RECONNECT:
            raise Reconnect(f"alpaca error {code}: {item.get('msg')}")
        logger.warning("alpaca: error %s: %s", code, item.get("msg"))
    elif kind == "subscription":
        channels = {name: value for name, value in item.items() if name != "T"}
        logger.info("alpaca: subscribed %s", channels)


class _Stream:
    """What Alpaca's streams share: greeting, authentication, subscriptions, control messages.

    Args:
        key: the API key id.
        secret: the secret key.
        channels: what to subscribe for each symbol (``trades``, ``news``, ...).
    """

    name = "alpaca"

    def __init__(self, key: Secret, secret: Secret, channels: tuple[str, ...]) -> None:
        self._key, self._secret = key, secret
        self.channels = channels

    def url(self, base: str, symbols: tuple[str, ...]) -> str:
        """The stream's URL, as given."""
        return base

    def _event(self, item: Any) -> Any:
        """Read one data item (the subclass's kind)."""
        raise NotImplementedError

    async def _expect(self, ws: ClientConnection, status: str) -> None:
        data = msgspec.json.decode(await ws.recv())
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and item.get("T") == "success" and item.get("msg") == status:
                return
            if isinstance(item, dict):
                _control(item)
        raise Reconnect(f"alpaca: expected {status!r}, got {data!r}")

    async def _send(self, ws: ClientConnection, action: str, symbols: tuple[str, ...]) -> None:
        message = {"action": action, **{channel: list(symbols) for channel in self.channels}}
        await ws.send(msgspec.json.encode(message).decode())

    async def start(self, ws: ClientConnection, symbols: tuple[str, ...]) -> None:
        """Wait for the greeting, authenticate, subscribe."""
        await self._expect(ws, "connected")
        auth = {"action": "auth", "key": self._key.reveal(), "secret": self._secret.reveal()}
        await ws.send(msgspec.json.encode(auth).decode())
        await self._expect(ws, "authenticated")
        await self._send(ws, "subscribe", symbols)

    async def change(
        self, ws: ClientConnection, added: tuple[str, ...], removed: tuple[str, ...]
    ) -> None:
        """Subscribe and unsubscribe on the live connection."""
        if added:
            await self._send(ws, "subscribe", added)
        if removed:
            await self._send(ws, "unsubscribe", removed)

    def handle(self, message: str | bytes, out: Events) -> None:
        """Read an array of data items and control messages."""
        data = decode(message, out)
        if data is None:
            return
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and item.get("T") in ("error", "subscription", "success"):
                _control(item)
            else:
                put_each(out, [item], self._event)


class Alpaca(_Stream):
    """Alpaca's stock data stream: trades, quotes and minute bars of some symbols."""

    def __init__(self, key: Secret, secret: Secret, feed: str = "iex",
                 channels: tuple[str, ...] = ("trades", "quotes", "bars")) -> None:  # fmt: skip
        if feed not in DATA_FEEDS:
            choices = ", ".join(DATA_FEEDS)
            raise VendorError(f"alpaca: unknown data feed {feed!r} (choose {choices})")
        super().__init__(key, secret, channels)
        self.feed = feed

    def url(self, base: str, symbols: tuple[str, ...]) -> str:
        """The stream of the chosen feed under ``base``."""
        return f"{base.rstrip('/')}/{self.feed}"

    def _event(self, item: Any) -> Trade | Quote | Bar:
        return _event(item)


class AlpacaNews(_Stream):
    """Alpaca's news stream: articles about some symbols, as they are published."""

    def __init__(self, key: Secret, secret: Secret) -> None:
        super().__init__(key, secret, ("news",))
        self.followed: set[str] = set()

    async def start(self, ws: ClientConnection, symbols: tuple[str, ...]) -> None:
        """Wait for the greeting, authenticate, subscribe the symbols' news."""
        self.followed = set(symbols)
        await super().start(ws, symbols)

    async def change(
        self, ws: ClientConnection, added: tuple[str, ...], removed: tuple[str, ...]
    ) -> None:
        """Subscribe and unsubscribe on the live connection."""
        self.followed = (self.followed | set(added)) - set(removed)
        await super().change(ws, added, removed)

    def _event(self, item: Any) -> list[NewsItem]:
        return _article(item, self.followed)
