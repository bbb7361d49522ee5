"""Alpaca market data v2 over WebSocket: trades, quotes and minute bars, IEX or SIP.

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
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection

from marketpulse.config import Secret
from marketpulse.feeds.vendors.base import Events, VendorError
from marketpulse.feeds.vendors.messages import decode, number, put_each, text
from marketpulse.feeds.vendors.timestamps import epoch_ns
from marketpulse.feeds.vendors.websocket import Reconnect
from marketpulse.models import Bar, Quote, Trade, interval_ns

__all__ = ["DATA_FEEDS", "DEFAULT_URL", "Alpaca"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://stream.data.alpaca.markets/v2"
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


_PARSERS = {"t": _trade, "q": _quote, "b": _bar}


def _event(item: dict[str, Any]) -> Trade | Quote | Bar:
    parse = _PARSERS.get(item["T"])
    if parse is None:
        raise ValueError(f"unknown message type {item['T']!r}")
    return parse(item)


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
        logger.info("alpaca: subscribed trades %s, quotes %s, bars %s",
                    item.get("trades"), item.get("quotes"), item.get("bars"))  # fmt: skip


class Alpaca:
    """Alpaca's stock data stream: trades, quotes and minute bars of some symbols."""

    name = "alpaca"

    def __init__(self, key: Secret, secret: Secret, feed: str = "iex",
                 channels: tuple[str, ...] = ("trades", "quotes", "bars")) -> None:  # fmt: skip
        if feed not in DATA_FEEDS:
            choices = ", ".join(DATA_FEEDS)
            raise VendorError(f"alpaca: unknown data feed {feed!r} (choose {choices})")
        self._key, self._secret = key, secret
        self.feed = feed
        self.channels = channels

    def url(self, base: str, symbols: tuple[str, ...]) -> str:
        """The stream of the chosen feed under ``base``."""
        return f"{base.rstrip('/')}/{self.feed}"

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
        """Read an array of trades, quotes, bars and control messages."""
        data = decode(message, out)
        if data is None:
            return
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and item.get("T") in ("error", "subscription", "success"):
                _control(item)
            else:
                put_each(out, [item], _event)
