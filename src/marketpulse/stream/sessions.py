"""Exchange sessions: which trading day a timestamp belongs to, and daily and weekly bars.

Daily (``1d``) and weekly (``1w``) bars built from trades follow sessions, not
fixed windows (:class:`SessionWindows`): with an exchange calendar a daily bar
spans one session, from its open to its close (an early close ends it
early, a holiday has none) and takes the trades within it only (pre-market
and after-hours trades are in the intraday bars, not the daily one); a weekly
bar spans the sessions of one ISO week (Monday to Sunday, by session date),
from the first open to the last close, with the trades of those sessions. A
``24/7`` calendar's sessions are UTC days; without a calendar they are the
local days of the session time zone (midnight to midnight, 23 or 25 hours
when the clocks change).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from marketpulse.calendars import local_days, market_hours

__all__ = ["SessionWindows", "session_ids", "session_windows"]

_DAY_NS = 86_400 * 1_000_000_000
#: Days covered by the sessions of a 24/7 market or a time zone (1970 to 2100).
_FIRST_DAY, _LAST_DAY = np.datetime64("1970-01-01"), np.datetime64("2100-01-01")


@dataclass(frozen=True, eq=False)
class SessionWindows:
    """The windows of session-aligned bars (``1d`` or ``1w``) of one calendar.

    Attributes:
        opens: the opening time of each session (UTC ns), ascending.
        closes: the closing time of each session (UTC ns).
        group: per session, the index of its window.
        start: per window, its start: the open of its first session.
        end: per window, its end: the close of its last session.
    """

    opens: np.ndarray
    closes: np.ndarray
    group: np.ndarray
    start: np.ndarray
    end: np.ndarray


@lru_cache(maxsize=16)
def _sessions(calendar: str, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Session dates (days since the epoch), opens and closes (UTC ns)."""
    if calendar and not market_hours(calendar).always_open:
        days, opens, closes, _ = market_hours(calendar)._table
        return days.astype(np.int64), opens, closes
    days = np.arange(_FIRST_DAY, _LAST_DAY + 1, dtype="datetime64[D]")
    if calendar:  # 24/7: UTC days
        bounds = days.astype("datetime64[ns]").astype(np.int64)
    else:
        import pandas as pd

        local = pd.DatetimeIndex(days.astype("datetime64[ns]")).tz_localize(
            _check_zone(tz), nonexistent="shift_forward", ambiguous=True
        )
        bounds = local.tz_convert("UTC").tz_localize(None).to_numpy().astype(np.int64)
    return days[:-1].astype(np.int64), bounds[:-1], bounds[1:]


@lru_cache(maxsize=16)
def session_windows(unit: str, calendar: str = "", tz: str = "UTC") -> SessionWindows:
    """The windows of daily (``unit`` ``d``) or weekly (``w``) bars.

    Args:
        unit: ``d`` or ``w``.
        calendar: an exchange calendar (``XNYS``, ``24/7``); empty: the local days of ``tz``.
        tz: the time zone of the days when there is no calendar.

    Raises:
        ConfigError: the calendar is unknown.
        ZoneInfoNotFoundError: the time zone is unknown.
    """
    days, opens, closes = _sessions(calendar, tz)
    if unit == "d":
        group = np.arange(len(days), dtype=np.int64)
        return SessionWindows(opens, closes, group, opens, closes)
    if unit != "w":
        raise ValueError(f"session windows are daily (d) or weekly (w), not {unit!r}")
    week = (days + 3) // 7  # the epoch was a Thursday: weeks from Monday
    first = np.flatnonzero(np.diff(week, prepend=week[0] - 1))
    group = np.cumsum(np.diff(week, prepend=week[0] - 1) != 0) - 1
    last = np.append(first[1:], len(days)) - 1
    return SessionWindows(opens, closes, group.astype(np.int64), opens[first], closes[last])


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
