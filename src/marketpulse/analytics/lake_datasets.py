"""The datasets of a lake: listing them, and dropping one.

Every table keeps each dataset under a directory of its own
(``<table>/dataset=<name>/``, :mod:`marketpulse.sinks.lake_layout`), so
dropping a dataset removes one directory per table. On a local lake each is
first renamed out of the table (``<root>/.drop/``) in one atomic step, so a
reader sees all of the dataset's rows of that table or none, then deleted; on
S3, where no rename exists, its objects are deleted one by one (drop when
nobody reads).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.analytics.lake_admin import partition_sizes
from marketpulse.sinks.base import TABLES, TIME_COLUMNS
from marketpulse.sinks.lake_layout import partitions
from marketpulse.sinks.lake_store import LocalStore, Store

__all__ = ["DropResult", "drop_dataset", "list_datasets"]

#: Where a local drop moves a table's dataset directory before deleting it.
DROPPED = ".drop"

_LISTING = pa.schema(
    [("dataset", pa.string()), ("table", pa.string()), ("partitions", pa.int64()),
     ("files", pa.int64()), ("rows", pa.int64()), ("first", pa.timestamp("ns", tz="UTC")),
     ("last", pa.timestamp("ns", tz="UTC"))]
)  # fmt: skip


def dataset_names(store: Store) -> list[str]:
    """The names of the lake's datasets, sorted."""
    names = set()
    for table in TABLES:
        names.update(p.removeprefix("dataset=") for p in store.directories(table)
                     if p.startswith("dataset="))  # fmt: skip
    return sorted(names)


def list_datasets(store: Store) -> pa.Table:
    """Per dataset and table: partitions, files, rows, and the first and last event time.

    Times come from the files' statistics of the table's event time
    (:data:`~marketpulse.sinks.base.TIME_COLUMNS`); rows without one are not counted there.
    """
    rows = []
    for table in TABLES:
        by_dataset: dict[str, list[dict]] = {}
        for part in partition_sizes(store, table):
            by_dataset.setdefault(part["dataset"], []).append(part)
        for dataset, parts in by_dataset.items():
            first, last = _time_range(store, table, dataset)
            rows.append({
                "dataset": dataset, "table": table, "partitions": len(parts),
                "files": sum(p["files"] for p in parts), "rows": sum(p["rows"] for p in parts),
                "first": first, "last": last,
            })  # fmt: skip
    rows.sort(key=lambda r: (r["dataset"], list(TABLES).index(r["table"])))
    return pa.Table.from_pylist(rows, schema=_LISTING)


def _time_range(store: Store, table: str, dataset: str) -> tuple[int | None, int | None]:
    """The least and greatest event time of a table's dataset, in ns (from footers)."""
    column = TIME_COLUMNS[table]
    low = high = None
    for part in partitions(store, table, dataset):
        for name in store.sizes(part.directory):
            if name.startswith("."):
                continue
            with store.filesystem.open_input_file(store.path(f"{part.directory}/{name}")) as f:
                meta = pq.ParquetFile(f).metadata
            index = meta.schema.names.index(column) if column in meta.schema.names else None
            for group in range(meta.num_row_groups if index is not None else 0):
                stats = meta.row_group(group).column(index).statistics
                if stats is None or not stats.has_min_max:
                    continue
                lo, hi = stats.min_raw, stats.max_raw
                low = lo if low is None else min(low, lo)
                high = hi if high is None else max(high, hi)
    return low, high


@dataclass(frozen=True, slots=True)
class DropResult:
    """What a drop removed: the tables that held the dataset, their files and rows."""

    tables: int = 0
    files: int = 0
    rows: int = 0


def drop_dataset(store: Store, dataset: str) -> DropResult:
    """Remove every row of ``dataset`` from every table of the lake.

    Raises:
        AnalyticsError: the lake has no such dataset (the message names those it has).
    """
    known = dataset_names(store)
    if dataset not in known:
        have = f"its datasets: {', '.join(known)}" if known else "it has none"
        raise AnalyticsError(f"lake {store.uri} has no dataset {dataset!r} ({have})")
    tables = files = rows = 0
    for table in TABLES:
        parts = partition_sizes(store, table, dataset)
        directory = f"{table}/dataset={dataset}"
        if not parts and dataset not in {
            d.removeprefix("dataset=") for d in store.directories(table)
        }:
            continue
        tables += 1
        files += sum(p["files"] for p in parts)
        rows += sum(p["rows"] for p in parts)
        if isinstance(store, LocalStore):
            _drop_local(store, table, directory)
        else:
            store.filesystem.delete_dir(store.path(directory))
    if isinstance(store, LocalStore):
        with contextlib.suppress(OSError):  # left only if another drop is under way
            (store.root / DROPPED).rmdir()
    return DropResult(tables, files, rows)


def _drop_local(store: LocalStore, table: str, directory: str) -> None:
    """Rename the directory out of the table at once, then delete it."""
    trash = store.root / DROPPED / f"{table}-{directory.rpartition('/')[2]}-{os.getpid()}"
    trash.parent.mkdir(exist_ok=True)
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(store.root / directory, trash)
    fd = os.open(store.root / table, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    shutil.rmtree(trash)
