"""Bad usage said in MarketPulse's words: one line naming the option and what it takes.

typer checks option values with pydantic, whose messages speak of the check
("Input should be greater than or equal to 1", "Value error, 'xml' is not one
of ...") rather than of the option. :func:`usage_message` turns the error typer
raises into one line naming the command, the option and the values it takes::

    marketpulse report movers: Invalid value for '--top': expected a whole number at
    least 1, got 0

Messages MarketPulse wrote itself (an option's callback, a missing argument)
pass through unchanged.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import typer

__all__ = ["usage_message"]

#: pydantic's error types about a number, and the bound each names in its context.
_BOUNDS = {"greater_than_equal": "ge", "greater_than": "gt",
           "less_than_equal": "le", "less_than": "lt"}  # fmt: skip
_NUMBER_ERRORS = {"int_parsing", "int_from_float", "float_parsing", "finite_number", *_BOUNDS}


def usage_message(exc: typer.TyperException) -> str:
    """The one line to print for a usage error: the command's path, then what is wrong."""
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path}: " if ctx is not None else ""
    errors = _validation_errors(exc.__cause__)
    if not errors:
        return f"{where}{exc.format_message()}"
    param = getattr(exc, "param", None)
    said = _in_our_words(errors[0], param)
    if param is None:
        return f"{where}{said}"
    option = param.opts[0] if getattr(param, "opts", None) else param.name
    return f"{where}Invalid value for {option!r}: {said}"


def _validation_errors(cause: BaseException | None) -> list[dict[str, Any]]:
    """The errors pydantic found, if ``cause`` is its ``ValidationError``; else none."""
    if cause is None or type(cause).__name__ != "ValidationError":
        return []
    try:
        return list(cause.errors())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not pydantic's after all: its own message stands
        return []


def _in_our_words(error: dict[str, Any], param: Any) -> str:
    """One of pydantic's errors as MarketPulse says it: what the option takes, what it got."""
    kind = error.get("type", "")
    given = error.get("input")
    annotation = _annotation(param)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        choices = ", ".join(str(member.value) for member in annotation)
        return f"expected one of {choices}, got {given!r}"
    if kind in _NUMBER_ERRORS:
        what = "a whole number" if annotation is int or kind.startswith("int") else "a number"
        allowed = _range(param, error)
        return f"expected {what}{' ' + allowed if allowed else ''}, got {_shown(given)}"
    if kind == "bool_parsing":
        return f"expected true or false, got {given!r}"
    if kind == "value_error" and error.get("ctx", {}).get("error") is not None:
        return str(error["ctx"]["error"]).rstrip(".")
    text = str(error.get("msg", "not valid")).removeprefix("Input should be ").rstrip(".")
    return f"expected {text}, got {_shown(given)}"


def _annotation(param: Any) -> Any:
    descriptor = getattr(param, "type_descriptor", None)
    return getattr(descriptor, "annotation", None)


def _range(param: Any, error: dict[str, Any]) -> str:
    """The values the option allows: its declared bounds, else the one pydantic checked."""
    allowed = getattr(getattr(param, "callback", None), "allowed", None)
    if isinstance(allowed, str):  # a range checked by the option's callback (cli.common.bounded)
        return allowed
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        return f"from {_number(low)} to {_number(high)}"
    if low is not None:
        return f"at least {_number(low)}"
    if high is not None:
        return f"at most {_number(high)}"
    key = _BOUNDS.get(error.get("type", ""))
    bound = error.get("ctx", {}).get(key) if key else None
    if key is None or bound is None:
        return ""
    words = {"ge": "at least", "gt": "above", "le": "at most", "lt": "below"}[key]
    return f"{words} {_number(bound)}"


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shown(given: Any) -> str:
    """A number as typed (``-1``); anything else quoted (``'abc'``)."""
    try:
        number = float(given)
    except (TypeError, ValueError):
        return repr(given)
    return str(given) if math.isfinite(number) else repr(given)
