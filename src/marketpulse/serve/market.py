"""What the live pages show: watchlist rows, new alerts and pipeline figures.

Two sources give the same three things: :class:`LiveMarket`, fed by a running
pipeline (it is the pipeline's :class:`~marketpulse.runtime.MarketView`), and
:class:`LakeMarket`, which reads them from the lake for ``marketpulse dashboard``.
Each shows one dataset, its :attr:`~MarketSource.dataset`: the run's, or the
one chosen in the lake.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.models import Alert
from marketpulse.runtime import MarketView, Metrics, SymbolRow
from marketpulse.serve.lake_data import LakeData
from marketpulse.serve.records import details_of, iso_time, to_records

__all__ = ["LakeMarket", "LiveMarket", "MarketSource", "alert_record", "row_record"]

#: Alerts kept for clients that connect later.
_KEEP_ALERTS = 1000

#: Newest output tables (bars, indicators) kept for clients charting a symbol live;
#: tables are kept as the pipeline made them, and filtered only when a client asks.
_KEEP_TABLES = 256


def _num(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def row_record(row: SymbolRow) -> dict[str, Any]:
    """Return one watchlist row as JSON-ready values (``None`` where unknown)."""
    return {
        "symbol": row.symbol,
        "last": _num(row.last),
        "change_pct": _num(row.change_pct),
        "volume": row.volume,
        "rsi": _num(row.rsi),
        "macd_hist": _num(row.macd_hist),
        "vwap_dist_pct": _num(row.vwap_distance_pct),
        "alert": row.alert,
    }


def alert_record(alert: Alert) -> dict[str, Any]:
    """Return an alert as JSON-ready values."""
    return {
        "id": alert.id,
        "rule": alert.rule,
        "symbol": alert.symbol,
        "timeframe": alert.timeframe,
        "bar_start": iso_time(alert.bar_start),
        "bar_end": iso_time(alert.bar_end),
        "severity": alert.severity,
        "message": alert.message,
        "details": details_of(alert.details),
        "dataset": alert.dataset,
    }


class MarketSource(Protocol):
    """What the WebSocket pushes and the live endpoints return."""

    #: The dataset shown (``None``: none known yet).
    dataset: str | None
    #: Whether that is whichever dataset of the lake was written last (else one of its own).
    follows_latest: bool
    #: Where the live pages' state comes from: ``pipeline`` (a pipeline running in this
    #: process), ``topics`` (a pipeline's Kafka output topics) or ``lake`` (stored files).
    kind: str

    def watchlist(self) -> list[dict[str, Any]]:
        """Return every symbol's row."""

    def alerts_after(self, seq: int) -> tuple[int, list[dict[str, Any]]]:
        """Return the newest sequence number and the alerts after ``seq``, oldest first."""

    def figures(self) -> dict[str, Any]:
        """Return the pipeline's figures."""

    def series_after(self, symbol: str, seq: int) -> tuple[int, list[dict], list[dict]]:
        """Return the newest sequence number and the bars and indicator rows after ``seq``."""


class LiveMarket(MarketView):
    """The market view of a running pipeline, which also keeps its recent alerts.

    Args:
        interval: the bar timeframe whose indicators the watchlist shows.
        metrics: the running pipeline's metrics.
        dataset: the run's dataset (default: the one its output carries).
    """

    def __init__(self, interval: str, metrics: Metrics, dataset: str | None = None) -> None:
        super().__init__(interval)
        self.metrics = metrics
        self.dataset = dataset
        self.follows_latest = False
        self.kind = "pipeline"  # the topics feed makes it "topics"
        #: More figures for the pipeline page (e.g. consumer lag), merged into :meth:`figures`.
        self.extra_figures: Callable[[], dict[str, Any]] | None = None
        self._alert_log: deque[tuple[int, dict[str, Any]]] = deque(maxlen=_KEEP_ALERTS)
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._log_lock = threading.Lock()
        self._tables: deque[tuple[int, bool, pa.Table]] = deque(maxlen=_KEEP_TABLES)
        self._series_seq = 0

    def bars(self, table: pa.Table) -> None:
        """Keep the newest closed bars of each symbol."""
        self._remember(table, is_bar=True)

    def indicators(self, table: pa.Table) -> None:
        """Take the latest indicators for the watchlist; keep each symbol's newest rows."""
        super().indicators(table)
        self._remember(table, is_bar=False)

    def _remember(self, table: pa.Table, is_bar: bool) -> None:
        if table.num_rows == 0:
            return
        if self.dataset is None and "dataset" in table.column_names:
            self.dataset = table.column("dataset")[0].as_py()
        with self._log_lock:  # the pipeline's thread only appends a reference
            self._series_seq += 1
            self._tables.append((self._series_seq, is_bar, table))

    def series_after(self, symbol: str, seq: int) -> tuple[int, list[dict], list[dict]]:
        """Return the newest sequence number and the bars and indicator rows after ``seq``.

        Only the newest tables are kept: a client reads older rows from the lake.
        """
        with self._log_lock:
            newer = [(is_bar, table) for n, is_bar, table in self._tables if n > seq]
            last = self._series_seq
        bars: list[dict] = []
        rows: list[dict] = []
        for is_bar, table in newer:
            picked = table.filter(pc.equal(table.column("symbol"), symbol))
            if picked.num_rows:
                (bars if is_bar else rows).extend(to_records(picked))
        return last, bars, rows

    def alerts(self, alerts: list[Alert]) -> None:
        """Remember the latest alert of each symbol, and log every alert."""
        super().alerts(alerts)
        if self.dataset is None and alerts:
            self.dataset = alerts[0].dataset
        with self._log_lock:
            for alert in alerts:
                self._last_seq = next(self._seq)
                self._alert_log.append((self._last_seq, alert_record(alert)))

    def watchlist(self) -> list[dict[str, Any]]:
        """Return every symbol's row."""
        return [row_record(row) for row in self.rows()]

    def alerts_after(self, seq: int) -> tuple[int, list[dict[str, Any]]]:
        """Return the newest sequence number and the alerts after ``seq``, oldest first."""
        with self._log_lock:
            return self._last_seq, [record for n, record in self._alert_log if n > seq]

    def figures(self) -> dict[str, Any]:
        """Return the pipeline's figures."""
        snap = self.metrics.snapshot()
        return {
            "source": self.kind,
            "elapsed_s": snap.elapsed,
            "ticks_in": snap.ticks_in,
            "ticks_per_s": snap.ticks_per_s,
            "bars": snap.bars,
            "bars_per_s": snap.bars_per_s,
            "indicator_rows": snap.indicator_rows,
            "alerts": snap.alerts,
            "dlq": snap.dlq,
            "rejected": snap.rejected,
            "latency_p50_ms": snap.latency_p50_ms,
            "latency_p99_ms": snap.latency_p99_ms,
            "dataset": self.dataset,
            **(self.extra_figures() if self.extra_figures is not None else {}),
        }


class LakeMarket:
    """One dataset as the lake last recorded it, re-read at most every ``refresh_s``.

    Args:
        lake: the lake's queries.
        interval: the bar timeframe to show (default: the dataset's shortest).
        refresh_s: how old the cached answer may get.
        dataset: the dataset to show (default: the lake's default, see
            :meth:`LakeData.default_dataset`, looked up again on each refresh).
    """

    def __init__(
        self,
        lake: LakeData,
        interval: str | None = None,
        refresh_s: float = 2.0,
        dataset: str | None = None,
    ) -> None:
        self.lake = lake
        self._dataset = dataset
        self.dataset = dataset
        self.follows_latest = dataset is None
        self.kind = "lake"
        self._interval = interval
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._at = -math.inf
        self._rows: list[dict[str, Any]] = []
        self._dlq = 0
        self._alerts: list[tuple[int, dict[str, Any]]] = []
        self._known: dict[str, int] = {}
        self._seq = itertools.count(1)
        self._last_seq = 0

    def _refresh(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._at < self._refresh_s:
                return
            self._at = now
            dataset = self._dataset or self.lake.default_dataset()
            if dataset != self.dataset:  # another dataset: nothing of the last one is kept
                self._rows, self._alerts, self._known, self._dlq = [], [], {}, 0
                self.dataset = dataset
            if dataset is None:
                return
            interval = self._interval or next(iter(self.lake.timeframes(dataset)), None)
            if interval is None:
                return
            rows = self.lake.latest_rows(dataset, interval)
            for row in rows:
                view = SymbolRow(
                    row["symbol"], *(
                        math.nan if row[k] is None else row[k]
                        for k in ("last", "first", "volume", "rsi", "macd_hist", "vwap")
                    ), row["alert"],
                )  # fmt: skip
                row.clear()
                row.update(row_record(view))
            self._rows = rows
            for alert in reversed(self.lake.alerts(dataset, None, None, None, None, None, 200)):
                if alert["id"] not in self._known:
                    self._last_seq = self._known[alert["id"]] = next(self._seq)
                    self._alerts.append((self._last_seq, alert))
            self._alerts = self._alerts[-_KEEP_ALERTS:]
            if len(self._known) > 4 * _KEEP_ALERTS:  # forget ids too old to be read again
                kept = {record["id"] for _, record in self._alerts}
                self._known = {k: n for k, n in self._known.items() if k in kept}
            self._dlq = self.lake.dead_letter_count(dataset)

    def watchlist(self) -> list[dict[str, Any]]:
        """Return every symbol's row."""
        self._refresh()
        return self._rows

    def alerts_after(self, seq: int) -> tuple[int, list[dict[str, Any]]]:
        """Return the newest sequence number and the alerts after ``seq``, oldest first."""
        self._refresh()
        with self._lock:
            return self._last_seq, [record for n, record in self._alerts if n > seq]

    def series_after(self, symbol: str, seq: int) -> tuple[int, list[dict], list[dict]]:
        """Return nothing: charts read bars from the lake itself."""
        return seq, [], []

    def figures(self) -> dict[str, Any]:
        """Return what the lake knows of the pipeline (no live rates)."""
        self._refresh()
        return {"source": "lake", "dlq": self._dlq, "dataset": self.dataset}
