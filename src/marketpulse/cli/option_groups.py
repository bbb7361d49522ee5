"""Option groups: options several commands share, declared once as a dataclass.

A group is a frozen dataclass marked with :func:`option_group` whose fields
are options (the ``Annotated`` types of :mod:`marketpulse.cli.options`, each
with its default). A command takes a whole group as one parameter, and
:func:`grouped` shows typer the group's fields as the command's own options,
in the group's place and order, then calls the command with the group built
from them::

    @app.command()
    @grouped
    def run(live: LiveOptions, processing: Processing, config: options.Config = None):
        settings = options.overlay(run, locals())

:func:`~marketpulse.cli.options.overlay` reads the settings a group's fields
set as it reads the command's own options.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from copy import copy
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typer.models import OptionInfo

__all__ = ["annotated", "flatten", "grouped", "is_option_group", "option_group"]

#: The attribute that marks a dataclass as an option group.
_MARK = "__option_group__"

T = TypeVar("T")


def annotated(option: OptionInfo) -> OptionInfo:
    """The ``Annotated`` form of an option declared as a default (typer wants no default in it)."""
    info = copy(option)
    info.default = ...
    return info


def option_group(cls: type[T]) -> type[T]:
    """Mark the dataclass ``cls`` as an option group (its fields are options)."""
    if not is_dataclass(cls):
        raise TypeError(f"{cls.__name__}: an option group is a dataclass")
    setattr(cls, _MARK, True)
    return cls


def is_option_group(kind: object) -> bool:
    """Whether ``kind`` is an option group class."""
    return isinstance(kind, type) and getattr(kind, _MARK, False) is True


def _parameters(group: type) -> list[inspect.Parameter]:
    """The group's fields as keyword parameters, their ``Annotated`` options resolved."""
    hints = typing.get_type_hints(group, include_extras=True)
    return [
        inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name], default=f.default
        )  # fmt: skip
        for f in fields(group)
    ]


def grouped(command: Callable[..., T]) -> Callable[..., T]:
    """Expand the option-group parameters of ``command`` into their fields, for typer.

    Raises:
        TypeError: two groups, or a group and the command, share an option name.
    """
    hints = typing.get_type_hints(command, include_extras=True)
    parameters: list[inspect.Parameter] = []
    groups: dict[str, type] = {}
    for parameter in inspect.signature(command).parameters.values():
        kind = hints.get(parameter.name, parameter.annotation)
        if is_option_group(kind):
            groups[parameter.name] = kind
            parameters.extend(_parameters(kind))
        else:
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY,
                                                annotation=kind))  # fmt: skip
    names = [p.name for p in parameters]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise TypeError(f"{command.__name__}: options declared twice: {', '.join(twice)}")

    @functools.wraps(command)
    def call(**arguments: Any) -> T:
        for name, group in groups.items():
            arguments[name] = group(**{f.name: arguments.pop(f.name) for f in fields(group)})
        return command(**arguments)

    call.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    call.__annotations__ = {p.name: p.annotation for p in parameters}
    del call.__wrapped__  # type: ignore[attr-defined]  # typer reads the signature above
    return call


def flatten(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A command's arguments with each option group's fields beside them, by name."""
    flat = dict(arguments)
    for value in arguments.values():
        if is_option_group(type(value)):
            flat.update({f.name: getattr(value, f.name) for f in fields(value)})
    return flat
