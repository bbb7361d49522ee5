"""The live view on a terminal: the watchlist, an alerts pane and the figures, fitted to it.

Nothing wraps and nothing spills: a symbol is one row, an alert one line cut
to the width, and the whole view fits the terminal's height as rich reads it
at each refresh (a resized window is fitted again). The symbols with an alert
come first (the latest first), then the busiest; a line says how many more
are not shown. At narrow widths the least telling columns go first. RSI and
MACD histogram cells show a symbol's warm-up (bars so far / bars needed) until
they have a value, and a line under the table says what the figures mean.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from marketpulse.indicators import DeclaredSet
    from marketpulse.models import Alert
    from marketpulse.runtime import MarketView, MetricsSnapshot, SymbolRow

__all__ = ["Warmup", "figures", "fitted_view"]

#: Most alerts the pane lists (the latest first), when the height allows.
_ALERT_LINES = 5
#: Fewest symbol rows kept before the alerts pane gives up lines.
_MIN_ROWS = 3


@dataclass(frozen=True, slots=True)
class Warmup:
    """How many bars the watchlist's RSI and MACD histogram need before their first value.

    ``None`` where unknown (a column not declared, or a period longer than the
    kernels were probed over).
    """

    rsi_column: str | None = None
    rsi: int | None = None
    hist_column: str | None = None
    hist: int | None = None

    @classmethod
    def of(cls, declared: DeclaredSet | None) -> Warmup:
        """Read the warm-up of the declared set's watchlist columns off the kernels."""
        if declared is None:
            return cls()
        from marketpulse.indicators import bars_needed
        from marketpulse.models import watchlist_columns  # numpy and pyarrow: not at start-up

        rsi, hist = watchlist_columns(declared.columns)
        needed = bars_needed(declared, tuple(c for c in (rsi, hist) if c))
        return cls(rsi, needed.get(rsi) if rsi else None, hist, needed.get(hist) if hist else None)

    def note(self, rows: Sequence[SymbolRow], interval: str) -> Text:
        """The line saying what the warm-up cells of ``rows`` mean."""
        parts = [
            f"{column} {bars}"
            for column, bars, value in (
                (self.rsi_column, self.rsi, "rsi"), (self.hist_column, self.hist, "macd_hist")
            )
            if column and bars and any(_cold(r, value, bars) for r in rows)
        ]  # fmt: skip
        return _line(f"warm-up, bars so far/needed: {', '.join(parts)} ({interval} bars)", "dim")


def _cold(row: SymbolRow, value: str, needed: int | None) -> bool:
    """Whether ``row``'s ``value`` shows its warm-up (no value yet, fewer bars than needed)."""
    return needed is not None and row.bars < needed and math.isnan(getattr(row, value))


def _line(text: str, style: str = "") -> Text:
    """One line of text, cut with an ellipsis where the terminal is narrower."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def _number(value: float, spec: str, suffix: str = "", signed: bool = False) -> Text:
    if value is None or math.isnan(value):
        return Text("—", style="dim")
    style = ("green" if value > 0 else "red" if value < 0 else "") if signed else ""
    return Text(format(value, spec) + suffix, style=style)


def _warming(row: SymbolRow, value: str, needed: int | None, spec: str, signed: bool) -> Text:
    if _cold(row, value, needed):
        return Text(f"{row.bars}/{needed}", style="dim")
    return _number(getattr(row, value), spec, signed=signed)


def _rsi(row: SymbolRow, warm: Warmup) -> Text:
    text = _warming(row, "rsi", warm.rsi, ".1f", signed=False)
    if not math.isnan(row.rsi) and (row.rsi >= 70 or row.rsi <= 30):
        text.stylize("bold yellow")
    return text


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    cell: Callable[[SymbolRow, Warmup], Text]
    justify: str = "right"


_COLUMNS = (
    _Column("symbol", lambda r, w: Text(r.symbol, style="bold"), "left"),
    _Column("last", lambda r, w: _number(r.last, ",.2f")),
    _Column("chg %", lambda r, w: _number(r.change_pct, "+.2f", signed=True)),
    _Column("volume", lambda r, w: Text(f"{r.volume:,.0f}")),
    _Column("RSI", _rsi),
    _Column("MACD hist", lambda r, w: _warming(r, "macd_hist", w.hist, "+.4f", signed=True)),
    _Column("vs VWAP", lambda r, w: _number(r.vwap_distance_pct, "+.2f", "%", signed=True)),
    _Column("alert", lambda r, w: Text(r.alert_rule, style="yellow"), "left"),
)
#: Columns left out at narrow widths, the first first.
_DROP_ORDER = ("alert", "vs VWAP", "volume", "chg %", "RSI", "MACD hist")


def _ordered(rows: Sequence[SymbolRow]) -> list[SymbolRow]:
    """Return the rows with an alert first (the latest first), then the busiest."""
    return sorted(rows, key=lambda r: (-r.alert_at, -r.volume, r.symbol))


def _table(rows: Sequence[SymbolRow], columns: Sequence[_Column], warm: Warmup) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    for column in columns:
        table.add_column(column.name, justify=column.justify, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(column.cell(row, warm) for column in columns))
    return table


def _fitted_table(console: Console, rows: Sequence[SymbolRow], warm: Warmup, width: int) -> Table:
    """The table of ``rows`` with as many columns as ``width`` holds, none cut."""
    columns = list(_COLUMNS)
    unbounded = console.options.update(width=10 * width)  # a measure is cut to the width given
    for name in (None, *_DROP_ORDER):
        columns = [c for c in columns if c.name != name]
        table = _table(rows, columns, warm)
        if Measurement.get(console, unbounded, table).maximum <= width:
            return table
    return table  # the symbol and its last price, cut by rich if even they do not fit


def _height(console: Console, part: RenderableType, width: int) -> int:
    return len(console.render_lines(part, console.options.update(width=width), pad=False))


def _alert_line(alert: Alert) -> Text:
    at = dt.datetime.fromtimestamp(alert.bar_end / 1e9, dt.UTC).strftime("%H:%M:%S")
    return _line(f"{at} {alert.symbol} {alert.timeframe} {alert.rule}: {alert.message}")


def _alerts_pane(alerts: Sequence[Alert], total: int, lines: int) -> list[Text]:
    if not alerts:
        return [_line("alerts: none yet", "dim")]
    shown = list(reversed(alerts))[:lines]
    head = _line(f"alerts: the latest {len(shown)} of {max(total, len(alerts)):,}", "bold")
    return [head, *(_alert_line(alert) for alert in shown)]


def fitted_view(
    console: Console,
    view: MarketView | None,
    warm: Warmup,
    below: Sequence[RenderableType],
    total_alerts: int,
) -> Group:
    """Render the view to fit the console: title, watchlist, alerts pane, then ``below``.

    Args:
        console: the console drawn on; its size is read now.
        view: the market view (``None``: only ``below``).
        warm: the warm-up of the RSI and MACD histogram columns.
        below: parts drawn under the view (a progress bar, the figures).
        total_alerts: how many alerts the run has raised.
    """
    width, height = console.size
    room = height - 1 - sum(_height(console, part, width) for part in below)  # the cursor's line
    if view is None:
        return Group(*below)
    rows = _ordered(view.rows())
    alerts = list(view.recent_alerts)
    title = _line(f"MarketPulse — {len(rows)} symbols, indicators on {view.interval} bars", "bold")
    overhead = 1 + _height(console, _table([], _COLUMNS[:1], warm), width)  # title, header
    pane_lines = min(len(alerts), _ALERT_LINES)
    while True:
        pane = _alerts_pane(alerts, total_alerts, pane_lines)
        shown, notes = _rows_for(rows, room - overhead - len(pane), warm, view.interval)
        if len(shown) >= min(_MIN_ROWS, len(rows)) or pane_lines <= 1:
            break
        pane_lines -= 1
    parts: list[RenderableType] = [title, _fitted_table(console, shown, warm, width)]
    if len(shown) < len(rows):
        parts.append(_line(f"+ {len(rows) - len(shown)} more symbols not shown", "dim"))
    return Group(*parts, *notes, *pane, *below)


def _rows_for(
    rows: Sequence[SymbolRow], lines: int, warm: Warmup, interval: str
) -> tuple[Sequence[SymbolRow], list[Text]]:
    """The rows that fit in ``lines`` beside the "more" line, and the warm-up note they need."""
    shown = _first(rows, lines)
    if not _warms(shown, warm):
        return shown, []
    shown = _first(rows, lines - 1)
    return shown, [warm.note(shown, interval)] if _warms(shown, warm) else []


def _first(rows: Sequence[SymbolRow], lines: int) -> Sequence[SymbolRow]:
    """The first rows that fit in ``lines``, one of them the "more" line if not all do."""
    return rows if len(rows) <= lines else rows[: max(lines - 1, 0)]


def _warms(rows: Sequence[SymbolRow], warm: Warmup) -> bool:
    """Whether a row shows a warm-up cell."""
    return any(_cold(r, "rsi", warm.rsi) or _cold(r, "macd_hist", warm.hist) for r in rows)


def figures(snap: MetricsSnapshot) -> Text:
    """Render the pipeline figures."""
    latency = (
        f"{snap.latency_p50_ms:.1f} / {snap.latency_p99_ms:.1f} ms"
        if snap.latency_p50_ms is not None
        else "—"
    )
    return Text.assemble(
        ("ticks/s in ", "dim"), (f"{snap.ticks_per_s:,.0f}", "bold"),
        ("   bars/s out ", "dim"), (f"{snap.bars_per_s:,.0f}", "bold"),
        ("   tick→indicator p50/p99 ", "dim"), (latency, "bold"),
        ("   DLQ ", "dim"), (f"{snap.dlq:,}", "bold red" if snap.dlq else "bold"),
        ("   alerts ", "dim"), (f"{snap.alerts:,}", "bold"),
        ("   ticks ", "dim"), (f"{snap.ticks_in:,}", ""),
        ("   (Ctrl-C to stop)", "dim"),
    )  # fmt: skip
