"""Running a pipeline in the foreground: live table, progress bar or summary lines."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.logging import RichHandler
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from marketpulse.cli.common import console
from marketpulse.cli.failures import failure_line, made_by
from marketpulse.cli.live_table import Warmup, figures, fitted_view
from marketpulse.cli.signals import stop_on_signals
from marketpulse.exceptions import RunFailure
from marketpulse.log_repeats import flush_repeats

if TYPE_CHECKING:  # not imported at start-up: commands such as sql and report do without
    from marketpulse.indicators import DeclaredSet
    from marketpulse.kernel_progress import CompileProgress
    from marketpulse.runtime import MarketView, Metrics, MetricsSnapshot

__all__ = ["Runner", "run_in_foreground"]

logger = logging.getLogger(__name__)

_LINE_EVERY = 5.0
_REFRESH = 4  # per second
#: Seconds between looks for the first tick: its table is drawn then, not at the next refresh.
_FIRST_TICK_POLL = 0.02


class Runner(Protocol):
    """What the foreground needs of a pipeline: the embedded one and ``run --kafka``'s alike."""

    def run(self, stop: threading.Event) -> MetricsSnapshot:
        """Run until done or ``stop`` is set; return the final figures."""
        ...

    def lake_written(self) -> tuple[int, int] | None:
        """Files and bytes written to the Parquet lake (``None``: no lake)."""
        ...


def run_in_foreground(
    make_pipeline: Callable[[Callable[[int, int | None], None]], Runner],
    view: MarketView | None,
    metrics: Metrics,
    show_progress: bool,
    indicators: DeclaredSet | None = None,
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
        indicators: the declared indicators, whose warm-up the table shows.
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
    metrics.start_clock()  # the rates are the pipeline's, from its first tick (Metrics)
    done = threading.Event()
    result: list[MetricsSnapshot] = []
    failure: list[BaseException] = []
    # on a terminal, log lines print through the live display's console from the start
    logs = _logs_through(console) if interactive else contextlib.nullcontext()
    with stop_on_signals() as stop, logs:

        def work() -> None:
            try:
                result.append(pipeline.run(stop))
            except BaseException as exc:  # reported by the main thread
                failure.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=work, name="pipeline", daemon=True)
        if interactive:  # drawn before the pipeline logs a line, so that the line goes above
            shown = progress if show_progress else None
            _show_live(worker.start, done, view, indicators, metrics, shown)
        else:
            worker.start()
            _show_lines(done, metrics)
    if failure and not isinstance(failure[0], RunFailure):
        raise failure[0]
    snapshot = result[0] if result else metrics.snapshot()
    lake = pipeline.lake_written()
    # after a runtime failure too: what the command did is part of the report, the last
    # line but an error's (held-back warnings' summaries come before it)
    flush_repeats()
    console.print(snapshot.summary(read[0] if read else None, lake), soft_wrap=True)
    if failure:
        raise RunFailure(failure_line(failure[0], made_by(snapshot))) from failure[0]
    if stop.signum is not None:  # stopped cleanly by Ctrl-C or SIGTERM: 130 or 143
        raise typer.Exit(stop.exit_code)
    return snapshot


def _show_live(
    start: Callable[[], None],
    done: threading.Event,
    view: MarketView | None,
    indicators: DeclaredSet | None,
    metrics: Metrics,
    progress: Progress | None,
) -> None:
    warm: list[Warmup] = []

    def render(final: bool = False) -> RenderableType:
        snap = metrics.snapshot()
        below: list[RenderableType] = [] if progress is None else [progress]
        if not snap.ticks_in and not final:  # no table, no figures of a pipeline not started
            compiling = _compiling(snap.ticks_in)
            status = "waiting for the first tick" if compiling is None else compiling.line()
            return Group(*below, Text(status, style="dim", no_wrap=True, overflow="ellipsis"))
        if not warm:  # read off the kernels once the pipeline has them (a first run compiles)
            warm.append(Warmup.of(indicators) if view is not None else Warmup())
        if not final:  # the summary line takes the place of the running figures
            below.append(figures(snap))
        return fitted_view(console, view, warm[0], below, snap.alerts)

    with Live(render(), console=console, refresh_per_second=_REFRESH, transient=False) as live:
        start()
        ticking = False  # until the first tick, looked for often and its table drawn at once
        while not done.wait(1.0 / _REFRESH if ticking else _FIRST_TICK_POLL):
            first = not ticking and metrics.ticking
            ticking = ticking or first
            live.update(render(), refresh=first)
        live.update(render(final=True))


@contextlib.contextmanager
def _logs_through(live_console: Console) -> Iterator[None]:
    """Print the terminal's log lines through the live display's console meanwhile.

    The log handler writes to standard error, past rich's redirection of it,
    so its lines landed inside the live table; through the live display's
    console they print above it. Only a handler drawing on a terminal moves.
    """
    moved = [
        (handler, handler.console)
        for handler in logging.getLogger().handlers
        if isinstance(handler, RichHandler) and handler.console.is_terminal
    ]
    for handler, _ in moved:
        handler.console = live_console
    try:
        yield
    finally:
        for handler, own in moved:
            handler.console = own


def _compiling(ticks: int) -> CompileProgress | None:
    """The kernels' compile progress while the pipeline, without a tick yet, waits for it."""
    # imported by the processor's warm-up: not imported, no kernel is compiling
    module = sys.modules.get("marketpulse.kernel_progress")
    progress = None if module is None or ticks else module.current()
    return progress if progress is not None and progress.active else None


def _show_lines(done: threading.Event, metrics: Metrics) -> None:
    """A figures line every few seconds; while kernels compile, their progress instead."""
    next_line = time.monotonic() + _LINE_EVERY
    told = False  # the compile progress is printed at once, then in place of the figures
    while not done.wait(0.2):
        snap = metrics.snapshot()
        compiling = _compiling(snap.ticks_in)
        first = compiling is not None and not told
        if not first and time.monotonic() < next_line:
            continue
        told = told or first
        print(snap.line() if compiling is None else compiling.line(), flush=True)
        next_line = time.monotonic() + _LINE_EVERY if first else next_line + _LINE_EVERY
