"""Rows as the API and the WebSocket send them: JSON-ready, times as ISO 8601 UTC text.

Times leave the server as ``2013-10-07T13:31:00Z``: fractional seconds only
when they are not zero, in as many digits (3, 6 or 9) as it takes to be exact
(``...:00.250Z``, ``...:00.123456789Z``). That holds for the lake's timestamp
columns and for the int64 nanoseconds of the tables a running pipeline hands
over (``ts``, ``bar_start``, ``bar_end``), so REST and WebSocket rows agree.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa

from marketpulse.models import STORED_TIME

__all__ = ["TIME_COLUMNS", "details_of", "iso_time", "iso_times", "to_records"]

#: Columns that hold an event time, as int64 nanoseconds while in flight.
TIME_COLUMNS = frozenset({"ts", "bar_start", "bar_end"})


def iso_times(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Return timestamps (any unit) or int64 UTC nanoseconds as ISO 8601 UTC strings.

    The text is the one ``marketpulse sql`` writes
    (:func:`marketpulse.analytics.results.iso_times`).
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.timestamp(values.type.unit, tz="UTC"))
    else:
        values = values.cast(pa.int64()).cast(STORED_TIME)
    # imported here: the analytics package brings DuckDB, which a live run's start does without
    from marketpulse.analytics.results import iso_times as iso_text

    return pa.array(iso_text(values), pa.string())


def iso_time(ns: int) -> str:
    """Return one time of int64 UTC nanoseconds as ISO 8601 UTC text."""
    return iso_times(pa.array([ns], pa.int64()))[0].as_py()


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def to_records(table: pa.Table) -> list[dict[str, Any]]:
    """Return rows as dicts: times as ISO text, maps as objects, NaN as ``None``.

    Timestamp columns are converted, and so are int64 columns named in
    :data:`TIME_COLUMNS` (a pipeline's tables in flight).
    """
    columns, maps = {}, []
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_timestamp(kind) or (name in TIME_COLUMNS and pa.types.is_integer(kind)):
            column = iso_times(column)
        elif pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
        elif pa.types.is_map(kind):
            maps.append(name)
        columns[name] = column
    rows = pa.table(columns).to_pylist() if columns else []
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and math.isnan(value):
                row[key] = None
        for key in maps:
            row[key] = details_of(row[key])
    return rows


def details_of(value: Any) -> dict[str, Any]:
    """Return an alert's details as a JSON object, whatever form it came in."""
    if value is None:
        return {}
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):  # an Arrow map read as pairs
        items = value
    elif isinstance(value, str | bytes) and value:  # JSON text, as some writers keep it
        items = json.loads(value).items()
    else:
        items = []
    return {str(k): _nan_to_none(v) for k, v in items}
