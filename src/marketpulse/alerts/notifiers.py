"""Notifiers: where alerts go besides the ``alerts`` topic."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol

import msgspec

from marketpulse.models import Alert

__all__ = ["JsonLinesNotifier", "Notifier", "Notifiers"]

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    """Something that delivers alerts."""

    def notify(self, alerts: Sequence[Alert]) -> None:
        """Deliver one batch of alerts."""
        ...

    def close(self) -> None:
        """Release what the notifier holds."""
        ...


class Notifiers:
    """Several notifiers as one: each gets every batch, in order; closing closes them all.

    Args:
        notifiers: the notifiers.
    """

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self.notifiers = list(notifiers)

    def notify(self, alerts: Sequence[Alert]) -> None:
        """Pass ``alerts`` to each notifier."""
        for notifier in self.notifiers:
            notifier.notify(alerts)

    def close(self) -> None:
        """Close each notifier."""
        for notifier in self.notifiers:
            notifier.close()


class JsonLinesNotifier:
    """Append alerts to a file, one JSON object per line, each alert once.

    The parent directories are created at once; the file is opened on the
    first batch, in append mode, and flushed after each batch. An alert whose
    ``id`` (its rule, symbol, interval and bar time) is in the file already
    is not written again, so a replay run twice (or again after a crash)
    leaves each alert once; a last line cut short by a crash is dropped first.
    Several processes may append to one file at once (two replays, a replay
    beside a ``run``): each batch is written under an exclusive ``flock`` of
    the file, after reading the lines the others appended since.

    Args:
        path: the file to append to.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = None
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(_Id)
        self._written: set[str] = set()
        self._read = 0  # bytes of the file whose ids are in _written

    def notify(self, alerts: Sequence[Alert]) -> None:
        """Append the ``alerts`` not in the file yet, and flush."""
        if not alerts:
            return
        if self._file is None:
            self._file = self.path.open("a+b")  # read too: the lines others appended
            self._written, self._read = set(), 0  # the file may have changed since close
        fd = self._file.fileno()
        # the check and the append are one step for every writer of the file: another
        # process's alerts are read before deciding what is new
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            self._read_appended(fd)
            written = self._written
            new = [a for a in alerts if a.id not in written]
            if new:
                self._file.write(self._encoder.encode_lines(new))
                self._file.flush()
                written.update(a.id for a in new)
                self._read = os.fstat(fd).st_size
                logger.debug("wrote %d alerts to %s", len(new), self.path)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the file (a later batch opens it again)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> JsonLinesNotifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _read_appended(self, fd: int) -> None:
        """Add the ids of the lines appended since the last read; drop a line cut short.

        Called with the file locked: every writer appends whole lines under
        the lock, so a last line without its newline was cut short by a crash.
        """
        size = os.fstat(fd).st_size
        if size < self._read:  # truncated or replaced by someone: read it all again
            self._written, self._read = set(), 0
        text = os.pread(fd, size - self._read, self._read) if size > self._read else b""
        complete = text.rfind(b"\n") + 1
        if complete < len(text):
            logger.warning("%s: dropping a last line cut short (%d bytes)", self.path,
                           len(text) - complete)  # fmt: skip
            os.ftruncate(fd, self._read + complete)
        for line in text[:complete].splitlines():
            ident = self._id(line)
            if ident is not None:
                self._written.add(ident)
        self._read += complete

    def _id(self, line: bytes) -> str | None:
        if not line.strip():
            return None
        try:
            return self._decoder.decode(line).id
        except msgspec.DecodeError:
            logger.warning("%s: a line that is not an alert, left as it is", self.path)
            return None


class _Id(msgspec.Struct):
    id: str | None = None
