"""The one runner, and what a running pipeline shows.

The stages run as services on any bus of the contract: :mod:`.produce`
(feed in, ``ticks`` out), :mod:`.process` (the processor in a consumer group,
exactly once, its :mod:`.commit_policy`), :mod:`.sink` (outputs into storage);
:mod:`.runner` runs them all in one process (``run --kafka`` on Kafka,
``run`` on the in-memory bus through :mod:`.embedded`), and each is a command
of its own on a Kafka cluster. The runner hands the processor's outputs to
one :class:`OutputObserver`, which updates the :class:`Metrics`, the
:class:`MarketView` and the alerts notifier: this package's API, which
``serve`` reads, never the runner's internals.

>>> from marketpulse.runtime import MarketView, Metrics, OutputObserver
>>> observer = OutputObserver(Metrics(), MarketView("1m"))
>>> observer.output(out, since=received)  # doctest: +SKIP
"""

from marketpulse.runtime.metrics import (
    LATENCY_BUCKETS,
    PIPELINE_FIGURES,
    Metrics,
    MetricsSnapshot,
    PipelineCollector,
)
from marketpulse.runtime.outputs import OutputObserver
from marketpulse.runtime.view import MarketView, SymbolRow

__all__ = [
    "LATENCY_BUCKETS",
    "MarketView",
    "Metrics",
    "MetricsSnapshot",
    "OutputObserver",
    "PIPELINE_FIGURES",
    "PipelineCollector",
    "SymbolRow",
]
