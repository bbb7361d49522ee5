"""SQL over the lake, historical reports and backfills.

The backfill lives in :mod:`marketpulse.analytics.backfill`, not imported
here: it needs the stream processor (numba, pandas), which ``sql`` and
``report`` do without.
"""

from marketpulse.analytics.exceptions import AnalyticsError, OutputError, SQLError
from marketpulse.analytics.results import FORMATS, format_table
from marketpulse.analytics.sql import Lake, open_lake, query

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
