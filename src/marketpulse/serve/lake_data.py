"""History from the Parquet lake: datasets, bars, indicators, alerts and dead letters.

Every query reads one dataset (rows of different runs or sources never mix)
and takes its values as parameters, never as SQL text. One DuckDB connection
serves every request, so queries are serialized by a lock. Times come back as
ISO 8601 UTC text (see :mod:`marketpulse.serve.records`).

The lake's datasets are its ``<table>/dataset=<name>/`` directories. The
*default* dataset, read when a request names none, is the one whose files
were written last (the newest change among its partition directories, or on
S3 its newest object), preferring datasets that have bars.

The lake is a local directory or ``s3://bucket/prefix``
(:class:`~marketpulse.sinks.lake_location.LakeLocation`).

Indicator rows have the columns their files have: the declared indicators of
the runs that wrote the series (the thirteen classic ones by default), read
from the files' footers, not the columns of every dataset of the lake.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from marketpulse.models import (
    ALERT_SCHEMA,
    BAR_TABLE_SCHEMA,
    INDICATOR_KEY_COLUMNS,
    INDICATOR_SCHEMA,
    watchlist_columns,
)
from marketpulse.serve.lake_alerts import alert_filter, count_alerts
from marketpulse.serve.lake_summary import summarize
from marketpulse.serve.records import iso_time, to_records
from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.sinks.lake_store import open_store
from marketpulse.timeframes import sort_key

if TYPE_CHECKING:  # DuckDB is imported with the first query, not with the dashboard
    from marketpulse.analytics import Lake

__all__ = ["LakeData", "to_records"]

logger = logging.getLogger(__name__)

#: The lake's tables, as directories under its root.
_TABLES = ("bars", "indicators", "alerts", "trades", "quotes", "dlq")
_DATASET_DIR = "dataset="
_DLQ_COLUMNS = ("ts", "reason", "error", "key", "source_topic", "source_partition",
                "source_offset", "source_file", "source_line", "dataset")  # fmt: skip
#: Footers read are remembered (file path -> its columns) up to this many files.
_KEEP_SCHEMAS = 20_000


#: Columns of every indicators row that are not indicators.
_FIXED = frozenset({*INDICATOR_KEY_COLUMNS, "dataset", "timeframe", "period"})


class LakeData:
    """Read-only queries over one lake, safe to call from many threads.

    Args:
        root: the lake's location, or its root directory or ``s3://bucket/prefix``.

    Raises:
        OldLayoutError: the lake is in the layout of an earlier MarketPulse.
    """

    def __init__(self, root: str | Path | LakeLocation) -> None:
        self.location = LakeLocation.of(root)
        #: The lake's directory, or its ``s3://bucket/prefix``.
        self.root: Path | str = self.location.root
        if not self.location.is_s3:
            self.root = self.location.local_path
        self._lake: Lake | None = None
        self._lock = threading.Lock()
        self._file_columns: dict[str, tuple[str, ...]] = {}
        self._view_columns: tuple[str, ...] | None = None
        if self.exists():  # a lake of an earlier layout is refused before serving
            open_store(self.location)

    def exists(self) -> bool:
        """Whether the lake is there: its directory, or its bucket."""
        return self.location.exists()

    def _query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        with self._lock:
            if self._lake is None:
                if not self.exists():
                    return pa.table({})
                from marketpulse.analytics import Lake

                self._lake = Lake(self.location)
            return self._lake.query(sql, params)

    def close(self, timeout: float = 5.0) -> None:
        """Close the connection; closing twice is allowed.

        A query still running on a request's thread is waited for ``timeout``
        seconds, then interrupted; one that still holds the connection after
        that is left to the exiting process (a stop never hangs on a query).
        """
        if not self._lock.acquire(timeout=timeout):
            lake = self._lake
            if lake is not None:
                lake.interrupt()
            if not self._lock.acquire(timeout=timeout):
                logger.warning("lake: a query still runs; closing without it")
                return
        try:
            if self._lake is not None:
                self._lake.close()
                self._lake = None
                self._view_columns = None
        finally:
            self._lock.release()

    def ready(self) -> bool:
        """Whether the lake can be queried."""
        self._query("SELECT count(*) FROM bars WHERE false")
        return self.exists()

    def names(self) -> set[str]:
        """Return the names of the lake's datasets (its ``<table>/dataset=<name>`` directories)."""
        return {name for name, _ in self._dataset_dirs()}

    def _dataset_dirs(self, tables: tuple[str, ...] = _TABLES) -> list[tuple[str, str]]:
        """(dataset, its directory under the root) for each table's datasets."""
        return [
            (name[len(_DATASET_DIR) :], f"{table}/{name}")
            for table in tables
            for name in self.location.directories(table)
            if name.startswith(_DATASET_DIR)
        ]

    def written(self) -> dict[str, int]:
        """Return each dataset of the lake with when its files last changed (ns since the epoch).

        A file written, replaced or removed changes its directory, so the
        newest change of a dataset's partition directories is when it was
        last written (on S3, its newest object's).
        """
        newest: dict[str, int] = {}
        for name, path in self._dataset_dirs():
            stamp = self.location.newest_change(path)
            newest[name] = max(newest.get(name, stamp), stamp)
        return newest

    def default_dataset(self) -> str | None:
        """Return the most recently written dataset that has bars (else any), or ``None``."""
        written = self.written()
        with_bars = {name for name, _ in self._dataset_dirs(("bars",))} & set(written)
        pool = with_bars or set(written)
        return max(pool, key=lambda name: (written[name], name)) if pool else None

    def datasets(self) -> list[dict[str, Any]]:
        """Return every dataset, by name: symbols, timeframes, bars, time range, last written."""
        written = self.written()
        table = self._query(
            "SELECT dataset, count(DISTINCT symbol) AS symbols, "
            "list(DISTINCT timeframe) AS timeframes, count(*) AS bars, "
            "min(bar_start) AS first, max(bar_end) AS last FROM bars GROUP BY dataset"
        )
        stats = {row["dataset"]: row for row in to_records(table)}
        rows = []
        for name in sorted(written):
            row = stats.get(name) or {"symbols": 0, "timeframes": [], "bars": 0,
                                      "first": None, "last": None}  # fmt: skip
            rows.append({
                "dataset": name, "symbols": row["symbols"],
                "timeframes": sorted(row["timeframes"], key=sort_key),
                "bars": row["bars"], "first": row["first"], "last": row["last"],
                "written": iso_time(written[name]),
            })  # fmt: skip
        return rows

    def symbols(self, dataset: str) -> list[dict[str, Any]]:
        """Return each symbol of a dataset with its timeframes, bar count and time range."""
        table = self._query(
            "SELECT symbol, list(DISTINCT timeframe) AS timeframes, "
            "count(*) AS bars, min(bar_start) AS first, max(bar_end) AS last, "
            "any_value(dataset) AS dataset FROM bars WHERE dataset = ? "
            "GROUP BY symbol ORDER BY symbol",
            [dataset],
        )
        rows = to_records(table)
        for row in rows:
            row["timeframes"].sort(key=sort_key)
        return rows

    def timeframes(self, dataset: str) -> list[str]:
        """Return the timeframes of a dataset's bars, shortest first."""
        table = self._query("SELECT DISTINCT timeframe FROM bars WHERE dataset = ?", [dataset])
        names = table.column("timeframe").to_pylist() if table.num_rows else []
        return sorted(names, key=sort_key)

    def bars(
        self,
        dataset: str,
        symbol: str,
        timeframe: str,
        start: int | None,
        end: int | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Return the latest ``limit`` bars of one series starting in [start, end), oldest first."""
        return to_records(self.bars_table(dataset, symbol, timeframe, start, end, limit))

    def bars_table(
        self,
        dataset: str,
        symbol: str,
        timeframe: str,
        start: int | None,
        end: int | None,
        limit: int,
    ) -> pa.Table:
        """Return the rows of :meth:`bars` as the lake's Arrow table (times as timestamps)."""
        return self._series("bars", BAR_TABLE_SCHEMA.names, dataset, symbol, timeframe, start, end,
                            limit)  # fmt: skip

    def indicators(
        self,
        dataset: str,
        symbol: str,
        timeframe: str,
        start: int | None,
        end: int | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Return the latest ``limit`` indicator rows of one series, oldest first.

        A row has the bar's key and close, the series' indicator columns (see
        :meth:`indicator_columns`) and its dataset.
        """
        return to_records(self.indicators_table(dataset, symbol, timeframe, start, end, limit))

    def indicators_table(
        self,
        dataset: str,
        symbol: str,
        timeframe: str,
        start: int | None,
        end: int | None,
        limit: int,
    ) -> pa.Table:
        """Return the rows of :meth:`indicators` as the lake's Arrow table."""
        columns = [*INDICATOR_KEY_COLUMNS, *self.indicator_columns(dataset, timeframe), "dataset"]
        return self._series("indicators", columns, dataset, symbol, timeframe, start, end, limit)

    def indicator_columns(self, dataset: str, timeframe: str) -> list[str]:
        """Return the indicator columns of a dataset's rows of one timeframe.

        They are the columns of its files (the indicators declared by the runs
        that wrote them), in the order first written; the thirteen classic
        columns when it has no files. Only columns the lake's ``indicators``
        view has are named.
        """
        directory = f"indicators/{_DATASET_DIR}{dataset}/timeframe={timeframe}"
        files = self.location.files(directory, ".parquet") if self.exists() else []
        if not files:
            return [c for c in INDICATOR_SCHEMA.names if c not in _FIXED]
        found: dict[str, None] = {}
        for name in files:
            for column in self._columns_of(name):
                found.setdefault(column)
        view = self._view_columns or ()
        if not set(found) <= set(view):  # new columns since last asked: the view has them now
            view = self._view_columns = tuple(self._query("SELECT * FROM indicators LIMIT 0")
                                              .column_names)  # fmt: skip
        return [c for c in found if c not in _FIXED and c in view]

    def _columns_of(self, name: str) -> tuple[str, ...]:
        """The columns of one lake file (its footer, read once)."""
        columns = self._file_columns.get(name)
        if columns is None:
            path = self.location.path(name)
            try:
                columns = tuple(pq.read_schema(path, filesystem=self.location.filesystem).names)
            except (OSError, pa.ArrowInvalid):  # removed meanwhile (compaction), or unreadable
                return ()
            if len(self._file_columns) >= _KEEP_SCHEMAS:
                self._file_columns.clear()
            self._file_columns[name] = columns
        return columns

    def _series(
        self,
        table: str,
        columns: list[str],
        dataset: str,
        symbol: str,
        timeframe: str,
        start: int | None,
        end: int | None,
        limit: int,
    ) -> pa.Table:
        where = ["dataset = ?", "symbol = ?", "timeframe = ?"]
        params: list[Any] = [dataset, symbol, timeframe]
        if start is not None:
            where.append("epoch_ns(bar_start) >= ?")
            params.append(start)
        if end is not None:
            where.append("epoch_ns(bar_start) < ?")
            params.append(end)
        params.append(limit)
        # a key written twice (a sink redoing a flush) is shown once
        names = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
        sql = (
            f"SELECT * FROM (SELECT {names} FROM {table} "
            f"WHERE {' AND '.join(where)} "
            "QUALIFY row_number() OVER (PARTITION BY bar_start) = 1 "
            "ORDER BY bar_start DESC LIMIT ?) ORDER BY bar_start"
        )
        return self._query(sql, params)

    def forecasts(self, dataset: str, symbol: str, timeframe: str) -> list[dict[str, Any]]:
        """Each model and horizon's latest prediction on one series, and its record there.

        Per (model, horizon): the latest prediction (``bar_start``, ``direction``,
        ``probability``, ``value``), ``resolved``: its predictions whose outcome is
        known, a move (the close ``horizon`` bars of the series later differs) on
        which it made a call, and ``hits``: those it called right.
        """
        sql = """
            WITH b AS (
                SELECT bar_start, close, row_number() OVER (ORDER BY bar_start) AS n
                FROM (SELECT bar_start, any_value(close) AS close FROM bars
                      WHERE dataset = ? AND symbol = ? AND timeframe = ? GROUP BY bar_start)),
            p AS (
                SELECT bar_start, model, horizon, any_value(direction) AS direction,
                       any_value(probability) AS probability, any_value(value) AS value
                FROM predictions WHERE dataset = ? AND symbol = ? AND timeframe = ?
                GROUP BY bar_start, model, horizon),
            j AS (
                SELECT p.*, now.close AS c0, later.close AS c1
                FROM p JOIN b now USING (bar_start)
                LEFT JOIN b later ON later.n = now.n + p.horizon)
            SELECT model, horizon, max(bar_start) AS bar_start,
                   arg_max(direction, bar_start) AS direction,
                   arg_max(probability, bar_start) AS probability,
                   arg_max(value, bar_start) AS value,
                   count(*) FILTER (WHERE c1 <> c0 AND direction <> 0) AS resolved,
                   count(*) FILTER (WHERE c1 <> c0 AND direction = sign(c1 - c0)) AS hits
            FROM j GROUP BY model, horizon ORDER BY model, horizon"""
        return to_records(self._query(sql, [dataset, symbol, timeframe] * 2))

    def alerts(
        self,
        dataset: str,
        symbol: str | None,
        rule: str | None,
        severity: str | None,
        start: int | None,
        end: int | None,
        limit: int,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Return a dataset's latest ``limit`` alerts matching every filter, newest first.

        ``start`` and ``end`` bound the end of the alert's bar (when it fired);
        ``offset`` skips that many of the newest (a page further back).
        """
        return to_records(
            self.alerts_table(dataset, symbol, rule, severity, start, end, limit, offset)
        )

    def alerts_table(
        self,
        dataset: str,
        symbol: str | None,
        rule: str | None,
        severity: str | None,
        start: int | None,
        end: int | None,
        limit: int,
        offset: int = 0,
    ) -> pa.Table:
        """Return the rows of :meth:`alerts` as the lake's Arrow table."""
        where, params = alert_filter(dataset, symbol, rule, severity, start, end)
        sql = (
            f"SELECT {', '.join(ALERT_SCHEMA.names)} FROM alerts "
            f"WHERE {where} ORDER BY bar_end DESC, id LIMIT ? OFFSET ?"
        )
        return self._query(sql, [*params, limit, offset])

    def alert_counts(
        self,
        dataset: str,
        symbol: str | None,
        rule: str | None,
        severity: str | None,
        start: int | None,
        end: int | None,
    ) -> dict[str, Any]:
        """Count a dataset's alerts matching the filters (see :func:`.lake_alerts.count_alerts`)."""
        return count_alerts(self._query, dataset, symbol, rule, severity, start, end)

    def dead_letters(self, dataset: str, limit: int) -> list[dict[str, Any]]:
        """Return a dataset's latest ``limit`` dead letters (reason, error, where), newest first."""
        columns = ", ".join(_DLQ_COLUMNS)
        sql = f"SELECT {columns} FROM dlq WHERE dataset = ? ORDER BY ts DESC LIMIT ?"
        return to_records(self._query(sql, [dataset, limit]))

    def summary(self, dataset: str) -> dict[str, Any]:
        """Return what the lake holds of a dataset (see :mod:`.lake_summary`).

        Per table its rows, time span, files and last write; its dead letters by reason.
        """
        return summarize(self._query, self.location, dataset)

    def dead_letter_count(self, dataset: str) -> int:
        """Return how many dead letters a dataset has."""
        table = self._query("SELECT count(*) AS n FROM dlq WHERE dataset = ?", [dataset])
        return int(table.column("n")[0].as_py()) if table.num_rows else 0

    def latest_rows(self, dataset: str, timeframe: str) -> list[dict[str, Any]]:
        """Return one watchlist row per symbol from a dataset's newest bars and indicators.

        ``last`` is the newest close; ``first`` (the open) and ``volume`` are
        those of the newest UTC day's bars of ``timeframe``. ``rsi`` and
        ``macd_hist`` are the dataset's declared RSI and MACD histogram
        (:func:`~marketpulse.models.watchlist_columns`), null without one.
        """
        rsi, hist = watchlist_columns(self.indicator_columns(dataset, timeframe))
        rsi_sql = f'"{rsi}"' if rsi else "CAST(NULL AS DOUBLE)"
        hist_sql = f'"{hist}"' if hist else "CAST(NULL AS DOUBLE)"
        sql = f"""
            WITH s AS (
                SELECT * FROM bars WHERE dataset = $1 AND timeframe = $2
                AND period = (SELECT max(period) FROM bars WHERE dataset = $1 AND timeframe = $2)
            ), b AS (
                SELECT symbol, arg_max(close, bar_start) AS last,
                       arg_min(open, bar_start) AS first, sum(volume) AS volume
                FROM s WHERE bar_start::DATE = (SELECT max(bar_start)::DATE FROM s)
                GROUP BY symbol
            ), i AS (
                SELECT symbol, {rsi_sql} AS rsi, {hist_sql} AS macd_hist, vwap FROM indicators
                WHERE dataset = $1 AND timeframe = $2
                QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY bar_start DESC) = 1
            ), a AS (
                SELECT symbol, rule || ': ' || message AS alert FROM alerts WHERE dataset = $1
                QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY bar_end DESC) = 1
            )
            SELECT b.symbol, b.last, b.first, b.volume, i.rsi, i.macd_hist,
                   i.vwap, coalesce(a.alert, '') AS alert
            FROM b LEFT JOIN i USING (symbol) LEFT JOIN a USING (symbol)
            ORDER BY b.symbol
        """  # noqa: S608 - the names are the lake's own column names
        return to_records(self._query(sql, [dataset, timeframe]))
