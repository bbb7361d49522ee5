"""What the database sinks share: which tables they keep, and when a batch is due."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable

import pyarrow as pa

from marketpulse.sinks.base import TABLES, Sink

__all__ = ["BatchingSink"]


class BatchingSink(Sink):
    """A sink that stores some of the tables and sends their rows in batches.

    A batch is due when a table's buffer holds ``max_rows`` rows or the oldest
    buffered row has waited ``max_age_s`` seconds. Subclasses buffer in
    :meth:`write` after :meth:`_stores` said yes, call :meth:`_buffered`, and
    reset :attr:`_since` once everything buffered is sent.
    """

    def __init__(
        self, tables: tuple[str, ...], max_rows: int, max_age_s: float, clock: Callable[[], float]
    ) -> None:
        if max_rows < 1 or max_age_s < 0:
            raise ValueError("max_rows must be >= 1 and max_age_s >= 0")
        self.tables = tables
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self._clock = clock
        self._since: float | None = None
        self._closed = False

    def due(self, now: float | None = None) -> bool:
        """Return whether a buffer is full or older than ``max_age_s``."""
        if self._since is None:
            return False
        now = self._clock() if now is None else now
        return now - self._since >= self.max_age_s or self._largest() >= self.max_rows

    def _stores(self, table: str, data: pa.Table | pa.RecordBatch) -> bool:
        """Check a write; return whether its rows are to be kept (a stored table, rows)."""
        if self._closed:
            raise ValueError(f"write to a closed {type(self).__name__}")
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r} (known: {', '.join(TABLES)})")
        return table in self.tables and data.num_rows > 0

    def _buffered(self) -> None:
        """Note that rows were buffered; flush when a buffer is full."""
        if self._since is None:
            self._since = self._clock()
        if self._largest() >= self.max_rows:
            self.flush()

    @abstractmethod
    def _largest(self) -> int:
        """Rows in the fullest buffer."""
