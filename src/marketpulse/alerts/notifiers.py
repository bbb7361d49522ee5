"""Notifiers: where alerts go besides the ``alerts`` topic."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol

import msgspec

from marketpulse.models import Alert

__all__ = ["JsonLinesNotifier", "Notifier"]

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    """Something that delivers alerts."""

    def notify(self, alerts: Sequence[Alert]) -> None:
        """Deliver one batch of alerts."""
        ...

    def close(self) -> None:
        """Release what the notifier holds."""
        ...


class JsonLinesNotifier:
    """Append alerts to a file, one JSON object per line.

    The parent directories are created at once; the file is opened on the
    first batch, in append mode, and flushed after each batch.

    Args:
        path: the file to append to.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = None
        self._encoder = msgspec.json.Encoder()

    def notify(self, alerts: Sequence[Alert]) -> None:
        """Append ``alerts`` and flush."""
        if not alerts:
            return
        if self._file is None:
            self._file = self.path.open("ab")
        self._file.write(self._encoder.encode_lines(alerts))
        self._file.flush()
        logger.debug("wrote %d alerts to %s", len(alerts), self.path)

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
