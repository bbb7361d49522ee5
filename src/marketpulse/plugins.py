"""Users' own Python in the processor: functions of each batch of closed bars.

A plugin is a function loaded from ``module:function`` (``--plugin``, or
``plugins = [...]`` in the config file, ``MARKETPULSE_PLUGINS``). The
processor calls it with each batch of bars one step of a partition closes,
joined with their indicators: the columns of the ``bars_with_indicators``
view (the bar's ``vwap``, the indicators' session VWAP as ``session_vwap``),
as a :class:`pyarrow.Table`, or as a pandas DataFrame for a function marked
``@plugin(pandas=True)``. It returns any of:

- ``None``: nothing;
- a table (Arrow, pandas, or a mapping of name to array) of new float
  columns, one row per input row, in the input's order: each value is stored
  as a row of the ``custom`` table (dataset, symbol, timeframe, bar_start,
  bar_end, name, value);
- a :class:`PluginResult` with such columns and/or alerts (:func:`alert`),
  which go where the rules' alerts go.

Plugins must be deterministic, stateless functions of their input: a
restart replays the input since the last commit, and their outputs travel in
the same transaction as the bars, so a replay gives the same rows exactly
once. A plugin that raises, or returns what cannot be stored (rows out of
line with the input, a bad column name), loses that batch's output: a dead
letter with reason ``plugin`` names it and what went wrong, and processing
goes on.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.exceptions import ConfigError
from marketpulse.models import CUSTOM_SCHEMA, INDICATOR_KEY_COLUMNS, Alert, DeadLetter

__all__ = [
    "NAME",
    "Plugin",
    "PluginOutput",
    "PluginResult",
    "alert",
    "load_plugin",
    "load_plugins",
    "plugin",
    "plugin_input",
    "run_plugins",
]

logger = logging.getLogger(__name__)

#: A plugin column's name: lower case, a letter first (no quoting in any SQL dialect).
NAME = re.compile(r"[a-z][a-z0-9_]*")
#: The attribute :func:`plugin` sets on a function that takes a pandas DataFrame.
_PANDAS_ATTRIBUTE = "marketpulse_pandas"
#: The bar key every plugin input starts with (the lake view's order).
_KEY = ("dataset", "symbol", "timeframe", "bar_start", "bar_end")
_json = msgspec.json.Encoder()


def plugin(function: Callable | None = None, *, pandas: bool = False) -> Any:
    """Mark a function as a plugin; ``pandas=True``: it takes a pandas DataFrame.

    Usable bare (``@plugin``) or with arguments (``@plugin(pandas=True)``).
    Setting the attribute ``marketpulse_pandas = True`` on a function does the same.
    """

    def mark(fn: Callable) -> Callable:
        setattr(fn, _PANDAS_ATTRIBUTE, pandas)
        return fn

    return mark if function is None else mark(function)


@dataclass(frozen=True, slots=True)
class PluginResult:
    """What a plugin returns: new columns aligned with its input, and alerts.

    Attributes:
        columns: a pyarrow Table, a pandas DataFrame, or a mapping of name to
            values (one per input row, in order); ``None``: no columns.
        alerts: alerts on bars of the input (see :func:`alert`).
    """

    columns: Any = None
    alerts: Sequence[Alert] = ()


def alert(
    rule: str,
    symbol: str,
    timeframe: str,
    bar_start: int,
    bar_end: int,
    message: str,
    severity: str = "warning",
    details: Mapping[str, float | None] | None = None,
) -> Alert:
    """Make an alert on one bar; its id and dataset are filled when it is stored.

    The id is derived from the rule, the bar and the dataset, as the rules'
    alerts' are: the same alert of a replay is the same row.
    """
    return Alert(
        "", rule, symbol, timeframe, int(bar_start), int(bar_end), severity, message,
        {k: None if v is None else float(v) for k, v in (details or {}).items()},
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Plugin:
    """A loaded plugin.

    Attributes:
        spec: where it was loaded from (``module:function``); names it in
            dead letters and logs.
        function: the callable.
        pandas: it takes a pandas DataFrame (else a pyarrow Table).
    """

    spec: str
    function: Callable = field(repr=False, compare=False)
    pandas: bool = False


def load_plugin(spec: str, kind: str = "plugin") -> Plugin:
    """Import ``module:function`` and check it is callable.

    The current directory is importable, as with ``python -m``: a plugin in
    ``./examples/zscore_plugin.py`` is ``examples.zscore_plugin:zscore``.

    Args:
        spec: ``module:function``.
        kind: what the function is, for the messages (``plugin``, ``scorer``).

    Raises:
        ConfigError: one line naming the spec and what is wrong with it.
    """
    module_name, colon, attribute = spec.strip().partition(":")
    if not colon or not module_name or not attribute:
        raise ConfigError(f"{kind} {spec!r}: expected module:function (such as mypkg.mod:fn)")
    here = os.getcwd()
    if "" not in sys.path and here not in sys.path:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{kind} {spec!r}: no module named {exc.name!r}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module: any error it raises on import
        raise ConfigError(
            f"{kind} {spec!r}: importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"{kind} {spec!r}: {module_name} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"{kind} {spec!r}: {attribute} is not callable")
    pandas = bool(getattr(target, _PANDAS_ATTRIBUTE, False))
    if pandas:
        try:
            import pandas as _  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"{kind} {spec!r} takes a pandas DataFrame, but pandas is not installed"
            ) from None
    return Plugin(spec.strip(), target, pandas)


def load_plugins(specs: Sequence[str]) -> tuple[Plugin, ...]:
    """Load each spec (:func:`load_plugin`); a spec given twice is refused.

    Raises:
        ConfigError: a bad spec, or one given twice.
    """
    plugins = tuple(load_plugin(spec) for spec in specs)
    seen: set[str] = set()
    for each in plugins:
        if each.spec in seen:
            raise ConfigError(f"plugin {each.spec!r} is given twice")
        seen.add(each.spec)
    return plugins


def plugin_input(bars: pa.Table, indicators: pa.Table) -> pa.Table:
    """Join closed bars with their indicators (same rows, same order) as plugins see them.

    The columns are those of the lake's ``bars_with_indicators`` view: the
    bar's key, its fields, then the indicators, the session VWAP as
    ``session_vwap``.
    """
    names = list(_KEY) + [n for n in bars.column_names if n not in _KEY]
    columns = [bars.column(n) for n in names]
    declared = [n for n in indicators.column_names if n not in INDICATOR_KEY_COLUMNS]
    for name in (n for n in declared if n != "dataset"):  # the declared indicators, in order
        columns.append(indicators.column(name))
        names.append("session_vwap" if name == "vwap" else name)
    return pa.Table.from_arrays(columns, names=names)


@dataclass(slots=True)
class PluginOutput:
    """What the plugins made of one batch of bars."""

    custom: pa.Table
    alerts: list[Alert]
    dead: list[DeadLetter]


class _Refused(Exception):
    """A plugin's output that cannot be stored."""


def run_plugins(
    plugins: Sequence[Plugin], bars: pa.Table, indicators: pa.Table, dataset: str | None
) -> PluginOutput:
    """Call each plugin on the bars (with their indicators) and check what it returns.

    A plugin that raises or returns something unusable gives a dead letter
    (reason ``plugin``) instead of its output; the other plugins still run.

    Args:
        plugins: the plugins, in order.
        bars: closed bars (``BAR_SCHEMA``).
        indicators: their indicators, row for row.
        dataset: stamped on the rows and alerts that carry none.
    """
    data = plugin_input(bars, indicators)
    frame = None
    taken = set(data.column_names)
    tables: list[pa.Table] = []
    alerts: list[Alert] = []
    dead: list[DeadLetter] = []
    for each in plugins:
        try:
            if each.pandas:
                frame = data.to_pandas() if frame is None else frame
                returned = each.function(frame.copy())
            else:
                returned = each.function(data)
            columns, found = _columns(returned, data.num_rows, frame, taken, each.pandas)
            made = [_alert(a, dataset) for a in found]
        except Exception as exc:  # noqa: BLE001 - the user's code: any error it raises
            dead.append(_dead_letter(each, exc, data))
            logger.warning("plugin %s failed on %d bars: %s", each.spec, data.num_rows,
                           _describe(exc))  # fmt: skip
            continue
        taken.update(columns)
        tables.extend(_long(data, name, values, dataset) for name, values in columns.items())
        alerts.extend(made)
    custom = pa.concat_tables(tables) if tables else CUSTOM_SCHEMA.empty_table()
    return PluginOutput(custom, alerts, dead)


def _columns(
    returned: Any, rows: int, frame: Any, taken: set[str], pandas: bool
) -> tuple[dict[str, pa.Array], Sequence[Alert]]:
    """The checked float columns and the alerts of what a plugin returned."""
    found: Sequence[Alert] = ()
    if isinstance(returned, PluginResult):
        found = returned.alerts
        returned = returned.columns
    if returned is None:
        columns: dict[str, pa.Array] = {}
    elif isinstance(returned, pa.Table | pa.RecordBatch):
        columns = dict(zip(returned.column_names, returned.columns, strict=True))
        _check_rows(returned.num_rows, rows)
    elif hasattr(returned, "columns") and hasattr(returned, "index"):  # a pandas DataFrame
        _check_rows(len(returned), rows)
        index = frame.index if pandas and frame is not None else None
        if index is not None and not returned.index.equals(index):
            raise _Refused("returned rows are not aligned with the input's (its index differs)")
        columns = {str(name): returned[name].to_numpy() for name in returned.columns}
    elif isinstance(returned, Mapping):
        columns = dict(returned)
    else:
        raise _Refused(
            f"returned a {type(returned).__name__}: expected None, a table of new columns "
            "(pyarrow, pandas, or a mapping) or a PluginResult"
        )
    checked = {}
    for name, values in columns.items():
        if not isinstance(name, str) or NAME.fullmatch(name) is None:
            raise _Refused(f"column name {name!r} is not lower-case letters, digits and _ "
                           "(a letter first)")  # fmt: skip
        if name in taken:
            raise _Refused(f"column {name!r} clashes with an input column or an earlier "
                           "plugin's")  # fmt: skip
        checked[name] = _floats(name, values, rows)
    if not isinstance(found, Sequence) or not all(isinstance(a, Alert) for a in found):
        raise _Refused("alerts must be a list of marketpulse.models.Alert (see plugins.alert)")
    return checked, found


def _check_rows(returned: int, rows: int) -> None:
    if returned != rows:
        raise _Refused(f"returned {returned} rows for {rows} bars: one row per input row, "
                       "in the input's order")  # fmt: skip


def _floats(name: str, values: Any, rows: int) -> pa.Array:
    """One returned column as float64 (NaN as null)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    try:
        if isinstance(values, pa.Array):
            array = values.cast(pa.float64())
        else:
            numbers = np.asarray(values, dtype=np.float64)
            if numbers.ndim != 1:
                raise _Refused(f"column {name!r} is not one-dimensional")
            array = pa.array(numbers, pa.float64(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        raise _Refused(f"column {name!r} is not numbers: {exc}") from None
    _check_rows(len(array), rows)
    if array.null_count < len(array):
        isnan = pc.is_nan(array)
        if pc.any(isnan).as_py():
            array = pc.if_else(isnan, None, array)
    return array


def _long(data: pa.Table, name: str, values: pa.Array, dataset: str | None) -> pa.Table:
    """One plugin column as ``custom`` rows: the bar's key, the name, the value."""
    n = data.num_rows
    stamped = data.column("dataset")
    if dataset is not None and stamped.null_count:
        stamped = pc.fill_null(stamped, dataset)
    return pa.Table.from_arrays(
        [
            data.column("symbol"), data.column("timeframe"), data.column("bar_start"),
            data.column("bar_end"), pa.repeat(name, n).cast(pa.string()), values, stamped,
        ],
        schema=CUSTOM_SCHEMA,
    )  # fmt: skip


def _alert(found: Alert, dataset: str | None) -> Alert:
    """A plugin's alert with its dataset, and its id derived as the rules' ones are."""
    dataset = found.dataset if found.dataset is not None else dataset
    ident = found.id
    if not ident:
        key = f"{found.rule}|{found.symbol}|{found.timeframe}|{found.bar_end}"
        if dataset is not None:
            key += f"|{dataset}"
        ident = hashlib.sha1(key.encode()).hexdigest()[:16]
    return msgspec.structs.replace(found, id=ident, dataset=dataset)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, _Refused):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _dead_letter(each: Plugin, exc: BaseException, data: pa.Table) -> DeadLetter:
    """A dead letter naming the plugin, what went wrong, and the bars it was given."""
    starts = data.column("bar_start")
    first = pc.min(starts).as_py()
    last = pc.max(starts).as_py()
    symbols = sorted({s for s in data.column("symbol").to_pylist() if s is not None})
    value = _json.encode(
        {"plugin": each.spec, "bars": data.num_rows, "symbols": symbols[:20],
         "first_bar_start": first, "last_bar_start": last}
    )  # fmt: skip
    return DeadLetter(
        reason="plugin",
        error=f"plugin {each.spec}: {_describe(exc)}",
        value=value,
        key=symbols[0] if len(symbols) == 1 else None,
        ts=first,
    )
