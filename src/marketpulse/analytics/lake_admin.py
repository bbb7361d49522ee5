"""Lake maintenance: listing, compaction of small files, DDL for Athena and Glue.

Compaction rewrites the files of one partition whose period is over (before
today, UTC, unless told otherwise: a day, or for daily data a decade) as one
file per source partition of the
bus (named after the offset range it covers, so the Kafka sink still
recognises rows it wrote), one per replayed input (named after the input and
the lines it covers, so a rerun of the replay still replaces them) plus one
for the other rows. It also deletes the hidden files of killed writers. On a
local lake the new partition is built beside the table and swapped in with
one atomic ``renameat2(RENAME_EXCHANGE)``: a reader lists either the old
files or the new ones, never both, never neither (a query that listed the old
files just before the swap and opens one after it fails; :class:`~.sql.Lake`
runs such a query again). On S3, where no such swap
exists, the new files are uploaded first and the old ones deleted after, so a
reader in between may see rows twice; compact S3 lakes when nobody reads.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.models import BAR_QUOTE_COLUMNS
from marketpulse.sinks.exceptions import SinkError
from marketpulse.sinks.lake_format import (
    LAKE_SCHEMAS,
    PARQUET_COMPRESSION,
    SORT_KEYS,
    stable_order,
)
from marketpulse.sinks.lake_layout import PERIOD, partition_columns, partitions
from marketpulse.sinks.lake_offsets import SOURCE_NAME
from marketpulse.sinks.lake_segments import FILE_NAME
from marketpulse.sinks.lake_store import LocalStore, Staged, Store, exchange_directories

__all__ = [
    "ATHENA_DDL_RESERVED",
    "CompactionResult",
    "bars_with_indicators_select",
    "bars_with_indicators_view",
    "compact",
    "external_table_ddl",
    "lake_timeframes",
    "list_lake",
]

_HIVE_TYPES = {pa.string(): "string", pa.binary(): "binary", pa.int32(): "int",
               pa.int64(): "bigint", pa.float64(): "double", pa.date32(): "date"}  # fmt: skip
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lake-admin")  # I/O-bound reads


def _parquet_names(store: Store, directory: str) -> dict[str, int]:
    return {n: size for n, size in store.sizes(directory).items() if not n.startswith(".")}


def _row_count(store: Store, path: str) -> int:
    with store.filesystem.open_input_file(store.path(path)) as file:
        return pq.ParquetFile(file).metadata.num_rows


def partition_sizes(store: Store, table: str, dataset: str | None = None) -> list[dict]:
    """Each partition of ``table`` (of one dataset if given): its files, rows and bytes."""
    found = partitions(store, table, dataset)
    listed = list(_POOL.map(lambda p: _parquet_names(store, p.directory), found))
    paths = [f"{p.directory}/{f}" for p, names in zip(found, listed, strict=True)
             for f in names]  # fmt: skip
    counts = dict(zip(paths, _POOL.map(lambda f: _row_count(store, f), paths), strict=True))
    return [
        {"table": table, "dataset": p.dataset, "timeframe": p.timeframe, "period": p.period,
         "files": len(files), "rows": sum(counts[f"{p.directory}/{f}"] for f in files),
         "bytes": sum(files.values())}
        for p, files in zip(found, listed, strict=True)
    ]  # fmt: skip


_PARTITION_LISTING = pa.schema(
    [("table", pa.string()), ("dataset", pa.string()), ("timeframe", pa.string()),
     ("period", pa.date32()), ("files", pa.int64()), ("rows", pa.int64()),
     ("bytes", pa.int64())]
)  # fmt: skip
_TABLE_LISTING = pa.schema(
    [("table", pa.string()), ("dataset", pa.string()), ("partitions", pa.int64()),
     ("first_period", pa.date32()), ("last_period", pa.date32()), ("files", pa.int64()),
     ("rows", pa.int64()), ("bytes", pa.int64())]
)  # fmt: skip


def list_lake(store: Store, table: str | None = None) -> pa.Table:
    """Per table and dataset (or per partition of ``table``): partitions, files, rows, bytes.

    A table without files has one row, of no dataset.
    """
    tables = [table] if table else list(LAKE_SCHEMAS)
    for name in tables:
        if name not in LAKE_SCHEMAS:
            raise AnalyticsError(f"unknown table {name!r} (known: {', '.join(LAKE_SCHEMAS)})")
    if table:
        return pa.Table.from_pylist(partition_sizes(store, table), schema=_PARTITION_LISTING)
    rows = []
    for name in tables:
        by_dataset: dict[str | None, list[dict]] = {}
        for part in partition_sizes(store, name):
            by_dataset.setdefault(part["dataset"], []).append(part)
        for dataset, parts in sorted(by_dataset.items()) or [(None, [])]:
            rows.append({
                "table": name, "dataset": dataset, "partitions": len(parts),
                "first_period": min((p["period"] for p in parts), default=None),
                "last_period": max((p["period"] for p in parts), default=None),
                "files": sum(p["files"] for p in parts),
                "rows": sum(p["rows"] for p in parts),
                "bytes": sum(p["bytes"] for p in parts),
            })  # fmt: skip
    return pa.Table.from_pylist(rows, schema=_TABLE_LISTING)


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """What a compaction did: partitions rewritten, files before and after, rows moved."""

    partitions: int = 0
    files_before: int = 0
    files_after: int = 0
    rows: int = 0


def compact(
    store: Store, tables: list[str] | None = None, before: date | None = None, min_files: int = 2
) -> CompactionResult:
    """Rewrite partitions that have ``min_files`` and whose period ends by ``before``.

    ``before`` is today (UTC) by default: the days before it, and the decades
    of daily data that ended before it, are closed: no writer adds to them.

    Raises:
        AnalyticsError: a table is unknown, or the atomic swap is not available.
    """
    before = before or datetime.now(UTC).date()
    result = CompactionResult()
    for table in tables or []:
        if table not in LAKE_SCHEMAS:
            raise AnalyticsError(f"unknown table {table!r} (known: {', '.join(LAKE_SCHEMAS)})")
    store.remove_stale_temporaries()
    for table in tables or list(LAKE_SCHEMAS):
        for part in partitions(store, table):
            directory = part.directory
            files = sorted(_parquet_names(store, directory))
            if part.end > before or len(files) < min_files:
                continue
            groups = _groups(files)
            if all(len(names) == 1 for names in groups.values()):
                continue  # one file per source already
            rows = _compact_partition(store, table, directory, groups)
            result = CompactionResult(
                result.partitions + 1, result.files_before + len(files),
                result.files_after + len(groups), result.rows + rows,
            )  # fmt: skip
    return result


def _groups(files: list[str]) -> dict[str, list[str]]:
    """Files by the name of the file that replaces them."""
    by_source: dict[int | str | None, list[str]] = {}
    for name in files:
        match = SOURCE_NAME.fullmatch(name)
        replayed = FILE_NAME.fullmatch(name)
        source = int(match.group(1)) if match else replayed.group(1) if replayed else None
        by_source.setdefault(source, []).append(name)
    groups = {}
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for source, names in by_source.items():
        if source is None:
            target = f"part-compact-{stamp}-{os.getpid()}.parquet"
        elif isinstance(source, str):
            ranges = [FILE_NAME.fullmatch(n).groups() for n in names]  # type: ignore[union-attr]
            first = min(int(r[1]) for r in ranges)
            last = max(int(r[2]) for r in ranges)
            target = f"part-f{source}-{first:012d}-{last:012d}.parquet"
        else:
            ranges = [SOURCE_NAME.fullmatch(n).groups() for n in names]  # type: ignore[union-attr]
            first = min(int(r[1]) for r in ranges)
            last = max(int(r[2]) for r in ranges)
            target = f"part-p{source:03d}-{first:012d}-{last:012d}.parquet"
        groups[target] = names
    return groups


def _compact_partition(
    store: Store, table: str, directory: str, groups: dict[str, list[str]]
) -> int:
    merged = {}
    for target, names in groups.items():
        parts = []
        for name in names:
            with store.filesystem.open_input_file(store.path(f"{directory}/{name}")) as file:
                # indicators files hold the columns their run declared
                schema = None if table == "indicators" else LAKE_SCHEMAS[table]
                parts.append(pq.read_table(file, schema=schema))
        rows = pa.concat_tables(parts, promote_options="default")
        if SORT_KEYS[table]:
            rows = rows.take(stable_order(rows, SORT_KEYS[table]))
        merged[target] = rows
    if isinstance(store, LocalStore):
        _swap_local(store, directory, merged)
    else:
        staged = [
            store.stage(directory, t, rows, PARQUET_COMPRESSION) for t, rows in merged.items()
        ]
        for file in staged:
            store.publish(file)
        old = {n for names in groups.values() for n in names} - set(merged)
        for name in old:
            store.remove(directory, name)
    return sum(t.num_rows for t in merged.values())


def _swap_local(store: LocalStore, directory: str, merged: dict[str, pa.Table]) -> None:
    """Build the new partition beside the lake, then exchange it with the old one atomically."""
    live = store.root / directory
    work = store.root / ".compact" / directory
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    scratch = LocalStore(store.root / ".compact")
    staged: list[Staged] = [scratch.stage(directory, t, rows, PARQUET_COMPRESSION)
                            for t, rows in merged.items()]  # fmt: skip
    scratch.make_durable(staged)
    for file in staged:
        scratch.publish(file)
    scratch.finish(staged)
    _exchange(work, live)
    shutil.rmtree(work)  # now the old files


def _exchange(a: Path, b: Path) -> None:
    try:
        exchange_directories(a, b)
    except SinkError as exc:
        raise AnalyticsError(f"lake compact: {exc}") from None


def external_table_ddl(
    location: str,
    database: str = "marketpulse",
    timeframes: Sequence[str] = ("1d",),
    declared: Sequence[str] = (),
) -> str:
    """``CREATE EXTERNAL TABLE`` statements (Athena, Glue, Hive) for every lake table.

    Times are ``timestamp`` columns. No name needs quoting in queries; in the
    DDL, ``exchange`` (of trades) is in backticks, as Athena's DDL reserves it
    (:data:`ATHENA_DDL_RESERVED`). The partition columns are those of the
    layout: ``dataset``, ``timeframe`` (bars, indicators, alerts) and
    ``period`` (a ``date``). Partitions are found
    by partition projection, so new ones need no ``MSCK REPAIR TABLE``:
    ``dataset`` is injected (a query names its dataset, ``WHERE dataset =
    'NAME'``, as one never mixes datasets), ``timeframe`` one of
    ``timeframes``, ``period`` any day from 1900. The last statement is the
    view ``bars_with_indicators``: bars joined with their indicators on their
    shared key.

    ``declared`` names the indicator columns beyond the default ones (declared
    indicators, found in the lake's files): ``double`` columns of
    ``indicators``, and of the view. Files without one read it as null.

    Raises:
        AnalyticsError: ``database``, a timeframe or a declared column is not a plain name.
    """
    if not _NAME.fullmatch(database):
        raise AnalyticsError(f"--database: expected a plain name ([A-Za-z_][A-Za-z0-9_]*), "
                             f"got {database!r}")  # fmt: skip
    for timeframe in timeframes:
        if not re.fullmatch(r"[0-9]+[A-Za-z]+", timeframe):
            raise AnalyticsError(f"not a timeframe: {timeframe!r}")
    defaults = LAKE_SCHEMAS["indicators"]
    extra = [name for name in dict.fromkeys(declared) if name not in defaults.names]
    for name in extra:
        if not _NAME.fullmatch(name):
            raise AnalyticsError(f"not an indicator column name: {name!r}")
    location = location.rstrip("/")
    statements = []
    for table, schema in LAKE_SCHEMAS.items():
        if table == "indicators" and extra:
            schema = pa.schema([*schema, *(pa.field(name, pa.float64()) for name in extra)])
        partitions = partition_columns(table)
        columns = ",\n".join(
            f"  {_ddl_name(f.name)} {_hive_type(f.type)}"
            for f in schema
            if f.name not in partitions
        )
        where = f"{location}/{table}"
        template = "/".join(f"{name}=${{{name}}}" for name in partitions)
        projections = {
            "dataset": ["'projection.dataset.type' = 'injected'"],
            "timeframe": [
                "'projection.timeframe.type' = 'enum'",
                f"'projection.timeframe.values' = '{','.join(sorted(set(timeframes)))}'",
            ],
            "period": [
                "'projection.period.type' = 'date'",
                "'projection.period.format' = 'yyyy-MM-dd'",
                "'projection.period.range' = '1900-01-01,NOW'",
                "'projection.period.interval' = '1'",
                "'projection.period.interval.unit' = 'DAYS'",
            ],
        }
        properties = ",\n".join(
            "  " + line
            for line in [
                "'projection.enabled' = 'true'",
                *(p for name in partitions for p in projections[name]),
                f"'storage.location.template' = '{where}/{template}/'",
            ]
        )
        partitioned = ", ".join(f"{name} {_PARTITION_TYPES[name]}" for name in partitions)
        statements.append(
            f"CREATE EXTERNAL TABLE IF NOT EXISTS {database}.{table} (\n{columns}\n)\n"
            f"PARTITIONED BY ({partitioned})\n"
            "STORED AS PARQUET\n"
            f"LOCATION '{where}/'\n"
            f"TBLPROPERTIES (\n{properties}\n);"
        )
    statements.append(bars_with_indicators_view(database, [*defaults.names, *extra]))
    return "\n\n".join(statements) + "\n"


def lake_timeframes(store: Store) -> set[str]:
    """The timeframes of the lake's bars, indicators and alerts (from their paths)."""
    found = set()
    for table in ("bars", "indicators", "alerts"):
        for dataset in store.directories(table):
            if dataset.startswith("dataset="):
                found.update(
                    name.removeprefix("timeframe=")
                    for name in store.directories(f"{table}/{dataset}")
                    if name.startswith("timeframe=")
                )
    return found


#: Partition columns of the layout, in path order, with their Athena/Hive types.
_PARTITION_TYPES = {"dataset": "string", "timeframe": "string", "period": "date"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Words Athena's DDL (Hive) reserves, from its documentation ("Reserved keywords
#: to escape in DDL statements"). Of the lake's columns only ``trades.exchange``
#: is one: the DDL writes it in backticks; queries (Trino) need no quotes for it.
ATHENA_DDL_RESERVED = frozenset(
    """ALL ALTER AND ARRAY AS AUTHORIZATION BETWEEN BIGINT BINARY BOOLEAN BOTH BY CASE CASHE
    CAST CHAR COLUMN CONF CONSTRAINT COMMIT CREATE CROSS CUBE CURRENT CURRENT_DATE
    CURRENT_TIMESTAMP CURSOR DATABASE DATE DAYOFWEEK DECIMAL DELETE DESCRIBE DISTINCT DIV
    DOUBLE DROP ELSE END EXCHANGE EXISTS EXTENDED EXTERNAL EXTRACT FALSE FETCH FLOAT FLOOR
    FOLLOWING FOR FOREIGN FROM FULL FUNCTION GRANT GROUP GROUPING HAVING IF IMPORT IN INNER
    INSERT INT INTEGER INTERSECT INTERVAL INTO IS JOIN LATERAL LEFT LESS LIKE LOCAL MACRO MAP
    MORE NONE NOT NULL NUMERIC OF ON ONLY OR ORDER OUT OUTER OVER PARTIALSCAN PARTITION PERCENT
    PRECEDING PRECISION PRESERVE PRIMARY PROCEDURE RANGE READS REDUCE REGEXP REFERENCES REVOKE
    RIGHT RLIKE ROLLBACK ROLLUP ROW ROWS SELECT SET SMALLINT START TABLE TABLESAMPLE THEN TIME
    TIMESTAMP TO TRANSFORM TRIGGER TRUE TRUNCATE UNBOUNDED UNION UNIQUEJOIN UPDATE USER USING
    UTC_TIMESTAMP VALUES VARCHAR VIEWS WHEN WHERE WINDOW WITH""".lower().split()
)


def _ddl_name(name: str) -> str:
    return f"`{name}`" if name in ATHENA_DDL_RESERVED else name


_JOIN_KEY = ("dataset", "symbol", "timeframe", "bar_start")


def _hive_type(kind: pa.DataType) -> str:
    if pa.types.is_timestamp(kind):
        return "timestamp"
    if pa.types.is_map(kind):
        return f"map<{_hive_type(kind.key_type)},{_hive_type(kind.item_type)}>"
    if pa.types.is_dictionary(kind):
        return _hive_type(kind.value_type)
    return _HIVE_TYPES[kind]


def bars_with_indicators_select(prefix: str = "", indicators: Sequence[str] | None = None) -> str:
    """The query of the view ``bars_with_indicators`` (DuckDB, Athena and Trino alike).

    Each bar with the indicators of the same bar: bars joined with indicators
    on their shared key (dataset, symbol, timeframe, bar_start), which is exact.
    The indicators' session VWAP is ``session_vwap`` beside the bar's ``vwap``.

    Args:
        prefix: put before the table names, such as ``marketpulse.``.
        indicators: the indicators table's columns (its declared indicators
            included); default: the table's schema (the 13 default columns).
    """
    # the bar's own columns; its quote columns (spread_twa, ...) are in bars alone,
    # as in PostgreSQL's view (whose bars table gains them with the first quoted bars)
    bars = [n for n in LAKE_SCHEMAS["bars"].names if n not in BAR_QUOTE_COLUMNS]
    names = LAKE_SCHEMAS["indicators"].names if indicators is None else list(indicators)
    columns = [*_JOIN_KEY]
    columns += [f"b.{name}" for name in bars if name not in _JOIN_KEY]
    for name in names:
        if name == PERIOD:
            continue
        if name == "vwap":
            columns.append("i.vwap AS session_vwap")
        elif name not in _JOIN_KEY and name not in bars:
            columns.append(f"i.{name}")
    columns.append("b.period")
    select = ",\n  ".join(columns)
    return (
        f"SELECT\n  {select}\n"
        f"FROM {prefix}bars AS b\n"
        f"JOIN {prefix}indicators AS i USING ({', '.join(_JOIN_KEY)})"
    )


def bars_with_indicators_view(database: str, indicators: Sequence[str] | None = None) -> str:
    """``CREATE OR REPLACE VIEW`` of bars with their indicators (Athena/Trino).

    ``indicators``: the indicators table's columns (default: the 13 default ones).
    """
    return (
        f"CREATE OR REPLACE VIEW {database}.bars_with_indicators AS\n"
        f"{bars_with_indicators_select(database + '.', indicators)};"
    )
