"""Wiring of the stages: the embedded pipeline, its figures and live view."""

from marketpulse.pipeline.embedded import TOPICS, EmbeddedPipeline, PipelineOptions
from marketpulse.pipeline.metrics import Metrics, MetricsSnapshot
from marketpulse.pipeline.view import MarketView, SymbolRow

__all__ = [
    "TOPICS",
    "EmbeddedPipeline",
    "Metrics",
    "MetricsSnapshot",
    "MarketView",
    "PipelineOptions",
    "SymbolRow",
]
