"""The sink interface: writers of the pipeline's output tables to storage.

A sink receives columnar batches of one of the output tables (:data:`TABLES`),
buffers them, and makes them durable on :meth:`Sink.flush`. The runner asks
:meth:`Sink.due` often and flushes when a buffer is full or old enough (a full
buffer may also be written by :meth:`Sink.write` itself). Writes are idempotent
when the caller says where the rows came from on the bus (:class:`SourceRange`):
re-writing the same offsets leaves the same result, so offsets may be committed
after the flush and replayed after a crash.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Self

import pyarrow as pa

from marketpulse.models import (
    ALERT_SCHEMA,
    BAR_TABLE_SCHEMA,
    CUSTOM_SCHEMA,
    DLQ_SCHEMA,
    INDICATOR_SCHEMA,
    NEWS_SCHEMA,
    PREDICTION_SCHEMA,
    QUOTE_SCHEMA,
    TRADE_SCHEMA,
)

__all__ = ["TABLES", "TIME_COLUMNS", "InputSegment", "Sink", "SinkStats", "SourceRange"]

#: The tables a sink accepts, with the schema of their rows (times as int64
#: nanoseconds, as in flight; each sink stores them as its storage's timestamps).
TABLES: Mapping[str, pa.Schema] = MappingProxyType(
    {
        "trades": TRADE_SCHEMA,
        "quotes": QUOTE_SCHEMA,
        "bars": BAR_TABLE_SCHEMA,  # the quote columns null for bars without quotes
        "indicators": INDICATOR_SCHEMA,
        "alerts": ALERT_SCHEMA,
        "dlq": DLQ_SCHEMA,
        "custom": CUSTOM_SCHEMA,
        "predictions": PREDICTION_SCHEMA,
        "news": NEWS_SCHEMA,
    }
)

#: The event-time column of each table (UTC nanoseconds): a bar's start for the
#: tables keyed by bar (bars, indicators, alerts, custom), so that all of them put the
#: rows of one bar in the same partition.
TIME_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "trades": "ts",
        "quotes": "ts",
        "bars": "bar_start",
        "indicators": "bar_start",
        "alerts": "bar_start",
        "dlq": "ts",
        "custom": "bar_start",
        "predictions": "bar_start",
        "news": "ts",
    }
)


@dataclass(frozen=True, slots=True)
class SourceRange:
    """Where a batch of rows came from on the bus.

    Attributes:
        partition: the topic partition the rows were consumed from.
        first_offset: offset of the first record of the batch.
        last_offset: offset of the last record of the batch (inclusive).
    """

    partition: int
    first_offset: int
    last_offset: int

    def __post_init__(self) -> None:
        if self.partition < 0 or self.first_offset < 0 or self.last_offset < self.first_offset:
            raise ValueError(f"invalid source range {self}")


@dataclass(frozen=True, slots=True)
class InputSegment:
    """The segment of a replayed input that rows were computed from.

    A file replay cuts its input into segments of consecutive lines
    (deterministic for a given input) and tells the sinks when one ends
    (:meth:`Sink.end_segment`): a rerun of the same input then gives the same
    segments, whose files replace the earlier run's.

    Attributes:
        origin: identity of the input and of the options that shape the output
            (16 hex digits).
        first: the segment's first input line.
    """

    origin: str
    first: int

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{16}", self.origin) or self.first < 0:
            raise ValueError(f"invalid input segment {self}")


@dataclass(frozen=True, slots=True)
class SinkStats:
    """Counters of a sink since it was created.

    Attributes:
        rows: rows made durable, per table.
        buffered: rows written but not yet flushed, per table.
        files: files (or write requests) completed.
        bytes: bytes written to storage.
        flushes: buffers flushed.
        retries: failed attempts to reach the storage that were retried
            (a connection broke, the server restarted).
    """

    rows: Mapping[str, int] = field(default_factory=dict)
    buffered: Mapping[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    flushes: int = 0
    retries: int = 0


class Sink(ABC):
    """A writer of output tables to one storage system.

    Sinks are context managers: leaving the block closes the sink, which
    flushes what is buffered. A sink is used from one thread.
    """

    #: Short name used in logs and metrics (``lake``, ``postgres``, ...).
    name: str

    @abstractmethod
    def write(
        self,
        table: str,
        data: pa.Table | pa.RecordBatch,
        source: SourceRange | InputSegment | None = None,
    ) -> None:
        """Buffer rows of one table.

        Args:
            table: one of :data:`TABLES`.
            data: rows with (at least) the columns of the table's schema;
                other columns are ignored.
            source: where the rows came from (bus offsets, or a segment of a
                replayed input), for idempotent writes.

        Raises:
            ValueError: the table is unknown, or columns are missing or of
                a type that cannot be cast to the schema.
        """

    @abstractmethod
    def due(self, now: float | None = None) -> bool:
        """Return whether a buffer is full or old enough to be flushed.

        Args:
            now: the current time of the sink's clock (``time.monotonic``
                unless the sink was given another); read from it if omitted.
        """

    @abstractmethod
    def flush(self) -> None:
        """Make every row written so far durable."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release what the sink holds; closing twice is allowed."""

    def end_segment(self, origin: str, first: int, last: int) -> None:
        """Store the rows written with ``InputSegment(origin, first)``: input lines first-last.

        Sinks whose writes are idempotent by themselves (keyed upserts) just
        keep their own schedule; the lake writes the segment's files.
        """
        return None

    def end_source(self, origin: str) -> None:
        """Note that every segment of ``origin`` was written (a replay that ran to its end).

        The lake then removes whatever an earlier run of the same input left
        that this run did not write again.
        """
        return None

    @property
    @abstractmethod
    def stats(self) -> SinkStats:
        """A snapshot of the sink's counters."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
