"""Writers of the pipeline's output tables to storage, each idempotent.

The database sinks load their client libraries (psycopg, httpx) when first
named, so that commands which do not use them start faster.
"""

from typing import TYPE_CHECKING, Any

from marketpulse.sinks.base import TABLES, InputSegment, Sink, SinkStats, SourceRange
from marketpulse.sinks.exceptions import SchemaMismatchError, SinkError, SinkUnavailableError
from marketpulse.sinks.lake import LakeSink

if TYPE_CHECKING:
    from marketpulse.sinks.influx import InfluxSink
    from marketpulse.sinks.postgres import PostgresSink

__all__ = [
    "TABLES",
    "InfluxSink",
    "InputSegment",
    "LakeSink",
    "PostgresSink",
    "SchemaMismatchError",
    "Sink",
    "SinkError",
    "SinkStats",
    "SinkUnavailableError",
    "SourceRange",
]

_LAZY = {"InfluxSink": "marketpulse.sinks.influx", "PostgresSink": "marketpulse.sinks.postgres"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
