"""Reading vendor JSON: one bad message, or one bad item of a message, is a dead letter.

Vendor messages often carry several events (a JSON array, a ``data``
list); an item that does not read becomes a dead letter with reason
``parse`` and the vendor's own bytes, and the other items go on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from marketpulse.feeds.vendors.base import Events
from marketpulse.models import Bar, Quote, Trade

__all__ = ["PARSE_ERRORS", "decode", "number", "put_each", "text"]

#: What a parser raises on an item that does not read.
PARSE_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)

_json = msgspec.json.Encoder()


def decode(message: str | bytes, out: Events) -> Any | None:
    """Decode a JSON message; a message that is not JSON is a dead letter (``None`` back)."""
    try:
        return msgspec.json.decode(message)
    except msgspec.DecodeError as exc:
        out.dead("parse", f"not JSON: {exc}", message)
        return None


def put_each(
    out: Events,
    items: Iterable[Any],
    parse: Callable[[Any], Trade | Quote | Bar | None],
) -> None:
    """Parse each item into an event for ``out``; items that fail become dead letters."""
    for item in items:
        try:
            event = parse(item)
        except PARSE_ERRORS as exc:
            out.dead("parse", f"{type(exc).__name__}: {exc}", _json.encode(item), _symbol(item))
            continue
        if event is not None:
            out.put(event)


def _symbol(item: Any) -> str | None:
    """The symbol of a vendor item, when it names one (the dead letter's key)."""
    if not isinstance(item, dict):
        return None
    key = item.get("S") or item.get("s") or item.get("sym")
    return key if isinstance(key, str) else None


def number(value: Any) -> float:
    """A vendor number (JSON number or numeric string) as a finite float."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"{value!r} is not a number")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{value!r} is not a finite number")
    return result


def text(value: Any) -> str:
    """A vendor string that must be present and non-empty."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not a symbol")
    return value
