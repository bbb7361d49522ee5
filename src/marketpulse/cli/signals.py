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

    Only the main thread can take signals; elsewhere (a test calling a command
    in a thread) the event is yielded without handlers.
    """
    stop = StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    told = threading.Event()  # the watcher logs outside the handler (logging takes locks)

    def handler(signum: int, frame: object) -> None:
        if stop.signum is not None:
            name = _NAMES.get(signum, f"signal {signum}")
            # os.write and os._exit are safe in a handler; a clean stop is already under way
            os.write(2, f"{name} again: exiting at once without flushing\n".encode())
            os._exit(exit_code(signum))
        stop.signum = signum
        stop.set()
        told.set()

    def watch() -> None:
        told.wait()
        if stop.signum is not None:
            logger.warning(
                "%s: stopping and flushing what was accepted (%s again quits at once)",
                _NAMES.get(stop.signum, f"signal {stop.signum}"), _NAMES[signal.SIGINT],
            )  # fmt: skip

    watcher = threading.Thread(target=watch, name="signals", daemon=True)
    watcher.start()
    previous = {s: signal.signal(s, handler) for s in _SIGNALS}
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        told.set()
        watcher.join(timeout=1)
