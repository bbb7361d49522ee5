"""MarketPulse: real-time stock market analytics on Apache Kafka, in Python.

The root exports the message types and the root exception; each subpackage
(``feeds``, ``bus``, ``stream``, ``sinks``, ``analytics``, ...) has its own API.
"""

from marketpulse.exceptions import MarketPulseError
from marketpulse.models import Alert, Bar, Indicators, Quote, Trade

__all__ = ["Alert", "Bar", "Indicators", "MarketPulseError", "Quote", "Trade", "__version__"]

__version__ = "0.1.0"
