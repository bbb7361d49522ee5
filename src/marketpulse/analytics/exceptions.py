"""Errors of SQL over the lake and of writing its results.

MarketPulseError
└── AnalyticsError       the lake cannot be queried or a result written
    ├── SQLError         DuckDB rejected a query (its message is kept)
    └── OutputError      a result cannot be written as asked
"""

from __future__ import annotations

from marketpulse.exceptions import MarketPulseError

__all__ = ["AnalyticsError", "OutputError", "SQLError"]


class AnalyticsError(MarketPulseError):
    """The lake cannot be queried, or a result cannot be written."""


class SQLError(AnalyticsError):
    """A query failed in DuckDB (syntax, unknown column, unreadable file...)."""


class OutputError(AnalyticsError):
    """A query result cannot be written in the format or place asked."""
