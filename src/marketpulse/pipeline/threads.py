"""The embedded pipeline's helper threads: feed prefetch and the sink worker.

On two cores the stages overlap: a feed thread reads and decodes the next
batches (pyarrow releases the GIL), the pipeline thread runs the processor,
and the sink worker, a consumer of the output topics like the Kafka sink
service, writes the lake (Parquet encoding releases the GIL too).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa

from marketpulse.bus import Consumer
from marketpulse.feeds.base import Feed
from marketpulse.models import QUOTE_SCHEMA, TRADE_SCHEMA
from marketpulse.pipeline.segments import SEGMENT_COLUMN
from marketpulse.sinks import InputSegment, Sink

__all__ = ["Prefetch", "SinkWorker", "interrupter"]

logger = logging.getLogger(__name__)

_DONE = object()
#: Seconds between looks at the stop event while waiting.
_POLL = 0.1


class Prefetch:
    """Items produced ahead of time by a thread; iterate to get them in order.

    Exceptions raised while producing are re-raised by the iteration. The
    iteration also ends, within ``_POLL`` seconds, when ``stop`` is set, even
    while the source is blocked waiting for its next item (a live feed that
    cannot connect yields nothing for as long as that lasts): ``interrupt``
    is then called to end that wait (a live feed's ``close``).

    Args:
        items: the source.
        depth: items produced ahead at most.
        stop: ends the iteration when set (``None``: only the source's end does).
        interrupt: called when the iteration ends before the source did, to
            unblock the producing thread (it must be safe from another thread).
    """

    def __init__(
        self,
        items: Iterator,
        depth: int = 4,
        stop: threading.Event | None = None,
        interrupt: Callable[[], None] | None = None,
    ) -> None:
        self._items = items
        self._slots: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = stop or threading.Event()
        self._interrupt = interrupt
        self._quit = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="feed", daemon=True)

    @property
    def ready(self) -> bool:
        """Whether the next item is already waiting."""
        return not self._slots.empty()

    def _offer(self, item: object, error: BaseException | None = None) -> bool:
        """Put an item in a slot unless the consumer quit; return whether it went in."""
        while not self._quit.is_set():
            try:
                self._slots.put((item, error), timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._offer(item):
                    return
            self._offer(_DONE)
        except BaseException as exc:  # handed to the consumer
            self._offer(_DONE, exc)

    def __iter__(self) -> Iterator:
        self._thread.start()
        finished = False
        try:
            while not self._stop.is_set():
                try:
                    item, error = self._slots.get(timeout=_POLL)
                except queue.Empty:
                    continue
                if item is _DONE:
                    finished = True
                    if error is not None:
                        raise error
                    return
                yield item
        finally:
            self._quit.set()
            if not finished and self._interrupt is not None and self._thread.is_alive():
                self._interrupt()
            self._thread.join(timeout=5)


def interrupter(feed: Feed) -> Callable[[], None] | None:
    """Return what ends a wait of ``feed`` for data from another thread: a live feed's ``close``.

    A file replay is never blocked for long; its ``close`` must not race its reads.
    """
    return feed.close if getattr(feed, "realtime", True) else None


class SinkWorker:
    """Drains output topics into a sink, on its own thread.

    Args:
        consumer: a consumer of the topics to store.
        sink: where rows go.
        tables: topic name → table name.
        origin: the identity of a replayed input whose rows carry their
            segment (:mod:`.segments`), or ``None``.
    """

    def __init__(
        self,
        consumer: Consumer,
        sink: Sink,
        tables: dict[str, str],
        origin: str | None = None,
    ) -> None:
        self._consumer = consumer
        self.sink = sink
        self._tables = tables
        self._origin = origin
        self._marks: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"sink-{sink.name}", daemon=True)

    def start(self) -> None:
        """Start draining."""
        self._thread.start()

    def end_segment(self, first: int, last: int) -> None:
        """Tell the sink that the segment of lines first-last is published whole."""
        self._marks.put((first, last))

    def end_source(self) -> None:
        """Tell the sink that every segment of the input was (after those already ended)."""
        self._marks.put(None)

    def drain_and_stop(self) -> None:
        """Write everything published so far, close the sink, and stop.

        Raises:
            Exception: whatever made the worker fail.
        """
        self._stopping.set()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                if not self._step(force=False):
                    self._stopping.wait(0.05)
            self._step(force=True)
        except BaseException as exc:  # reported by drain_and_stop
            logger.error("sink %s failed: %s", self.sink.name, exc)
            self._error = exc
        finally:
            try:
                self.sink.close()
            except BaseException as exc:
                self._error = self._error or exc

    def _step(self, force: bool) -> bool:
        marks = []  # taken before the poll: it then holds every row of the segments ended
        while not self._marks.empty():
            marks.append(self._marks.get())
        batches = self._consumer.poll(max_records=1 << 30, timeout=0)
        for batch in batches:
            table = self._tables[batch.topic]
            for first, data in _by_segment(batch.columns):
                if table == "trades":  # the feed's columns, as the processor kept them
                    data = data.select(TRADE_SCHEMA.names)
                elif table == "quotes":  # the feed's columns, without a live feed's extra
                    data = data.select(QUOTE_SCHEMA.names)
                if data.num_rows:
                    # embedded offsets restart at 0 each run: no offset-named files here,
                    # but a replayed input's segments are the same on every run
                    where = None if first is None else InputSegment(self._origin or "", first)
                    self.sink.write(table, data, where)
        for mark in marks:
            if self._origin is None:
                continue
            if mark is None:
                self.sink.end_source(self._origin)
            else:
                self.sink.end_segment(self._origin, *mark)
        if force or self.sink.due():
            self.sink.flush()  # every table: what was polled is now durable
            self._consumer.commit(self._consumer.position())
        return bool(batches)


def _by_segment(
    data: pa.RecordBatch | pa.Table,
) -> list[tuple[int | None, pa.RecordBatch | pa.Table]]:
    """``data`` cut into runs of one segment, without the segment column (``None``: untagged)."""
    names = data.schema.names
    if SEGMENT_COLUMN not in names:
        return [(None, data)]
    values = data.column(SEGMENT_COLUMN).to_numpy()
    data = data.select([name for name in names if name != SEGMENT_COLUMN])
    bounds = [0, *(np.flatnonzero(np.diff(values)) + 1).tolist(), len(values)]
    return [
        (int(values[lo]), data.slice(lo, hi - lo))
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        if hi > lo
    ]
