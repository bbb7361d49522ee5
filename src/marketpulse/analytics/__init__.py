"""SQL over the lake, historical reports and backfills."""

from marketpulse.analytics.backfill import BackfillResult, backfill, lake_trades
from marketpulse.analytics.exceptions import AnalyticsError, OutputError, SQLError
from marketpulse.analytics.sql import FORMATS, Lake, format_table, open_lake, query

__all__ = [
    "BackfillResult",
    "backfill",
    "lake_trades",
    "FORMATS",
    "AnalyticsError",
    "Lake",
    "OutputError",
    "SQLError",
    "format_table",
    "open_lake",
    "query",
]
