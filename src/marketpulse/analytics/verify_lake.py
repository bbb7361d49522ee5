"""Read what :func:`~marketpulse.analytics.verify.verify` checks from a Parquet lake.

A stored trade has no identity of its own (no source line or offset column):
a lake file does. Replays name each file after their input and its lines
(``part-f<origin>-<first>-<last>``, :mod:`marketpulse.sinks.lake_segments`),
Kafka sinks after the partition and offsets it holds
(``part-p<partition>-<first>-<last>``, :mod:`marketpulse.sinks.lake_offsets`).
Trades are stored twice where two files of a dataset cover the same lines of
one input (or offsets of one partition), or where two files hold the same rows
(a copy under another name). The second copies are left out of the trades
compared with the bars, so the conservation lines stay about the bars.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.analytics.verify import Stored, TradeCopy
from marketpulse.sinks.lake_location import LakeAccessError, LakeLocation
from marketpulse.sinks.lake_offsets import SOURCE_NAME
from marketpulse.sinks.lake_segments import FILE_NAME

__all__ = ["read_lake"]

#: The columns each table's check reads (``dataset``, ``timeframe`` come from the path).
_COLUMNS = {
    "trades": ["symbol", "ts", "condition"],
    "bars": ["symbol", "bar_start", "bar_end", "trades"],
    "indicators": ["symbol", "bar_start"],
    "alerts": ["id"],
    "dlq": ["reason", "key", "ts"],
}
_PART = re.compile(r"(dataset|timeframe)=(.+)")


def read_lake(location: LakeLocation, dataset: str | None = None) -> Stored:
    """Read the rows the check needs from the lake (one dataset's, if given).

    Raises:
        AnalyticsError: there is no lake there, or not that dataset.
    """
    if not location.is_s3 and not location.exists():
        raise AnalyticsError(f"no lake at {location}: not a directory")
    tables, copies = {}, []
    for table, columns in _COLUMNS.items():
        files = _files(location, table, dataset)
        if table == "trades":
            files, copies = _without_copies(location, files)
        tables[table] = _read(location, files, columns, table)
    if dataset is not None and not any(t.num_rows for t in tables.values()):
        raise AnalyticsError(f"lake {location} has no rows of dataset {dataset!r}")
    dlq = tables["dlq"].rename_columns(["reason", "symbol", "ts", "dataset"])
    return Stored(
        f"lake {location}",
        tables["trades"],
        tables["bars"],
        tables["indicators"],
        tables["alerts"],
        dlq,
        copies,
    )


def _files(location: LakeLocation, table: str, dataset: str | None) -> list[tuple[str, dict]]:
    """The table's Parquet files with their partition keys, in name order."""
    try:
        names = location.files(table, ".parquet")
    except LakeAccessError as exc:
        raise AnalyticsError(str(exc)) from None
    found = []
    for name in names:
        keys = {m.group(1): m.group(2) for m in map(_PART.fullmatch, name.split("/")) if m}
        if "dataset" in keys and (dataset is None or keys["dataset"] == dataset):
            found.append((name, keys))
    # files in the order of the input lines (offsets) they hold: the order trades were
    # processed; files named otherwise (a copy, a backfill's) after them
    return sorted(found, key=lambda f: (f[1]["dataset"], _source(f[0]) is None,
                                        _source(f[0]) or ("", 0, 0), f[0]))  # fmt: skip


def _source(name: str) -> tuple[str, int, int] | None:
    """The input (origin, or partition) and the lines (offsets) a file's name says it holds."""
    base = PurePosixPath(name).name
    match = FILE_NAME.fullmatch(base) or SOURCE_NAME.fullmatch(base)
    if match is None:
        return None
    return match.group(1), int(match.group(2)), int(match.group(3))


def _read(
    location: LakeLocation, files: list[tuple[str, dict]], columns: list[str], table: str
) -> pa.Table:
    parts = []
    for name, keys in files:
        rows = pq.read_table(location.path(name), columns=columns, filesystem=location.filesystem)
        parts.append(_with_keys(rows, keys, table))
    if not parts:
        return _with_keys(_empty(columns), {}, table)
    return pa.concat_tables(parts)


def _with_keys(rows: pa.Table, keys: dict, table: str) -> pa.Table:
    for name in rows.column_names:  # times as int64 ns, as every other reader of the check
        if pa.types.is_timestamp(rows.schema.field(name).type):
            i = rows.column_names.index(name)
            rows = rows.set_column(i, name, rows.column(name).cast(pa.int64()))
    if "symbol" in rows.column_names:
        i = rows.column_names.index("symbol")
        rows = rows.set_column(i, "symbol", rows.column("symbol").cast(pa.string()))
    if table not in ("trades", "dlq"):
        rows = rows.append_column(
            "timeframe", pa.array([keys.get("timeframe")] * rows.num_rows, pa.string())
        )
    return rows.append_column(
        "dataset", pa.array([keys.get("dataset")] * rows.num_rows, pa.string())
    )


def _empty(columns: list[str]) -> pa.Table:
    types = {"symbol": pa.string(), "id": pa.string(), "reason": pa.string(), "key": pa.string(),
             "condition": pa.string()}  # fmt: skip
    return pa.table({c: pa.array([], types.get(c, pa.int64())) for c in columns})


def _without_copies(
    location: LakeLocation, files: list[tuple[str, dict]]
) -> tuple[list[tuple[str, dict]], list[TradeCopy]]:
    """Leave out trades files that hold rows another file holds; describe them."""
    kept: list[tuple[str, dict]] = []
    copies = []
    digests: dict[tuple[str, str], str] = {}
    for name, keys in files:
        dataset, source = keys["dataset"], _source(name)
        # a file of the same directory (one period) holding the same lines: rows of one
        # flush spread over two periods are two files named alike in two directories
        here = PurePosixPath(name).parent
        twin = next(
            (k for k, _ in kept if PurePosixPath(k).parent == here and _covers(_source(k), source)),
            None,
        )
        if twin is None and sum(k["dataset"] == dataset for _, k in files) > 1:
            digest = _digest(location, name)
            twin = digests.get((dataset, digest))
            digests.setdefault((dataset, digest), name)
        if twin is None:
            kept.append((name, keys))
            continue
        rows = pq.read_metadata(location.path(name), filesystem=location.filesystem).num_rows
        copies.append(TradeCopy(dataset, rows, f"{name} holds the rows of {twin}"))
    return kept, copies


def _covers(outer: tuple[str, int, int] | None, inner: tuple[str, int, int] | None) -> bool:
    """Whether a file of input lines (offsets) ``outer`` holds every line of ``inner``."""
    if outer is None or inner is None or outer[0] != inner[0]:
        return False
    return outer[1] <= inner[1] and inner[2] <= outer[2]


def _digest(location: LakeLocation, name: str) -> str:
    """A digest of a file's trades by value (not of its bytes: a rewrite encodes them anew)."""
    rows = pq.read_table(location.path(name), filesystem=location.filesystem)
    digest = hashlib.blake2b(digest_size=16)
    for column in rows.columns:
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
            digest.update(column.fill_null(0).to_numpy().tobytes())
        else:
            digest.update("\0".join(map(str, column.to_pylist())).encode())
    return digest.hexdigest()
