"""Running a pipeline in the foreground: live table, progress bar or summary lines."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import typer
from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from marketpulse.cli.common import console
from marketpulse.cli.failures import failure_line, made_by
from marketpulse.cli.signals import stop_on_signals
from marketpulse.exceptions import RunFailure

if TYPE_CHECKING:  # not imported at start-up: commands such as sql and report do without
    from marketpulse.runtime import MarketView, Metrics, MetricsSnapshot

__all__ = ["Runner", "run_in_foreground"]

logger = logging.getLogger(__name__)

_LINE_EVERY = 5.0
_REFRESH = 4  # per second


class Runner(Protocol):
    """What the foreground needs of a pipeline: the embedded one and ``run --kafka``'s alike."""

    def run(self, stop: threading.Event) -> MetricsSnapshot:
        """Run until done or ``stop`` is set; return the final figures."""
        ...

    def lake_written(self) -> tuple[int, int] | None:
        """Files and bytes written to the Parquet lake (``None``: no lake)."""
        ...


def _fmt(value: float, spec: str) -> str:
    return "—" if value is None or math.isnan(value) else format(value, spec)


def _signed(value: float, spec: str, suffix: str = "") -> Text:
    if value is None or math.isnan(value):
        return Text("—", style="dim")
    style = "green" if value > 0 else "red" if value < 0 else ""
    return Text(format(value, spec) + suffix, style=style)


def watchlist(view: MarketView, limit: int = 60) -> Table:
    """Render the per-symbol table."""
    table = Table(title=f"MarketPulse — indicators on {view.interval} bars", expand=True)
    for name, justify in [
        ("symbol", "left"), ("last", "right"), ("chg %", "right"), ("volume", "right"),
        ("RSI", "right"), ("MACD hist", "right"), ("vs VWAP", "right"), ("last alert", "left"),
    ]:  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=name != "last alert")  # type: ignore[arg-type]
    for row in view.rows()[:limit]:
        rsi = Text(_fmt(row.rsi, ".1f"))
        if not math.isnan(row.rsi) and (row.rsi >= 70 or row.rsi <= 30):
            rsi.stylize("bold yellow")
        table.add_row(
            row.symbol,
            _fmt(row.last, ",.2f"),
            _signed(row.change_pct, "+.2f"),
            f"{row.volume:,.0f}",
            rsi,
            _signed(row.macd_hist, "+.4f"),
            _signed(row.vwap_distance_pct, "+.2f", "%"),
            Text(row.alert, overflow="ellipsis"),
        )
    return table


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


def run_in_foreground(
    make_pipeline: Callable[[Callable[[int, int | None], None]], Runner],
    view: MarketView | None,
    metrics: Metrics,
    show_progress: bool,
) -> MetricsSnapshot:
    """Run a pipeline in a worker thread and show it; Ctrl-C or SIGTERM stops it cleanly.

    After such a stop (everything accepted flushed, the summary printed) the
    command exits with 130 (Ctrl-C) or 143 (SIGTERM); a second signal exits at
    once (:mod:`marketpulse.cli.signals`). A runtime failure of the pipeline
    (storage full or lost) prints the summary too, then raises
    :class:`~marketpulse.exceptions.RunFailure` saying what was not stored.

    Args:
        make_pipeline: called with a progress callback; returns the pipeline.
        view: the market view to render as a live table (``None``: no table).
        metrics: the pipeline's metrics.
        show_progress: draw a progress bar from the feed's progress.
    """
    interactive = console.is_terminal
    progress = Progress(
        TextColumn("[bold]replay"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    )  # fmt: skip
    task = progress.add_task("replay", total=None)
    read: list[int] = []  # bytes of the file read, for the summary

    def on_progress(done: int, total: int | None) -> None:
        if total is not None:
            read[:] = [done]
        if show_progress:
            progress.update(task, completed=done, total=total)

    pipeline = make_pipeline(on_progress)
    metrics.start_clock()  # the rates are the pipeline's, not those of loading its kernels
    done = threading.Event()
    result: list[MetricsSnapshot] = []
    failure: list[BaseException] = []
    with stop_on_signals() as stop:

        def work() -> None:
            try:
                result.append(pipeline.run(stop))
            except BaseException as exc:  # reported by the main thread
                failure.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=work, name="pipeline", daemon=True)
        worker.start()
        if interactive:
            _show_live(done, view, metrics, progress if show_progress else None)
        else:
            _show_lines(done, metrics)
    if failure and not isinstance(failure[0], RunFailure):
        raise failure[0]
    snapshot = result[0] if result else metrics.snapshot()
    lake = pipeline.lake_written()
    # after a runtime failure too: what the command did is part of the report
    console.print(snapshot.summary(read[0] if read else None, lake), soft_wrap=True)
    if failure:
        raise RunFailure(failure_line(failure[0], made_by(snapshot))) from failure[0]
    if stop.signum is not None:  # stopped cleanly by Ctrl-C or SIGTERM: 130 or 143
        raise typer.Exit(stop.exit_code)
    return snapshot


def _show_live(
    done: threading.Event, view: MarketView | None, metrics: Metrics, progress: Progress | None
) -> None:
    def render(final: bool = False) -> Group:
        parts: list = []
        if view is not None:
            parts.append(watchlist(view))
        if progress is not None:
            parts.append(progress)
        if not final:  # the summary line takes the place of the running figures
            parts.append(figures(metrics.snapshot()))
        return Group(*parts)

    with Live(render(), console=console, refresh_per_second=_REFRESH, transient=False) as live:
        while not done.wait(1.0 / _REFRESH):
            live.update(render())
        live.update(render(final=True))


def _show_lines(done: threading.Event, metrics: Metrics) -> None:
    next_line = time.monotonic() + _LINE_EVERY
    while not done.wait(0.2):
        if time.monotonic() >= next_line:
            print(metrics.snapshot().line(), flush=True)
            next_line += _LINE_EVERY
