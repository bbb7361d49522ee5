"""Errors of the sinks.

MarketPulseError
└── SinkError                 a sink cannot write
├── SinkUnavailableError  the storage cannot be reached (after retrying)
└── SchemaMismatchError   a table differs from what the sink writes (names table, column)
"""

from __future__ import annotations

from marketpulse.exceptions import MarketPulseError

__all__ = ["SchemaMismatchError", "SinkError", "SinkUnavailableError"]


class SinkError(MarketPulseError):
    """A sink cannot write to its storage."""


class SinkUnavailableError(SinkError):
    """The storage could not be reached within the sink's retry budget."""


class SchemaMismatchError(SinkError):
    """A table in the storage does not have the columns the sink writes."""
