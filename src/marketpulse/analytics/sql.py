"""SQL over the Parquet lake with DuckDB.

Each table of the lake (``trades``, ``quotes``, ``bars``, ``indicators``,
``alerts``, ``dlq``) is a view over its files, read with Hive partitioning: it
has the table's columns, ``dataset`` and ``timeframe`` (VARCHAR) and
``period`` (DATE, the first day of the partition's period) taken from the
path, so ``WHERE dataset = ...`` or ``WHERE period = ...`` skips other
partitions' files. Times are ``TIMESTAMP WITH TIME ZONE`` (the connection
works in UTC). ``bars_with_indicators`` joins every bar with its indicators
on their shared key. A table without files is an empty view with the same
columns. A lake opened for one dataset (``dataset=``) has every view scoped to
that dataset's rows. Files appear atomically (see :mod:`marketpulse.sinks.lake`), so the
lake can be queried while a sink writes to it. Results are written for people
and tools by :mod:`marketpulse.analytics.results`.

Example::

    from marketpulse.analytics import query

    counts = query("data/lake", "SELECT symbol, count(*) AS n FROM trades GROUP BY symbol")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from marketpulse.analytics.exceptions import AnalyticsError, SQLError
from marketpulse.analytics.lake_admin import bars_with_indicators_select
from marketpulse.config import S3Settings
from marketpulse.sinks.lake_format import LAKE_SCHEMAS
from marketpulse.sinks.lake_layout import PERIOD, ROW_SCHEMAS, partition_columns
from marketpulse.sinks.lake_location import LakeAccessError, LakeLocation
from marketpulse.sinks.lake_store import Store, open_store

if TYPE_CHECKING:
    import pyarrow.dataset as ds

__all__ = ["Lake", "duckdb_type", "open_lake", "query"]

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
    dataset: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Return a DuckDB connection with a view per lake table.

    Views of tables that have no files yet stay empty on this connection until
    :func:`open_lake` is called again with it (:class:`Lake` does this itself).

    Args:
        root: the lake's location, or its root directory or ``s3://bucket/prefix``.
        connection: a connection to add the views to; a new in-memory one if omitted.
        s3: endpoint and credentials of an S3 lake named by text.
        dataset: scope every view to this dataset's rows; all datasets if omitted.

    Raises:
        AnalyticsError: ``root`` is not a directory.
        OldLayoutError: the lake is of an earlier MarketPulse's layout (convert it first).
    """
    con = _utc_connection() if connection is None else connection
    _create_views(con, open_store(root, s3), dataset)
    return con


class Lake:
    """A lake opened for queries; a context manager that closes its connection.

    The connection is made on first use. Tables whose files appear after that
    are picked up by the next :meth:`query` (on S3, where the objects are
    listed ahead of the query, by the first one :data:`S3_RELIST_S` later).

    Args:
        root: the lake's location, or its root directory or ``s3://bucket/prefix``.
        s3: endpoint and credentials of an S3 lake named by text.
        dataset: scope every view to this dataset's rows; all datasets if omitted.

    Raises:
        OldLayoutError: the lake is of an earlier MarketPulse's layout (convert it first).
    """

    def __init__(
        self,
        root: str | Path | LakeLocation,
        s3: S3Settings | None = None,
        dataset: str | None = None,
    ) -> None:
        self.store = open_store(root, s3)
        self.dataset = dataset
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
                self._empty = _create_views(con, self.store, self.dataset)
            except duckdb.Error as exc:  # a damaged file: DuckDB's first line names it
                con.close()
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise SQLError(f"cannot read the lake at {self.store.base}: {first}") from exc
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
            self._empty, self._listed = _create_views(con, self.store, self.dataset), monotonic()
        for table in [t for t in self._empty if _has_files(self.store, t)]:
            _create_view(con, self.store, table, self.dataset)
            self._empty.discard(table)
        for attempt in range(_ATTEMPTS):
            try:
                relation = con.sql(sql, params=params)
                return pa.table({}) if relation is None else relation.to_arrow_table()
            except duckdb.IOException as exc:
                # a file listed by the query was replaced by a compaction (or a sink's
                # rewrite) before it was opened: the listing of a new attempt is current;
                # a table left without files (its last dataset dropped) gets an empty view
                gone = _files_gone(exc)
                if gone is None or attempt == _ATTEMPTS - 1:
                    raise SQLError(_one_line(exc)) from exc
                if gone == "all":
                    self._empty, self._listed = (
                        _create_views(con, self.store, self.dataset),
                        monotonic(),
                    )
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
    dataset: str | None = None,
) -> pa.Table:
    """Run one query over the lake at ``root`` (a location, directory or ``s3://...``).

    With ``dataset``, every table the query reads holds that dataset's rows alone.

    Raises:
        AnalyticsError: ``root`` is not a directory.
        SQLError: DuckDB rejected the query.
    """
    with Lake(root, s3, dataset) as lake:
        return lake.query(sql, params)


def _one_line(exc: Exception) -> str:
    """DuckDB's message on one line (its hints and the query excerpt come on lines of their own)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def _utc_connection() -> duckdb.DuckDBPyConnection:
    """A new connection working in UTC: ``CAST(bar_start AS DATE)`` is the UTC date anywhere."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _create_views(
    con: duckdb.DuckDBPyConnection, store: Store, dataset: str | None = None
) -> set[str]:
    """Create the view of every table and the joined views; return the tables without files."""
    if not store.location.is_s3 and not store.location.exists():
        raise AnalyticsError(f"no lake at {store.base}: not a directory")
    empty = {table for table in ROW_SCHEMAS if not _create_view(con, store, table, dataset)}
    # the indicators view's columns: the 13 default ones and those declared by any run
    # (from the catalog: a DESCRIBE would bind the view, and open its files, again)
    names = [row[0] for row in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'indicators'"
        " ORDER BY column_index").fetchall()]  # fmt: skip
    select = bars_with_indicators_select(indicators=names)
    con.execute(f"CREATE OR REPLACE VIEW bars_with_indicators AS {select}")
    return empty


def duckdb_type(kind: pa.DataType) -> str:
    """The type ``marketpulse sql`` (DuckDB) gives a lake column of Arrow type ``kind``."""
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ"
    if pa.types.is_map(kind):
        return f"MAP({duckdb_type(kind.key_type)}, {duckdb_type(kind.item_type)})"
    if pa.types.is_date32(kind):
        return "DATE"
    return _SQL_TYPES[kind]


def _create_view(
    con: duckdb.DuckDBPyConnection, store: Store, table: str, dataset: str | None = None
) -> bool:
    """Create (or replace) the view of ``table``; return whether it has files.

    With ``dataset``, the view holds that dataset's rows alone (a filter on the
    partition column: DuckDB opens that dataset's files alone).
    """
    # The typed empty side first fixes the columns and their order even for a
    # table without files, or files written before a column was added.
    schema = view_schema(table)
    columns = [f"CAST(NULL AS {duckdb_type(f.type)}) AS {_ident(f.name)}" for f in schema]
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
            f"{_literal(f.name)}: {_literal(duckdb_type(f.type))}"
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
    if dataset is not None:
        sql = f"SELECT * FROM ({sql}) WHERE dataset = {_literal(dataset)}"
    for attempt in range(_ATTEMPTS):
        try:
            con.execute(f"CREATE OR REPLACE VIEW {_ident(table)} AS {sql}")
            return found
        except duckdb.IOException as exc:
            gone = _files_gone(exc)
            if gone == "all":
                # the last files went between the listing and the view (a dataset dropped)
                con.execute(f"CREATE OR REPLACE VIEW {_ident(table)} AS {empty}")
                return False
            if gone is None or attempt == _ATTEMPTS - 1:
                raise
            # a file listed by the view was gone when its schema was read (a dataset
            # dropped, a partition compacted): the next attempt lists again
    raise AssertionError("unreachable")


def _files_gone(exc: duckdb.IOException) -> Literal["all", "some"] | None:
    """Whether DuckDB failed because files went after it listed them.

    ``"all"``: none matches the glob any more; ``"some"``: one it listed could
    not be opened; ``None``: another error.
    """
    text = str(exc)
    if "No files found that match" in text:
        return "all"
    return "some" if "No such file" in text else None


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
