"""Vendor timestamps as integer UTC nanoseconds, whatever form they come in.

Vendors send epoch counts in seconds (Finnhub quotes), milliseconds (Finnhub
and Binance trades, Polygon), microseconds (Binance on request) or
nanoseconds (Polygon's SIP times), and strings: RFC 3339 with up to nine
fractional digits (Alpaca), or exchange-local wall times without a zone
(Alpha Vantage, whose metadata names the zone).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from marketpulse.models import NS_PER_S

__all__ = ["epoch_ns"]

_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<frac>\d{1,9}))?)?"
    r"(?P<zone>Z|z|[+-]\d{2}:?\d{2})?"
)
_EPOCH = re.compile(r"-?\d+(?:\.\d*)?")
_MAX_EPOCH_S = 9_223_372_035  # the last second that fits in int64 nanoseconds


def _factor(whole: int) -> int:
    """Nanoseconds per unit of an epoch count, told by its magnitude (s, ms, us, ns)."""
    size = abs(whole)
    if size < 10**10:
        if size > _MAX_EPOCH_S:
            raise ValueError(f"{whole} is out of range")
        return NS_PER_S
    if size < 10**13:
        return 10**6
    if size < 10**16:
        return 10**3
    return 1


@lru_cache(maxsize=32)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _from_text(value: str, tz: str) -> int:
    text = value.strip()
    if _EPOCH.fullmatch(text):
        whole, _, frac = text.partition(".")
        factor = _factor(int(whole))
        ns = int(whole) * factor
        if frac:
            scaled = int(frac.ljust(9, "0")[:9]) * factor // NS_PER_S
            ns += -scaled if text.startswith("-") else scaled
        return ns
    match = _ISO.fullmatch(text)
    if match is None:
        raise ValueError(f"{value!r} is not a timestamp")
    day = date.fromisoformat(match["date"])
    clock = match["time"] or "00:00:00"
    local = datetime.fromisoformat(f"{day.isoformat()}T{clock}")
    zone = match["zone"]
    if zone in ("Z", "z"):
        moment = local.replace(tzinfo=UTC)
    elif zone:
        moment = datetime.fromisoformat(f"{day.isoformat()}T{clock}{zone}")
    else:
        moment = local.replace(tzinfo=_zone(tz))
    frac = match["frac"] or ""
    return int(moment.timestamp()) * NS_PER_S + int(frac.ljust(9, "0") or 0)


def epoch_ns(value: object, tz: str = "UTC") -> int:
    """Return a vendor timestamp as UTC nanoseconds since the epoch.

    Args:
        value: an epoch count (int, float or digits; the unit told by magnitude)
            or an ISO 8601 / RFC 3339 string (up to nanoseconds; a date alone
            is its midnight).
        tz: the zone of strings that carry none (``"US/Eastern"``).

    Raises:
        ValueError: the value is not a timestamp (the caller dead-letters it).
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timestamp")
    if isinstance(value, int):
        return value * _factor(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a timestamp")
        return _from_text(repr(value) if "e" not in repr(value) else f"{value:.6f}", tz)
    if isinstance(value, str):
        return _from_text(value, tz)
    raise ValueError(f"{value!r} is not a timestamp")
