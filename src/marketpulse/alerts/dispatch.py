"""Delivery of alerts to channels without ever holding up the pipeline.

:class:`Dispatcher` is a :class:`~marketpulse.alerts.Notifier`: its
:meth:`~Dispatcher.notify` only puts each alert on the bounded queue of every
channel it is routed to, and returns. One worker thread per channel sends
them:

1. at most ``rate_limit`` messages a minute (0: no limit); alerts beyond it
   are held and go out as one digest message when the minute allows;
2. a failed attempt is retried ``retries`` times, ``backoff`` seconds later,
   doubled each time (a permanent refusal, such as HTTP 400, is not retried);
3. what is still not delivered, what finds the queue full and what is left
   when the drain time at shutdown runs out becomes a dead letter with the
   reason (``notify_failed``, ``notify_overflow``, ``notify_shutdown``).

Every outcome is counted per channel: ``sent``, ``digested`` (in a digest),
``retried`` (attempts after the first), ``failed`` (after the retries),
``dropped`` (a full queue, the end of the drain time).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

import msgspec

from marketpulse.alerts.channels import Channel, Notifications
from marketpulse.alerts.delivery import DeliveryError, Sender, sender_for
from marketpulse.models import Alert, DeadLetter

__all__ = ["DRAIN_TIMEOUT", "Dispatcher", "OUTCOMES"]

logger = logging.getLogger(__name__)

#: Seconds :meth:`Dispatcher.close` waits for the queues to empty.
DRAIN_TIMEOUT = 10.0
#: The outcomes counted per channel.
OUTCOMES = ("sent", "digested", "retried", "failed", "dropped")
_MINUTE = 60.0

Count = Callable[[str, str, int], None]
Dead = Callable[[Sequence[DeadLetter]], None]


class Dispatcher:
    """Routes alerts to their channels' queues; a worker thread per channel delivers them.

    Args:
        notifications: the channels and routes.
        count: called with (channel, outcome, number) for every outcome (:data:`OUTCOMES`).
        dead: called with the dead letters of what could not be delivered.
        senders: makes a channel's sender (tests pass their own).
        drain_timeout: seconds :meth:`close` lets the workers deliver what is queued.
        done: called (from a worker thread) with an alert once every channel it
            was routed to is done with it: delivered it or made it a dead letter.
    """

    def __init__(
        self,
        notifications: Notifications,
        count: Count | None = None,
        dead: Dead | None = None,
        senders: Callable[[Channel], Sender] = sender_for,
        drain_timeout: float = DRAIN_TIMEOUT,
        done: Callable[[Alert], None] | None = None,
    ) -> None:
        self.notifications = notifications
        self.drain_timeout = drain_timeout
        self._count = count or (lambda channel, outcome, n: None)
        self._dead = dead or (lambda letters: None)
        self._done = done
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}  # alert id -> channels not done with it yet
        self._workers = {
            name: _Worker(channel, senders, self._count, self._dead, self._finished)
            for name, channel in notifications.channels.items()
        }
        for worker in self._workers.values():
            worker.start()

    def notify(self, alerts: Sequence[Alert]) -> None:
        """Queue each alert for the channels of its rule and severity; never blocks."""
        for alert in alerts:
            names = self.notifications.targets(alert.rule, alert.severity)
            if not names:
                if self._done is not None:
                    self._done(alert)
                continue
            with self._lock:
                self._open[alert.id] = self._open.get(alert.id, 0) + len(names)
            for name in names:
                self._workers[name].offer(alert)

    def _finished(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            with self._lock:
                left = self._open.get(alert.id, 1) - 1
                if left > 0:
                    self._open[alert.id] = left
                    continue
                self._open.pop(alert.id, None)
            if self._done is not None:
                self._done(alert)

    def close(self) -> None:
        """Deliver what is queued within ``drain_timeout`` seconds; the rest become dead letters."""
        deadline = time.monotonic() + self.drain_timeout
        for worker in self._workers.values():
            worker.stopping.set()
        for worker in self._workers.values():
            worker.join(max(deadline - time.monotonic(), 0.0))
        for worker in self._workers.values():
            if worker.is_alive():
                logger.warning("notifier %s: drain time (%g s) over; what is left goes to the dlq",
                               worker.channel.name, self.drain_timeout)  # fmt: skip
                worker.abort.set()
                worker.join(worker.channel.timeout + 1.0)


class _Worker(threading.Thread):
    def __init__(self, channel: Channel, senders: Callable[[Channel], Sender], count: Count,
                 dead: Dead, finished: Callable[[Sequence[Alert]], None]) -> None:  # fmt: skip
        super().__init__(name=f"notify-{channel.name}", daemon=True)
        self.channel = channel
        self.stopping = threading.Event()  # deliver what is queued, then end
        self.abort = threading.Event()  # end now: what is left goes to the dlq
        self._queue: queue.Queue[Alert] = queue.Queue(maxsize=channel.queue)
        self._senders = senders
        self._count = count
        self._dead = dead
        self._finished = finished
        self._sent: deque[float] = deque()  # when the messages of the last minute went out
        self._held: list[Alert] = []

    def offer(self, alert: Alert) -> None:
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self._bury([alert], "notify_overflow",
                       f"queue full ({self.channel.queue} alerts waiting)")  # fmt: skip

    def run(self) -> None:
        sender: Sender | None = None
        try:
            sender = self._senders(self.channel)
            self._loop(sender)
        except Exception as exc:  # a broken sender must not lose alerts silently
            logger.error("notifier %s stopped: %s: %s", self.channel.name, type(exc).__name__, exc)
            self._bury(self._left(), "notify_failed", f"notifier stopped: {exc}")
        finally:
            if sender is not None:
                try:
                    sender.close()
                except Exception as exc:  # closing is best effort
                    logger.warning("notifier %s: close: %s", self.channel.name, exc)

    def _loop(self, sender: Sender) -> None:
        while True:
            if self.abort.is_set():
                self._bury(self._left(), "notify_shutdown", "shutdown drain time over")
                return
            try:
                alert: Alert | None = self._queue.get(timeout=0.05)
            except queue.Empty:
                alert = None
            if alert is not None:
                if self._held or not self._room():
                    self._held.append(alert)
                else:
                    self._deliver(sender, [alert], digest=False)
            drained = alert is None and self.stopping.is_set()
            if self._held and (drained or self._room()):
                held, self._held = self._held, []
                self._deliver(sender, held, digest=len(held) > 1)
            elif drained:
                return

    def _room(self) -> bool:
        """Whether the rate limit lets one more message out now."""
        limit = self.channel.rate_limit
        if not limit:
            return True
        now = time.monotonic()
        while self._sent and now - self._sent[0] >= _MINUTE:
            self._sent.popleft()
        return len(self._sent) < limit

    def _deliver(self, sender: Sender, alerts: list[Alert], digest: bool) -> None:
        ch = self.channel
        error: DeliveryError | None = None
        for attempt in range(ch.retries + 1):
            if attempt:
                self._count(ch.name, "retried", 1)
                if self.abort.wait(ch.backoff * 2 ** (attempt - 1)):
                    self._bury(alerts, "notify_shutdown", f"shutdown while retrying: {error}")
                    return
            try:
                sender.send(alerts, digest)
            except DeliveryError as exc:
                error = exc
                logger.warning("notifier %s: attempt %d of %d failed: %s", ch.name, attempt + 1,
                               ch.retries + 1, exc)  # fmt: skip
                if exc.permanent:
                    break
                continue
            self._sent.append(time.monotonic())
            self._count(ch.name, "digested" if digest else "sent", len(alerts))
            self._finished(alerts)
            return
        self._bury(alerts, "notify_failed", f"{error} (after {attempt + 1} attempts)")

    def _left(self) -> list[Alert]:
        left, self._held = self._held, []
        while True:
            try:
                left.append(self._queue.get_nowait())
            except queue.Empty:
                return left

    def _bury(self, alerts: Sequence[Alert], reason: str, why: str) -> None:
        if not alerts:
            return
        self._count(self.channel.name, "failed" if reason == "notify_failed" else "dropped",
                    len(alerts))  # fmt: skip
        letters = [
            DeadLetter(reason=reason, error=f"notifier {self.channel.name!r}: {why}",
                       value=msgspec.json.encode(a), key=a.symbol, ts=a.bar_end)
            for a in alerts
        ]  # fmt: skip
        try:
            self._dead(letters)
        except Exception as exc:  # the dlq itself failed: the log is the last record
            logger.error("notifier %s: %d alerts lost (dlq failed: %s)", self.channel.name,
                         len(letters), exc)  # fmt: skip
        self._finished(alerts)
