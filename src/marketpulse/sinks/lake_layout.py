"""Where a row of the lake goes: the Hive partitions of every table, and the columns of its files.

Layout::

    <root>/bars/dataset=<name>/timeframe=<tf>/period=YYYY-MM-DD/<file>.parquet
    <root>/indicators/...   <root>/alerts/...   <root>/custom/...   (like bars)
    <root>/trades/dataset=<name>/period=YYYY-MM-DD/<file>.parquet
    <root>/quotes/...   and   <root>/dlq/...   (like trades)

``dataset`` and ``timeframe`` live in the path only (a file holds the other
columns of its table, :data:`FILE_SCHEMAS`); readers (DuckDB, pyarrow, Athena)
add them from the path, with ``period`` (a DATE). Datasets never share a
file, so ``lake drop --dataset`` removes directories, and a query for one
dataset or timeframe opens that dataset's files only.

``period`` is the first day of the period a row's event time
(:data:`~.base.TIME_COLUMNS`, UTC) falls in: its UTC day for trades, quotes,
dead letters and intraday timeframes; for ``1d`` and longer, the first day
of its decade (``1960-01-01``, ``1970-01-01``, ...). Why decades: the Kaggle
index file (``indexProcessed.csv``: 104,224 daily bars of 14 indices,
1965-2021) wrote 29,314 files (269 MB for a 10 MB CSV) into daily folders,
one per trading day and table, and would still write 57 folders a table by
year: 171 files for bars, indicators and alerts, some 80 KB each. By decade
a replay of it writes 7 folders a table, 21 files in all (13 MB; 8 KB for
the 1960s' alerts to 3 MB for the 2000s' indicators), and a decade of a
few thousand symbols' daily bars stays a file DuckDB reads in one go.
Intraday data keeps one folder a day, which ``lake compact`` can merge once
the day is over.

Rows whose event time is null (a dead letter that never had one) go to the
period of the wall-clock time they are written at.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from marketpulse.models import DATASET_NAME, STORED_TIME
from marketpulse.sinks.base import TABLES, TIME_COLUMNS
from marketpulse.timeframes import parse_interval

if TYPE_CHECKING:
    from marketpulse.sinks.lake_store import Store

__all__ = [
    "FILE_SCHEMAS",
    "PARTITION_KEYS",
    "Partition",
    "PERIOD",
    "ROW_SCHEMAS",
    "indicator_row_schema",
    "TIME_NAMES",
    "UNKNOWN",
    "is_long",
    "partition_columns",
    "partitions",
    "period_start",
    "sort_ranks",
    "split",
]

#: The partition column every table has; its value is a date (first day of the period).
PERIOD = "period"

#: The columns of each table that are directories of the path, outermost first (``period`` after).
PARTITION_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        table: ("dataset", "timeframe") if "timeframe" in schema.names else ("dataset",)
        for table, schema in TABLES.items()
    }
)

#: The names of time columns: int64 nanoseconds in flight, :data:`STORED_TIME` stored.
TIME_NAMES = frozenset({"ts", "bar_start", "bar_end"})

#: The dataset (or timeframe) of rows that arrive without one.
UNKNOWN = "unknown"
_TIMEFRAME = re.compile(r"(\d{1,6})(s|m|h|d|w|mo|M|y)")
_LONG_UNITS = {"d", "w", "mo", "M", "y"}
_PERIOD_DIR = re.compile(rf"{PERIOD}=(\d{{4}}-\d{{2}}-\d{{2}})")
_NS_PER_DAY = 86_400 * 1_000_000_000
_EPOCH = date(1970, 1, 1)


def _stored(field: pa.Field) -> pa.Field:
    if pa.types.is_dictionary(field.type):
        field = field.with_type(field.type.value_type)
    if field.name in TIME_NAMES:
        field = field.with_type(STORED_TIME)
    return field


#: Each table's rows as the lake takes them: the models' schemas with time
#: columns as :data:`STORED_TIME` and dictionary columns as their value type.
ROW_SCHEMAS: Mapping[str, pa.Schema] = MappingProxyType(
    {table: pa.schema([_stored(f) for f in schema]) for table, schema in TABLES.items()}
)


def indicator_row_schema(names: list[str] | tuple[str, ...]) -> pa.Schema:
    """The stored ``indicators`` rows' schema for rows with columns ``names``.

    The key, bar and ``dataset`` columns are the table's; every other column
    is a declared indicator (float64), in the order of ``names``.
    """
    base = ROW_SCHEMAS["indicators"]
    fixed = {"symbol", "timeframe", "bar_start", "bar_end", "close", "dataset"}
    declared = [n for n in names if n not in fixed]
    fields = [base.field(n) for n in ("symbol", "timeframe", "bar_start", "bar_end", "close")]
    fields += [pa.field(n, pa.float64()) for n in declared]
    fields.append(base.field("dataset"))
    return pa.schema(fields)


#: The columns of each table's files: :data:`ROW_SCHEMAS` without the partition keys.
FILE_SCHEMAS: Mapping[str, pa.Schema] = MappingProxyType(
    {
        table: pa.schema([f for f in schema if f.name not in PARTITION_KEYS[table]])
        for table, schema in ROW_SCHEMAS.items()
    }
)


def partition_columns(table: str) -> tuple[str, ...]:
    """The partition columns of ``table`` as readers see them: keys, then ``period``."""
    return (*PARTITION_KEYS[table], PERIOD)


def is_long(timeframe: str | None) -> bool:
    """Return whether ``timeframe`` is a day or longer (partitioned by decade)."""
    if timeframe is None:
        return False
    try:
        interval = parse_interval(timeframe)
    except ValueError:
        pass
    else:
        return not interval.fixed or interval.length >= _NS_PER_DAY
    match = _TIMEFRAME.fullmatch(timeframe)
    return bool(match and match.group(2) in _LONG_UNITS)


def period_start(day: date, timeframe: str | None = None) -> date:
    """The first day of the period of ``day``: the day itself, or its decade's first."""
    if is_long(timeframe):
        return date(day.year - day.year % 10, 1, 1)
    return day


@dataclass(frozen=True, slots=True, order=True)
class Partition:
    """One partition directory of a table."""

    table: str
    dataset: str
    timeframe: str | None
    period: date

    @property
    def directory(self) -> str:
        """The directory, relative to the lake's root."""
        timeframe = f"timeframe={self.timeframe}/" if self.timeframe is not None else ""
        return f"{self.table}/dataset={self.dataset}/{timeframe}{PERIOD}={self.period.isoformat()}"

    @property
    def end(self) -> date:
        """The first day after the partition's period."""
        if is_long(self.timeframe):
            return date(self.period.year + 10, 1, 1)
        return self.period + timedelta(days=1)


def partitions(store: Store, table: str, dataset: str | None = None) -> list[Partition]:
    """The partition directories of ``table`` (of one dataset if given), in order."""
    found = []
    for entry in store.directories(table):
        name = entry.removeprefix("dataset=")
        if name == entry or dataset is not None and name != dataset:
            continue
        if "timeframe" in PARTITION_KEYS[table]:
            levels = [
                (level.removeprefix("timeframe="), f"{table}/{entry}/{level}")
                for level in store.directories(f"{table}/{entry}")
                if level.startswith("timeframe=")
            ]
        else:
            levels = [(None, f"{table}/{entry}")]
        for timeframe, directory in levels:
            for leaf in store.directories(directory):
                match = _PERIOD_DIR.fullmatch(leaf)
                try:
                    day = date.fromisoformat(match.group(1)) if match else None
                except ValueError:  # not a day: not the lake's
                    day = None
                if day is not None:
                    found.append(Partition(table, name, timeframe, day))
    return sorted(found)


def split(table: str, rows: pa.Table, order_by: tuple[str, ...] = ()) -> list[tuple[str, pa.Table]]:
    """Split rows of :data:`ROW_SCHEMAS` by partition: ``(directory, file rows)`` pairs.

    The directory is relative to the lake's root; the file rows have the
    columns of :data:`FILE_SCHEMAS`. Within a partition, rows are sorted by
    the text columns ``order_by`` (stable: in arrival order within a key),
    in the same single copy that groups them by partition.

    Raises:
        ValueError: a dataset or timeframe that cannot be a directory name.
    """
    keys = PARTITION_KEYS[table]
    n = rows.num_rows
    if n == 0:
        return []
    combined = np.zeros(n, np.int64)
    labels: list[list[str]] = []
    long = np.zeros(n, bool)
    for key in keys:
        values, codes = _codes(rows.column(key), key)
        labels.append(values)
        combined = combined * (len(values) + 1) + codes
        if key == "timeframe":
            long = np.array([is_long(v) for v in values], bool)[codes]
    days = _days(rows.column(TIME_COLUMNS[table]))
    if long.any():
        days = np.where(long, _decade_days(days), days)
    low = int(days.min())
    span = int(days.max()) - low + 1
    combined = combined * span + (days - low)
    ordered = combined
    if order_by:
        ranks, distinct = sort_ranks(rows, order_by)
        ordered = combined * distinct + ranks
    if (np.diff(ordered) < 0).any():  # rows already in order need no copy
        order = np.argsort(ordered, kind="stable")
        rows = rows.take(pa.array(order))
        combined = combined[order]
    steps = np.diff(combined)
    files = rows.drop_columns(list(keys))
    cuts = np.flatnonzero(steps) + 1
    bounds = [0, *cuts.tolist(), n]
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        key = int(combined[lo])
        day = low + key % span
        key //= span
        parts = []
        for values in reversed(labels):
            parts.append(values[key % (len(values) + 1)])
            key //= len(values) + 1
        path = "/".join(f"{k}={v}" for k, v in zip(keys, reversed(parts), strict=True))
        period = (_EPOCH + timedelta(days=day)).isoformat()
        out.append((f"{table}/{path}/{PERIOD}={period}", files.slice(lo, hi - lo)))
    return out


def sort_ranks(rows: pa.Table, keys: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """Each row's rank in the order of the text columns ``keys`` (nulls last), and how many.

    Ranks small integers instead of sorting strings: a few distinct symbols
    and intervals over many rows.
    """
    combined = np.zeros(rows.num_rows, np.int64)
    distinct = 1
    for key in keys:
        encoded = rows.column(key).dictionary_encode().combine_chunks()
        values = encoded.dictionary.to_pylist()
        rank = np.empty(len(values) + 1, np.int64)
        rank[np.argsort(np.array(values, dtype=object), kind="stable")] = np.arange(len(values))
        rank[-1] = len(values)  # nulls last
        codes = encoded.indices.fill_null(len(values)).to_numpy(zero_copy_only=False)
        combined = combined * (len(values) + 1) + rank[codes]
        distinct *= len(values) + 1
    return combined, distinct


def _codes(column: pa.ChunkedArray, key: str) -> tuple[list[str], np.ndarray]:
    """The distinct values of a text column (checked as path names) and each row's index.

    A null (a producer that did not stamp the row) is :data:`UNKNOWN`: kept, and visible.
    """
    # the arrays' own methods: pyarrow.compute is imported when first used, so that the
    # commands that read the lake (sql, report) do not pay for it at start-up
    if column.null_count:
        column = column.fill_null(UNKNOWN)
    first = column[0].as_py() if len(column) else None
    if first is not None and _all_equal(column, first):
        values = [first]  # one dataset (or timeframe) in the batch: the usual case, no encoding
        codes = np.zeros(len(column), np.int64)
        _check_name(first, key)
        return values, codes
    encoded = column.dictionary_encode().combine_chunks()
    values = encoded.dictionary.to_pylist()
    for value in values:
        _check_name(value, key)
    return values, encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _all_equal(column: pa.ChunkedArray, value: str) -> bool:
    """Whether every row of a text column (without nulls) is ``value``; cheaper than unique()."""
    import pyarrow.compute as pc  # a writer's: loaded by then

    return bool(pc.all(pc.equal(column, value)).as_py())


def _check_name(value: str, key: str) -> None:
    if not DATASET_NAME.fullmatch(value):
        raise ValueError(
            f"{key} {value!r} cannot name a lake partition: expected letters, digits, "
            "'.', '_' or '-' (at most 64, starting with a letter or digit)"
        )


def _days(column: pa.ChunkedArray) -> np.ndarray:
    """UTC day numbers (days since 1970-01-01) of a time column; null: now."""
    ns = column.cast(pa.int64()) if column.type != pa.int64() else column
    if ns.null_count:
        ns = ns.fill_null(time.time_ns())
    return np.floor_divide(ns.to_numpy(), _NS_PER_DAY)  # integer floor, exact near midnight


def _decade_days(days: np.ndarray) -> np.ndarray:
    """The day number of the first day of each day's decade."""
    years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    decades = (years - years % 10 - 1970).astype("datetime64[Y]")
    return decades.astype("datetime64[D]").astype(np.int64)
