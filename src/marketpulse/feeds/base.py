"""The feed interface: sources of market events, yielded as columnar batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

import pyarrow as pa

from marketpulse.models import DeadLetter

__all__ = ["Feed", "FeedBatch"]


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """One batch of events from a feed.

    Attributes:
        kind: ``"trade"`` (``data`` follows ``models.TRADE_SCHEMA``), ``"bar"``
            (``models.BAR_SCHEMA``), ``"quote"`` (``models.QUOTE_SCHEMA``; live
            feeds only, published but not aggregated) or ``"news"``
            (``models.NEWS_SCHEMA``: headlines, one row per article and symbol).
        data: the events, in the order the source gave them. File feeds add an
            int64 ``line`` column (1-based line of the source file, header = 1);
            live feeds a string ``extra`` column to trades and quotes (vendor fields
            as JSON, or null).
        dead: records the feed could not read (malformed rows), for the DLQ.
        done: how far through the source the feed is, in ``unit``s (bytes of a
            file, events of a simulator run), for progress bars.
        total: the size of the source in the same unit, when known.
    """

    kind: Literal["trade", "bar", "quote", "news"]
    data: pa.RecordBatch
    dead: list[DeadLetter] = field(default_factory=list)
    done: int = 0
    total: int | None = None


class Feed(Protocol):
    """A source of market events."""

    #: Short name used in logs and the DLQ (``simulator``, a file path, ...).
    name: str
    #: Whether batches arrive paced by the wall clock (live and simulated
    #: markets). A file replayed as fast as it can be read is not: the embedded
    #: pipeline then closes no window by the clock, only by event time. Feeds
    #: without the attribute count as paced.
    realtime: bool

    def batches(self) -> Iterator[FeedBatch]:
        """Yield batches until the source is exhausted (or forever, for live feeds)."""
        ...

    def close(self) -> None:
        """Release what the feed holds (files, sockets)."""
        ...
