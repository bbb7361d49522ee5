"""Progress of a long computation: a bar on a terminal, a line per tenth elsewhere."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from marketpulse.cli.common import err_console

__all__ = ["work_progress"]


@contextlib.contextmanager
def work_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A callback taking (done, total) that shows how far ``label`` has got, on stderr.

    On a terminal a transient bar with the time remaining; otherwise (a pipe, a
    log file) a line each time another tenth is done.
    """
    if err_console.is_terminal:
        progress = Progress(
            TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=err_console, transient=True,
        )  # fmt: skip
        task = progress.add_task(label, total=None)
        with progress:
            yield lambda done, total: progress.update(task, completed=done, total=total)
        return
    shown = [0]

    def line(done: int, total: int) -> None:
        tenth = done * 10 // total if total else 0
        if tenth > shown[0]:
            shown[0] = tenth
            err_console.print(f"{label}: {tenth * 10} % ({done:,} of {total:,})", highlight=False)

    yield line
