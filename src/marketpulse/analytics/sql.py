"""SQL over the Parquet lake with DuckDB, and writers for query results.

Each table of the lake (``trades``, ``quotes``, ``bars``, ``indicators``,
``alerts``, ``dlq``) is a view over its files, read with Hive partitioning: it
has the table's columns, ``dataset`` and ``timeframe`` (VARCHAR) and
``period`` (DATE, the first day of the partition's period) taken from the
path, so ``WHERE dataset = ...`` or ``WHERE period = ...`` skips other
partitions' files. Times are ``TIMESTAMP WITH TIME ZONE`` (the connection
works in UTC). ``bars_with_indicators`` joins every bar with its indicators
on their shared key. A table without files is an empty view with the same
columns. Files appear atomically (see :mod:`marketpulse.sinks.lake`), so the
lake can be queried while a sink writes to it.

Example::

    from marketpulse.analytics import query

    counts = query("data/lake", "SELECT symbol, count(*) AS n FROM trades GROUP BY symbol")
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TextIO

import duckdb
import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from marketpulse.analytics.exceptions import AnalyticsError, OutputError, SQLError
from marketpulse.analytics.lake_admin import bars_with_indicators_select
from marketpulse.config import S3Settings
from marketpulse.human import human_bytes, human_number
from marketpulse.sinks.lake import LAKE_SCHEMAS, PARQUET_COMPRESSION
from marketpulse.sinks.lake_layout import PERIOD, ROW_SCHEMAS, partition_columns
from marketpulse.sinks.lake_location import LakeAccessError, LakeLocation
from marketpulse.sinks.lake_store import Store, open_store

if TYPE_CHECKING:
    import pyarrow.dataset as ds

__all__ = ["FORMATS", "Lake", "format_table", "open_lake", "query"]

#: The formats :func:`format_table` writes.
FORMATS: tuple[str, ...] = ("table", "csv", "json", "parquet")

#: Runs of a query whose files were replaced between listing and opening them.
_ATTEMPTS = 5
#: An S3 lake's views hold the files listed when they were made: a query
#: lists the objects again when the listing is older than this (seconds).
S3_RELIST_S = 2.0

_SQL_TYPES = {
    pa.string(): "VARCHAR",
    pa.binary(): "BLOB",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
}


def open_lake(
    root: str | Path | LakeLocation,
    connection: duckdb.DuckDBPyConnection | None = None,
    s3: S3Settings | None = None,
) -> duckdb.DuckDBPyConnection:
    """Return a DuckDB connection with a view per lake table.

    Views of tables that have no files yet stay empty on this connection until
    :func:`open_lake` is called again with it (:class:`Lake` does this itself).

    Args:
        root: the lake's location, or its root directory or ``s3://bucket/prefix``.
        connection: a connection to add the views to; a new in-memory one if omitted.
        s3: endpoint and credentials of an S3 lake named by text.

    Raises:
        AnalyticsError: ``root`` is not a directory.
        OldLayoutError: the lake is of an earlier MarketPulse's layout (convert it first).
    """
    con = _utc_connection() if connection is None else connection
    _create_views(con, open_store(root, s3))
    return con


class Lake:
    """A lake opened for queries; a context manager that closes its connection.

    The connection is made on first use. Tables whose files appear after that
    are picked up by the next :meth:`query` (on S3, where the objects are
    listed ahead of the query, by the first one :data:`S3_RELIST_S` later).

    Args:
        root: the lake's location, or its root directory or ``s3://bucket/prefix``.
        s3: endpoint and credentials of an S3 lake named by text.

    Raises:
        OldLayoutError: the lake is of an earlier MarketPulse's layout (convert it first).
    """

    def __init__(self, root: str | Path | LakeLocation, s3: S3Settings | None = None) -> None:
        self.store = open_store(root, s3)
        self.location = self.store.location
        self._con: duckdb.DuckDBPyConnection | None = None
        self._empty: set[str] = set()
        self._listed = 0.0

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection holding the views (opened on first use)."""
        if self._con is None:
            con = _utc_connection()
            try:
                self._empty = _create_views(con, self.store)
            except BaseException:
                con.close()
                raise
            self._con, self._listed = con, monotonic()
        return self._con

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run ``sql`` (with ``$1``/``?`` parameters from ``params``) and return its result.

        Raises:
            SQLError: DuckDB rejected the query; the message is DuckDB's.
        """
        con = self.connection
        if self.location.is_s3 and monotonic() - self._listed >= S3_RELIST_S:
            self._empty, self._listed = _create_views(con, self.store), monotonic()
        for table in [t for t in self._empty if _has_files(self.store, t)]:
            _create_view(con, self.store, table)
            self._empty.discard(table)
        for attempt in range(_ATTEMPTS):
            try:
                relation = con.sql(sql, params=params)
                return pa.table({}) if relation is None else relation.to_arrow_table()
            except duckdb.IOException as exc:
                # a file listed by the query was replaced by a compaction (or a sink's
                # rewrite) before it was opened: the listing of a new attempt is current;
                # a table left without files (its last dataset dropped) gets an empty view
                text = str(exc)
                gone = "No files found that match" in text
                if not (gone or "No such file" in text) or attempt == _ATTEMPTS - 1:
                    raise SQLError(_one_line(exc)) from exc
                if gone:
                    self._empty, self._listed = _create_views(con, self.store), monotonic()
            except duckdb.Error as exc:
                raise SQLError(_one_line(exc)) from exc
        raise AssertionError("unreachable")

    def interrupt(self) -> None:
        """Stop the query running on another thread, if any (it fails with an error)."""
        if self._con is not None:
            self._con.interrupt()

    def close(self) -> None:
        """Close the connection; closing twice is allowed."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def query(
    root: str | Path | LakeLocation,
    sql: str,
    params: Sequence[Any] | None = None,
    s3: S3Settings | None = None,
) -> pa.Table:
    """Run one query over the lake at ``root`` (a location, directory or ``s3://...``).

    Raises:
        AnalyticsError: ``root`` is not a directory.
        SQLError: DuckDB rejected the query.
    """
    with Lake(root, s3) as lake:
        return lake.query(sql, params)


def _one_line(exc: Exception) -> str:
    """DuckDB's message on one line (its hints and the query excerpt come on lines of their own)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


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
    (:func:`~marketpulse.human.human_number`), integers with thousands separators, byte counts
    (columns ``bytes`` or ``*_bytes``) as ``12.3 MB``, one line per row
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


def _utc_connection() -> duckdb.DuckDBPyConnection:
    """A new connection working in UTC: ``CAST(bar_start AS DATE)`` is the UTC date anywhere."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _create_views(con: duckdb.DuckDBPyConnection, store: Store) -> set[str]:
    """Create the view of every table and the joined views; return the tables without files."""
    if not store.location.is_s3 and not store.location.exists():
        raise AnalyticsError(f"no lake at {store.base}: not a directory")
    empty = {table for table in ROW_SCHEMAS if not _create_view(con, store, table)}
    # the indicators view's columns: the 13 default ones and those declared by any run
    # (from the catalog: a DESCRIBE would bind the view, and open its files, again)
    names = [row[0] for row in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'indicators'"
        " ORDER BY column_index").fetchall()]  # fmt: skip
    select = bars_with_indicators_select(indicators=names)
    con.execute(f"CREATE OR REPLACE VIEW bars_with_indicators AS {select}")
    return empty


def _sql_type(kind: pa.DataType) -> str:
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ"
    if pa.types.is_map(kind):
        return f"MAP({_sql_type(kind.key_type)}, {_sql_type(kind.item_type)})"
    if pa.types.is_date32(kind):
        return "DATE"
    return _SQL_TYPES[kind]


def _create_view(con: duckdb.DuckDBPyConnection, store: Store, table: str) -> bool:
    """Create (or replace) the view of ``table``; return whether it has files."""
    # The typed empty side first fixes the columns and their order even for a
    # table without files, or files written before a column was added.
    schema = view_schema(table)
    columns = [f"CAST(NULL AS {_sql_type(f.type)}) AS {_ident(f.name)}" for f in schema]
    sql = f"SELECT {', '.join(columns)} WHERE false"
    # times are stored with nanoseconds; DuckDB's functions (time_bucket, ...) take
    # TIMESTAMP WITH TIME ZONE, of microseconds. Cast in the scan's own branch: a
    # filter on them still skips row groups by their statistics (not if cast after)
    times = [f.name for f in schema if pa.types.is_timestamp(f.type)]
    replace = ", ".join(f"CAST({_ident(n)} AS TIMESTAMPTZ) AS {_ident(n)}" for n in times)
    found = _has_files(store, table)
    empty = sql
    if found and not store.location.is_s3:
        glob = _literal(store.location.path(table, _partition_glob(table), "*.parquet"))
        types = ", ".join(
            f"{_literal(f.name)}: {_literal(_sql_type(f.type))}"
            for f in schema
            if f.name in partition_columns(table)
        )
        sql += (
            f" UNION ALL BY NAME SELECT * REPLACE ({replace}) FROM read_parquet({glob},"
            f" hive_partitioning = true, union_by_name = true, hive_types = {{{types}}})"
        )
    elif found:
        # DuckDB's httpfs extension is not bundled (and cannot be fetched offline):
        # pyarrow reads the objects, DuckDB scans the dataset with filters pushed down
        name = f"__lake_{table}"
        con.register(name, _s3_dataset(store, table))
        sql += f" UNION ALL BY NAME SELECT * REPLACE ({replace}) FROM {_ident(name)}"
    for attempt in range(_ATTEMPTS):
        try:
            con.execute(f"CREATE OR REPLACE VIEW {_ident(table)} AS {sql}")
            return found
        except duckdb.IOException as exc:
            text = str(exc)
            if "No files found that match" in text:
                # the last files went between the listing and the view (a dataset dropped)
                con.execute(f"CREATE OR REPLACE VIEW {_ident(table)} AS {empty}")
                return False
            if "No such file" not in text or attempt == _ATTEMPTS - 1:
                raise
            # a file listed by the view was gone when its schema was read (a dataset
            # dropped, a partition compacted): the next attempt lists again
    raise AssertionError("unreachable")


def view_schema(table: str) -> pa.Schema:
    """The columns of a table's view: the table's columns, then ``period`` (from the path)."""
    return ROW_SCHEMAS[table].append(pa.field(PERIOD, pa.date32()))


def _partition_glob(table: str) -> str:
    return "/".join("*" for _ in partition_columns(table))


def _s3_dataset(store: Store, table: str) -> ds.Dataset:
    import pyarrow.dataset as ds  # S3 lakes alone: it loads pandas where pandas is installed

    schema = view_schema(table)
    keys = pa.schema([schema.field(name) for name in partition_columns(table)])
    files = _table_files(store, table)
    columns = LAKE_SCHEMAS[table]
    if table == "indicators":  # each file holds the indicators its run declared
        footers = [pq.read_schema(f, filesystem=store.filesystem) for f in files]
        columns = pa.unify_schemas([columns, *footers])
    return ds.dataset(
        files, filesystem=store.filesystem, format="parquet",
        partitioning=ds.partitioning(keys, flavor="hive"), partition_base_dir=store.path(table),
        schema=_with_keys(columns, keys),
    )  # fmt: skip


def _with_keys(schema: pa.Schema, keys: pa.Schema) -> pa.Schema:
    for key in keys:
        schema = schema.append(key)
    return schema


def _table_files(store: Store, table: str) -> list[str]:
    try:
        return [store.location.path(f) for f in store.location.files(table, ".parquet")]
    except LakeAccessError as exc:
        raise AnalyticsError(str(exc)) from None


def _has_files(store: Store, table: str) -> bool:
    if not store.location.is_s3:  # the first match is enough
        pattern = f"{_partition_glob(table)}/*.parquet"
        for _ in range(_ATTEMPTS):
            try:
                return next((Path(store.base) / table).glob(pattern), None) is not None
            except FileNotFoundError:
                # a directory went while the glob listed it (a dataset dropped, a
                # partition compacted): list again
                continue
        return False  # still changing: an empty view now, looked at again by the next query
    return bool(_table_files(store, table))


#: The query of the ``bars_with_indicators`` view: every bar with the indicators
#: computed on it (an inner join on dataset, symbol, timeframe and bar_start; the
#: indicators' session VWAP is ``session_vwap``), the same as in the Athena DDL.
BARS_WITH_INDICATORS = bars_with_indicators_select()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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


def _write_text_table(table: pa.Table, out: TextIO) -> None:
    """An aligned table for people, never wrapped (one line per row however wide)."""
    header = table.column_names
    cells = [[_text(v, "null") for v in row] for row in _rows(table, human=True)]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(header)]
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
