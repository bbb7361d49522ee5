"""Declared indicators: ``ema(50)``, ``bb=bbands(20, 2.5)``, parsed and named.

A declaration is ``[name=]kind(args)``: positional arguments in the kind's
parameter order, then ``key=value`` ones. Its output columns are ``name``
(for a kind's main output) and ``name_suffix`` for the others (``bb_upper``).
Without a name, the name is the kind and its arguments as written:
``ema(50)`` is ``ema_50``, ``bbands(20, 2.5)`` gives ``bbands_20_2_5_upper``.

A declared set is an ordered tuple of declarations with unique column names;
:data:`DEFAULT` is the thirteen columns MarketPulse has always had.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

from marketpulse.indicators.catalog import KINDS
from marketpulse.indicators.kind import SOURCES, Kind

__all__ = [
    "DEFAULT",
    "DEFAULT_TEXT",
    "Declared",
    "DeclaredSet",
    "parse",
    "parse_set",
    "split_declarations",
]

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_DECLARATION = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*)?(?P<kind>[A-Za-z_][A-Za-z0-9_]*)"
    r"\s*(?:\((?P<args>[^()]*)\))?\s*"
)
#: Columns every indicators row has besides the declared ones.
RESERVED = frozenset({"symbol", "timeframe", "interval", "bar_start", "bar_end", "close",
                      "dataset", "ts", "open", "high", "low", "volume", "vwap_bar"})  # fmt: skip


@dataclass(frozen=True)
class Declared:
    """One declared indicator instance.

    Attributes:
        kind: the kind it is an instance of.
        name: its name (the main output column's name).
        numbers: its numeric parameters, in the kind's order.
        source: the series it reads (``close`` unless its kind takes a source).
    """

    kind: Kind
    name: str
    numbers: tuple[float, ...]
    source: str = "close"

    @property
    def columns(self) -> tuple[str, ...]:
        """Its output columns, in the kind's output order."""
        return tuple(self.name if not s else f"{self.name}_{s}" for s in self.kind.outputs)

    @property
    def canonical(self) -> str:
        """The declaration with every parameter, such as ``ema_50=ema(period=50, source=close)``."""
        parts = []
        numbers = iter(self.numbers)
        for param in self.kind.params:
            value = self.source if param.source else _format(next(numbers))
            parts.append(f"{param.name}={value}")
        return f"{self.name}={self.kind.name}({', '.join(parts)})"


@dataclass(frozen=True)
class DeclaredSet:
    """An ordered set of declared indicators with unique output columns."""

    items: tuple[Declared, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every output column, in declaration order."""
        return tuple(c for item in self.items for c in item.columns)

    @functools.cached_property
    def text(self) -> str:
        """The canonical declarations, comma-separated (parses back to this set)."""
        return ", ".join(item.canonical for item in self.items)

    @functools.cached_property
    def fingerprint(self) -> bytes:
        """Eight bytes naming this set (for state snapshots)."""
        return hashlib.blake2b(self.text.encode(), digest_size=8).digest()

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"DeclaredSet({self.text!r})"


def _format(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None


def parse(text: str) -> Declared:
    """Parse one declaration such as ``ema(50)`` or ``bb=bbands(20, 2.5)``.

    Raises:
        ValueError: naming what is wrong: an unknown kind, a bad or missing
            parameter, a name that is not a plain lower-case identifier.
    """
    match = _DECLARATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"indicator {text.strip()!r}: expected kind(arguments) or name=kind(arguments)"
        )
    kind_name = match["kind"].lower()
    kind = KINDS.get(kind_name)
    if kind is None:
        raise ValueError(
            f"indicator {text.strip()!r}: unknown kind {kind_name!r} "
            "(see `marketpulse indicators` for the list)"
        )
    where = f"indicator {text.strip()!r}"
    args = (
        [a.strip() for a in (match["args"] or "").split(",")]
        if (match["args"] or "").strip()
        else []
    )
    given: dict[str, str] = {}
    names = [p.name for p in kind.params]
    named = False
    for i, arg in enumerate(args):
        key, equals, value = arg.partition("=")
        if equals:
            key = key.strip().lower()
            if key not in names:
                raise ValueError(
                    f"{where}: {kind.name} has no parameter {key!r} "
                    f"(it takes {', '.join(names) or 'none'})"
                )
            if key in given:
                raise ValueError(f"{where}: parameter {key!r} given twice")
            given[key] = value.strip()
            named = True
        else:
            if named:
                raise ValueError(f"{where}: positional argument {arg!r} after a named one")
            if i >= len(names):
                raise ValueError(f"{where}: {kind.name} takes at most {len(names)} arguments")
            given[names[i]] = arg
    numbers: dict[str, float] = {}
    source = "close"
    for param in kind.params:
        raw = given.get(param.name)
        if param.source:
            source = (raw or str(param.default)).lower()
            if source not in SOURCES:
                raise ValueError(f"{where}: source {source!r} is not one of {', '.join(SOURCES)}")
            continue
        if raw is None:
            if param.default is None:
                raise ValueError(f"{where}: parameter {param.name!r} is required")
            value = (
                numbers[param.default] if isinstance(param.default, str) else float(param.default)
            )
        else:
            value = _number(raw, f"{where}, {param.name}")
        if param.integer and not float(value).is_integer():
            raise ValueError(f"{where}: {param.name} must be a whole number, not {raw}")
        if value < param.minimum or (param.maximum is not None and value > param.maximum):
            low = _format(param.minimum)
            allowed = (
                f"between {low} and {_format(param.maximum)}"
                if param.maximum is not None
                else f"at least {low}"
            )
            raise ValueError(f"{where}: {param.name} must be {allowed}, not {raw or value}")
        numbers[param.name] = value
    if match["name"]:
        name = match["name"]
    else:
        name = "_".join([kind.name, *(a.split("=")[-1].strip() for a in args)])
        name = re.sub(r"[^a-z0-9_]", "_", name.lower())
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{where}: name {name!r} must be lower case letters, digits and _, "
            "not starting with a digit"
        )
    return Declared(kind, name, tuple(numbers.values()), source)


def split_declarations(text: str) -> list[str]:
    """Split ``a(1, 2), b(3)`` at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in (p.strip() for p in parts) if p]


def parse_set(declarations: str | list[str] | tuple[str, ...]) -> DeclaredSet:
    """Parse a comma-separated text or a list of declarations into a set.

    Raises:
        ValueError: a declaration is wrong, the set is empty, or two columns
            share a name (or take a reserved one).
    """
    texts = (
        split_declarations(declarations)
        if isinstance(declarations, str)
        else [p for d in declarations for p in split_declarations(d)]
    )
    if not texts:
        raise ValueError("no indicators declared")
    items = tuple(parse(t) for t in texts)
    seen: dict[str, str] = {}
    for item in items:
        for column in item.columns:
            if column in RESERVED:
                raise ValueError(
                    f"indicator {item.canonical!r}: column {column!r} is a reserved name; "
                    "name it with name=..."
                )
            if column in seen:
                raise ValueError(
                    f"indicator column {column!r} is declared twice "
                    f"({seen[column]} and {item.canonical}); "
                    "name one of them with name=..."
                )
            seen[column] = item.canonical
    return DeclaredSet(items)


#: The default declarations: the thirteen classic columns. Each kind without a
#: parameter is its default (the kinds' parameters hold them, once): ``sma`` and
#: ``bbands`` are of 20 bars, ``rsi`` and ``atr`` of 14, ``macd`` 12, 26 and 9; the
#: two EMAs are MACD's periods.
DEFAULT_TEXT = (
    "sma_20=sma, ema_12=ema(12), ema_26=ema(26), rsi_14=rsi, macd=macd, bb=bbands, "
    "atr_14=atr, vwap=vwap, volume_sma_20=sma(source=volume)"
)
DEFAULT = parse_set(DEFAULT_TEXT)
