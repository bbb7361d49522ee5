"""Exchange sessions: which trading day a timestamp belongs to."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from marketpulse.calendars import local_days, market_hours

__all__ = ["session_ids"]


@lru_cache(maxsize=16)
def _check_zone(tz: str) -> str:
    from zoneinfo import ZoneInfo

    ZoneInfo(tz)  # raises ZoneInfoNotFoundError for an unknown zone
    return tz


def session_ids(ts: np.ndarray, tz: str, calendar: str | None = None) -> np.ndarray:
    """Return, per UTC-ns timestamp, its session as days since the epoch.

    Without a calendar the session is the local date in ``tz``. With an
    exchange calendar (``XNYS``; ``24/7`` for UTC days) it is the calendar's
    session for times within one (sessions that start the evening before
    included), the local date in the exchange's zone otherwise.
    """
    if len(ts) == 0:
        return np.empty(0, np.int64)
    if calendar:
        return market_hours(calendar).session_days(ts)
    return local_days(ts, _check_zone(tz))
