"""The processor: validation, event-time bars, indicators and alerts."""

from marketpulse.stream.output import Output
from marketpulse.stream.processor import Processor, ProcessorSettings

__all__ = ["Output", "Processor", "ProcessorSettings"]
