"""The driver's standard error without the notices of Spark's start (Ivy) and Python workers.

A local driver's JVM and the Python workers it starts write to this
process's standard error: Ivy's report of resolving the Kafka connector (a
screenful at every start) and the stateful operator's Python worker's
"Streaming TransformWithStateInPandas Python worker ..." lines. While
:class:`QuietStderr` is open, file descriptor 2 (this process's and the
children's it starts) is a pipe that a thread copies to the terminal,
leaving those lines out; everything else, warnings and errors included, goes
through unchanged and in order. Once the command stops the query (its
``stopped`` event set), the JVM's threads it interrupts print their stack
traces (a state server's closed socket, an interrupted micro-batch): those
are left out too, as the command says the micro-batch runs again. So is the
traceback of a Python worker that connected back after Spark stopped waiting
for it (``[CANNOT_OPEN_SOCKET]``): the command restarts the query and says so.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType

__all__ = ["QuietStderr", "is_notice", "quiet_start"]

#: Lines of a successful start's report: Ivy's resolution (its tab-indented lines and
#: table), the operator's Python worker's prints, and the blank lines between them.
_NOTICE = re.compile(
    r"^(?:"
    r":: (?:loading settings|resolving dependencies|resolution report|retrieving) ::"
    r"|Ivy Default Cache set to:|The jars for the packages stored in:"
    r"|\S+#\S+ added as a dependency$"
    r"|\t(?:confs:|found |:: modules in use:|\S+#\S+;\S+ from |-{10,}|\|"
    r"|\d+ artifacts copied|downloading |\[SUCCESSFUL \])"
    r"|(?:Starting )?Streaming TransformWithStateInPandas Python worker"
    r"|\s*$"
    r")"
)
#: Words that keep a line however it starts: a failed resolution or start says why.
_KEEP = re.compile(r"unresolved|error|exception|warn|fail|not found", re.IGNORECASE)


#: The JVM's notice that Spark uses an incubating module (a warning of no use to a user).
_INCUBATOR = "WARNING: Using incubator modules: "
#: Lines of a JVM thread's uncaught exception: its first line, frames, causes.
_JVM_TRACE = re.compile(r"^(?:Exception in thread \"|\s+at \S|\s+\.\.\. \d+ more|Caused by: )")


#: A Python traceback's first line, and the error that ends the one of a Python worker
#: that connected back after the 10 s Spark waits (the command says it restarted).
_PYTHON_TRACE = "Traceback (most recent call last):"
_LATE_WORKER = "[CANNOT_OPEN_SOCKET]"


def is_notice(line: str) -> bool:
    """Whether ``line`` is one of the start's notices :class:`QuietStderr` leaves out."""
    return line.startswith(_INCUBATOR) or (bool(_NOTICE.match(line)) and not _KEEP.search(line))


class QuietStderr:
    """Standard error (descriptor 2) through a filter of :func:`is_notice` lines, while open."""

    def __init__(self, stopped: threading.Event | None = None) -> None:
        self._stopped = stopped
        self._terminal: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> QuietStderr:
        sys.stderr.flush()
        self._terminal = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._thread = threading.Thread(
            target=self._copy, args=(read, self._terminal), name="quiet-stderr", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        sys.stderr.flush()
        assert self._terminal is not None and self._thread is not None
        os.dup2(self._terminal, 2)  # this process writes to the terminal again
        # the JVM and its workers hold the pipe until they exit: what they wrote by now
        # is copied within a moment; the thread copies what comes later, to the end
        self._thread.join(0.5)

    def _copy(self, read: int, terminal: int) -> None:
        held: list[bytes] = []  # a Python traceback, until its last line says whose it is
        with os.fdopen(read, "rb") as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", "replace")
                if held or line.startswith(_PYTHON_TRACE):
                    held.append(raw)
                    if len(held) == 1 or line[:1].isspace():
                        continue
                    if _LATE_WORKER not in line:  # not a worker Spark gave up on: shown
                        os.write(terminal, b"".join(held))
                    held.clear()
                    continue
                if is_notice(line) or self._stopping() and bool(_JVM_TRACE.match(line)):
                    continue
                os.write(terminal, raw)
        if held:  # the stream ended inside a traceback: shown as it came
            os.write(terminal, b"".join(held))

    def _stopping(self) -> bool:
        return self._stopped is not None and self._stopped.is_set()


def quiet_start(stopped: threading.Event | None = None) -> AbstractContextManager[object]:
    """A :class:`QuietStderr` for a driver this process starts (``stopped``: its stop event).

    Nothing under ``spark-submit`` (its JVM runs already) or with
    ``MARKETPULSE_TRACEBACK`` set (every line shown).
    """
    if os.environ.get("MARKETPULSE_TRACEBACK") or "PYSPARK_GATEWAY_PORT" in os.environ:
        return nullcontext()
    return QuietStderr(stopped)
