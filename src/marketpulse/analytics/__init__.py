"""SQL over the lake, historical reports and backfills."""

from marketpulse.analytics.exceptions import AnalyticsError, OutputError, SQLError
from marketpulse.analytics.sql import FORMATS, Lake, format_table, open_lake, query

__all__ = [
    "FORMATS",
    "AnalyticsError",
    "Lake",
    "OutputError",
    "SQLError",
    "format_table",
    "open_lake",
    "query",
]
