"""Checks of query parameters; each error names its parameter."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi import HTTPException

from marketpulse.models import INTERVALS

__all__ = ["check_interval", "check_symbol", "parse_time"]

_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_^=/:]{0,31}$")


def bad(name: str, message: str) -> HTTPException:
    """Return the 422 error for query parameter ``name``."""
    return HTTPException(
        status_code=422,
        detail=[{"loc": ["query", name], "msg": f"{name}: {message}", "type": "value_error"}],
    )


def check_symbol(value: str | None, name: str = "symbol") -> str | None:
    """Return ``value`` if it looks like a ticker symbol (or is ``None``)."""
    if value is not None and not _SYMBOL.match(value):
        raise bad(name, f"not a ticker symbol: {value!r}")
    return value


def check_interval(value: str | None, name: str = "interval") -> str | None:
    """Return ``value`` if it is a known bar interval (or is ``None``)."""
    if value is not None and value not in INTERVALS:
        raise bad(name, f"unknown interval {value!r} (known: {', '.join(INTERVALS)})")
    return value


def parse_time(value: str | None, name: str) -> int | None:
    """Parse UTC nanoseconds since the epoch, or an ISO 8601 time (UTC unless it says).

    Raises:
        HTTPException: 422 naming ``name`` when ``value`` is neither.
    """
    if value is None or value == "":
        return None
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad(name, f"expected nanoseconds or an ISO 8601 time, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
