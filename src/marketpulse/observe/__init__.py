"""What a running pipeline shows: its figures, the market's latest state, and the glue.

Both runners (:mod:`marketpulse.pipeline`, embedded; :mod:`marketpulse.services`,
Kafka) hand their processor's outputs to one :class:`OutputObserver`, which
updates the :class:`Metrics`, the :class:`MarketView` and the alerts notifier;
``serve`` reads these, never a runner.

>>> from marketpulse.observe import MarketView, Metrics, OutputObserver
>>> observer = OutputObserver(Metrics(), MarketView("1m"))
>>> observer.output(out, since=received)  # doctest: +SKIP
"""

from marketpulse.observe.metrics import LATENCY_BUCKETS, Metrics, MetricsSnapshot
from marketpulse.observe.outputs import OutputObserver
from marketpulse.observe.view import MarketView, SymbolRow

__all__ = [
    "LATENCY_BUCKETS",
    "MarketView",
    "Metrics",
    "MetricsSnapshot",
    "OutputObserver",
    "SymbolRow",
]
