"""Lake maintenance: listing, compaction of small files, DDL for Athena and Glue.

Compaction rewrites the files of one date partition of a closed date (before
today, UTC, unless told otherwise) as one file per source partition of the
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

import ctypes
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.sinks.lake import (
    LAKE_SCHEMAS,
    PARTITION_COLUMN,
    SORT_KEYS,
    SOURCE_NAME,
    stable_order,
)
from marketpulse.sinks.lake_segments import FILE_NAME
from marketpulse.sinks.lake_store import LocalStore, Staged, Store

__all__ = ["CompactionResult", "compact", "external_table_ddl", "list_lake"]

_DATE_DIR = re.compile(rf"{PARTITION_COLUMN}=(\d{{4}}-\d{{2}}-\d{{2}})")
_HIVE_TYPES = {pa.string(): "string", pa.binary(): "binary", pa.int32(): "int",
               pa.int64(): "bigint", pa.float64(): "double"}  # fmt: skip
_RENAME_EXCHANGE = 2
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lake-admin")  # I/O-bound reads
_AT_FDCWD = -100


def _partitions(store: Store, table: str) -> list[tuple[date, str]]:
    found = []
    for name in store.directories(table):
        match = _DATE_DIR.fullmatch(name)
        if match:
            found.append((date.fromisoformat(match.group(1)), f"{table}/{name}"))
    return sorted(found)


def _parquet_names(store: Store, directory: str) -> dict[str, int]:
    return {n: size for n, size in store.sizes(directory).items() if not n.startswith(".")}


def _row_count(store: Store, path: str) -> int:
    with store.filesystem.open_input_file(store.path(path)) as file:
        return pq.ParquetFile(file).metadata.num_rows


def list_lake(store: Store, table: str | None = None) -> pa.Table:
    """Per table (or per partition of ``table``): partitions, files, rows and bytes."""
    tables = [table] if table else list(LAKE_SCHEMAS)
    for name in tables:
        if name not in LAKE_SCHEMAS:
            raise AnalyticsError(f"unknown table {name!r} (known: {', '.join(LAKE_SCHEMAS)})")
    rows = []
    for name in tables:
        per_date = []
        partitions = _partitions(store, name)
        listed = list(_POOL.map(lambda p: _parquet_names(store, p[1]), partitions))
        paths = [f"{d}/{f}" for (_, d), names in zip(partitions, listed, strict=True)
                 for f in names]  # fmt: skip
        counts = dict(zip(paths, _POOL.map(lambda f: _row_count(store, f), paths), strict=True))
        for (day, directory), files in zip(partitions, listed, strict=True):
            count = sum(counts[f"{directory}/{f}"] for f in files)
            per_date.append({"table": name, "date": day, "files": len(files), "rows": count,
                             "bytes": sum(files.values())})  # fmt: skip
        if table:
            rows.extend(per_date)
        else:
            rows.append({
                "table": name, "partitions": len(per_date),
                "first_date": per_date[0]["date"] if per_date else None,
                "last_date": per_date[-1]["date"] if per_date else None,
                "files": sum(p["files"] for p in per_date),
                "rows": sum(p["rows"] for p in per_date),
                "bytes": sum(p["bytes"] for p in per_date),
            })  # fmt: skip
    if table and not rows:
        return pa.table({"table": pa.array([], pa.string()), "date": pa.array([], pa.date32()),
                         "files": [], "rows": [], "bytes": []})  # fmt: skip
    return pa.Table.from_pylist(rows)


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
    """Rewrite partitions of dates before ``before`` (default today, UTC) that have ``min_files``.

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
        for day, directory in _partitions(store, table):
            files = sorted(_parquet_names(store, directory))
            if day >= before or len(files) < min_files:
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
                parts.append(pq.read_table(file, schema=LAKE_SCHEMAS[table]))
        rows = pa.concat_tables(parts)
        if SORT_KEYS[table]:
            rows = rows.take(stable_order(rows, SORT_KEYS[table]))
        merged[target] = rows
    if isinstance(store, LocalStore):
        _swap_local(store, directory, merged)
    else:
        staged = [store.stage(directory, t, rows, "zstd") for t, rows in merged.items()]
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
    staged: list[Staged] = [scratch.stage(directory, t, rows, "zstd")
                            for t, rows in merged.items()]  # fmt: skip
    scratch.make_durable(staged)
    for file in staged:
        scratch.publish(file)
    scratch.finish(staged)
    _exchange(work, live)
    shutil.rmtree(work)  # now the old files


def _exchange(a: Path, b: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise AnalyticsError("lake compact needs renameat2 (Linux, glibc 2.28 or later)")
    code = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if code != 0:
        errno = ctypes.get_errno()
        raise AnalyticsError(f"cannot swap {b} with its compacted copy: {os.strerror(errno)}")
    fd = os.open(b.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def external_table_ddl(location: str, database: str = "marketpulse") -> str:
    """``CREATE EXTERNAL TABLE`` statements (Athena, Glue, Hive) for every lake table.

    Partitions are found by partition projection on ``date`` (``yyyy-MM-dd``),
    so new dates need no ``MSCK REPAIR TABLE``.
    """
    location = location.rstrip("/")
    statements = []
    column = PARTITION_COLUMN
    for table, schema in LAKE_SCHEMAS.items():
        columns = ",\n".join(f"  `{f.name}` {_HIVE_TYPES[f.type]}" for f in schema)
        where = f"{location}/{table}"
        statements.append(
            f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table}` (\n{columns}\n)\n"
            f"PARTITIONED BY (`{PARTITION_COLUMN}` string)\n"
            "STORED AS PARQUET\n"
            f"LOCATION '{where}/'\n"
            "TBLPROPERTIES (\n"
            "  'projection.enabled' = 'true',\n"
            f"  'projection.{PARTITION_COLUMN}.type' = 'date',\n"
            f"  'projection.{PARTITION_COLUMN}.format' = 'yyyy-MM-dd',\n"
            f"  'projection.{PARTITION_COLUMN}.range' = '1900-01-01,NOW',\n"
            f"  'projection.{PARTITION_COLUMN}.interval' = '1',\n"
            f"  'projection.{PARTITION_COLUMN}.interval.unit' = 'DAYS',\n"
            f"  'storage.location.template' = '{where}/{column}=${{{column}}}/'\n"
            ");"
        )
    return "\n\n".join(statements) + "\n"
