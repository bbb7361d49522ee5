"""Test pipelines without Kafka: list feeds, collecting sinks and a manual clock.

In the spirit of bytewax's ``testing`` module: the helpers plug into the same
runner as the real feeds and sinks (:class:`marketpulse.Pipeline`, or
:class:`~marketpulse.runtime.embedded.EmbeddedPipeline`), so a test is list in,
tables out::

    from marketpulse import Pipeline, Trade
    from marketpulse.testing import CollectingSink, ListFeed

    T0 = 1_381_152_600 * 10**9  # 2013-10-07 13:30 UTC, in nanoseconds
    ticks = [Trade("AAPL", T0 + i * 10**9, 100.0 + i, 10.0) for i in range(120)]
    sink = CollectingSink()
    Pipeline(ListFeed(ticks), intervals="1m", sinks=[sink], alerts_file="").run()
    bars = sink.table("bars")  # a pyarrow Table of the bars table's schema

- :class:`ListFeed`: ticks from a Python list (:class:`~marketpulse.models.Trade`,
  :class:`~marketpulse.models.Quote`, or ``(symbol, ts, price, size)`` tuples).
- :func:`trade_batch` and :func:`quote_batch`: the same rows as one columnar
  batch, as feeds yield them and the processor takes them.
- :class:`CollectingSink`: every table the pipeline outputs, gathered in memory.
- :class:`ManualClock`: a clock that moves only when told to (or slept on), for
  the parts that take a clock (``clock=``, ``sleep=``, ``monotonic=``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

import pyarrow as pa

from marketpulse.feeds.base import FeedBatch
from marketpulse.models import QUOTE_SCHEMA, TRADE_SCHEMA, Quote, Trade
from marketpulse.sinks.base import TABLES, InputSegment, Sink, SinkStats, SourceRange

__all__ = [
    "CollectingSink",
    "ListFeed",
    "ManualClock",
    "TradeRow",
    "quote_batch",
    "trade_batch",
]

#: A trade as a tuple: ``(symbol, ts, price, size)``, optionally followed by
#: ``exchange`` and ``condition``; ``ts`` in UTC nanoseconds since the epoch.
TradeRow = tuple[str, int, float, float] | tuple[str, int, float, float, str | None, str | None]


def trade_batch(trades: Iterable[Trade | TradeRow], dataset: str | None = None) -> pa.RecordBatch:
    """Return trades as one batch of :data:`~marketpulse.models.TRADE_SCHEMA`.

    Args:
        trades: :class:`~marketpulse.models.Trade` objects or :data:`TradeRow` tuples.
        dataset: the dataset column of every row (``None``: null, as feeds leave it).
    """
    rows = [_trade_row(t) for t in trades]
    return pa.record_batch(
        [
            pa.array([r[0] for r in rows], pa.string()).dictionary_encode(),
            pa.array([r[1] for r in rows], pa.int64()),
            pa.array([r[2] for r in rows], pa.float64()),
            pa.array([r[3] for r in rows], pa.float64()),
            pa.array([r[4] for r in rows], pa.string()),
            pa.array([r[5] for r in rows], pa.string()),
            pa.array([dataset] * len(rows), pa.string()),
        ],
        schema=TRADE_SCHEMA,
    )


def quote_batch(quotes: Iterable[Quote], dataset: str | None = None) -> pa.RecordBatch:
    """Return quotes as one batch of :data:`~marketpulse.models.QUOTE_SCHEMA`.

    Args:
        quotes: :class:`~marketpulse.models.Quote` objects.
        dataset: the dataset column of every row (``None``: null, as feeds leave it).
    """
    rows = list(quotes)
    return pa.record_batch(
        [
            pa.array([q.symbol for q in rows], pa.string()),
            pa.array([q.ts for q in rows], pa.int64()),
            pa.array([q.bid for q in rows], pa.float64()),
            pa.array([q.bid_size for q in rows], pa.float64()),
            pa.array([q.ask for q in rows], pa.float64()),
            pa.array([q.ask_size for q in rows], pa.float64()),
            pa.array([dataset] * len(rows), pa.string()),
        ],
        schema=QUOTE_SCHEMA,
    )


def _trade_row(trade: Trade | TradeRow) -> tuple[str, int, float, float, str | None, str | None]:
    if isinstance(trade, Trade):
        return trade.symbol, trade.ts, trade.price, trade.size, trade.exchange, trade.condition
    if len(trade) == 4:
        return (*trade, None, None)
    if len(trade) == 6:
        return trade
    raise ValueError(f"a trade row is (symbol, ts, price, size[, exchange, condition]): {trade!r}")


class ListFeed:
    """A feed of the ticks in a list, in its order: a test's input.

    Consecutive ticks of one kind go out in batches of at most ``batch_size``;
    a run reads the list from its start each time.

    Args:
        ticks: :class:`~marketpulse.models.Trade` and :class:`~marketpulse.models.Quote`
            objects, or :data:`TradeRow` tuples.
        name: the feed's name, and the default dataset of its rows.
        batch_size: most ticks per batch.
        realtime: whether the pipeline should treat the ticks as arriving on the
            wall clock (bars then also close when a partition is idle); a list
            is read as fast as it goes, as a file is, by default.

    Raises:
        ValueError: ``batch_size`` is below 1, or a tick is neither a trade nor a quote.
    """

    def __init__(
        self,
        ticks: Iterable[Trade | Quote | TradeRow],
        name: str = "list",
        batch_size: int = 10_000,
        realtime: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected at least 1, got {batch_size}")
        self.ticks: list[Trade | Quote | TradeRow] = list(ticks)
        for tick in self.ticks:
            if not isinstance(tick, Trade | Quote | tuple):
                raise ValueError(f"ListFeed: expected trades, quotes or trade rows, got {tick!r}")
        self.name = name
        self.batch_size = batch_size
        self.realtime = realtime
        #: Whether :meth:`close` was called (the runner closes its feed).
        self.closed = False

    def batches(self) -> Iterator[FeedBatch]:
        """Yield the ticks, a batch per run of one kind (at most ``batch_size`` long)."""
        done, total = 0, len(self.ticks)
        for kind, group in _runs(self.ticks, self.batch_size):
            done += len(group)
            data = quote_batch(group) if kind == "quote" else trade_batch(group)  # type: ignore[arg-type]
            yield FeedBatch(kind, data, done=done, total=total)

    def close(self) -> None:
        """Note the feed closed (it holds nothing)."""
        self.closed = True


def _runs(
    ticks: Sequence[Trade | Quote | TradeRow], size: int
) -> Iterator[tuple[Literal["trade", "quote"], list[Trade | Quote | TradeRow]]]:
    group: list[Trade | Quote | TradeRow] = []
    kind: Literal["trade", "quote"] = "trade"
    for tick in ticks:
        this: Literal["trade", "quote"] = "quote" if isinstance(tick, Quote) else "trade"
        if group and (this != kind or len(group) == size):
            yield kind, group
            group = []
        kind = this
        group.append(tick)
    if group:
        yield kind, group


class CollectingSink(Sink):
    """A sink that keeps every table it is given in memory: a test's output.

    Rows are kept as written (their columns and types as the pipeline sends
    them, times as int64 nanoseconds), per table, in the order they came.
    Readable from any thread while the pipeline runs, and after.

    Args:
        name: the sink's name (its consumer group in a run is named after it).
    """

    def __init__(self, name: str = "collect") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._tables: dict[str, list[pa.Table]] = {}
        #: Where each write's rows came from, per table, in order (``None``: not said).
        self.sources: dict[str, list[SourceRange | InputSegment | None]] = {}
        #: Whether :meth:`close` was called (the runner closes its sinks).
        self.closed = False
        self._flushes = 0

    def write(
        self,
        table: str,
        data: pa.Table | pa.RecordBatch,
        source: SourceRange | InputSegment | None = None,
    ) -> None:
        """Keep rows of ``table``.

        Raises:
            ValueError: the table is not one of :data:`~marketpulse.sinks.TABLES`.
        """
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r} (known: {', '.join(TABLES)})")
        rows = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        with self._lock:
            self._tables.setdefault(table, []).append(rows)
            self.sources.setdefault(table, []).append(source)

    def table(self, name: str) -> pa.Table:
        """Return every row of table ``name`` written so far, as one table.

        A table nothing was written to is empty, with the table's schema.

        Raises:
            ValueError: ``name`` is not one of :data:`~marketpulse.sinks.TABLES`.
        """
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r} (known: {', '.join(TABLES)})")
        with self._lock:
            parts = list(self._tables.get(name, ()))
        if not parts:
            return TABLES[name].empty_table()
        return pa.concat_tables(parts, promote_options="permissive")

    def rows(self, name: str) -> list[dict[str, object]]:
        """Return the rows of table ``name`` as dictionaries (see :meth:`table`)."""
        return self.table(name).to_pylist()

    @property
    def tables(self) -> list[str]:
        """Names of the tables written to so far."""
        with self._lock:
            return sorted(self._tables)

    def due(self, now: float | None = None) -> bool:
        """Never due: rows are kept as soon as they are written."""
        return False

    def flush(self) -> None:
        """Nothing to make durable: count the flush."""
        self._flushes += 1

    def close(self) -> None:
        """Note the sink closed; what it collected stays readable."""
        self.closed = True

    @property
    def stats(self) -> SinkStats:
        """Rows kept per table, and flushes."""
        with self._lock:
            rows = {t: sum(p.num_rows for p in parts) for t, parts in self._tables.items()}
        return SinkStats(rows=rows, flushes=self._flushes)


class ManualClock:
    """A clock that moves only when told to: ``clock()`` is ``clock.now``.

    Pass it where a part takes a clock (``clock=``, ``monotonic=``), and its
    :meth:`sleep` where one takes a ``sleep``: sleeping moves the clock on
    at once and is recorded.

    Args:
        start: the time it shows first, in seconds.
    """

    def __init__(self, start: float = 0.0) -> None:
        #: The time the clock shows, seconds; set it, or :meth:`advance` it.
        self.now = start
        #: Each sleep asked for, in seconds, in order.
        self.slept: list[float] = []

    def __call__(self) -> float:
        """Return the time the clock shows, seconds."""
        return self.now

    def now_ns(self) -> int:
        """Return the time the clock shows, integer nanoseconds."""
        return round(self.now * 1e9)

    def advance(self, seconds: float) -> float:
        """Move the clock on by ``seconds``; return the new time.

        Raises:
            ValueError: ``seconds`` is negative (a clock never goes back).
        """
        if seconds < 0:
            raise ValueError(f"a clock never goes back: advance({seconds})")
        self.now += seconds
        return self.now

    def sleep(self, seconds: float) -> None:
        """Record the sleep and move the clock on by ``seconds``, without waiting."""
        self.slept.append(seconds)
        self.advance(seconds)
