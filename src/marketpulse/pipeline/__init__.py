"""The embedded pipeline: every stage in one process, on the in-memory bus.

Its figures and live view are :mod:`marketpulse.observe`'s.
"""

from marketpulse.pipeline.embedded import (
    LAKE_FILE_ROWS,
    TOPICS,
    EmbeddedPipeline,
    PipelineOptions,
)

__all__ = [
    "LAKE_FILE_ROWS",
    "TOPICS",
    "EmbeddedPipeline",
    "PipelineOptions",
]
