"""Market hours from ``exchange_calendars``: sessions, holidays and early closes.

Polling feeds ask :meth:`MarketHours.wait` before each round and sleep
through nights, weekends and holidays; bar feeds ask :meth:`session` for the
open and close of a daily bar's session (13:00 on an early close, not 16:00);
the processor asks :meth:`session_days` which session each bar belongs to, so
the session VWAP restarts when the exchange's session does.
"""

from __future__ import annotations

import warnings
from datetime import date
from functools import cached_property, lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.exceptions import ConfigError
from marketpulse.models import NS_PER_S

__all__ = ["ALWAYS_OPEN", "MarketHours", "local_days", "market_hours"]

#: Calendar name of a market that never closes (crypto).
ALWAYS_OPEN = "24/7"
_DAY_NS = 86_400 * NS_PER_S


def local_days(ts: np.ndarray, tz: str) -> np.ndarray:
    """Return, per UTC-ns timestamp, its local date in ``tz`` as days since the epoch."""
    if len(ts) == 0:
        return np.empty(0, np.int64)
    ends = np.array([ts.min(), ts.max()], np.int64)
    offsets = _local_ns(ends, tz) - ends
    # within a day no zone changes its UTC offset twice: one offset at both ends is
    # the offset of every time between them (the common case: a batch of bars)
    if offsets[0] == offsets[1] and ends[1] - ends[0] <= _DAY_NS:
        return (ts + offsets[0]) // _DAY_NS
    return _local_ns(ts, tz) // _DAY_NS


def _local_ns(ts: np.ndarray, tz: str) -> np.ndarray:
    stamps = pa.array(ts, pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
    return pc.local_timestamp(stamps.cast(pa.timestamp("ns", tz=tz))).cast(pa.int64()).to_numpy()


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
    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
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
        return sessions, opens, closes, str(cal.tz)

    def session_days(self, ts: np.ndarray) -> np.ndarray:
        """Return per UTC-ns timestamp its session, as days since the epoch.

        A time within a session belongs to that session (even when the session
        began the evening before, as futures' do); a time outside every session
        (pre-market, after hours, a holiday) to its local date in the
        exchange's zone. A 24/7 market's sessions are UTC dates.
        """
        ts = np.asarray(ts, np.int64)
        if self.always_open:
            return ts // _DAY_NS
        sessions, opens, closes, zone = self._table
        days = local_days(ts, zone)
        i = np.searchsorted(closes, ts, side="right")  # the first session not closed at ts
        inside = i < len(closes)
        inside[inside] = opens[i[inside]] <= ts[inside]
        days[inside] = sessions[i[inside]].astype(np.int64)
        return days

    @property
    def always_open(self) -> bool:
        """Whether this market never closes."""
        return self.name == ALWAYS_OPEN

    def open_after(self, ts: np.ndarray, ns: int) -> np.ndarray:
        """Return per UTC-ns time the moment the market has been open ``ns`` ns since it.

        Closed hours (nights, weekends, holidays) do not count; past the
        calendar's last session the answer is the largest int64 (never).
        """
        ts = np.asarray(ts, np.int64)
        if self.always_open:
            return ts + ns
        _, opens, closes, _ = self._table
        never = np.iinfo(np.int64).max
        i = np.searchsorted(closes, ts, side="right")  # the first session not closed at ts
        out = np.full(ts.shape, never, np.int64)
        inside = i < len(closes)
        at = np.maximum(ts[inside], opens[i[inside]]) + ns
        fits = at <= closes[i[inside]]
        out[np.flatnonzero(inside)[fits]] = at[fits]
        for row in np.flatnonzero(inside)[~fits].tolist():  # the silence spans a close
            k, left = int(i[row]), ns
            t = max(int(ts[row]), int(opens[k]))
            while k < len(closes) and t + left > closes[k]:
                left -= int(closes[k]) - t
                k += 1
                t = int(opens[k]) if k < len(opens) else never
            out[row] = t + left if k < len(closes) else never
        return out

    def wait(self, ts: int) -> float:
        """Seconds from ``ts`` (UTC ns) until the market is open (0 while it is)."""
        if self.always_open:
            return 0.0
        _, opens, closes, _ = self._table
        i = int(np.searchsorted(closes, ts, side="right"))  # first session not yet closed
        if i == len(closes):
            raise ConfigError(f"calendar {self.name} has no session after {ts} ns")
        return max(0.0, (int(opens[i]) - ts) / NS_PER_S)

    def session(self, day: date) -> tuple[int, int] | None:
        """Return the open and close (UTC ns) of the session on ``day``; ``None`` on a holiday."""
        if self.always_open:
            start = int(np.datetime64(day, "D").astype("datetime64[ns]").astype(np.int64))
            return start, start + 86_400 * NS_PER_S
        sessions, opens, closes, _ = self._table
        i = int(np.searchsorted(sessions, np.datetime64(day, "D")))
        if i == len(sessions) or sessions[i] != np.datetime64(day, "D"):
            return None
        return int(opens[i]), int(closes[i])


@lru_cache(maxsize=8)
def market_hours(calendar: str) -> MarketHours:
    """The shared :class:`MarketHours` of ``calendar`` (loaded once per process)."""
    return MarketHours(calendar)
