"""Errors of the sinks.

MarketPulseError
└── SinkError                 a sink cannot write
    ├── SinkUnavailableError  the storage cannot be reached (after retrying)
    │   └── StorageLostError  ... while the command ran: rows were not stored (a RunFailure)
    ├── StorageFullError      the lake's disk is full: rows were not stored (a RunFailure)
    └── SchemaMismatchError   a table differs from what the sink writes (names table, column)

A :class:`StoreFailedError` (the two that are :class:`~marketpulse.exceptions.RunFailure`)
happens after the command started: it ends with exit code 1 and the command's summary,
which says what was stored (:attr:`StoreFailedError.stored`).
"""

from __future__ import annotations

import errno
from collections.abc import Mapping

from marketpulse.exceptions import MarketPulseError, RunFailure

__all__ = [
    "SchemaMismatchError",
    "SinkError",
    "SinkUnavailableError",
    "StorageFullError",
    "StorageLostError",
    "StoreFailedError",
]


class SinkError(MarketPulseError):
    """A sink cannot write to its storage."""


class SinkUnavailableError(SinkError):
    """The storage could not be reached within the sink's retry budget."""


class SchemaMismatchError(SinkError):
    """A table in the storage does not have the columns the sink writes."""


class StoreFailedError(SinkError, RunFailure):
    """Rows could not be stored while the command ran; what was stored stays.

    Args:
        message: one line saying where and why.
        storage: the storage's name for people (``the lake``, ``PostgreSQL``).

    Attributes:
        stored: rows the sink stored before it stopped, per table (``None``: not
            known yet; the service that ran the sink sets it once the sink is closed).
    """

    def __init__(self, message: str, storage: str) -> None:
        super().__init__(message)
        self.storage = storage
        self.stored: Mapping[str, int] | None = None


class StorageFullError(StoreFailedError, OSError):
    """The filesystem under the lake has no space (or quota) left.

    Also an ``OSError`` of ``errno.ENOSPC``, as the error it stands for: code
    that handles a full disk by that still does.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, "the lake")
        self.errno = errno.ENOSPC


class StorageLostError(StoreFailedError, SinkUnavailableError):
    """The storage stayed unreachable past the retry window while the command ran."""
