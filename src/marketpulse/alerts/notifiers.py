"""Notifiers: where alerts go besides the ``alerts`` topic."""

from __future__ import annotations

import logging
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

    Args:
        path: the file to append to.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = None
        self._encoder = msgspec.json.Encoder()
        self._written: set[str] | None = None

    def notify(self, alerts: Sequence[Alert]) -> None:
        """Append the ``alerts`` not in the file yet, and flush."""
        if self._written is None:
            self._written = _written_ids(self.path)
        written = self._written
        new = [a for a in alerts if a.id not in written]
        if not new:
            return
        if self._file is None:
            self._file = self.path.open("ab")
        self._file.write(self._encoder.encode_lines(new))
        self._file.flush()
        written.update(a.id for a in new)
        logger.debug("wrote %d alerts to %s", len(new), self.path)

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


class _Id(msgspec.Struct):
    id: str | None = None


def _written_ids(path: Path) -> set[str]:
    """The ids of the alerts in ``path``; a last line without its newline is cut off."""
    try:
        with path.open("rb+") as file:
            text = file.read()
            complete = text.rfind(b"\n") + 1
            if complete < len(text):
                logger.warning("%s: dropping a last line cut short (%d bytes)", path,
                               len(text) - complete)  # fmt: skip
                file.truncate(complete)
    except FileNotFoundError:
        return set()
    decoder = msgspec.json.Decoder(_Id)
    ids = set()
    for number, line in enumerate(text[:complete].splitlines(), 1):
        try:
            ident = decoder.decode(line).id if line.strip() else None
        except msgspec.DecodeError:
            logger.warning("%s:%d: not an alert, left as it is", path, number)
            continue
        if ident is not None:
            ids.add(ident)
    return ids
