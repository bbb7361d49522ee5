"""Scored headlines to where they are kept: the sinks (lake, PostgreSQL, InfluxDB) or Kafka.

:func:`store_news` writes each batch of :class:`~marketpulse.news.scoring.ScoredNews`
to the sinks' ``news`` table and its dead letters to their ``dlq`` table, flushing
as the sinks ask and once more at the end (Ctrl-C included: what was read is
stored). :func:`publish_news` sends them to the ``news`` and ``dlq`` topics
instead, keyed by symbol, from an idempotent producer, and waits for every
record to be acknowledged. :func:`stored_keys` reads the (symbol, id) keys a
lake already holds for a dataset, so that a rerun stores nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from marketpulse.bus.base import Bus
from marketpulse.bus.topics import Topics
from marketpulse.exceptions import BusError
from marketpulse.feeds.base import FeedBatch
from marketpulse.human import human_duration
from marketpulse.news.scoring import ScoredNews
from marketpulse.runtime.prefetch import Prefetch, interrupter
from marketpulse.sinks.base import Sink
from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.stream.output import dlq_table

__all__ = [
    "NewsStats",
    "publish_news",
    "store_news",
    "stored_dead_letters",
    "stored_keys",
]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class NewsStats:
    """What a news run has done.

    Attributes:
        items: headlines stored or sent (one per article and symbol).
        positive, negative, neutral: of those, by their score (VADER's cut-offs).
        duplicates: headlines dropped as seen before (same symbol and id), and a file's
            bad rows already in the dead letters.
        dead: unreadable rows or vendor messages, to the dead letters.
        failed: records the bus did not accept (Kafka).
        errors: the first delivery errors.
    """

    items: int = 0
    positive: int = 0
    negative: int = 0
    neutral: int = 0
    duplicates: int = 0
    dead: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def ok(self) -> bool:
        """Whether every record was accepted."""
        return not self.failed

    def line(self) -> str:
        """One line of figures."""
        elapsed = (self.ended or time.monotonic()) - self.started
        text = (
            f"{self.items:,} headlines ({self.positive:,} positive, {self.negative:,} negative, "
            f"{self.neutral:,} neutral) in {human_duration(elapsed)}, "
            f"{self.duplicates:,} seen before, {self.dead:,} unreadable to dlq"
        )
        if self.failed:
            text += f", {self.failed:,} not delivered"
        return text

    def count(self, data: pa.RecordBatch) -> None:
        """Count a scored batch."""
        from marketpulse.news.sentiment import classify

        self.items += data.num_rows
        for score in data.column("sentiment").to_pylist():
            kind = classify(score)
            setattr(self, kind, getattr(self, kind) + 1)


def _drive(news: ScoredNews, stop: threading.Event, stats: NewsStats,
           on_progress: Callable[[NewsStats], None] | None,
           put: Callable[[FeedBatch], None]) -> None:  # fmt: skip
    """Hand each batch of ``news`` to ``put`` and count it, until it ends or ``stop`` is set.

    The batches are read ahead: setting ``stop`` ends a live feed's wait too.
    """
    batches = iter(Prefetch(news.batches(), stop=stop, interrupt=interrupter(news)))
    try:
        for batch in batches:
            put(batch)
            stats.count(batch.data)
            stats.dead += len(batch.dead)
            stats.duplicates = news.duplicates
            if on_progress is not None:
                on_progress(stats)
            if stop.is_set():
                break
    finally:
        batches.close()  # type: ignore[attr-defined]
        news.close()
        stats.duplicates = news.duplicates


def store_news(
    news: ScoredNews,
    sinks: Sequence[Sink],
    stop: threading.Event | None = None,
    on_progress: Callable[[NewsStats], None] | None = None,
) -> NewsStats:
    """Store the headlines of ``news`` in ``sinks`` until it ends or ``stop`` is set.

    The sinks are flushed before this returns (and left open: the caller closes them).
    """
    stats = NewsStats()
    logger.info("news: %s into %s, dataset %s", news.name,
                ", ".join(getattr(s, "name", type(s).__name__) for s in sinks),
                news.dataset)  # fmt: skip

    def put(batch: FeedBatch) -> None:
        _write(sinks, batch, news.dataset)
        for sink in sinks:
            if sink.due():
                sink.flush()

    try:
        _drive(news, stop or threading.Event(), stats, on_progress, put)
    finally:
        for sink in sinks:
            sink.flush()
        stats.ended = time.monotonic()
    logger.info("news: stopped after %s", stats.line())
    return stats


def _write(sinks: Sequence[Sink], batch: FeedBatch, dataset: str) -> None:
    rows = pa.Table.from_batches([batch.data])
    dead = dlq_table(batch.dead, time.time_ns(), dataset) if batch.dead else None
    for sink in sinks:
        if rows.num_rows:
            sink.write("news", rows)
        if dead is not None:
            sink.write("dlq", dead)


def publish_news(
    news: ScoredNews,
    bus: Bus,
    topics: Topics,
    stop: threading.Event | None = None,
    on_progress: Callable[[NewsStats], None] | None = None,
    flush_timeout: float = 30.0,
) -> NewsStats:
    """Send the headlines of ``news`` to the ``news`` topic, dead letters to ``dlq``.

    Raises:
        BusError: the ``news`` or ``dlq`` topic does not exist.
    """
    stats = NewsStats()
    target, dlq = topics.name("news"), topics.name("dlq")
    partitions = bus.partitions(target)
    bus.partitions(dlq)
    logger.info("news: %s to %s (%d partitions), dataset %s, on %s", news.name, target,
                partitions, news.dataset, bus)  # fmt: skip
    producer = bus.producer()

    def put(batch: FeedBatch) -> None:
        if batch.data.num_rows:
            producer.send_columns(target, "news", batch.data)
        if batch.dead:
            producer.send_dead(dlq, batch.dead, dataset=news.dataset)
        stats.failed = producer.failed

    try:
        _drive(news, stop or threading.Event(), stats, on_progress, put)
    finally:
        try:
            producer.flush(flush_timeout)
        except BusError as exc:
            logger.error("news: %s", exc)
            stats.failed = max(producer.failed, producer.in_flight)
        else:
            stats.failed = producer.failed
        stats.errors = list(producer.errors)
        stats.ended = time.monotonic()
    logger.info("news: stopped after %s", stats.line())
    return stats


def stored_keys(lake: LakeLocation | Path | str, dataset: str) -> list[tuple[str, str]]:
    """The (symbol, id) of every headline of ``dataset`` the lake holds (none yet: [])."""
    return _rows(lake, "SELECT DISTINCT symbol, id FROM news WHERE dataset = ?", [dataset])


def stored_dead_letters(lake: LakeLocation | Path | str, dataset: str,
                        file: str) -> list[tuple[int, str]]:  # fmt: skip
    """The (line, error) of each dead letter of ``file`` the lake holds for ``dataset``."""
    return _rows(lake, "SELECT DISTINCT source_line, error FROM dlq WHERE dataset = ?"
                       " AND source_file = ?", [dataset, file])  # fmt: skip


def _rows(lake: LakeLocation | Path | str, sql: str, params: list[str]) -> list[Any]:
    """The rows of a query over the lake, as tuples (a local lake not there yet: none)."""
    from marketpulse.analytics.sql import Lake

    location = LakeLocation.of(lake)
    if not location.is_s3 and not Path(location.root).is_dir():
        return []
    with Lake(location) as opened:
        table = opened.query(sql, params)
    return list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)),
                    strict=True))  # fmt: skip
