"""Market hours from ``exchange_calendars``: sessions, holidays and early closes.

Polling feeds ask :meth:`MarketHours.wait` before each round and sleep
through nights, weekends and holidays; bar feeds ask :meth:`session` for the
open and close of a daily bar's session (13:00 on an early close, not 16:00).
"""

from __future__ import annotations

import warnings
from datetime import date
from functools import cached_property

import numpy as np

from marketpulse.exceptions import ConfigError
from marketpulse.models import NS_PER_S

__all__ = ["ALWAYS_OPEN", "MarketHours"]

#: Calendar name of a market that never closes (crypto).
ALWAYS_OPEN = "24/7"


class MarketHours:
    """The sessions of one exchange calendar (``XNYS``, ``XNAS``, ...).

    The calendar loads on first use (it takes about a second); ``"24/7"``
    is a market that is always open.

    Raises:
        ConfigError: the calendar name is unknown (on first use).
    """

    def __init__(self, calendar: str = "XNYS") -> None:
        self.name = calendar

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import exchange_calendars as xcals

        try:
            with warnings.catch_warnings():
                # exchange_calendars 4.13 reads Series.values, deprecated by pandas 3.1
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                cal = xcals.get_calendar(self.name)
        except xcals.errors.InvalidCalendarName:
            known = ", ".join(sorted(xcals.get_calendar_names(include_aliases=False))[:12])
            raise ConfigError(
                f"unknown exchange calendar {self.name!r} (such as {known}, ...)"
            ) from None
        sessions = cal.schedule.index.values.astype("datetime64[D]")
        opens, closes = (
            times.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
            for times in (cal.opens, cal.closes)
        )
        return sessions, opens, closes

    @property
    def always_open(self) -> bool:
        """Whether this market never closes."""
        return self.name == ALWAYS_OPEN

    def is_open(self, ts: int) -> bool:
        """Tell whether a session is running at ``ts`` (UTC ns)."""
        return self.wait(ts) == 0.0

    def wait(self, ts: int) -> float:
        """Seconds from ``ts`` (UTC ns) until the market is open (0 while it is)."""
        if self.always_open:
            return 0.0
        _, opens, closes = self._table
        i = int(np.searchsorted(closes, ts, side="right"))  # first session not yet closed
        if i == len(closes):
            raise ConfigError(f"calendar {self.name} has no session after {ts} ns")
        return max(0.0, (int(opens[i]) - ts) / NS_PER_S)

    def session(self, day: date) -> tuple[int, int] | None:
        """Return the open and close (UTC ns) of the session on ``day``; ``None`` on a holiday."""
        if self.always_open:
            start = int(np.datetime64(day, "D").astype("datetime64[ns]").astype(np.int64))
            return start, start + 86_400 * NS_PER_S
        sessions, opens, closes = self._table
        i = int(np.searchsorted(sessions, np.datetime64(day, "D")))
        if i == len(sessions) or sessions[i] != np.datetime64(day, "D"):
            return None
        return int(opens[i]), int(closes[i])
