"""What every live vendor feed shares: the event sink, errors, status, and the Feed itself.

A vendor client is a coroutine that talks to the vendor and hands what it
reads to an :class:`Events` sink. :class:`VendorFeed` runs that coroutine on
an event loop of its own thread (so WebSocket heartbeats are answered while
the pipeline works) and yields what arrived as :class:`~marketpulse.feeds.FeedBatch`
columns: trades, quotes, bars and news, and dead letters for vendor messages it
could not read. :class:`Vendor` says what one vendor needs and serves.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import msgspec
import pyarrow as pa

from marketpulse.exceptions import MarketPulseError
from marketpulse.feeds.base import FeedBatch
from marketpulse.models import (
    BAR_SCHEMA,
    NEWS_SCHEMA,
    QUOTE_SCHEMA,
    TRADE_SCHEMA,
    Bar,
    DeadLetter,
    NewsItem,
    Quote,
    Trade,
)

__all__ = ["Events", "FeedStatus", "Gap", "Vendor", "VendorError", "VendorFeed"]

logger = logging.getLogger(__name__)

_json = msgspec.json.Encoder()
_STOP = object()

Client = Callable[["Events"], Coroutine[Any, Any, None]]


class VendorError(MarketPulseError):
    """The vendor refused the feed for good: bad key, plan without access, bad symbol.

    Errors a reconnect can cure (network, server restarts, rate limits) are
    retried and never raised.
    """


@dataclass(frozen=True, slots=True)
class Vendor:
    """What one vendor needs and serves (for the CLI's checks and help)."""

    name: str
    serves: str
    url: str
    needs_key: bool = True
    needs_secret: bool = False
    calendar: str = "XNYS"


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch without data: from the loss of a connection to its return.

    Attributes:
        start: when the connection was lost (UTC ns).
        end: when data flowed again (UTC ns).
        last_event: event time of the last event before the loss (None if none yet).
    """

    start: int
    end: int
    last_event: int | None

    @property
    def seconds(self) -> float:
        """Length of the gap in seconds."""
        return (self.end - self.start) / 1e9


@dataclass(slots=True)
class FeedStatus:
    """What a vendor feed has done so far (read by tests and progress lines)."""

    connects: int = 0
    events: int = 0
    malformed: int = 0
    rate_limited: int = 0
    requests: int = 0
    delays: list[float] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    @property
    def reconnects(self) -> int:
        """Connections made after the first."""
        return max(0, self.connects - 1)


class Events:
    """Where a vendor client puts what it read; safe to call from the client's loop.

    Args:
        vendor: the vendor's name, for dead letters and logs.
        clock: UTC nanoseconds now (``time.time_ns``; injected by tests).
    """

    def __init__(self, vendor: str, clock: Callable[[], int] = time.time_ns) -> None:
        self.vendor = vendor
        self.clock = clock
        self.status = FeedStatus()
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._last_event: int | None = None
        self._lost_at: int | None = None

    def put(self, event: Trade | Quote | Bar | NewsItem) -> None:
        """Hand over one event."""
        self.status.events += 1
        self._last_event = event.bar_start if isinstance(event, Bar) else event.ts
        self.queue.put(event)

    def dead(self, reason: str, error: str, raw: bytes | str, key: str | None = None) -> None:
        """Hand over a vendor message that could not be read: counted, and to the DLQ."""
        self.status.malformed += 1
        value = raw.encode() if isinstance(raw, str) else raw
        logger.warning("%s: malformed message (%s): %s", self.vendor, reason, error)
        self.queue.put(
            DeadLetter(reason=reason, error=f"{self.vendor}: {error}", value=value, key=key,
                       vendor=self.vendor, ts=self.clock())
        )  # fmt: skip

    def connected(self) -> None:
        """Record a connection (or a poll that succeeded); report the gap after a loss."""
        self.status.connects += 1
        if self._lost_at is None:
            return
        gap = Gap(self._lost_at, self.clock(), self._last_event)
        self._lost_at = None
        self.status.gaps.append(gap)
        logger.warning(
            "%s: data resumed after a %.1f s gap (last event before it at %s ns); "
            "events of that stretch may be missing",
            self.vendor, gap.seconds, gap.last_event,
        )  # fmt: skip

    def lost(self) -> None:
        """Record the loss of the connection (the start of a gap)."""
        if self._lost_at is None:
            self._lost_at = self.clock()


def _extra(events: list[Any]) -> pa.Array:
    return pa.array([None if e.extra is None else _json.encode(e.extra).decode() for e in events],
                    pa.string())  # fmt: skip


def _trades(events: list[Trade]) -> pa.RecordBatch:
    arrays = [
        pa.array([e.symbol for e in events]).dictionary_encode(),
        pa.array([e.ts for e in events], pa.int64()),
        pa.array([e.price for e in events], pa.float64()),
        pa.array([e.size for e in events], pa.float64()),
        pa.array([e.exchange for e in events], pa.string()),
        pa.array([e.condition for e in events], pa.string()),
        pa.nulls(len(events), pa.string()),  # dataset: the processor's to set
        _extra(events),
    ]
    schema = TRADE_SCHEMA.append(pa.field("extra", pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _quotes(events: list[Quote]) -> pa.RecordBatch:
    columns = {name: [getattr(e, name, None) for e in events] for name in QUOTE_SCHEMA.names}
    schema = QUOTE_SCHEMA.append(pa.field("extra", pa.string()))
    arrays = [pa.array(columns[name], QUOTE_SCHEMA.field(name).type) for name in QUOTE_SCHEMA.names]
    return pa.RecordBatch.from_arrays([*arrays, _extra(events)], schema=schema)


def _rows(events: list[Any], schema: pa.Schema) -> pa.RecordBatch:
    """Events whose fields are the schema's columns, as a batch of it."""
    columns = {name: [getattr(e, name) for e in events] for name in schema.names}
    return pa.RecordBatch.from_pydict(columns, schema=schema)


#: Each kind of event: its class, and how a list of them becomes a record batch.
_KINDS: tuple[tuple[str, type[Any], Callable[[list[Any]], pa.RecordBatch]], ...] = (
    ("trade", Trade, _trades), ("quote", Quote, _quotes),
    ("bar", Bar, partial(_rows, schema=BAR_SCHEMA)),
    ("news", NewsItem, partial(_rows, schema=NEWS_SCHEMA)),
)  # fmt: skip


def to_batches(items: list[Any], done: int) -> list[FeedBatch]:
    """Group events by kind into feed batches, dead letters on the first."""
    dead = [i for i in items if isinstance(i, DeadLetter)]
    kinds: list[tuple[str, pa.RecordBatch]] = []
    for kind, cls, build in _KINDS:
        events = [i for i in items if isinstance(i, cls)]
        if events:
            kinds.append((kind, build(events)))
    if not kinds and dead:
        kinds.append(("trade", pa.RecordBatch.from_pylist([], schema=TRADE_SCHEMA)))
    return [
        FeedBatch(kind, data, dead if i == 0 else [], done)  # type: ignore[arg-type]
        for i, (kind, data) in enumerate(kinds)
    ]


class VendorFeed:
    """A live vendor feed: runs its client on a thread, yields what arrives in batches.

    Args:
        name: the vendor (``binance``, ...), for logs and the DLQ.
        client: the coroutine that talks to the vendor, given the :class:`Events` sink.
        events: the sink (made here when not given; tests pass one with a clock).
        linger: seconds to gather events into one batch.
    """

    def __init__(
        self, name: str, client: Client, events: Events | None = None, linger: float = 0.05
    ) -> None:
        self.name = name
        self.events = events or Events(name)
        self._client = client
        self._linger = linger
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._closed = threading.Event()

    @property
    def status(self) -> FeedStatus:
        """Counters of the feed."""
        return self.events.status

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._client(self.events))
            if self._closed.is_set():  # closed before the task existed for close() to cancel
                self._task.cancel()
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # handed to batches(), which raises it
            self._error = exc
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self.events.queue.put(_STOP)

    def batches(self) -> Iterator[FeedBatch]:
        """Yield events as they arrive, until :meth:`close` or a :class:`VendorError`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"feed-{self.name}",
                                            daemon=True)  # fmt: skip
            self._thread.start()
        source = self.events.queue
        while True:
            try:
                first = source.get(timeout=0.2)
            except queue.Empty:
                if self._closed.is_set():
                    return
                continue
            items = [first]
            deadline = time.monotonic() + self._linger
            while items[-1] is not _STOP and time.monotonic() < deadline:
                try:
                    items.append(source.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            stopped = items[-1] is _STOP
            yield from to_batches([i for i in items if i is not _STOP], self.status.events)
            if stopped:
                if self._error is not None:
                    raise self._error
                return

    def close(self) -> None:
        """Stop the client and wait for its thread."""
        self._closed.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
