"""Following the pipeline's output topics into a live market view.

``marketpulse dashboard --kafka`` runs no pipeline of its own: it reads the
``bars``, ``indicators``, ``alerts`` and ``dlq`` topics of one that runs
elsewhere, with a consumer group of its own that never commits (every
dashboard reads everything, from the earliest records kept). The watchlist's
last price and volume come from the bars of the view's timeframe, its tick rate
from their trade counts, and the pipeline page shows the consumer's lag per
partition.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from types import TracebackType
from typing import Any, Self

import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.bus import Batch, Bus
from marketpulse.bus.base import values_of
from marketpulse.bus.codec import decode_rows
from marketpulse.bus.topics import OUTPUT_TOPICS, Topics
from marketpulse.models import Alert
from marketpulse.serve.market import LiveMarket
from marketpulse.serve.records import details_of

__all__ = ["TopicsFeed"]

logger = logging.getLogger(__name__)

#: Seconds between two readings of the consumer's lag.
_LAG_EVERY = 1.0


class TopicsFeed:
    """Consume the output topics on a thread and update ``market``; a context manager.

    Args:
        bus: the bus the pipeline writes to (Kafka, or the embedded one in tests).
        topics: the topic names.
        market: the view to update; its metrics count what is read.
        group: consumer group (default: a new one per feed).
    """

    def __init__(self, bus: Bus, topics: Topics, market: LiveMarket, group: str | None = None):
        self.bus = bus
        self.topics = topics
        self.market = market
        self.group = group or f"marketpulse-dashboard-{uuid.uuid4().hex[:12]}"
        self.undecodable = 0
        self._lag: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        market.extra_figures = self.figures
        market.kind = "topics"

    def figures(self) -> dict[str, Any]:
        """Return the consumer's lag per partition and what could not be read."""
        return {"lag": dict(self._lag), "undecodable": self.undecodable}

    def start(self) -> None:
        """Start consuming on a background thread."""
        self._thread = threading.Thread(target=self._run, name="dashboard-topics", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming and close the consumer; stopping twice is allowed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        names = [self.topics.name(t) for t in OUTPUT_TOPICS]
        try:
            with self.bus.consumer(self.group, names) as consumer:
                lag_at = 0.0
                while not self._stop.is_set():
                    for batch in consumer.poll(timeout=0.2):
                        self.take(batch)
                    if time.monotonic() - lag_at >= _LAG_EVERY:
                        lag_at = time.monotonic()
                        self._lag = {f"{tp.topic}[{tp.partition}]": n
                                     for tp, n in sorted(consumer.lag().items())}  # fmt: skip
        except Exception as exc:  # the dashboard stays up; its figures say the feed stopped
            logger.error("dashboard: reading the output topics failed: %s", exc)
            self._failure = exc

    def take(self, batch: Batch) -> None:
        """Apply one batch of an output topic to the market and its metrics."""
        name = self.topics.table(batch.topic)
        metrics = self.market.metrics
        if name == "dlq":
            metrics.add(dlq=len(batch))
            return
        table = self._table(name, batch)
        if table.num_rows == 0:
            return
        if name == "bars":
            self.market.bars(table)
            own = table.filter(pc.equal(table.column("timeframe"), self.market.interval))
            # the watchlist's last price and volume, from the closed bars
            self.market.trades(
                pa.record_batch(
                    [
                        own.column("symbol").combine_chunks(),
                        own.column("close").combine_chunks(),
                        own.column("volume").combine_chunks(),
                    ],
                    names=["symbol", "price", "size"],
                )  # fmt: skip
            )
            ticks = pc.sum(own.column("trades")).as_py() or 0
            metrics.add(ticks=ticks, bars=table.num_rows)
        elif name == "indicators":
            self.market.indicators(table)
            metrics.add(indicators=table.num_rows)
        elif name == "alerts":
            fields = set(Alert.__struct_fields__)
            alerts = [
                Alert(
                    **{k: v for k, v in row.items() if k in fields - {"details"}},
                    details=details_of(row.get("details")),
                )
                for row in table.to_pylist()
            ]
            self.market.alerts(alerts)
            metrics.add(alerts=len(alerts))

    def _table(self, name: str, batch: Batch) -> pa.Table:
        if batch.columns is not None:  # the embedded bus carries columns
            columns = batch.columns
            return (
                pa.Table.from_batches([columns]) if isinstance(columns, pa.RecordBatch) else columns
            )
        table, errors = decode_rows(name, [v or b"" for v in values_of(batch.messages)])
        if errors:
            self.undecodable += len(errors)
            logger.warning("dashboard: %d records of %s[%d] could not be read, first: %s",
                           len(errors), batch.topic, batch.partition, errors[0][1])  # fmt: skip
        return table

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
