"""Checks of query parameters; each error names its parameter."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi import HTTPException

from marketpulse.models import is_dataset_name
from marketpulse.timeframes import is_interval

__all__ = ["check_dataset", "check_symbol", "check_timeframe", "not_found",
           "parse_time"]  # fmt: skip

_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_^=/:]{0,31}$")
#: Times are int64 nanoseconds: 1677-09-21 to 2262-04-11.
_NS_MIN, _NS_MAX = -(2**63), 2**63 - 1


def bad(name: str, message: str) -> HTTPException:
    """Return the 422 error for query parameter ``name``."""
    return HTTPException(
        status_code=422,
        detail=[{"loc": ["query", name], "msg": f"{name}: {message}", "type": "value_error"}],
    )


def not_found(name: str, message: str) -> HTTPException:
    """Return the 404 error for query parameter ``name`` (shaped as a 422 is)."""
    return HTTPException(
        status_code=404,
        detail=[{"loc": ["query", name], "msg": f"{name}: {message}", "type": "not_found"}],
    )


def check_symbol(value: str | None, name: str = "symbol") -> str | None:
    """Return ``value`` if it looks like a ticker symbol (or is ``None``)."""
    if value is not None and not _SYMBOL.match(value):
        raise bad(name, f"not a ticker symbol: {value!r}")
    return value


def check_timeframe(value: str | None, name: str = "timeframe") -> str | None:
    """Return ``value`` if it is a bar timeframe (or is ``None``): ``15m``, ``4h``, ``1d``..."""
    if value is not None and not is_interval(value):
        raise bad(
            name,
            f"not a timeframe: {value[:40]!r} (a whole number of s, m or h, as 90s, 15m, 4h; "
            "or 1d, 1w)",
        )
    return value


def check_dataset(value: str | None, name: str = "dataset") -> str | None:
    """Return ``value`` if it can be a dataset's name (or is ``None``)."""
    if value is not None and not is_dataset_name(value):
        raise bad(
            name,
            f"not a dataset name: {value[:80]!r} (a letter or digit, then up to 63 letters, "
            "digits, '.', '_' or '-')",
        )
    return value


def parse_time(value: str | None, name: str) -> int | None:
    """Parse UTC nanoseconds since the epoch, or an ISO 8601 time (UTC unless it says).

    Raises:
        HTTPException: 422 naming ``name`` when ``value`` is neither, or is
            beyond the times nanoseconds can hold (1677 to 2262).
    """
    if value is None or value == "":
        return None
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        digits = text.lstrip("-").lstrip("0")
        ns = int(text) if len(digits) <= 19 else _NS_MAX + 1  # longer: out of range anyway
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise bad(name, f"expected nanoseconds or an ISO 8601 time, got {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if not _NS_MIN <= ns <= _NS_MAX:
        raise bad(name, f"out of range: {value[:40]!r} is not between 1677-09-21 and 2262-04-11")
    return ns
