"""MarketPulse: real-time stock market analytics on Apache Kafka, in Python.

The front door for Python users:

- :class:`Pipeline` runs the whole pipeline (``marketpulse run``) in a few lines
  and returns a :class:`PipelineResult`;
- :class:`Settings` is the settings tree its options (and the commands') map onto;
- :mod:`marketpulse.testing` has list feeds, collecting sinks and a manual clock
  for testing pipelines without Kafka;
- the message types (:class:`Trade`, :class:`Quote`, :class:`Bar`,
  :class:`Indicators`, :class:`Alert`) and the root exception
  :class:`MarketPulseError`.

Each subpackage (``feeds``, ``bus``, ``stream``, ``sinks``, ``analytics``, ...)
has its own API, reachable but not advertised here.

Everything but the exception is loaded on first use (the message types bring
pyarrow and msgspec, the pipeline numba), so that commands which do without
them, ``marketpulse --help`` first, start quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketpulse.exceptions import MarketPulseError

if TYPE_CHECKING:
    from marketpulse.config import Settings
    from marketpulse.models import Alert, Bar, Indicators, Quote, Trade
    from marketpulse.pipeline import Pipeline, PipelineResult

__all__ = [
    "Alert",
    "Bar",
    "Indicators",
    "MarketPulseError",
    "Pipeline",
    "PipelineResult",
    "Quote",
    "Settings",
    "Trade",
    "__version__",
]

__version__ = "0.1.0"

#: Each name loaded on first use, with its module.
_LAZY = {
    "Alert": "marketpulse.models",
    "Bar": "marketpulse.models",
    "Indicators": "marketpulse.models",
    "Quote": "marketpulse.models",
    "Trade": "marketpulse.models",
    "Pipeline": "marketpulse.pipeline",
    "PipelineResult": "marketpulse.pipeline",
    "Settings": "marketpulse.config",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is not None:
        from importlib import import_module

        return getattr(import_module(module), name)
    raise AttributeError(f"module 'marketpulse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
