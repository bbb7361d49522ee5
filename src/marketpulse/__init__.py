"""MarketPulse: real-time stock market analytics on Apache Kafka, in Python.

The root exports the message types and the root exception; each subpackage
(``feeds``, ``bus``, ``stream``, ``sinks``, ``analytics``, ...) has its own API.

The message types are loaded on first use (they bring pyarrow and msgspec), so
that commands which do without them, ``marketpulse --help`` first, start quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketpulse.exceptions import MarketPulseError

if TYPE_CHECKING:
    from marketpulse.models import Alert, Bar, Indicators, Quote, Trade

__all__ = ["Alert", "Bar", "Indicators", "MarketPulseError", "Quote", "Trade", "__version__"]

__version__ = "0.1.0"

_MODELS = frozenset({"Alert", "Bar", "Indicators", "Quote", "Trade"})


def __getattr__(name: str) -> object:
    if name in _MODELS:
        from marketpulse import models

        return getattr(models, name)
    raise AttributeError(f"module 'marketpulse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
