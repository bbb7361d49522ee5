"""The JSON Schemas of the API's rows, derived from the Arrow schemas of :mod:`marketpulse.models`.

One definition: a column added to a table appears in ``/openapi.json`` too.
Times are ISO 8601 UTC text (``format: date-time``), floats may be null
(NaN, or an indicator warming up), an alert's ``details`` is an object.
An indicators row has the columns its series was written with: the bar's key
and close, its dataset, and the declared indicators (any names, numbers or
null); the thirteen classic columns are documented as the default set.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from marketpulse.models import (
    ALERT_SCHEMA,
    BAR_TABLE_SCHEMA,
    INDICATOR_KEY_COLUMNS,
    INDICATOR_SCHEMA,
)
from marketpulse.serve.records import TIME_COLUMNS

__all__ = [
    "ALERT_ROW", "BAR_ROW", "DATASET_ROW", "FORECAST_ROW", "INDICATOR_ROW", "SYMBOL_ROW",
    "array_of",
]  # fmt: skip

_TIME = {"type": "string", "format": "date-time", "examples": ["2013-10-07T13:31:00Z"]}
_NULLABLE_NUMBER = {"anyOf": [{"type": "number"}, {"type": "null"}]}


def _column(field: pa.Field) -> dict[str, Any]:
    kind = field.type
    if field.name in TIME_COLUMNS:
        return dict(_TIME)
    if pa.types.is_floating(kind):
        return dict(_NULLABLE_NUMBER)
    if pa.types.is_integer(kind):
        return {"type": "integer"}
    if pa.types.is_map(kind):
        return {"type": "object", "additionalProperties": dict(_NULLABLE_NUMBER)}
    return {"type": "string"}


def row_schema(schema: pa.Schema, title: str) -> dict[str, Any]:
    """Return the JSON Schema of one row of ``schema`` as the API sends it."""
    return {
        "title": title,
        "type": "object",
        "properties": {field.name: _column(field) for field in schema},
        "required": list(schema.names),
    }


def array_of(row: dict[str, Any], description: str) -> dict[str, Any]:
    """Return a 200 response (for ``responses=``) of an array of ``row``."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"type": "array", "items": row}}},
    }


BAR_ROW = row_schema(BAR_TABLE_SCHEMA, "Bar")
INDICATOR_ROW = {
    **row_schema(INDICATOR_SCHEMA, "IndicatorRow"),
    "description": (
        "The bar's key and close, the declared indicator columns of the series (by default"
        " the thirteen below; others such as ema_50 or rsi_7 when declared with --indicators),"
        " then the dataset. Null: warming up."
    ),
    "required": [*INDICATOR_KEY_COLUMNS, "dataset"],
    "additionalProperties": dict(_NULLABLE_NUMBER),
}
ALERT_ROW = row_schema(ALERT_SCHEMA, "Alert")
FORECAST_ROW = {
    "title": "Forecast",
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "horizon": {"type": "integer"},
        "bar_start": dict(_TIME),
        "direction": {"type": "integer"},
        "probability": dict(_NULLABLE_NUMBER),
        "value": dict(_NULLABLE_NUMBER),
        "resolved": {"type": "integer"},
        "hits": {"type": "integer"},
    },
    "required": ["model", "horizon", "bar_start", "direction", "resolved", "hits"],
}
SYMBOL_ROW = {
    "title": "Symbol",
    "type": "object",
    "properties": {
        "symbol": {"type": "string"},
        "timeframes": {"type": "array", "items": {"type": "string"}},
        "bars": {"type": "integer"},
        "first": _TIME,
        "last": _TIME,
        "dataset": {"type": "string"},
    },
}
DATASET_ROW = {
    "title": "Dataset",
    "type": "object",
    "properties": {
        "dataset": {"type": "string"},
        "symbols": {"type": "integer"},
        "timeframes": {"type": "array", "items": {"type": "string"}},
        "bars": {"type": "integer"},
        "first": {"anyOf": [_TIME, {"type": "null"}]},
        "last": {"anyOf": [_TIME, {"type": "null"}]},
        "written": _TIME,
    },
}
