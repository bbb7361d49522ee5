"""History from the Parquet lake: bars, indicators, alerts and dead letters.

Every query takes its values as parameters, never as SQL text. One DuckDB
connection serves every request, so queries are serialized by a lock.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa

from marketpulse.analytics import Lake
from marketpulse.models import INDICATOR_COLUMNS, INTERVALS

__all__ = ["LakeData", "to_records"]

logger = logging.getLogger(__name__)


def to_records(table: pa.Table) -> list[dict[str, Any]]:
    """Return rows as dicts, NaN as ``None`` (JSON has no NaN)."""
    rows = table.to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and math.isnan(value):
                row[key] = None
    return rows


class LakeData:
    """Read-only queries over one lake, safe to call from many threads.

    Args:
        root: the lake's root directory.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._lake: Lake | None = None
        self._lock = threading.Lock()

    def _query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        with self._lock:
            if self._lake is None:
                if not self.root.is_dir():
                    return pa.table({})
                self._lake = Lake(self.root)
            return self._lake.query(sql, params)

    def close(self) -> None:
        """Close the connection; closing twice is allowed."""
        with self._lock:
            if self._lake is not None:
                self._lake.close()
                self._lake = None

    def ready(self) -> bool:
        """Whether the lake can be queried."""
        self._query("SELECT count(*) FROM bars WHERE false")
        return self.root.is_dir()

    def symbols(self) -> list[dict[str, Any]]:
        """Return each symbol with its intervals, bar count and time range."""
        table = self._query(
            "SELECT symbol, list(DISTINCT interval ORDER BY interval) AS intervals, "
            'count(*) AS bars, min(start) AS first, max("end") AS last '
            "FROM bars GROUP BY symbol ORDER BY symbol"
        )
        return to_records(table)

    def intervals(self) -> list[str]:
        """Return the intervals present in the lake, shortest first."""
        table = self._query("SELECT DISTINCT interval FROM bars")
        names = table.column("interval").to_pylist() if table.num_rows else []
        return sorted(names, key=lambda name: INTERVALS.get(name, 0))

    def bars(
        self, symbol: str, interval: str, start: int | None, end: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Return the latest ``limit`` bars of one series in [start, end), oldest first."""
        return self._series(
            "bars", "start", "*", symbol, interval, start, end, limit, dedupe="start"
        )

    def indicators(
        self, symbol: str, interval: str, start: int | None, end: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Return the latest ``limit`` indicator rows of one series, oldest first."""
        columns = ", ".join(["symbol", "interval", "ts", "close", *INDICATOR_COLUMNS])
        return self._series(
            "indicators", "ts", columns, symbol, interval, start, end, limit, dedupe="ts"
        )

    def _series(
        self,
        table: str,
        time_column: str,
        columns: str,
        symbol: str,
        interval: str,
        start: int | None,
        end: int | None,
        limit: int,
        dedupe: str,
    ) -> list[dict[str, Any]]:
        where, params = ["symbol = ?", "interval = ?"], [symbol, interval]
        if start is not None:
            where.append(f'"{time_column}" >= ?')
            params.append(start)
        if end is not None:
            where.append(f'"{time_column}" < ?')
            params.append(end)
        params.append(limit)
        # a key written twice (a sink redoing a flush) is shown once
        sql = (
            f"SELECT * FROM (SELECT {columns} FROM {table} WHERE {' AND '.join(where)} "
            f'QUALIFY row_number() OVER (PARTITION BY "{dedupe}") = 1 '
            f'ORDER BY "{time_column}" DESC LIMIT ?) ORDER BY "{time_column}"'
        )
        return to_records(self._query(sql, params))

    def alerts(
        self,
        symbol: str | None,
        rule: str | None,
        severity: str | None,
        start: int | None,
        end: int | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Return the latest ``limit`` alerts matching every given filter, newest first."""
        where, params = ["true"], []
        for column, value in (("symbol", symbol), ("rule", rule), ("severity", severity)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if start is not None:
            where.append("ts >= ?")
            params.append(start)
        if end is not None:
            where.append("ts < ?")
            params.append(end)
        params.append(limit)
        sql = (
            'SELECT id, rule, symbol, interval, ts, severity, message, "values" FROM alerts '
            f"WHERE {' AND '.join(where)} ORDER BY ts DESC, id LIMIT ?"
        )
        rows = to_records(self._query(sql, params))
        for row in rows:
            row["values"] = json.loads(row["values"]) if row["values"] else {}
        return rows

    def dead_letters(self, limit: int) -> list[dict[str, Any]]:
        """Return the latest ``limit`` dead letters (reason, error, where), newest first."""
        sql = (
            'SELECT ts, reason, error, "key", topic, "partition", "offset", file, line '
            "FROM dlq ORDER BY ts DESC LIMIT ?"
        )
        return to_records(self._query(sql, [limit]))

    def dead_letter_count(self) -> int:
        """Return how many dead letters the lake holds."""
        table = self._query("SELECT count(*) AS n FROM dlq")
        return int(table.column("n")[0].as_py()) if table.num_rows else 0

    def latest_rows(self, interval: str) -> list[dict[str, Any]]:
        """Return one watchlist row per symbol from the lake's newest bars and indicators."""
        sql = """
            WITH b AS (
                SELECT symbol, arg_max(close, start) AS last, arg_min(open, start) AS first,
                       sum(volume) AS volume
                FROM bars WHERE interval = ? AND date = (SELECT max(date) FROM bars)
                GROUP BY symbol
            ), i AS (
                SELECT symbol, rsi_14, macd_hist, vwap FROM indicators WHERE interval = ?
                QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY ts DESC) = 1
            ), a AS (
                SELECT symbol, rule || ': ' || message AS alert FROM alerts
                QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY ts DESC) = 1
            )
            SELECT b.symbol, b.last, b.first, b.volume, i.rsi_14 AS rsi, i.macd_hist,
                   i.vwap, coalesce(a.alert, '') AS alert
            FROM b LEFT JOIN i USING (symbol) LEFT JOIN a USING (symbol)
            ORDER BY b.symbol
        """
        return to_records(self._query(sql, [interval, interval]))
