"""Live market data from vendor APIs: Finnhub, Alpaca, Polygon, Alpha Vantage and Binance.

:func:`open_vendor` builds a :class:`VendorFeed` (a :class:`~marketpulse.feeds.Feed`)
from :class:`VendorOptions`; :data:`VENDORS` says what each vendor needs.
:func:`open_news` builds the company news feed of Finnhub, Polygon or Alpaca
(:data:`NEWS_VENDORS`) from the same options.
Keys come in as :class:`~marketpulse.config.Secret` values, resolved by the
entry point (``config.vendor_credentials``) and never logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from marketpulse.calendars import ALWAYS_OPEN, MarketHours
from marketpulse.config import Secret
from marketpulse.feeds.vendors import alpaca, alphavantage, binance, finnhub, polygon
from marketpulse.feeds.vendors.base import (
    Events,
    FeedStatus,
    Gap,
    Vendor,
    VendorError,
    VendorFeed,
)
from marketpulse.feeds.vendors.news import NEWS_VENDORS, open_news
from marketpulse.feeds.vendors.pacing import Backoff, RateLimit, wait
from marketpulse.feeds.vendors.polling import Poller
from marketpulse.feeds.vendors.symbols import Symbols
from marketpulse.feeds.vendors.websocket import Connection, stream

__all__ = [
    "NEWS_VENDORS",
    "VENDORS",
    "FeedStatus",
    "Gap",
    "MarketHours",
    "Symbols",
    "Vendor",
    "VendorError",
    "VendorFeed",
    "VendorOptions",
    "open_news",
    "open_vendor",
]


VENDORS: dict[str, Vendor] = {
    v.name: v
    for v in (
        Vendor("finnhub", "trades (WebSocket), last bid/ask (REST, --quotes)", finnhub.DEFAULT_URL),
        Vendor(
            "alpaca",
            "trades, quotes, minute bars (WebSocket; iex or sip)",
            alpaca.DEFAULT_URL,
            needs_secret=True,
        ),  # fmt: skip
        Vendor(
            "polygon", "trades, minute aggregates (WebSocket); history (REST)", polygon.DEFAULT_URL
        ),  # fmt: skip
        Vendor("alphavantage", "intraday or daily bars (REST polling)", alphavantage.DEFAULT_URL),
        Vendor(
            "binance",
            "crypto trades (WebSocket), no key, 24/7",
            binance.DEFAULT_URL,
            needs_key=False,
            calendar=ALWAYS_OPEN,
        ),  # fmt: skip
    )
}


@dataclass(slots=True)
class VendorOptions:
    """How to open a vendor feed.

    Attributes:
        symbols: what to follow (a list, or a watchlist that may change).
        key: the API key (``Secret('')`` for Binance).
        secret: Alpaca's secret key.
        url: the endpoint (WebSocket or, for REST-only vendors, HTTP) instead of the vendor's.
        rest_url: the REST endpoint of vendors that use both (and of polled news).
        data_feed: Alpaca's ``iex`` or ``sip``.
        interval: Alpha Vantage's bar interval.
        quotes: Finnhub: also poll the last bid and ask.
        quote_every: Finnhub: seconds between quote rounds.
        history: Polygon: fetch minute aggregates from this date to today first.
        calendar: exchange calendar of the market hours (``XNYS``; ``24/7``).
        rate_limit: REST requests per window, instead of the vendor's free plan.
        backoff: reconnect and retry waits.
        sleep: the waiting coroutine (tests inject one).
        now_ns: the clock, UTC ns (tests inject one).
        monotonic: the clock of rate limits, seconds (tests inject one).
    """

    symbols: Symbols
    key: Secret = field(default_factory=lambda: Secret(""))
    secret: Secret = field(default_factory=lambda: Secret(""))
    url: str | None = None
    rest_url: str | None = None
    data_feed: str = "iex"
    interval: str = "1m"
    quotes: bool = False
    quote_every: float = 5.0
    history: date | None = None
    calendar: str | None = None
    rate_limit: tuple[int, float] | None = None
    backoff: Backoff = field(default_factory=Backoff)
    sleep: Callable[[float], Any] = wait
    now_ns: Callable[[], int] = time.time_ns
    monotonic: Callable[[], float] = time.monotonic

    def poller(self, vendor: str, client: Any, out: Events,
               free: tuple[tuple[int, float], ...], **kwargs: Any) -> Poller:  # fmt: skip
        """A :class:`Poller` of ``vendor`` within ``rate_limit`` or else the ``free`` plan's."""
        chosen = (self.rate_limit,) if self.rate_limit else free
        limits = tuple(RateLimit(n, per, self.monotonic) for n, per in chosen)
        # a backoff of its own: REST failures do not lengthen the stream's reconnect waits
        backoff = dataclasses.replace(self.backoff, attempts=0)
        return Poller(vendor, client, limits, out, backoff, self.sleep, **kwargs)


def open_vendor(name: str, options: VendorOptions) -> VendorFeed:
    """Build the live feed of vendor ``name``.

    Raises:
        VendorError: unknown vendor, or a key it needs is missing.
    """
    spec = VENDORS.get(name)
    if spec is None:
        raise VendorError(f"unknown vendor {name!r} (known: {', '.join(VENDORS)})")
    if spec.needs_key and not options.key:
        raise VendorError(f"{name}: no API key")
    hours = MarketHours(options.calendar or spec.calendar)
    conn = Connection(options.url or spec.url, backoff=options.backoff, sleep=options.sleep)
    symbols = options.symbols

    async def client(out: Events) -> None:
        if name == "binance":
            await stream(binance.Binance(), conn, symbols, out)
        elif name == "alpaca":
            vendor = alpaca.Alpaca(options.key, options.secret, options.data_feed)
            await stream(vendor, conn, symbols, out)
        elif name == "finnhub":
            await _finnhub(options, conn, hours, out)
        elif name == "polygon":
            await _polygon(options, conn, out)
        else:
            await _alphavantage(options, hours, out)

    events = Events(name, options.now_ns)
    return VendorFeed(name, client, events)


async def _finnhub(options: VendorOptions, conn: Connection, hours: MarketHours,
                   out: Events) -> None:  # fmt: skip
    trades = stream(finnhub.Finnhub(options.key), conn, options.symbols, out)
    if not options.quotes:
        await trades
        return
    async with finnhub.rest_client(options.rest_url or finnhub.DEFAULT_REST_URL,
                                   options.key) as http:  # fmt: skip
        poller = options.poller("finnhub", http, out, (finnhub.REST_LIMIT,))
        quotes = finnhub.poll_quotes(poller, options.symbols, hours, options.quote_every,
                                     options.now_ns)  # fmt: skip
        await _together(trades, quotes)


async def _polygon(options: VendorOptions, conn: Connection, out: Events) -> None:
    if options.history is not None:
        async with polygon.rest_client(options.rest_url or polygon.DEFAULT_REST_URL,
                                       options.key) as http:  # fmt: skip
            poller = options.poller("polygon", http, out, (polygon.REST_LIMIT,))
            today = time.strftime("%Y-%m-%d", time.gmtime(options.now_ns() / 1e9))
            await polygon.backfill(poller, options.symbols.current, options.history.isoformat(),
                                   today)  # fmt: skip
    await stream(polygon.Polygon(options.key), conn, options.symbols, out)


async def _alphavantage(options: VendorOptions, hours: MarketHours, out: Events) -> None:
    import httpx

    base = options.url or alphavantage.DEFAULT_URL
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as http:
        poller = options.poller("alphavantage", http, out, alphavantage.FREE_LIMITS,
                                check=alphavantage.check_body)  # fmt: skip
        feed = alphavantage.AlphaVantage(poller, options.key.reveal(), options.interval, hours,
                                         options.now_ns)  # fmt: skip
        await feed.run(options.symbols)


async def _together(*coroutines: Any) -> None:
    """Run coroutines until the first fails (the others are cancelled); raise its error."""
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                group.create_task(coroutine)
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
