"""Message templates of notifiers: alert fields in braces, and nothing else.

A template is ``str.format`` text restricted to what a message needs: each
field names an alert field (:data:`TEMPLATE_FIELDS`) exactly, never an
attribute or an index (``{symbol.__class__}`` would reach Python's
internals), and its format spec is plain text formatting with widths and
precisions of at most :data:`MAX_WIDTH` (``{symbol:>1500000000}`` would
allocate gigabytes). :func:`template_problem` says what is wrong with one
when the rules file loads; :func:`fill` renders by looking the names up in a
mapping of text, so it cannot reach anything else either.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Mapping

__all__ = ["MAX_WIDTH", "TEMPLATE_FIELDS", "fill", "template_problem"]

#: The alert fields a template may name (``{symbol} {rule}: {message}``).
TEMPLATE_FIELDS = (
    "id", "rule", "symbol", "timeframe", "interval", "severity", "message", "dataset",
    "bar_start", "bar_end", "details",
)  # fmt: skip

#: Largest width or precision in a field's format spec (``{symbol:<8}``).
MAX_WIDTH = 200

# The format-spec mini-language for text: [[fill]align][0][width][.precision][s]
_SPEC = re.compile(r"(?:.?[<>^=])?0?(?P<width>\d*)(?:\.(?P<precision>\d+))?s?", re.DOTALL)

# (literal text, field name or None, format spec, conversion) of each piece
_Piece = tuple[str, str | None, str, str | None]


def template_problem(template: str) -> str:
    """Say what is wrong with ``template`` (empty: nothing)."""
    try:
        _pieces(template)
    except ValueError as exc:
        return str(exc)
    return ""


def fill(template: str, fields: Mapping[str, object]) -> str:
    """Render ``template`` (checked by :func:`template_problem`) with ``fields`` as text.

    Raises:
        ValueError: the template is not a valid one.
    """
    out = []
    for literal, name, spec, conversion in _pieces(template):
        out.append(literal)
        if name is not None:
            value = str(fields.get(name, ""))
            out.append(format(repr(value) if conversion in ("r", "a") else value, spec))
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _pieces(template: str) -> tuple[_Piece, ...]:
    """The parsed template, each field checked.

    Raises:
        ValueError: a field is not an alert field, reaches an attribute or an
            index, or has a format spec that is not plain, bounded text formatting.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"not a valid template: {exc}") from None
    pieces = []
    for literal, name, spec, conversion in parsed:
        if name is not None:
            _check_field(name, spec or "", conversion)
        pieces.append((literal, name, spec or "", conversion))
    return tuple(pieces)


def _check_field(name: str, spec: str, conversion: str | None) -> None:
    shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
    shown = (shown[:60] + "...") if len(shown) > 60 else shown + "}"
    if name not in TEMPLATE_FIELDS:
        if re.match(r"\w*[.\[]", name):
            raise ValueError(f"{shown}: a template names alert fields only, no attribute "
                             "or index")  # fmt: skip
        known = ", ".join(TEMPLATE_FIELDS)
        if not name or name.isdigit():
            raise ValueError(f"{shown}: name an alert field (fields: {known})")
        raise ValueError(f"unknown field {shown} (fields: {known})")
    if conversion not in (None, "s", "r", "a"):
        raise ValueError(f"{shown}: unknown conversion !{conversion} (!s, !r or !a)")
    found = _SPEC.fullmatch(spec)
    if found is None or "{" in spec:
        raise ValueError(f"{shown}: format spec {spec!r} is not text formatting "
                         "([[fill]align][width][.precision], as in {symbol:<8})")  # fmt: skip
    for part in ("width", "precision"):
        digits = found.group(part) or "0"
        if len(digits.lstrip("0")) > len(str(MAX_WIDTH)) or int(digits) > MAX_WIDTH:
            shown_digits = digits if len(digits) <= 12 else digits[:12] + "..."
            raise ValueError(f"{shown}: {part} {shown_digits} is more than {MAX_WIDTH}")
