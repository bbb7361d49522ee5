"""``marketpulse notify``: notifications from the committed ``alerts`` topic, once per alert.

The Kafka path's notifier is a consumer group of its own on the ``alerts``
topic, read with ``read_committed``: it sees exactly the alerts the processor
committed, never those of a transaction a crash aborted. Each alert is
handed to the :class:`~marketpulse.alerts.dispatch.Dispatcher`; an alert
is done once every channel delivered it or made it a dead letter, and its
id is then appended to the *ledger* (a local file, flushed and fsynced).
Offsets are committed:

1. per partition, up to the first alert some channel is not done with;
2. after the ledger holding the ids of the alerts they pass is durable.

After a crash the group reads again from its committed offset; alerts whose
id is in the ledger are skipped, so a notification goes out once per alert.
(A crash in the instant between a receiver's acknowledgement and the ledger
write can still repeat that one message: an HTTP receiver has no
transaction to join.) The ledger belongs to the group: one instance per group.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import msgspec
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from marketpulse.alerts.channels import Notifications
from marketpulse.alerts.dispatch import Dispatcher
from marketpulse.bus.base import Bus, Consumer, TopicPartition
from marketpulse.bus.topics import Topics
from marketpulse.models import Alert, DeadLetter

__all__ = ["DeliveredLedger", "NotifyFigures", "NotifyOptions", "NotifyService"]

logger = logging.getLogger(__name__)


class DeliveredLedger:
    """The ids of the alerts notified, one per line, durable once :meth:`sync` returns.

    Args:
        path: the file (created with its folders; a last line cut short by a
            crash is dropped).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.ids: set[str] = set()
        if self.path.exists():
            data = self.path.read_bytes()
            complete = data.rfind(b"\n") + 1
            self.ids = {line.decode() for line in data[:complete].splitlines() if line}
            if complete < len(data):
                with self.path.open("rb+") as file:
                    file.truncate(complete)
        self._file: IO[bytes] = self.path.open("ab")

    def __contains__(self, ident: str) -> bool:
        with self._lock:
            return ident in self.ids

    def add(self, ident: str) -> None:
        """Append one id (durable at the next :meth:`sync`)."""
        with self._lock:
            if ident not in self.ids:
                self.ids.add(ident)
                self._file.write(ident.encode() + b"\n")
                self._file.flush()

    def sync(self) -> None:
        """Make the ids appended so far durable."""
        with self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Sync and close the file."""
        self.sync()
        self._file.close()


@dataclass(frozen=True, slots=True)
class NotifyOptions:
    """How the notify service runs.

    Attributes:
        group: its consumer group.
        ledger: the file of the notified alerts' ids.
        commit_interval: seconds between offset commits at most.
        exit_when_idle: stop after this many seconds without an alert (``None``: never).
    """

    group: str = "marketpulse-notify"
    ledger: str = "./data/notified.ids"
    commit_interval: float = 1.0
    exit_when_idle: float | None = None


class NotifyService:
    """Consume committed alerts and notify each once (see the module's docstring).

    Args:
        bus: the Kafka bus.
        topics: topic names.
        notifications: the channels and routes.
        options: how to run.
        stop: set to stop (what is queued drains, then the offsets commit).
        count: called with (channel, outcome, number) per delivery outcome.
    """

    def __init__(
        self,
        bus: Bus,
        topics: Topics,
        notifications: Notifications,
        options: NotifyOptions,
        stop: threading.Event,
        count: Callable[[str, str, int], None] | None = None,
    ) -> None:
        self.bus = bus
        self.topics = topics
        self.notifications = notifications
        self.options = options
        self.stop = stop
        self.count = count
        self.read = 0
        self.skipped = 0
        self.dead = 0
        self.running = False
        self._decoder = msgspec.json.Decoder(Alert)
        self._lock = threading.Lock()
        self._read_to: dict[TopicPartition, int] = {}  # next offset to read, per partition
        self._waiting: dict[TopicPartition, dict[int, str]] = {}  # offset -> id, not done
        self._where: dict[str, list[tuple[TopicPartition, int]]] = {}  # id -> its offsets
        self._committed: dict[TopicPartition, int] = {}

    def run(self) -> None:
        """Run until stopped (or idle for ``exit_when_idle`` seconds)."""
        opts = self.options
        ledger = DeliveredLedger(opts.ledger)
        dlq = self.bus.producer()
        dlq_lock = threading.Lock()

        def dead(letters: Sequence[DeadLetter]) -> None:
            with dlq_lock:
                dlq.send_dead(self.topics.name("dlq"), letters)
                dlq.flush(30.0)
                self.dead += len(letters)

        dispatcher = Dispatcher(self.notifications, self.count, dead, done=self._done(ledger))
        consumer = self.bus.consumer(opts.group, [self.topics.name("alerts")])
        last_input = last_commit = time.monotonic()
        self.running = True
        try:
            while not self.stop.is_set():
                batches = consumer.poll(timeout=0.2)
                now = time.monotonic()
                for batch in batches:
                    last_input = now
                    for offset, message in enumerate(batch.messages, batch.first_offset):
                        self._notify(dispatcher, ledger, batch.tp, offset, message.value)
                    with self._lock:
                        self._read_to[batch.tp] = batch.last_offset + 1
                if now - last_commit >= opts.commit_interval:
                    self._commit(consumer, ledger)
                    last_commit = now
                idle = opts.exit_when_idle
                if idle is not None and now - last_input >= (idle if self.read else max(idle, 30)):
                    break  # (before the first alert: time to join the group)
        finally:
            self.running = False
            dispatcher.close()  # what was read is delivered or a dead letter, within bounds
            self._commit(consumer, ledger)
            consumer.close()
            ledger.close()
            dlq.close()
        logger.info("notify: %d alerts read, %d already notified, %d dead letters",
                    self.read, self.skipped, self.dead)  # fmt: skip

    def _done(self, ledger: DeliveredLedger) -> Callable[[Alert], None]:
        def done(alert: Alert) -> None:
            ledger.add(alert.id)
            with self._lock:
                for tp, offset in self._where.pop(alert.id, ()):
                    self._waiting.get(tp, {}).pop(offset, None)

        return done

    def _notify(self, dispatcher: Dispatcher, ledger: DeliveredLedger, tp: TopicPartition,
                offset: int, value: bytes | None) -> None:  # fmt: skip
        self.read += 1
        try:
            alert = self._decoder.decode(value or b"")
        except msgspec.DecodeError as exc:
            logger.warning("notify: not an alert at %s[%d] offset %d (%s)", tp.topic,
                           tp.partition, offset, exc)  # fmt: skip
            return
        if alert.id in ledger:
            self.skipped += 1
            return
        with self._lock:
            self._waiting.setdefault(tp, {})[offset] = alert.id
            self._where.setdefault(alert.id, []).append((tp, offset))
        dispatcher.notify([alert])

    def _commit(self, consumer: Consumer, ledger: DeliveredLedger) -> None:
        """Commit, per partition, up to the first alert some channel is not done with."""
        with self._lock:
            offsets = {
                tp: min(self._waiting.get(tp) or {end: None}) for tp, end in self._read_to.items()
            }
        offsets = {tp: o for tp, o in offsets.items() if self._committed.get(tp) != o}
        if not offsets:
            return
        ledger.sync()  # the ids of what the offsets pass are durable first
        consumer.commit(offsets)
        self._committed.update(offsets)


class NotifyFigures(Collector):
    """The notify service's figures on its ``/metrics``; ready while its loop runs.

    Args:
        service: the service.
        notified: its per channel and outcome counts (:meth:`Metrics.notifications`).
    """

    def __init__(
        self, service: NotifyService, notified: Callable[[], dict[tuple[str, str], int]]
    ) -> None:
        self.service = service
        self.notified = notified

    def ready(self) -> tuple[bool, str]:
        """Ready while the service's loop runs."""
        return (True, "") if self.service.running else (False, "starting")

    def collect(self) -> Iterator[CounterMetricFamily]:
        """Yield the current counts."""
        svc = self.service
        for name, value, doc in (
            ("notify_alerts_read", svc.read, "Alerts read from the alerts topic."),
            ("notify_alerts_skipped", svc.skipped, "Alerts read again, already notified."),
            ("notify_dead_letters", svc.dead, "Alerts sent to the dlq, undeliverable."),
        ):
            yield CounterMetricFamily(f"marketpulse_{name}", doc, value=value)
        family = CounterMetricFamily(
            "marketpulse_notifications",
            "Alerts per notification channel and outcome (sent, digested, retried, "
            "failed, dropped).",
            labels=("channel", "outcome"),
        )
        for (channel, outcome), value in sorted(self.notified().items()):
            family.add_metric((channel, outcome), value)
        yield family
