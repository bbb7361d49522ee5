"""Logging refused requests without letting a client flood the log."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RefusalLog"]

logger = logging.getLogger(__name__)


class RefusalLog:
    """Log a refused request at WARNING once a minute per client and reason; the rest at DEBUG.

    The next WARNING of a client and reason says how many refusals went
    unreported since the last one.

    Args:
        window_s: seconds between two WARNING lines of one client and reason.
        max_clients: (client, reason) pairs remembered; the oldest is forgotten first.
        clock: monotonic clock in seconds, replaceable in tests.
    """

    def __init__(
        self,
        window_s: float = 60.0,
        max_clients: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        self._seen: dict[tuple[str, str], list[float]] = {}  # -> [last warned at, unreported]

    def refused(self, client: str, reason: str, what: str) -> bool:
        """Record that ``what`` (``http /api/bars``) from ``client`` was refused for ``reason``.

        Returns:
            Whether the refusal was logged at WARNING (else it was counted and logged at DEBUG).
        """
        now = self._clock()
        key = (client, reason)
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.window_s:
            entry[1] += 1
            logger.debug("refused %s from %s: %s", what, client, reason)
            return False
        unreported = int(entry[1]) if entry is not None else 0
        self._seen.pop(key, None)
        while len(self._seen) >= self.max_clients:
            del self._seen[next(iter(self._seen))]
        self._seen[key] = [now, 0]
        more = f" ({unreported} more since the last report)" if unreported else ""
        logger.warning("refused %s from %s: %s%s", what, client, reason, more)
        return True
