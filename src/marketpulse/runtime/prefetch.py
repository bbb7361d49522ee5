"""A feed's read-ahead: the next batches read and decoded on a thread of their own.

On two cores the stages overlap: the feed's thread reads and decodes the
next batches (pyarrow releases the GIL) while the produce service sends.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator

from marketpulse.feeds.base import Feed

__all__ = ["Prefetch", "interrupter"]

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
