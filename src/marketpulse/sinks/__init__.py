"""Writers of the pipeline's output tables to storage, each idempotent."""

from marketpulse.sinks.base import TABLES, Sink, SinkStats, SourceRange
from marketpulse.sinks.exceptions import SchemaMismatchError, SinkError, SinkUnavailableError
from marketpulse.sinks.influx import InfluxSink
from marketpulse.sinks.lake import LakeSink
from marketpulse.sinks.postgres import PostgresSink

__all__ = [
    "TABLES",
    "InfluxSink",
    "LakeSink",
    "PostgresSink",
    "SchemaMismatchError",
    "Sink",
    "SinkError",
    "SinkStats",
    "SinkUnavailableError",
    "SourceRange",
]
