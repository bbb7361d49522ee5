"""Ctrl-C and SIGTERM for every long-running command: a clean stop, then a quick one.

The first SIGINT (Ctrl-C) or SIGTERM sets a stop event that the command's
loops wait on: the command stops cleanly, flushing what it accepted, and
exits with ``128 + signal number`` (130 after Ctrl-C, 143 after SIGTERM), the
convention of shells and service managers for a process ended by a signal.
A second signal while it stops exits at once, with the same code, without
flushing and without a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator

__all__ = ["StopSignal", "exit_code", "stop_on_signals"]

logger = logging.getLogger(__name__)

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class StopSignal(threading.Event):
    """A stop event that remembers the signal which set it.

    Attributes:
        signum: the first signal received (``None``: none; the event may
            still be set by other means, a deadline for instance).
    """

    def __init__(self) -> None:
        super().__init__()
        self.signum: int | None = None

    @property
    def exit_code(self) -> int:
        """The exit code of a command that stopped on this signal (0 without one)."""
        return exit_code(self.signum)


def exit_code(signum: int | None) -> int:
    """Return ``128 + signum`` (130 for SIGINT, 143 for SIGTERM), or 0 for no signal."""
    return 0 if signum is None else 128 + signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopSignal]:
    """Yield an event that the first SIGINT or SIGTERM sets; a second one exits at once.

    Python runs a signal's handler in the main thread, and only once that thread
    runs Python code again: a signal the kernel hands to another thread while the
    main one waits in C (a long sleep, a client's flush) would wait with it. So
    the signals are also written to a wake-up pipe (``signal.set_wakeup_fd``),
    whichever thread takes them, and a watcher thread, which the signals never
    go to, reads it: it logs the first and exits at once on the second.

    Only the main thread can take signals; elsewhere (a test calling a command
    in a thread) the event is yielded without handlers.
    """
    stop = StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if stop.signum is not None:
            _exit_at_once(signum)
        stop.signum = signum
        stop.set()

    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    watcher = threading.Thread(target=_watch, args=(read_end,), name="signals", daemon=True)
    watcher.start()
    previous = {s: signal.signal(s, handler) for s in _SIGNALS}
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    try:
        yield stop
    finally:
        signal.set_wakeup_fd(previous_fd)
        for signum, old in previous.items():
            signal.signal(signum, old)
        os.close(write_end)  # the watcher reads the end of the pipe and returns
        watcher.join(timeout=1)
        if not watcher.is_alive():
            os.close(read_end)


def _exit_at_once(signum: int) -> None:
    name = _NAMES.get(signum, f"signal {signum}")
    # os.write and os._exit are safe anywhere; a clean stop is already under way
    os.write(2, f"{name} again: exiting at once without flushing\n".encode())
    os._exit(exit_code(signum))


def _watch(read_end: int) -> None:
    """Read the signals written to the wake-up pipe: log the first, exit on the second."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # the kernel hands them to others
    first: int | None = None
    while data := os.read(read_end, 64):
        for signum in data:
            if signum not in _NAMES:
                continue
            if first is not None:
                _exit_at_once(signum)
            first = signum
            logger.warning(
                "%s: stopping and flushing what was accepted (%s again quits at once)",
                _NAMES[signum], _NAMES[signal.SIGINT],
            )  # fmt: skip
