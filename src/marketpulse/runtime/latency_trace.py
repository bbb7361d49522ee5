"""Where the process service's latency goes: one line per stage, for the benchmark.

When the environment variable ``MARKETPULSE_PROCESS_TRACE`` names a file, the
process service appends to it, as JSON lines, the wall clock (``time.time_ns()``)
of each stage an output passes through:

* ``{"o": [partition, bar_end, poll_ns, record_ms, sent_ns]}`` for each send
  of bars: the latest ``bar_end`` they hold (ns), when the poll that brought
  their input returned, the Kafka timestamp of that input's last record (ms;
  the broker's append time on a topic with ``message.timestamp.type=LogAppendTime``)
  and when the outputs had been handed to the producer;
* ``{"c": [start_ns, offsets_ns, end_ns, outputs]}`` for each commit: when it
  began, when the offsets (and the state) were in the transaction, when it
  returned, and whether it held outputs (never, at least once: the outputs
  went out before it, outside the transaction).

``bench/bench_kafka_latency.py`` joins them with the produce stamps and the
reader's arrival times. It is off (and costs nothing) otherwise.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import IO

from marketpulse.exceptions import ConfigError

__all__ = ["TRACE_ENV", "Trace", "trace_from_env"]

#: The environment variable naming the trace file.
TRACE_ENV = "MARKETPULSE_PROCESS_TRACE"


class Trace:
    """Appends stage times to a file (see the module docstring).

    Args:
        path: the file (appended to; lines are flushed in groups).
    """

    def __init__(self, path: str) -> None:
        self._out: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._lines: list[str] = []
        self._lock = threading.Lock()
        #: When the last poll returned (``time.time_ns()``).
        self.poll_ns = 0

    def polled(self) -> None:
        """Note that a poll returned now."""
        self.poll_ns = time.time_ns()

    def output(self, partition: int, bar_end: int, record_ms: int) -> None:
        """Note that bars ending at ``bar_end`` were handed to the producer now."""
        line = json.dumps({"o": [partition, bar_end, self.poll_ns, record_ms, time.time_ns()]})
        with self._lock:
            self._lines.append(line)

    def commit(self, start_ns: int, offsets_ns: int, outputs: bool) -> None:
        """Note a commit that began at ``start_ns`` and returned now."""
        line = json.dumps({"c": [start_ns, offsets_ns, time.time_ns(), outputs]})
        with self._lock:
            self._lines.append(line)
            if len(self._lines) >= 256:
                self._flush()

    def _flush(self) -> None:
        if self._lines:
            self._out.write("\n".join(self._lines) + "\n")
            self._out.flush()
            self._lines = []

    def close(self) -> None:
        """Write what is left and close the file."""
        with self._lock:
            self._flush()
            self._out.close()


def trace_from_env() -> Trace | None:
    """The trace ``MARKETPULSE_PROCESS_TRACE`` asks for, else ``None``.

    Raises:
        ConfigError: the file cannot be opened for appending.
    """
    path = os.environ.get(TRACE_ENV, "").strip()
    if not path:
        return None
    try:
        return Trace(path)
    except OSError as exc:
        raise ConfigError(f"{TRACE_ENV}: cannot write {path}: {exc.strerror}") from None
