"""REST requests to a vendor within its published rate limit, and its 429 answers.

:class:`Poller` sends GET requests through ``httpx``: it waits for the
:class:`~marketpulse.feeds.vendors.pacing.RateLimit` before each one, waits
out a ``429 Too Many Requests`` by its ``Retry-After``, retries network and
server errors with backoff, and raises
:class:`~marketpulse.feeds.vendors.base.VendorError` for a refused key.
:meth:`Poller.until_open` keeps polling feeds idle outside market hours.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from marketpulse.calendars import MarketHours
from marketpulse.feeds.vendors.base import Events, VendorError
from marketpulse.feeds.vendors.messages import decode
from marketpulse.feeds.vendors.pacing import Backoff, RateLimit, retry_after_seconds, wait

__all__ = ["Poller", "RateLimited"]

logger = logging.getLogger(__name__)

# httpx logs every request's URL at INFO, and some vendors (Alpha Vantage)
# take the key only as a query parameter: keep those lines out of the logs.
logging.getLogger("httpx").setLevel(logging.WARNING)

_REFUSED = {401: "the key was refused", 403: "the plan has no access to this data"}


class RateLimited(Exception):  # noqa: N818 - a signal, not a failure
    """Raised by a response check: the vendor said the rate limit was hit (in a 200 body)."""


@dataclass(slots=True)
class Poller:
    """GET requests to one vendor, paced.

    Attributes:
        vendor: the vendor's name (logs, dead letters, errors).
        client: the HTTP client (base URL and auth headers set).
        limits: rate limits that every request respects (per minute, per day, ...).
        out: the feed's event sink (its status counts requests and rate limiting).
        backoff: waits after network and server errors.
        sleep: the coroutine that waits (injected by tests).
        check: looks at a decoded body; raises RateLimited for a limit told in the body.
    """

    vendor: str
    client: httpx.AsyncClient
    limits: tuple[RateLimit, ...]
    out: Events
    backoff: Backoff = field(default_factory=Backoff)
    sleep: Callable[[float], Awaitable[None]] = wait
    check: Callable[[Any], None] | None = None

    async def _pace(self) -> None:
        while (wait := max(limit.wait() for limit in self.limits)) > 0:
            await self.sleep(wait)

    async def _retry(self, why: str) -> None:
        self.out.lost()
        delay = self.backoff.next_delay()
        self.out.status.delays.append(delay)
        logger.warning("%s: %s; retrying in %.2f s", self.vendor, why, delay)
        await self.sleep(delay)

    def _limited(self, retry_after: float | None) -> None:
        # without a Retry-After, wait out the shortest window: a longer one (a day)
        # is kept by its own limit, and pausing for it would stall the feed for nothing
        self.out.status.rate_limited += 1
        pause = min(self.limits, key=lambda limit: limit.per).limited(retry_after)
        self.out.status.delays.append(pause)
        logger.warning("%s: rate limit hit; requests wait %.1f s", self.vendor, pause)

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any | None:
        """GET ``path``; return the decoded JSON, or ``None`` when it became a dead letter.

        Raises:
            VendorError: HTTP 401 or 403 (bad key, plan without access).
        """
        while True:
            await self._pace()
            for limit in self.limits:
                limit.sent()
            self.out.status.requests += 1
            try:
                response = await self.client.get(path, params=params)
            except httpx.TransportError as exc:
                await self._retry(f"request failed ({type(exc).__name__})")
                continue
            status = response.status_code
            if status == 429:
                self._limited(retry_after_seconds(response.headers.get("Retry-After")))
                continue
            if status in _REFUSED:
                raise VendorError(f"{self.vendor}: HTTP {status}: {_REFUSED[status]}")
            if status >= 500:
                await self._retry(f"HTTP {status}")
                continue
            self.out.connected()
            self.backoff.attempts = 0
            if status >= 400:
                self.out.dead("http", f"HTTP {status} for {path}", response.content)
                return None
            data = decode(response.content, self.out)
            if data is not None and self.check is not None:
                try:
                    self.check(data)
                except RateLimited:
                    self._limited(None)
                    continue
            return data

    async def until_open(self, hours: MarketHours, now_ns: Callable[[], int]) -> None:
        """Sleep until the market is open (at once when it is)."""
        wait = hours.wait(now_ns())
        if wait > 0:
            logger.info("%s: market %s closed; polling resumes in %.0f s",
                        self.vendor, hours.name, wait)  # fmt: skip
            await self.sleep(wait)
