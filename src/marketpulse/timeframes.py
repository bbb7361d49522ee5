"""Bar timeframes: what an interval name means, parsed once for every place that takes one.

An interval is a whole number of seconds, minutes or hours (``90s``, ``15m``,
``4h``): fixed windows of that length, aligned to the Unix epoch. ``1d`` and
``1w`` are session-aligned instead: a daily bar spans one session of the
exchange calendar (open to close, early closes and holidays included), a
weekly bar the sessions of one ISO week (see :mod:`marketpulse.stream.sessions`).

Names are canonical: the largest unit that divides the length (``60m`` is
``1h``, ``90m`` stays ``90m``, ``120s`` is ``2m``), so one length has one label
in every table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CALENDAR_UNITS",
    "MAX_OTHERS",
    "N_INTERVAL_KEYS",
    "WELL_KNOWN",
    "Interval",
    "interval_keys",
    "is_interval",
    "parse_interval",
    "parse_intervals",
    "sort_key",
]

_NS_PER_S = 1_000_000_000
_UNITS = {"s": 1, "m": 60, "h": 3600}
#: Units whose bars follow exchange sessions rather than fixed windows.
CALENDAR_UNITS = ("d", "w")
_SYNTAX = re.compile(r"([0-9]{1,7})([smhdw])")
#: Intervals offered first in menus (the first eight keep the indicator keys of
#: checkpoints written before any interval could be used).
WELL_KNOWN: tuple[str, ...] = (
    "1s", "5s", "15s", "1m", "5m", "15m", "1h", "1d",
    "1w", "30s", "2m", "3m", "10m", "30m", "2h", "4h",
)  # fmt: skip
#: Indicator keys of one symbol: ``sid * N_INTERVAL_KEYS + key``.
N_INTERVAL_KEYS = 16
_KEYED = WELL_KNOWN[:8]
_OTHER_KEY = N_INTERVAL_KEYS - 1
#: Configured intervals outside the first eight well-known ones, at most.
MAX_OTHERS = _OTHER_KEY - len(_KEYED)
_HELP = "a whole number of s, m or h, as 90s, 15m, 4h; or 1d, 1w"


@dataclass(frozen=True, slots=True)
class Interval:
    """One bar interval.

    Attributes:
        name: its canonical name (``4h``).
        length: its length in nanoseconds; 0 for session-aligned ones (``1d``, ``1w``).
        unit: ``d`` or ``w`` for session-aligned ones, empty otherwise.
    """

    name: str
    length: int
    unit: str = ""

    @property
    def fixed(self) -> bool:
        """Whether the bars are fixed windows aligned to the epoch."""
        return not self.unit


def _canonical(seconds: int) -> str:
    for unit in ("h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_interval(text: str) -> Interval:
    """Parse one interval name (``15m``, ``4h``, ``1d``).

    Raises:
        ValueError: not an interval (the message names the value).
    """
    match = _SYNTAX.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not an interval ({_HELP})")
    count, unit = int(match.group(1)), match.group(2)
    if count == 0:
        raise ValueError(f"{text!r} is not an interval (zero length)")
    if unit in CALENDAR_UNITS:
        if count != 1:
            raise ValueError(f"{text!r} is not an interval (sessions: only 1d and 1w)")
        return Interval(f"1{unit}", 0, unit)
    seconds = count * _UNITS[unit]
    return Interval(_canonical(seconds), seconds * _NS_PER_S)


def is_interval(text: str) -> bool:
    """Tell whether ``text`` is the canonical name of an interval."""
    try:
        return parse_interval(text).name == text
    except ValueError:
        return False


def sort_key(name: str) -> tuple[int, int]:
    """Order timeframes shortest first, days then weeks last (unknown names at the start)."""
    try:
        interval = parse_interval(name)
    except ValueError:
        return (0, 0)
    return (2 + CALENDAR_UNITS.index(interval.unit), 0) if interval.unit else (1, interval.length)


def parse_intervals(names: Iterable[str]) -> tuple[Interval, ...]:
    """Parse the intervals bars are built in, checking they can be built together.

    Fixed intervals come first, ascending, each a multiple of the first; then
    ``1d``, then ``1w``. Duplicates are refused.

    Raises:
        ValueError: a bad name or order (one line naming the value).
    """
    parsed = tuple(parse_interval(name) for name in names)
    if not parsed:
        raise ValueError("no interval given")
    labels = [i.name for i in parsed]
    if len(set(labels)) != len(labels):
        twice = next(name for name in labels if labels.count(name) > 1)
        raise ValueError(f"interval {twice} is given twice")
    if labels != sorted(labels, key=sort_key):
        raise ValueError(
            f"intervals {','.join(labels)} must be ascending "
            f"({','.join(sorted(labels, key=sort_key))})"
        )
    others = [name for name in labels if name not in _KEYED]
    if len(others) > MAX_OTHERS:
        raise ValueError(
            f"at most {MAX_OTHERS} intervals besides {','.join(_KEYED)} (given: {','.join(others)})"
        )
    fixed = [i.length for i in parsed if i.fixed]
    if fixed and any(length % fixed[0] for length in fixed):
        bad = next(i.name for i in parsed if i.fixed and i.length % fixed[0])
        raise ValueError(f"interval {bad} is not a multiple of the first, {parsed[0].name}")
    return parsed


def interval_keys(intervals: Iterable[str], configured: Iterable[str] = ()) -> list[int]:
    """The indicator key of each interval name (its state is ``sid * N_INTERVAL_KEYS + key``).

    The first eight of :data:`WELL_KNOWN` have their index there; the others
    ``8 +`` their place among the ``configured`` intervals that are not among them
    (the checkpoint refuses other intervals, so the keys stay the same across
    restarts). Any other name (a bar a feed delivered) shares the last key.
    """
    others = [name for name in configured if name not in _KEYED]
    keys = []
    for name in intervals:
        if name in _KEYED:
            keys.append(_KEYED.index(name))
        elif name in others and len(_KEYED) + others.index(name) < _OTHER_KEY:
            keys.append(len(_KEYED) + others.index(name))
        else:
            keys.append(_OTHER_KEY)
    return keys
