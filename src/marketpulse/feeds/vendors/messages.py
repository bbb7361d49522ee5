"""Reading vendor JSON: one bad message, or one bad item of a message, is a dead letter.

Vendor messages often carry several events (a JSON array, a ``data``
list); an item that does not read becomes a dead letter with reason
``parse`` and the vendor's own bytes, and the other items go on. An item may
also become several events (an article about several symbols, one per symbol).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

import msgspec

from marketpulse.feeds.vendors.base import Events
from marketpulse.feeds.vendors.timestamps import epoch_ns
from marketpulse.models import Bar, NewsItem, Quote, Trade

__all__ = [
    "PARSE_ERRORS",
    "DeadLetters",
    "article_id",
    "decode",
    "field",
    "number",
    "optional_text",
    "published",
    "put_each",
    "read_each",
    "symbol_list",
    "text",
]

#: What a parser raises on an item that does not read.
PARSE_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)

_json = msgspec.json.Encoder()

T = TypeVar("T")
E = TypeVar("E", bound=Trade | Quote | Bar | NewsItem)


class DeadLetters(Protocol):
    """Where unreadable vendor items go: :class:`Events`, or a filter in front of it."""

    def dead(self, reason: str, error: str, raw: bytes | str, key: str | None = None) -> None:
        """Hand over a vendor message that could not be read."""
        ...


def decode(message: str | bytes, out: Events) -> Any | None:
    """Decode a JSON message; a message that is not JSON is a dead letter (``None`` back)."""
    try:
        return msgspec.json.decode(message)
    except msgspec.DecodeError as exc:
        out.dead("parse", f"not JSON: {exc}", message)
        return None


def read_each(
    out: DeadLetters,
    items: Iterable[Any],
    parse: Callable[[Any], E | list[E] | None],
    key: str | None = None,
) -> list[E]:
    """Parse each item into events; items that fail become dead letters in ``out``.

    Args:
        out: the sink of the dead letters.
        items: the vendor's items.
        parse: reads one item into an event, several (an article about several
            symbols), or None (nothing to hand over).
        key: the dead letters' key (default: the symbol the item names, if any).
    """
    events: list[E] = []
    for item in items:
        try:
            event = parse(item)
        except PARSE_ERRORS as exc:
            out.dead("parse", f"{type(exc).__name__}: {exc}", _json.encode(item),
                     key or _symbol(item))  # fmt: skip
            continue
        if isinstance(event, list):
            events.extend(event)
        elif event is not None:
            events.append(event)
    return events


def put_each(
    out: Events,
    items: Iterable[Any],
    parse: Callable[[Any], E | list[E] | None],
    key: str | None = None,
) -> None:
    """Parse each item into events for ``out``; items that fail become dead letters."""
    for event in read_each(out, items, parse, key):
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
        raise ValueError(f"{value!r} is not a non-empty string")
    return value


def optional_text(value: Any) -> str | None:
    """A vendor string that may be missing or empty (``None`` then)."""
    return value if isinstance(value, str) and value else None


def article_id(value: Any) -> str:
    """A vendor's article id (a number or a non-empty string), as text."""
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise ValueError(f"{value!r} is not an article id")
    return str(value)


def published(value: Any) -> int:
    """A publication time (any form :func:`epoch_ns` reads) after the epoch, as UTC ns."""
    ns = epoch_ns(value)
    if ns <= 0:
        raise ValueError(f"{value!r} is not a publication time")
    return ns


def symbol_list(value: Any) -> list[str]:
    """A JSON list of symbols."""
    if not isinstance(value, list):
        raise ValueError(f"{value!r} is not a list of symbols")
    return [text(symbol) for symbol in value]


def field(item: Any, name: str, read: Callable[[Any], T]) -> T:
    """Read field ``name`` of a vendor item with ``read``.

    Raises:
        ValueError: the field is missing, null or unreadable; the message names it
            (the dead letter says which field of which vendor's item was bad).
    """
    value = item.get(name) if isinstance(item, dict) else None
    if value is None:
        raise ValueError(f"field {name!r} is missing")
    try:
        return read(value)
    except PARSE_ERRORS as exc:
        raise ValueError(f"field {name!r}: {exc}") from None
