"""Company news from live vendors: Finnhub and Polygon polled over REST, Alpaca streamed.

:func:`open_news` builds a :class:`~marketpulse.feeds.vendors.VendorFeed`
whose batches are of kind ``news``: one :class:`~marketpulse.models.NewsItem`
per article and symbol, ``id`` ``"<vendor>:<article id>"``, ``ts`` the
publication time (UTC ns), ``sentiment`` and ``dataset`` left to the scorer.
What each vendor is asked, and answers (the vendor modules show the answers)::

    finnhub  GET https://finnhub.io/api/v1/company-news?symbol=AAPL&from=2024-01-05&to=2024-01-05
             X-Finnhub-Token: KEY                                  (60 requests a minute)
    polygon  GET https://api.polygon.io/v2/reference/news?ticker=AAPL
                 &published_utc.gte=2024-01-05T00:00:00Z&order=asc&sort=published_utc&limit=1000
             Authorization: Bearer KEY                             (5 requests a minute)
    alpaca   wss://stream.data.alpaca.markets/v1beta1/news
             -> {"action": "auth", "key": KEY, "secret": SECRET}
             -> {"action": "subscribe", "news": ["AAPL", "TSLA"]}
             <- [{"T": "n", "id": 24918784, "headline": "...", "symbols": ["AAPL"], ...}]

The polled vendors go through :class:`~marketpulse.feeds.vendors.polling.Poller`
(pacing, ``429`` and ``Retry-After``, retries, refused keys); each symbol's
first poll covers ``since`` to now, later ones from an hour before the last
(articles are indexed late) every ``every`` seconds, and
:class:`SeenArticles` passes each article and symbol once (and each bad
article is one dead letter, not one per poll). The stream goes
through :func:`~marketpulse.feeds.vendors.websocket.stream` (reconnects,
watchlist changes).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING

from marketpulse.feeds.vendors import alpaca, finnhub, polygon
from marketpulse.feeds.vendors.base import Events, Vendor, VendorError, VendorFeed
from marketpulse.feeds.vendors.polling import Poller
from marketpulse.feeds.vendors.symbols import Symbols
from marketpulse.feeds.vendors.websocket import Connection, stream
from marketpulse.models import NS_PER_S, NewsItem

if TYPE_CHECKING:
    from marketpulse.feeds.vendors import VendorOptions

__all__ = ["NEWS_VENDORS", "SeenArticles", "open_news"]

logger = logging.getLogger(__name__)

NEWS_VENDORS: dict[str, Vendor] = {
    v.name: v
    for v in (
        Vendor("finnhub", "company news (REST polling)", finnhub.DEFAULT_REST_URL),
        Vendor("polygon", "news of the followed tickers (REST polling)", polygon.DEFAULT_REST_URL),
        Vendor(
            "alpaca", "Benzinga news as published (WebSocket)", alpaca.NEWS_URL, needs_secret=True
        ),
    )
}

_HOUR_NS = 3600 * NS_PER_S
#: How far back a poll reaches before the last one's start: vendors index articles late.
_LATE_NS = _HOUR_NS
#: How long articles are remembered (by publication time); older ones are not emitted again.
_KEEP_NS = 3 * 24 * _HOUR_NS
#: How many bad answers are remembered (not dead-lettered again).
_BAD_REMEMBERED = 10_000

#: Fetches the articles about a symbol published from a time (UTC ns) to another.
_Fetch = Callable[[str, int, int], Awaitable[list[NewsItem]]]


class SeenArticles:
    """The articles emitted, by (id, symbol), while published within the last ``keep`` ns.

    Polls overlap: an article seen is not emitted again. Memory stays bounded by
    forgetting articles published before the horizon, and those are not emitted
    again either (later polls ask for recent news only).
    """

    def __init__(self, keep_ns: int = _KEEP_NS) -> None:
        self.keep_ns = keep_ns
        #: the oldest publication time still emitted (UTC ns)
        self.horizon = 0
        self._seen: dict[tuple[str, str], int] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def first(self, item: NewsItem) -> bool:
        """Whether ``item`` is new (it is remembered then)."""
        key = (item.id, item.symbol)
        if key in self._seen or item.ts < self.horizon:
            return False
        self._seen[key] = item.ts
        return True

    def forget(self, now_ns: int) -> None:
        """Forget the articles published more than ``keep_ns`` before ``now_ns``."""
        self.horizon = max(self.horizon, now_ns - self.keep_ns)
        self._seen = {key: ts for key, ts in self._seen.items() if ts >= self.horizon}


class _DeadOnce:
    """Dead letters on their way to ``out``, each bad article once (polls return it again)."""

    def __init__(self, out: Events, remembered: int = _BAD_REMEMBERED) -> None:
        self.out = out
        self._remembered = remembered
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def dead(self, reason: str, error: str, raw: bytes | str, key: str | None = None) -> None:
        """Hand over a dead letter unless the same message was handed over already."""
        digest = hashlib.blake2b(raw.encode() if isinstance(raw, str) else raw,
                                 digest_size=16).digest()  # fmt: skip
        if digest in self._seen:
            self._seen.move_to_end(digest)
            return
        self._seen[digest] = None
        if len(self._seen) > self._remembered:
            self._seen.popitem(last=False)
        self.out.dead(reason, error, raw, key)


def open_news(
    name: str, options: VendorOptions, since: date | None = None, every: float = 60.0
) -> VendorFeed:
    """Build the live news feed of vendor ``name`` (batches of kind ``news``).

    Args:
        name: ``finnhub`` or ``polygon`` (polled at ``options.rest_url``, their
            REST API by default) or ``alpaca`` (streamed from ``options.url``).
        options: symbols, keys, rate limit, backoff and clocks, as for
            :func:`~marketpulse.feeds.vendors.open_vendor`. A watchlist is followed
            on its own copy (a stream that shares it still sees its changes).
        since: polled vendors: the first poll's articles start that day (UTC; default today).
        every: polled vendors: seconds between polls.

    Raises:
        VendorError: unknown vendor, or a key or secret it needs is missing.
    """
    spec = NEWS_VENDORS.get(name)
    if spec is None:
        raise VendorError(f"unknown news vendor {name!r} (known: {', '.join(NEWS_VENDORS)})")
    if spec.needs_key and not options.key:
        raise VendorError(f"{name}: no API key")
    if spec.needs_secret and not options.secret:
        raise VendorError(f"{name}: no secret key")

    symbols = copy.copy(options.symbols)  # refresh() hands each change to one reader only

    async def client(out: Events) -> None:
        if name == "alpaca":
            vendor = alpaca.AlpacaNews(options.key, options.secret)
            conn = Connection(options.url or spec.url, backoff=options.backoff,
                              sleep=options.sleep)  # fmt: skip
            await stream(vendor, conn, symbols, out)
            return
        day = since or datetime.fromtimestamp(options.now_ns() // NS_PER_S, UTC).date()
        since_ns = int(datetime.combine(day, time(), UTC).timestamp()) * NS_PER_S
        await _polled(name, options, symbols, since_ns, every, out)

    return VendorFeed(name, client, Events(name, options.now_ns))


async def _polled(name: str, options: VendorOptions, symbols: Symbols, since_ns: int,
                  every: float, out: Events) -> None:  # fmt: skip
    module = finnhub if name == "finnhub" else polygon
    async with module.rest_client(options.rest_url or module.DEFAULT_REST_URL,
                                  options.key) as http:  # fmt: skip
        poller = options.poller(name, http, out, (module.REST_LIMIT,))
        dead = _DeadOnce(out)

        async def fetch(symbol: str, start: int, end: int) -> list[NewsItem]:
            if name == "finnhub":
                return await finnhub.company_news(poller, symbol, start, end, dead)
            return await polygon.news(poller, symbol, start, symbols.current, dead)

        await _poll(fetch, symbols, poller, since_ns, every, options.now_ns)


async def _poll(fetch: _Fetch, symbols: Symbols, poller: Poller, since_ns: int, every: float,
                now_ns: Callable[[], int]) -> None:  # fmt: skip
    """Poll each symbol's news every ``every`` seconds; hand over each article once."""
    seen = SeenArticles()
    polled: dict[str, int] = {}  # symbol -> when its last poll began (UTC ns)
    while True:
        symbols.refresh()  # no stream watches the watchlist here
        for symbol in symbols.current:
            began = now_ns()
            last = polled.get(symbol)
            # a symbol added later starts at the horizon: older articles are not emitted again
            start = since_ns if last is None else last - _LATE_NS
            start = max(start, seen.horizon)
            fresh = [item for item in await fetch(symbol, start, began) if seen.first(item)]
            for item in fresh:
                poller.out.put(item)
            polled[symbol] = began
            logger.debug("%s: %d new articles about %s", poller.vendor, len(fresh), symbol)
        seen.forget(now_ns())
        await poller.sleep(every)
