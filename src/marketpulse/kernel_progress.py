"""Which numba kernels a start-up needs, and how many of them numba has compiled so far.

On a first run (an empty kernel cache) the processor's warm-up compiles its
kernels for tens of seconds; later runs load them in tenths. The kernels a
run needs are known before they compile: the ones the processor calls from
Python (its *entry* kernels, chosen by the run's settings) and, read off
their code, the kernels those call in turn. :func:`compiling` counts numba's
compiles of the package's kernels meanwhile, so that the command line can say
``compiling kernels: 7/28`` instead of showing an idle pipeline, and
:func:`current` is what it reads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any

from numba.core import event
from numba.core.dispatcher import Dispatcher

__all__ = ["CompileProgress", "compiling", "current", "needed", "uncached"]

_PACKAGE = "marketpulse."


@dataclass(frozen=True, slots=True)
class CompileProgress:
    """How far a warm-up's compiles have come.

    Attributes:
        done: kernels compiled so far (in this process, or by another into the cache).
        total: kernels to compile: those needed and not in the cache, plus any
            other kernel of the package that compiled meanwhile.
        finished: whether the warm-up is over.
    """

    done: int
    total: int
    finished: bool

    @property
    def active(self) -> bool:
        """Whether kernels are being compiled now."""
        return not self.finished and self.total > 0

    def line(self) -> str:
        """Render as the line shown while kernels compile."""
        return f"compiling kernels: {self.done}/{self.total} (first run only; later runs load them)"


def needed(entries: Iterable[Any]) -> set[Dispatcher]:
    """Return ``entries`` and every kernel they call, read off their code.

    Kernels inlined into their callers (``inline="always"``) are compiled as
    part of them, not on their own: they are walked but not returned.
    """
    found: set[Dispatcher] = set()
    walked: set[int] = set()
    todo = [entry for entry in entries if isinstance(entry, Dispatcher)]
    while todo:
        kernel = todo.pop()
        if id(kernel) in walked:
            continue
        walked.add(id(kernel))
        if kernel.targetoptions.get("inline") != "always":
            found.add(kernel)
        names = _names(kernel.py_func.__code__)
        scope = kernel.py_func.__globals__
        todo.extend(scope[n] for n in names if isinstance(scope.get(n), Dispatcher))
    return found


def _names(code: CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _names(const)
    return names


def uncached(kernels: Iterable[Dispatcher]) -> set[Dispatcher]:
    """Return the kernels of ``kernels`` without an entry in numba's cache yet."""
    return {kernel for kernel in kernels if not _cached(kernel)}


def _cached(kernel: Dispatcher) -> bool:
    # numba's cache index of the kernel, wherever the locator in force puts it (none
    # for a kernel without cache=True: it compiles in every process)
    index = getattr(getattr(kernel._cache, "_cache_file", None), "_index_path", None)
    return index is not None and Path(index).exists()


class _Counter(event.Listener):
    """Counts the package's kernels numba compiles, by numba's compile events."""

    def __init__(self, expected: set[Dispatcher]) -> None:
        self.expected = expected
        self.compiled: set[Dispatcher] = set()
        #: expected kernels found in the cache since: compiled by another process
        self.found: set[Dispatcher] = set()
        self.finished = False
        self._lock = threading.Lock()

    def on_start(self, ev: event.Event) -> None:
        """Nothing: a kernel counts once compiled."""

    def on_end(self, ev: event.Event) -> None:
        """Count a compiled kernel of the package."""
        kernel = ev.data["dispatcher"]
        if getattr(kernel.py_func, "__module__", "").startswith(_PACKAGE):
            with self._lock:
                self.compiled.add(kernel)

    def progress(self) -> CompileProgress:
        with self._lock:
            # those another process compiled meanwhile (compile_aside) are in the cache
            self.found |= {k for k in self.expected - self.compiled - self.found if _cached(k)}
            done = len(self.compiled | self.found)
            total = len(self.expected | self.compiled)
        return CompileProgress(done, total, self.finished)


_current: _Counter | None = None


def current() -> CompileProgress | None:
    """Return the progress of this process's latest warm-up (``None``: none started)."""
    counter = _current
    return None if counter is None else counter.progress()


@contextmanager
def compiling(entries: Iterable[Any]) -> Iterator[CompileProgress]:
    """Count the compiles of the kernels ``entries`` need, while the block runs.

    Yields the progress at the start: its ``total`` is what is expected to compile.
    """
    global _current
    counter = _Counter(uncached(needed(entries)))
    event.register("numba:compile", counter)
    _current = counter
    try:
        yield counter.progress()
    finally:
        event.unregister("numba:compile", counter)
        counter.finished = True
