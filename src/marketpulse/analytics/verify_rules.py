"""Which kept trades the processor counts into the bars of each interval, and where.

The rules are the processor's (:func:`marketpulse.stream.windows._add_ticks`),
applied to stored trades with the stream package's own functions:

- a ``late`` trade (it is in ``dlq`` *and* kept) is in no bar;
- under the ``lean`` tape rules (:func:`~marketpulse.stream.tape.lean_roles`)
  a left-out auction print moves the clock only, and a closing print is
  windowed at its session's close;
- a fixed interval's window is the epoch-aligned one holding the trade; a
  session-aligned one (``1d``, ``1w``: :func:`~marketpulse.stream.sessions.session_windows`)
  takes only trades within a session.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from marketpulse.stream.sessions import session_windows
from marketpulse.stream.tape import LEAN_CALENDAR, LEFT_OUT, VOLUME_ONLY, lean_roles
from marketpulse.timeframes import parse_interval

__all__ = ["BarRules", "Windows", "bar_windows"]

#: The end of the window of a trade that is in no window of an interval.
NO_WINDOW = -1
_NEVER = -(2**62)  # the windows kernel's "no auction print taken yet"


@dataclass(frozen=True, slots=True)
class BarRules:
    """The settings that decide which trades go into bars (those of the run that stored them).

    Attributes:
        conditions: the tape rules, ``none`` or ``lean``.
        session_calendar: the exchange calendar of session-aligned bars ("": local days).
        session_tz: the time zone of local days.
    """

    conditions: str = "none"
    session_calendar: str = ""
    session_tz: str = "America/New_York"

    @property
    def hold(self) -> bool:
        """Whether a closed bar waits for the next window (tape rules move volume between bars)."""
        return self.conditions == "lean"


@dataclass(frozen=True, slots=True)
class Windows:
    """Per kept trade, the end of its window in each interval (:data:`NO_WINDOW`: in none).

    Attributes:
        ends: interval name -> int64 array, one value per trade.
        volume_only: per trade, whether the tape rules let it add volume only
            (its count may go to a neighbouring bar).
    """

    ends: dict[str, np.ndarray]
    volume_only: np.ndarray


def bar_windows(
    trades: pa.Table, late: np.ndarray, intervals: list[str], rules: BarRules
) -> Windows:
    """Return the window each kept trade of one dataset counts into, per interval.

    Args:
        trades: the dataset's kept trades in the order they were processed
            (per symbol), with ``symbol``, ``ts`` (int64 ns) and ``condition``.
        late: per trade, whether it went to ``dlq`` as ``late`` (in no bar).
        intervals: the intervals of the bars.
        rules: the settings of the run that made them.
    """
    ts = trades.column("ts").to_numpy()
    counted = ~late
    volume_only = np.zeros(len(ts), bool)
    parsed = [parse_interval(name) for name in intervals]
    if rules.hold and len(ts):
        symbol = trades.column("symbol").combine_chunks().dictionary_encode()
        sid = symbol.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        days = session_windows("d", rules.session_calendar or LEAN_CALENDAR, rules.session_tz)
        base = min((i.length for i in parsed if i.fixed), default=0)
        taken = np.full((len(symbol.dictionary), 2), _NEVER, np.int64)
        roles, ts = lean_roles(
            trades.column("condition"), sid, ts, taken, days.opens, days.closes, base
        )
        counted &= roles != LEFT_OUT
        volume_only = roles == VOLUME_ONLY
    ends = {}
    for interval in parsed:
        if interval.fixed:
            end = ts - ts % interval.length + interval.length
        else:
            end = _session_ends(ts, interval.unit, rules)
        ends[interval.name] = np.where(counted, end, NO_WINDOW)
    return Windows(ends, volume_only)


def _session_ends(ts: np.ndarray, unit: str, rules: BarRules) -> np.ndarray:
    """The end of each time's session-aligned window; :data:`NO_WINDOW` outside every session.

    The vector form of the windows kernel's ``_session_window``: the first
    session not closed at ``t`` holds it when it has opened by then.
    """
    table = session_windows(unit, rules.session_calendar, rules.session_tz)
    i = np.searchsorted(table.closes, ts, side="right")
    inside = i < len(table.closes)
    i = np.minimum(i, len(table.closes) - 1)
    inside &= table.opens[i] <= ts
    return np.where(inside, table.end[table.group[i]], NO_WINDOW)
