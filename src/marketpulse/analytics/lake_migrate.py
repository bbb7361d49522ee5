"""Conversion of a lake written by an earlier MarketPulse to the current layout, in place.

The earlier layout kept ``<table>/date=YYYY-MM-DD/<file>.parquet`` with
int64 nanosecond times and the columns ``interval``, ``start``/``end``
(bars), ``ts`` (the bar's end, for indicators and alerts), ``values`` (an
alert's JSON text) and ``topic``/``partition``/``offset``/``file``/``line``
(dead letters). :func:`migrate` rewrites every row under one dataset
(``legacy`` unless told otherwise) in the current layout
(:mod:`marketpulse.sinks.lake_layout`): renamed columns, times as UTC
timestamps, an indicator's or alert's ``bar_start`` from its bar's end and
timeframe, an alert's ``details`` as a map.

Each new file keeps the name of the files it comes from (Kafka offsets,
replayed input lines), so that compaction still groups them; files of one
name from several old days that land in one new partition (daily bars in a
decade) become one file.

Safe to stop at any moment and to run again, table by table:

1. the new files are written under ``<root>/.migrate/<table>/`` (hidden from
   readers), made durable, and a marker ``.migrate/<table>.done`` written;
2. with the marker, the new files are moved into place, then the old
   ``date=`` directories removed, then the marker.

A run that finds the marker resumes at step 2; one that finds new files
without it discards them and starts again from the old files, untouched so far.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.models import INTERVALS
from marketpulse.sinks.lake_format import PARQUET_COMPRESSION, SORT_KEYS, stable_order
from marketpulse.sinks.lake_layout import PERIOD, ROW_SCHEMAS, is_long, split
from marketpulse.sinks.lake_store import OLD_TABLES, LocalStore, Store

__all__ = ["MigrationResult", "migrate"]

logger = logging.getLogger(__name__)

#: Where new files wait until every one of a table is written.
STAGING = ".migrate"

#: Columns renamed since the earlier layout, per table: old name -> new name.
RENAMED: dict[str, dict[str, str]] = {
    "bars": {"interval": "timeframe", "start": "bar_start", "end": "bar_end"},
    "indicators": {"interval": "timeframe", "ts": "bar_end"},
    "alerts": {"interval": "timeframe", "ts": "bar_end", "values": "details"},
    "dlq": {
        "topic": "source_topic",
        "partition": "source_partition",
        "offset": "source_offset",
        "file": "source_file",
        "line": "source_line",
    },  # fmt: skip
}

_DETAILS = msgspec.json.Decoder(dict[str, object])


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """What a migration did: tables converted, files read and written, rows."""

    tables: int = 0
    files_before: int = 0
    files_after: int = 0
    rows: int = 0


def migrate(store: Store, dataset: str = "legacy") -> MigrationResult:
    """Convert the tables of the earlier layout to the current one, under ``dataset``.

    Raises:
        AnalyticsError: the lake is not of the earlier layout (nor half converted).
    """
    pending = [t for t in OLD_TABLES if store.old_partitions(t) or _exists(store, _marker(t))]
    if not pending:
        raise AnalyticsError(f"lake {store.uri} has nothing to migrate: no table of the "
                             "earlier layout (<table>/date=YYYY-MM-DD)")  # fmt: skip
    result = MigrationResult()
    for table in pending:
        before = after = rows = 0
        if not _exists(store, _marker(table)):
            before, after, rows = _stage(store, table, dataset)
        _publish(store, table)
        logger.info("lake %s: %s converted (%d files -> %d, %d rows)", store.uri, table,
                    before, after, rows)  # fmt: skip
        result = MigrationResult(result.tables + 1, result.files_before + before,
                                 result.files_after + after, result.rows + rows)  # fmt: skip
    return result


def _marker(table: str) -> str:
    return f"{STAGING}/{table}.done"


def _exists(store: Store, relative: str) -> bool:
    return store.filesystem.get_file_info(store.path(relative)).type != pafs.FileType.NotFound


def _stage(store: Store, table: str, dataset: str) -> tuple[int, int, int]:
    """Write the table's rows in the new layout under the staging directory, then the marker."""
    _remove_dir(store, f"{STAGING}/{table}")  # what a stopped run had staged
    pending: dict[tuple[str, str], list[pa.Table]] = {}
    ends: dict[str, date] = {}
    files = written = rows = 0
    for day, name, old in _old_files(store, table):
        files += 1
        for directory, part in split(table, _convert(table, old, dataset)):
            pending.setdefault((directory, name), []).append(part)
            ends[directory] = _end(directory)
        # rows of a partition come from old days up to one day after its period
        done = [key for key in pending if ends[key[0]] + timedelta(days=1) < day]
        for key in done:
            rows += _write(store, table, key, pending.pop(key))
            written += 1
    for key in list(pending):
        rows += _write(store, table, key, pending.pop(key))
        written += 1
    if isinstance(store, LocalStore):
        os.sync()  # every staged file durable before the marker says so
    with store.filesystem.open_output_stream(store.path(_marker(table))) as out:
        out.write(b"staged\n")
    if isinstance(store, LocalStore):
        os.sync()
    return files, written, rows


def _end(directory: str) -> date:
    """The first day after the period of a partition directory."""
    parts = dict(p.split("=", 1) for p in directory.split("/")[1:])
    start = date.fromisoformat(parts[PERIOD])
    if is_long(parts.get("timeframe")):
        return date(start.year + 10, 1, 1)
    return start + timedelta(days=1)


def _old_files(store: Store, table: str) -> Iterator[tuple[date, str, pa.Table]]:
    """Every file of the table's ``date=`` directories, oldest day first."""
    for directory in store.old_partitions(table):
        day = date.fromisoformat(directory.removeprefix("date="))
        for name in sorted(store.sizes(f"{table}/{directory}")):
            if name.startswith("."):
                continue
            path = store.path(f"{table}/{directory}/{name}")
            try:
                with store.filesystem.open_input_file(path) as file:
                    old = pq.read_table(file)
            except (OSError, pa.ArrowException) as exc:
                raise AnalyticsError(f"cannot read {table}/{directory}/{name}: {exc}") from exc
            yield day, name, old


def _write(store: Store, table: str, key: tuple[str, str], parts: list[pa.Table]) -> int:
    directory, name = key
    rows = pa.concat_tables(parts)
    if SORT_KEYS[table]:
        rows = rows.take(stable_order(rows, SORT_KEYS[table]))
    where = f"{STAGING}/{directory}"
    store.ensure_dir(where)
    staged = store.stage(where, name, rows, PARQUET_COMPRESSION)
    store.publish(staged)
    return rows.num_rows


def _publish(store: Store, table: str) -> None:
    """Move the staged files into place, then remove the old directories and the marker."""
    base = store.path(STAGING)
    selector = pafs.FileSelector(store.path(f"{STAGING}/{table}"), recursive=True,
                                 allow_not_found=True)  # fmt: skip
    staged = [i.path for i in store.filesystem.get_file_info(selector)
              if i.type == pafs.FileType.File and not i.base_name.startswith(".")]  # fmt: skip
    for path in staged:
        relative = path.removeprefix(base + "/")
        store.ensure_dir(relative.rpartition("/")[0])
        store.filesystem.move(path, store.path(relative))
    if isinstance(store, LocalStore):
        os.sync()  # the new files in place before the old ones go
    for directory in store.old_partitions(table):
        store.filesystem.delete_dir(store.path(f"{table}/{directory}"))
    _remove_dir(store, f"{STAGING}/{table}")
    store.filesystem.delete_file(store.path(_marker(table)))
    if isinstance(store, LocalStore):
        os.sync()
        with contextlib.suppress(OSError):  # the last table's: the staging directory is empty
            (store.root / STAGING).rmdir()


def _remove_dir(store: Store, relative: str) -> None:
    try:
        store.filesystem.delete_dir(store.path(relative))
    except FileNotFoundError:
        pass


def _convert(table: str, old: pa.Table, dataset: str) -> pa.Table:
    """Rows of an earlier layout's file as the lake takes them now."""
    renamed = RENAMED.get(table, {})
    names = [renamed.get(n, n) if renamed.get(n) not in old.column_names else n
             for n in old.column_names]  # fmt: skip
    old = old.rename_columns(names)
    n = old.num_rows
    columns = {}
    for field in ROW_SCHEMAS[table]:
        if field.name == "dataset":
            columns["dataset"] = pa.array([dataset] * n, pa.string())
        elif field.name == "bar_start" and "bar_start" not in old.column_names:
            columns["bar_start"] = _bar_start(old)
        elif field.name == "details" and _is_text(old, "details"):
            columns["details"] = _details(old.column("details"))
        elif field.name in old.column_names:
            column = old.column(field.name)
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            columns[field.name] = column.cast(field.type)
        else:
            columns[field.name] = pa.nulls(n, field.type)
    return pa.table(columns, schema=ROW_SCHEMAS[table])


def _is_text(table: pa.Table, name: str) -> bool:
    return name in table.column_names and pa.types.is_string(table.schema.field(name).type)


def _bar_start(old: pa.Table) -> pa.Array:
    """A bar's start from its end and timeframe (bars of every timeframe end start + length).

    A timeframe MarketPulse does not know (none was written) keeps the end.
    """
    if "bar_end" not in old.column_names or "timeframe" not in old.column_names:
        return pa.nulls(old.num_rows, pa.int64())
    ends = old.column("bar_end").cast(pa.int64())
    end = pc.fill_null(ends, 0).to_numpy()
    length = np.array([INTERVALS.get(t, 0) for t in old.column("timeframe").to_pylist()],
                      np.int64)  # fmt: skip
    missing = pc.is_null(ends).to_numpy(zero_copy_only=False)
    return pa.array(end - length, pa.int64(), mask=missing)


def _details(values: pa.ChunkedArray) -> pa.Array:
    """An alert's values, JSON text before, as a map of the numbers it holds."""
    maps = []
    for text in values.to_pylist():
        try:
            decoded = _DETAILS.decode(text) if text is not None else None
        except msgspec.DecodeError:
            decoded = None
        if decoded is None:
            maps.append(None)
            continue
        maps.append([(k, float(v) if isinstance(v, int | float) and not isinstance(v, bool)
                      else None) for k, v in decoded.items()])  # fmt: skip
    return pa.array(maps, pa.map_(pa.string(), pa.float64()))
