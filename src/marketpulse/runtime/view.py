"""The latest state of the market per symbol, for live views."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.models import Alert, watchlist_columns

__all__ = ["MarketView", "SymbolRow"]


@dataclass(slots=True)
class SymbolRow:
    """One line of the watchlist."""

    symbol: str
    last: float = float("nan")
    first: float = float("nan")
    volume: float = 0.0
    rsi: float = float("nan")
    macd_hist: float = float("nan")
    vwap: float = float("nan")
    alert: str = ""
    alert_rule: str = ""  # the rule of the latest alert
    alert_at: int = 0  # the end of the latest alert's bar (UTC ns; 0: none yet)
    bars: int = 0  # indicator rows of the view's interval seen (warm-up progress)

    @property
    def change_pct(self) -> float:
        """Change since the first trade seen, in percent."""
        return (self.last / self.first - 1.0) * 100.0

    @property
    def vwap_distance_pct(self) -> float:
        """Distance of the last price from the session VWAP, in percent."""
        return (self.last / self.vwap - 1.0) * 100.0


class MarketView:
    """Per-symbol latest values, updated from batches, read from another thread.

    Args:
        interval: the bar interval (timeframe) whose indicators are shown.
    """

    def __init__(self, interval: str) -> None:
        self.interval = interval
        self._rows: dict[str, SymbolRow] = {}
        self._lock = threading.Lock()
        self.recent_alerts: list[Alert] = []

    def rows(self) -> list[SymbolRow]:
        """Return a copy of every symbol's row, by symbol."""
        with self._lock:
            return [SymbolRow(**{k: getattr(r, k) for k in SymbolRow.__slots__}) for r in
                    sorted(self._rows.values(), key=lambda r: r.symbol)]  # fmt: skip

    def _row(self, symbol: str) -> SymbolRow:
        row = self._rows.get(symbol)
        if row is None:
            row = self._rows[symbol] = SymbolRow(symbol)
        return row

    def trades(self, data: pa.RecordBatch) -> None:
        """Take the last price and the volume of each symbol in a trade batch."""
        column = data.column("symbol")
        if not pa.types.is_dictionary(column.type):
            column = column.dictionary_encode()
        codes = column.indices.to_numpy(zero_copy_only=False)
        if len(codes) == 0:
            return
        price = data.column("price").to_numpy(zero_copy_only=False)
        size = data.column("size").to_numpy(zero_copy_only=False)
        names = column.dictionary.to_pylist()
        with np.errstate(invalid="ignore"):
            ok = (price > 0) & (size >= 0)
        codes, price, size = codes[ok], price[ok], size[ok]
        volume = np.bincount(codes, weights=size, minlength=len(names))
        present = np.flatnonzero(np.bincount(codes, minlength=len(names)))
        last_at = np.full(len(names), -1)
        last_at[codes] = np.arange(len(codes))  # later rows win
        first_at = np.full(len(names), -1)
        first_at[codes[::-1]] = np.arange(len(codes))[::-1]
        with self._lock:
            for code in present:
                row = self._row(names[code])
                if row.first != row.first:
                    row.first = float(price[first_at[code]])
                row.last = float(price[last_at[code]])
                row.volume += float(volume[code])

    def bars(self, table: pa.Table) -> None:
        """Take closed bars; this view shows none (views that chart them override this)."""

    def indicators(self, table: pa.Table) -> None:
        """Take the latest indicators of the view's interval.

        The watchlist shows the declared RSI and MACD histogram
        (:func:`~marketpulse.models.watchlist_columns`: ``rsi_14`` and
        ``macd_hist`` in the default set) and ``vwap``; a declared set without
        one of them leaves it unknown (NaN).
        """
        if table.num_rows == 0:
            return
        rows = table.filter(pc.equal(table.column("timeframe"), self.interval))
        if rows.num_rows == 0:
            return
        rsi, hist = watchlist_columns(rows.column_names)
        wanted = (rsi, hist, "vwap" if "vwap" in rows.column_names else None)
        latest: dict[str, dict] = {}
        counts: dict[str, int] = {}
        for row in rows.select(["symbol", *(c for c in wanted if c)]).to_pylist():
            latest[row["symbol"]] = row
            counts[row["symbol"]] = counts.get(row["symbol"], 0) + 1
        nan = float("nan")
        with self._lock:
            for symbol, row in latest.items():
                target = self._row(symbol)
                target.bars += counts[symbol]
                values = [row.get(c) if c else None for c in wanted]
                target.rsi, target.macd_hist, target.vwap = (
                    nan if v is None else v for v in values
                )

    def alerts(self, alerts: list[Alert]) -> None:
        """Remember the latest alert of each symbol."""
        if not alerts:
            return
        with self._lock:
            for alert in alerts:
                row = self._row(alert.symbol)
                row.alert = f"{alert.rule}: {alert.message}"
                row.alert_rule, row.alert_at = alert.rule, alert.bar_end
            self.recent_alerts = (self.recent_alerts + alerts)[-20:]
