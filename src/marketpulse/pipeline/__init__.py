"""The embedded pipeline: every stage in one process, on the in-memory bus.

It is the services' runner on that bus; its figures and live view are
:mod:`marketpulse.observe`'s.
"""

from marketpulse.pipeline.embedded import LAKE_FILE_ROWS, EmbeddedPipeline, PipelineOptions

__all__ = ["LAKE_FILE_ROWS", "EmbeddedPipeline", "PipelineOptions"]
