"""Rate limiting of repeated warnings: the first few through, then a count.

A broker or a vendor that stays away makes its clients report every failed
attempt, thousands of identical lines an hour. :class:`RepeatFilter`, which
``configure_logging`` puts on the handler of every command, lets the first
``burst`` warnings of a kind through in each ``period`` and counts the rest;
when the period is over (or at exit) one summary record says how many were
left out. Records of a kind come from one logger at one level and differ in
their numbers alone (ports, counts, milliseconds, client ids): "connect to
127.0.0.1:9092 failed (after 3 ms)" and "... (after 5 ms)" are the same kind.
Records below WARNING (progress lines) always pass.
"""

from __future__ import annotations

import atexit
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RepeatFilter", "flush_repeats", "limit_repeats"]

_NUMBER = re.compile(r"\d+")
#: Most kinds remembered; the oldest quiet ones are forgotten beyond it.
_MAX_KINDS = 1024


@dataclass(slots=True)
class _Kind:
    start: float  # when this kind's period began
    passed: int = 0
    suppressed: int = 0
    last: logging.LogRecord | None = None  # the last record left out


class RepeatFilter(logging.Filter):
    """Let ``burst`` records of a kind through per ``period`` seconds; summarise the rest.

    Summary records are copies of the last record left out, their message
    followed by the count, with the attributes ``repeats`` (records left out)
    and ``repeat_period`` (seconds they were counted over). They are handed
    to ``emit`` (set it to the handler's ``handle``; without it they are
    dropped), and so pass through this filter again untouched.

    Args:
        burst: records of one kind let through in each period.
        period: the length of a period, in seconds.
        level: records below this level always pass.
        clock: monotonic seconds (injected by tests).
    """

    def __init__(
        self,
        burst: int = 5,
        period: float = 60.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if burst < 1 or not period > 0:
            raise ValueError("a repeat filter needs burst >= 1 and a positive period")
        self.burst = burst
        self.period = period
        self.level = level
        self.clock = clock
        self.emit: Callable[[logging.LogRecord], object] | None = None
        self._kinds: dict[tuple[str, int, str], _Kind] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether ``record`` goes out (summaries due meanwhile are emitted first)."""
        if record.levelno < self.level or hasattr(record, "repeats"):
            return True
        key = (record.name, record.levelno, _NUMBER.sub("#", record.getMessage()))
        now = self.clock()
        with self._lock:
            due = self._sweep(now) if now >= self._next_sweep else []
            kind = self._kinds.get(key)
            if kind is not None and now - kind.start >= self.period:
                if kind.suppressed:
                    due.append(self._summary(kind, now))
                kind = None
            if kind is None:
                kind = self._kinds[key] = _Kind(start=now)
                self._forget_oldest()
            if kind.passed < self.burst:
                kind.passed += 1
                keep = True
            else:
                kind.suppressed += 1
                kind.last = record
                keep = False
        self._emit(due)
        return keep

    def flush(self) -> None:
        """Emit the summaries of every kind with records left out (at exit)."""
        now = self.clock()
        with self._lock:
            due = [self._summary(k, now) for k in self._kinds.values() if k.suppressed]
            self._kinds.clear()
        self._emit(due)

    def _sweep(self, now: float) -> list[logging.LogRecord]:
        """Close the periods that are over: summaries of the kinds that went quiet."""
        self._next_sweep = now + min(1.0, self.period)
        due = []
        for key, kind in list(self._kinds.items()):
            if now - kind.start >= self.period:
                if kind.suppressed:
                    due.append(self._summary(kind, now))
                del self._kinds[key]
        return due

    def _forget_oldest(self) -> None:
        while len(self._kinds) > _MAX_KINDS:
            key = next(iter(self._kinds))
            del self._kinds[key]

    def _summary(self, kind: _Kind, now: float) -> logging.LogRecord:
        last = kind.last
        assert last is not None
        summary = logging.makeLogRecord(last.__dict__)
        seconds = max(now - kind.start, 0.0)
        summary.msg = "%s [repeated %s more times in the last %.0f s]"
        summary.args = (last.getMessage(), f"{kind.suppressed:,}", seconds)
        summary.exc_info = summary.exc_text = None
        summary.repeats = kind.suppressed
        summary.repeat_period = seconds
        kind.suppressed = 0
        return summary

    def _emit(self, records: list[logging.LogRecord]) -> None:
        if self.emit is None:
            return
        for record in records:
            self.emit(record)


_installed: list[RepeatFilter] = []


def limit_repeats(handler: logging.Handler) -> RepeatFilter:
    """Put a :class:`RepeatFilter` on ``handler``; its summaries left at exit are emitted then."""
    repeats = RepeatFilter()
    repeats.emit = handler.handle
    handler.addFilter(repeats)
    if not _installed:  # once per process: logging's own exit hook runs after this one
        atexit.register(_flush_installed)
    _installed[:] = [repeats]  # a command configures logging once; tests do it again and again
    return repeats


def flush_repeats() -> None:
    """Emit the summaries still held, e.g. before a command's closing error line."""
    for repeats in _installed:
        repeats.flush()


_flush_installed = flush_repeats
