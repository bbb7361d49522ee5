"""Alpha Vantage: intraday and daily bars polled over REST, within its rate limits.

``GET /query?function=TIME_SERIES_INTRADAY&symbol=IBM&interval=5min&apikey=KEY``
(or ``TIME_SERIES_DAILY``) answers::

    {"Meta Data": {"2. Symbol": "IBM", "4. Interval": "5min", "6. Time Zone": "US/Eastern"},
     "Time Series (5min)": {"2024-01-05 15:55:00": {"1. open": "160.93",
        "2. high": "161.00", "3. low": "160.90", "4. close": "160.95", "5. volume": "10812"}}}

Intraday times are the bars' starts in the zone the metadata names; daily
bars are dated, and here span their exchange session (open to close, an
early close included). Alpha Vantage tells of its rate limit in a 200 body,
``{"Note": ...}`` or ``{"Information": ...}``; the free plan allows 25
requests a day (and 5 a minute): the feed spreads its requests within both,
polls only while the market is open, and sends each bar once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import msgspec

from marketpulse.calendars import MarketHours
from marketpulse.feeds.vendors.base import Events, VendorError
from marketpulse.feeds.vendors.messages import PARSE_ERRORS, number
from marketpulse.feeds.vendors.polling import Poller, RateLimited
from marketpulse.feeds.vendors.symbols import Symbols
from marketpulse.feeds.vendors.timestamps import epoch_ns
from marketpulse.models import Bar, interval_ns

__all__ = ["DEFAULT_URL", "INTERVALS", "AlphaVantage", "check_body"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://www.alphavantage.co"
#: Our bar interval → Alpha Vantage's ``interval`` (``None``: the daily series).
INTERVALS: dict[str, str | None] = {"1m": "1min", "5m": "5min", "15m": "15min",
                                    "1h": "60min", "1d": None}  # fmt: skip
#: Published limits of the free plan: (requests, seconds).
FREE_LIMITS = ((5, 60.0), (25, 86_400.0))


def check_body(data: Any) -> None:
    """Raise RateLimited for a limit told in the body, VendorError for a refused key."""
    if not isinstance(data, dict):
        return
    if "Note" in data or "Information" in data:
        text = str(data.get("Note") or data.get("Information"))
        if "apikey" in text.lower() and "invalid" in text.lower():
            raise VendorError(f"alphavantage: the key was refused ({text})")
        raise RateLimited(text)
    message = data.get("Error Message")
    if isinstance(message, str) and "apikey" in message.lower():
        raise VendorError(f"alphavantage: the key was refused ({message})")


@dataclass(slots=True)
class AlphaVantage:
    """Poll the bars of some symbols at one interval.

    Attributes:
        poller: paced requests (its client's base URL is Alpha Vantage's).
        key: the API key (a query parameter; the poller's logs never show URLs).
        interval: ``1m``, ``5m``, ``15m``, ``1h`` or ``1d``.
        hours: market hours; polling idles outside sessions.
        now_ns: UTC nanoseconds now (injected by tests).
    """

    poller: Poller
    key: str
    interval: str
    hours: MarketHours
    now_ns: Callable[[], int] = time.time_ns
    #: symbol → the time stamp of its last row read (sent or dead-lettered)
    _done: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise VendorError(
                f"alphavantage: interval {self.interval!r} (choose {', '.join(INTERVALS)})"
            )

    def _params(self, symbol: str) -> dict[str, str]:
        av = INTERVALS[self.interval]
        if av is None:
            return {"function": "TIME_SERIES_DAILY", "symbol": symbol, "apikey": self.key}
        return {"function": "TIME_SERIES_INTRADAY", "symbol": symbol, "interval": av,
                "outputsize": "compact", "apikey": self.key}  # fmt: skip

    def _bar(self, symbol: str, stamp: str, values: dict[str, Any], tz: str) -> Bar | None:
        if self.interval == "1d":
            session = self.hours.session(date.fromisoformat(stamp))
            if session is None:
                raise ValueError(f"{stamp} is not a session of {self.hours.name}")
            start, end = session
        else:
            start = epoch_ns(stamp, tz)
            end = start + interval_ns(self.interval)
        if end > self.now_ns():
            return None  # not closed yet
        return Bar(symbol=symbol, timeframe=self.interval, bar_start=start, bar_end=end,
                   open=number(values["1. open"]), high=number(values["2. high"]),
                   low=number(values["3. low"]), close=number(values["4. close"]),
                   volume=number(values["5. volume"]))  # fmt: skip

    def read(self, symbol: str, data: Any, out: Events) -> None:
        """Put the new closed bars of one answer into ``out``, oldest first."""
        series_key = next((k for k in data if k.startswith("Time Series")), None)
        if series_key is None or not isinstance(data[series_key], dict):
            error = data.get("Error Message", "no time series in the answer")
            out.dead("vendor", f"{symbol}: {error}", msgspec.json.encode(data), symbol)
            return
        meta = data.get("Meta Data") or {}
        tz = next((v for k, v in meta.items() if k.endswith("Time Zone")), "US/Eastern")
        done = self._done.get(symbol, "")
        for stamp, values in sorted(data[series_key].items()):  # ISO stamps sort in time
            if stamp <= done:
                continue
            try:
                bar = self._bar(symbol, stamp, values, tz)
            except PARSE_ERRORS as exc:
                raw = msgspec.json.encode({stamp: values})
                out.dead("parse", f"{symbol} {stamp}: {type(exc).__name__}: {exc}", raw, symbol)
                self._done[symbol] = stamp
                continue
            if bar is None:
                break  # this bar and the later ones are still open
            out.put(bar)
            self._done[symbol] = stamp

    async def run(self, symbols: Symbols) -> None:
        """Poll every symbol once per bar interval while the market is open, forever."""
        every = min(interval_ns(self.interval), 3600 * 10**9) / 1e9
        while True:
            await self.poller.until_open(self.hours, self.now_ns)
            symbols.refresh()
            started = self.now_ns()
            for symbol in symbols.current:
                data = await self.poller.get("/query", self._params(symbol))
                if isinstance(data, dict):
                    self.read(symbol, data, self.poller.out)
            spent = (self.now_ns() - started) / 1e9
            await self.poller.sleep(max(0.0, every - spent))
