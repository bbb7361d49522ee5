"""Give the heap's free memory back to the operating system now and then (glibc's ``malloc_trim``).

While a consumer is behind, librdkafka's threads hold up to
``queued.max.messages.kbytes`` of fetched records, and a producer waiting for
the broker holds its queue; once they catch up the buffers are freed, but glibc
keeps the pages of its per-thread arenas, so a backlog's peak stayed in the
resident size for the rest of a run (``run --kafka`` at 20,000 trades/s on a
busy machine: 670 MB before a minute of backlog, 770 MB for the 20 minutes
after). ``malloc_trim(0)`` returns the free pages of every arena. One daemon
thread per process calls it every :data:`INTERVAL_S` seconds; where the C
library is not glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Callable

__all__ = ["INTERVAL_S", "start_trimming", "trim"]

logger = logging.getLogger(__name__)

#: Seconds between two trims: a trim of a large heap takes a few milliseconds, and
#: what it gives back a busy process takes again (RSS falls, then climbs back up).
INTERVAL_S = 120.0

_started = threading.Lock()
_thread: threading.Thread | None = None
#: Set to end the thread (it runs for the life of the process otherwise).
_stopping = threading.Event()


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None


_TRIM = _malloc_trim()


def trim() -> bool:
    """Return the heap's free pages to the system now; whether anything could be done."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


def start_trimming(interval: float = INTERVAL_S) -> bool:
    """Start the process's trimming thread, unless it runs already; whether it runs."""
    global _thread
    if _TRIM is None:
        return False
    with _started:
        if _thread is None:
            _thread = threading.Thread(
                target=_every, args=(interval,), name="heap-trim", daemon=True
            )
            _thread.start()
            logger.debug("heap trim every %.0f s", interval)
    return True


def _every(interval: float) -> None:
    stopping = _stopping
    while not stopping.wait(interval):
        trim()
