"""How often a feed may talk to its vendor: reconnect backoff and request rate limits.

Both take their clock and randomness from the caller, so tests replay an
exact schedule without waiting for it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

__all__ = ["Backoff", "RateLimit", "retry_after_seconds", "wait"]


async def wait(seconds: float) -> None:
    """Sleep on the event loop (the default of every injectable ``sleep``)."""
    await asyncio.sleep(seconds)


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS blog).

    The n-th retry after a failure waits ``uniform(0, min(cap, base * 2**n))``
    seconds, no less than ``floor``; a connection that stayed up for
    ``reset_after`` seconds starts the sequence over.

    Attributes:
        base: the first ceiling, in seconds.
        cap: the largest ceiling.
        floor: the shortest wait (a vendor that closes at once is not hammered).
        reset_after: seconds of a healthy connection that reset the attempts.
        rand: uniform [0, 1) source (``random.random``; injected by tests).
    """

    base: float = 0.5
    cap: float = 60.0
    floor: float = 0.1
    reset_after: float = 30.0
    rand: Callable[[], float] = random.random
    attempts: int = 0

    def next_delay(self) -> float:
        """Return the wait before the next attempt, and count it."""
        ceiling = min(self.cap, self.base * 2.0**self.attempts)
        self.attempts += 1
        return max(self.floor, ceiling * self.rand())

    def connected_for(self, seconds: float) -> None:
        """Tell how long the last connection lasted; a long one resets the attempts."""
        if seconds >= self.reset_after:
            self.attempts = 0


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Read an HTTP ``Retry-After`` header: delay seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


@dataclass(slots=True)
class RateLimit:
    """At most ``requests`` requests in any ``per`` seconds (a sliding window).

    A vendor's answer that the limit was hit (HTTP 429, or Alpha Vantage's
    ``Note``) pushes every request back by its ``Retry-After`` or, without
    one, by a whole window.

    Attributes:
        requests: requests allowed per window.
        per: the window, in seconds.
        clock: monotonic seconds (``time.monotonic``; injected by tests).
    """

    requests: int
    per: float
    clock: Callable[[], float] = time.monotonic
    _sent: deque[float] = field(default_factory=deque)
    _blocked_until: float = 0.0

    def __post_init__(self) -> None:
        if self.requests < 1 or not self.per > 0:
            raise ValueError("a rate limit needs requests >= 1 and a positive window")

    def wait(self) -> float:
        """Seconds to wait before the next request may go (0 when it may go now)."""
        now = self.clock()
        while self._sent and self._sent[0] <= now - self.per:
            self._sent.popleft()
        delay = max(0.0, self._blocked_until - now)
        if len(self._sent) >= self.requests:
            delay = max(delay, self._sent[0] + self.per - now)
        return delay

    def sent(self) -> None:
        """Record a request sent now."""
        self._sent.append(self.clock())

    def limited(self, retry_after: float | None) -> float:
        """Record a 'too many requests' answer; return how long requests now wait."""
        pause = self.per if retry_after is None else retry_after
        self._blocked_until = max(self._blocked_until, self.clock() + pause)
        return pause
