"""Writers of the pipeline's output tables to storage, each idempotent."""

from marketpulse.sinks.base import TABLES, Sink, SinkStats, SourceRange
from marketpulse.sinks.lake import LakeSink

__all__ = ["TABLES", "LakeSink", "Sink", "SinkStats", "SourceRange"]
