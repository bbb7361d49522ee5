"""Wiring of the stages: the embedded pipeline, its figures and live view."""

from marketpulse.pipeline.embedded import (
    LAKE_FILE_ROWS,
    TOPICS,
    EmbeddedPipeline,
    PipelineOptions,
)
from marketpulse.pipeline.metrics import LATENCY_BUCKETS, Metrics, MetricsSnapshot
from marketpulse.pipeline.view import MarketView, SymbolRow

__all__ = [
    "LAKE_FILE_ROWS",
    "LATENCY_BUCKETS",
    "TOPICS",
    "EmbeddedPipeline",
    "Metrics",
    "MetricsSnapshot",
    "MarketView",
    "PipelineOptions",
    "SymbolRow",
]
