"""``marketpulse indicators``: the indicator kinds, one kind in detail, a declaration checked."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import typer

from marketpulse.cli.common import console
from marketpulse.exceptions import ConfigError, InputError

if TYPE_CHECKING:  # the catalogue (numba kernels) is imported when the command runs
    from marketpulse.indicators.kind import Kind, Param

__all__ = ["indicators"]


def indicators(
    kind: str = typer.Argument(
        None, metavar="KIND", help="Show this kind in detail (ema, bbands, adx, ...)."
    ),
    check: str = typer.Option(
        None,
        "--check",
        metavar="DECLARATIONS",
        help="Parse these declarations as --indicators would ('ema(50), bb=bbands(20, 2.5)') "
        "and print the columns they make; a bad one is reported in one line, exit 2.",
    ),
) -> None:
    """List the indicator kinds you can declare, show one, or check declarations.

    Without arguments: every kind with its parameters and their defaults, its
    output columns and the TA-Lib function it equals (or, for kinds TA-Lib
    lacks, the published reference it follows). Declare them with --indicators
    or the indicators setting. Examples:

        marketpulse indicators bbands

        marketpulse indicators --check "ema(50), rsi(7), bb=bbands(20, 2.5)"
    """
    from marketpulse.indicators import KINDS

    if kind is not None and check is not None:
        raise InputError("indicators: give a KIND or --check, not both")
    if check is not None:
        _check(check)
    elif kind is not None:
        found = KINDS.get(kind.strip().lower())
        if found is None:
            close = difflib.get_close_matches(kind.strip().lower(), list(KINDS), n=3)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise InputError(
                f"indicators: unknown kind {kind!r} ({hint}`marketpulse indicators` lists "
                f"the {len(KINDS)} kinds)"
            )
        _show(found)
    else:
        _list(KINDS)


def _signature(kind: Kind) -> str:
    """``bbands(period=20, up=2, down=up, source=close)``: the kind with its defaults."""
    return f"{kind.name}({', '.join(f'{p.name}={_default(p)}' for p in kind.params)})"


def _default(param: Param) -> str:
    if param.default is None:
        return "<required>"
    if isinstance(param.default, str):
        return param.default  # a source, or the name of the parameter it defaults to
    return _number(param.default)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _columns(kind: Kind, name: str) -> str:
    return ", ".join(name if not suffix else f"{name}_{suffix}" for suffix in kind.outputs)


def _equals(kind: Kind) -> str:
    """What the kind's values are checked against: a TA-Lib function or a published reference."""
    if kind.talib:
        return f"equals TA-Lib {kind.talib}"
    return f"reference: {kind.reference}" if kind.reference else "no reference"


def _list(kinds: dict[str, Kind]) -> None:
    from marketpulse.indicators.declare import DEFAULT_TEXT

    console.print(
        f"{len(kinds)} indicator kinds; declare them as kind(args) or name=kind(args) "
        "(--indicators, indicators setting); `marketpulse indicators KIND` shows one. "
        f"Without declarations: {DEFAULT_TEXT}.",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    for kind in kinds.values():
        console.print(
            f"\n{_signature(kind)} -> {_columns(kind, kind.name)}\n"
            f"    {kind.summary}; {_equals(kind)}",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )


def _describe(param: Param) -> str:
    from marketpulse.indicators.kind import SOURCES

    if param.source:
        return f"series: one of {', '.join(SOURCES)}; default {_default(param)}"
    what = "whole number" if param.integer else "number"
    top = f" to {_number(param.maximum)}" if param.maximum is not None else " or more"
    if param.default is None:
        default = "required"
    elif isinstance(param.default, str):
        default = f"default: the value of {param.default}"
    else:
        default = f"default {_default(param)}"
        if param.talib_default is not None:
            default += f" (TA-Lib's: {_number(param.talib_default)})"
    return f"{what}, {_number(param.minimum)}{top}; {default}"


def _show(kind: Kind) -> None:
    lines = [
        f"{kind.name}: {kind.summary}",
        _equals(kind),
        "parameters (positional in this order, or name=value):"
        if kind.params
        else "parameters: none",
    ]
    width = max((len(p.name) for p in kind.params), default=0)
    lines += [f"  {p.name:<{width}}  {_describe(p)}" for p in kind.params]
    lines += [
        f"columns: {_columns(kind, 'NAME')} (NAME: the name given with NAME={kind.name}(...), "
        f"else the kind and its arguments as written)",
        f"example: {kind.name} -> {_columns(kind, kind.name)}",
    ]
    console.print("\n".join(lines), soft_wrap=True, highlight=False, markup=False)


def _check(text: str) -> None:
    from marketpulse.indicators import parse_set

    try:
        declared = parse_set(text)
    except ValueError as exc:
        raise ConfigError(f"indicators --check: {exc}") from None
    lines = [f"{item.canonical} -> {', '.join(item.columns)}" for item in declared.items]
    columns = declared.columns
    lines.append(f"{len(columns)} column{'s' if len(columns) != 1 else ''}: {', '.join(columns)}")
    console.print("\n".join(lines), soft_wrap=True, highlight=False, markup=False)
