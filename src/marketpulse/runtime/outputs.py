"""The one place where a processor's outputs become figures, views and notifications."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from marketpulse.runtime.metrics import Metrics
from marketpulse.runtime.view import MarketView

if TYPE_CHECKING:  # observe stays light: serve imports it without the processor's kernels
    from marketpulse.alerts import Notifier
    from marketpulse.stream import Output

__all__ = ["OutputCounts", "OutputObserver"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class OutputCounts:
    """The rows of outputs, counted together: those of one transaction until it commits.

    A service counts its outputs when their transaction commits, not when it makes
    them: the work of an aborted transaction is redone, and counted then, once
    (a run on Kafka whose transaction was aborted and redone said 98 bars when its
    topic and lake held 92).
    """

    bars: int = 0
    indicators: int = 0
    alerts: int = 0
    #: dead letters of the processor, and of those the input rows it rejected (not late)
    dead: int = 0
    rejected: int = 0

    def add(self, out: Output) -> None:
        """Count the rows of one output."""
        self.bars += out.bars.num_rows
        self.indicators += out.indicators.num_rows
        self.alerts += len(out.alerts)
        self.dead += len(out.dead)
        self.rejected += sum(1 for letter in out.dead if letter.reason != "late")


class OutputObserver:
    """Turns what a runner reads and what its processor emits into metrics, views and notices.

    Both runners use it, so ``run`` and ``run --kafka`` count, show and notify
    alike. Its methods may be called from different threads (the Kafka runner's
    produce and process stages): :class:`Metrics` and :class:`MarketView` are
    thread-safe; :meth:`output` alone calls the notifier.

    Args:
        metrics: the counters to update.
        view: the live view to update (``None``: none).
        notifier: where alerts go besides the ``alerts`` topic (``None``: nowhere);
            :meth:`close` closes it.
        clock: the clock of the ``since`` times given to :meth:`output`, in
            seconds: the embedded runner's are ``time.perf_counter`` readings
            (when it received the feed's batch), the Kafka runner's are epoch
            seconds (the record timestamp of the batch's last tick).
    """

    def __init__(
        self,
        metrics: Metrics,
        view: MarketView | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.metrics = metrics
        self.view = view
        self.notifier = notifier
        self._clock = clock

    def trades(self, data: pa.RecordBatch) -> None:
        """Show a feed's trades in the view as they are read."""
        if self.view is not None:
            self.view.trades(data)

    def taken(self, ticks: int, dead: int = 0) -> None:
        """Count ticks taken from the feed and the feed's unreadable rows (dead letters)."""
        self.metrics.add(ticks=ticks, dlq=dead, rejected=dead)

    def output(self, out: Output, since: float | None = None, count: bool = True) -> None:
        """Count, show and notify one processor output.

        Dead letters count in ``dlq``; those other than ``late`` (a real trade
        that came after its window closed) count as rejected input rows too.

        Args:
            out: what the processor emitted.
            since: when the ticks that led to it arrived, on the observer's
                clock; with indicators in ``out``, the time from then to now is
                one tick-to-indicator latency sample (``None``: no sample).
            count: whether to count its rows now; ``False`` where a service counts
                them when their transaction commits (:meth:`committed`).
        """
        if count:
            counts = OutputCounts()
            counts.add(out)
            self.committed(counts)
        if out.indicators.num_rows and since is not None:
            self.metrics.latency(max(self._clock() - since, 0.0))
        if out.alerts and self.notifier is not None:
            self.notifier.notify(out.alerts)
        if self.view is not None:
            self.view.bars(out.bars)
            self.view.indicators(out.indicators)
            self.view.alerts(out.alerts)

    def committed(self, counts: OutputCounts) -> None:
        """Count the rows of outputs made visible (a committed transaction's)."""
        self.metrics.add(
            bars=counts.bars, indicators=counts.indicators, alerts=counts.alerts,
            dlq=counts.dead, rejected=counts.rejected,
        )  # fmt: skip

    def close(self) -> None:
        """Close the notifier (the metrics and the view stay readable)."""
        if self.notifier is not None:
            self.notifier.close()
