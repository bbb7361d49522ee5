"""Query results written for people and tools: an aligned text table, CSV, JSON or Parquet.

``marketpulse sql``, ``report``, ``backtest`` and the storage commands write
their results with :func:`format_table`; the REST API takes its time text from
:func:`iso_times`, so both show a time alike.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from marketpulse.analytics.exceptions import OutputError
from marketpulse.human import human_bytes, human_number
from marketpulse.sinks.lake_format import PARQUET_COMPRESSION

__all__ = ["FORMATS", "fit_columns", "format_table", "iso_times", "mark_percent"]

#: The formats :func:`format_table` writes.
FORMATS: tuple[str, ...] = ("table", "csv", "json", "parquet")

#: The field metadata that marks a column in percent: ``signed`` (a change, shown
#: ``+1.90 %``) or ``unsigned`` (a level, shown ``35.85 %``).
PERCENT_KEY = b"marketpulse.percent"


def mark_percent(
    table: pa.Table, signed: Sequence[str] = (), unsigned: Sequence[str] = ()
) -> pa.Table:
    """Mark ``table``'s columns in percent, so the text table shows them as percentages.

    Columns named but absent are left alone; CSV, JSON and Parquet keep the numbers.
    """
    fields = []
    for field in table.schema:
        kind = (
            b"signed" if field.name in signed else b"unsigned" if field.name in unsigned else None
        )
        fields.append(field if kind is None else field.with_metadata({PERCENT_KEY: kind}))
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def format_table(
    table: pa.Table, fmt: str = "table", out: str | Path | TextIO | None = None
) -> None:
    r"""Write a query result as an aligned text table, CSV, JSON or Parquet.

    Timestamps are ISO 8601 text in UTC (``2013-10-07T13:31:00Z``, a fraction
    of a second only when it is not zero: :func:`iso_times`), dates
    ``YYYY-MM-DD``. JSON is an array of objects: numbers stay numbers (NaN and
    infinities become null), maps and structs JSON objects, lists arrays,
    bytes base64. CSV and JSON keep every digit, as Parquet does; the text
    table is for people: floats to 7 significant digits
    (:func:`~marketpulse.human.human_number`), columns marked by :func:`mark_percent`
    as percentages with two decimals (``+1.90 %`` for a change), integers with
    thousands separators, byte counts (columns ``bytes`` or ``*_bytes``) as ``12.3 MB``, one
    line per row
    however wide. In the text formats, nested values are JSON text and bytes
    are shown as UTF-8 with ``\xNN`` for other bytes; a null is ``null`` in
    the table and an empty field in CSV.

    Args:
        table: the result to write.
        fmt: one of :data:`FORMATS`.
        out: a file path, or a text stream (standard output if omitted);
            Parquet needs a path.

    Raises:
        OutputError: unknown format, or Parquet without a path.
    """
    if fmt not in FORMATS:
        raise OutputError(f"unknown output format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "parquet":
        if not isinstance(out, str | Path):
            raise OutputError("parquet output needs a file path")
        pq.write_table(table, out, compression=PARQUET_COMPRESSION)
        return
    if isinstance(out, str | Path):
        with open(out, "w", encoding="utf-8", newline="") as stream:
            _WRITERS[fmt](table, stream)
    else:
        _WRITERS[fmt](table, sys.stdout if out is None else out)


def _rows(table: pa.Table, human: bool = False) -> Iterator[list[Any]]:
    """Rows as Python values: times as ISO 8601 text, maps as dicts (sizes in words if human)."""
    for batch in table.to_batches():
        columns = [
            _column(column, field, human)
            for column, field in zip(batch.columns, batch.schema, strict=True)
        ]
        yield from (list(row) for row in zip(*columns, strict=True))


def _column(array: pa.Array, field: pa.Field, human: bool) -> list[Any]:
    kind = field.type
    if pa.types.is_timestamp(kind):
        return iso_times(array)
    if human and pa.types.is_integer(kind) and _is_byte_count(field.name):
        return [None if v is None else human_bytes(v) for v in array.to_pylist()]
    percent = (field.metadata or {}).get(PERCENT_KEY)
    if human and percent is not None and pa.types.is_floating(kind):
        sign = "+" if percent == b"signed" else ""
        return [None if v is None else f"{v:{sign}.2f} %" for v in array.to_pylist()]
    if human and pa.types.is_floating(kind):
        return [None if v is None else human_number(v) for v in array.to_pylist()]
    if human and (pa.types.is_integer(kind) or (pa.types.is_decimal(kind) and kind.scale == 0)):
        # DuckDB's sums of integers are HUGEINT: Arrow decimals of scale 0
        return [None if v is None else f"{int(v):,}" for v in array.to_pylist()]
    return array.to_pylist(maps_as_pydicts="lossy")


_FRACTION_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}


def iso_times(array: pa.Array | pa.ChunkedArray) -> list[str | None]:
    """ISO 8601 text of a timestamp array: ``2013-10-07T13:31:00Z``.

    Times with a time zone are written in UTC with ``Z``; times without one as
    they are, without ``Z``. The fraction of a second is written only when it
    is not zero, in as many groups of three digits as it needs
    (``...:00.5`` is ``...:00.500Z``; nanoseconds are kept).
    """
    unit = array.type.unit
    digits = _FRACTION_DIGITS[unit]
    per_second = 10**digits
    zone = "Z" if array.type.tz is not None else ""
    values = np.asarray(array.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False))
    seconds, fraction = np.divmod(values, per_second)
    whole = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").tolist()
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    out: list[str | None] = [w + zone if ok else None for w, ok in zip(whole, valid, strict=True)]
    for i in np.flatnonzero(fraction * valid):
        text = f"{int(fraction[i]):0{digits}d}"
        while text.endswith("000"):
            text = text[:-3]
        out[i] = f"{whole[i]}.{text}{zone}"
    return out


def _is_byte_count(name: str) -> bool:
    return name == "bytes" or name.endswith("_bytes")


def _text(value: Any, null: str) -> str:
    if value is None:
        return null
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    if isinstance(value, int | float | Decimal | timedelta):
        return str(value)
    return _json.encode(value).decode()  # lists, structs and maps as JSON text


def fit_columns(table: pa.Table, width: int, priority: Sequence[str]) -> tuple[pa.Table, list[str]]:
    """The columns of ``table`` whose text table fits ``width`` characters, and those left out.

    Columns are taken in the order of ``priority`` (then the others) while the
    table's lines fit, and kept in ``table``'s order; the first one always is.
    """
    header = table.column_names
    widths = dict(zip(header, _widths(table, _cells(table)), strict=True))
    ranked = [n for n in priority if n in widths] + [n for n in header if n not in priority]
    kept: set[str] = set()
    used = -2  # two spaces between columns
    for name in ranked:
        if not kept or used + 2 + widths[name] <= width:
            kept.add(name)
            used += 2 + widths[name]
    return table.select([n for n in header if n in kept]), [n for n in header if n not in kept]


def _cells(table: pa.Table) -> list[list[str]]:
    return [[_text(v, "null") for v in row] for row in _rows(table, human=True)]


def _widths(table: pa.Table, cells: list[list[str]]) -> list[int]:
    return [
        max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(table.column_names)
    ]


def _write_text_table(table: pa.Table, out: TextIO) -> None:
    """An aligned table for people, never wrapped (one line per row however wide)."""
    header = table.column_names
    cells = _cells(table)
    widths = _widths(table, cells)
    right = [
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
        for t in table.schema.types
    ]

    def line(values: list[str]) -> str:
        parts = (
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        )
        return "  ".join(parts).rstrip() + "\n"

    out.write(line(header))
    out.write(line(["-" * w for w in widths]))
    for row in cells:
        out.write(line(row))


def _write_csv(table: pa.Table, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in _rows(table):
        writer.writerow([_text(v, "") for v in row])


def _json_default(value: Any) -> Any:
    return str(value)


_json = msgspec.json.Encoder(enc_hook=_json_default, decimal_format="number")


def _write_json(table: pa.Table, out: TextIO) -> None:
    names = table.column_names
    buffer = io.StringIO()
    buffer.write("[")
    for n, row in enumerate(_rows(table)):
        buffer.write(",\n" if n else "\n")
        buffer.write(_json.encode(dict(zip(names, row, strict=True))).decode())
        if buffer.tell() > 1 << 20:
            out.write(buffer.getvalue())
            buffer = io.StringIO()
    buffer.write("\n]\n" if table.num_rows else "]\n")
    out.write(buffer.getvalue())


_WRITERS = {"table": _write_text_table, "csv": _write_csv, "json": _write_json}
