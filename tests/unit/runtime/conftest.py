"""Small fakes of what the process service talks to: producer, consumer, processor, bus.

Each fake appends what it is asked to do to one shared log, so a test can
assert the order of steps across them (a commit before a restore, a state
snapshot sent while the offsets travel).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from marketpulse.bus.base import Batch, Message, TopicPartition
from marketpulse.bus.codec import encode_rows
from marketpulse.bus.kafka import ProducerStuck, TransactionAborted
from marketpulse.bus.topics import Topics
from marketpulse.config import ProcessSettings
from marketpulse.models import BAR_SCHEMA
from marketpulse.runtime.process import ProcessOptions, ProcessService
from marketpulse.stream.output import Output


def process_options(**options: Any) -> ProcessOptions:
    """:class:`ProcessOptions` of flat keywords: ``[process]`` settings go to ``settings``."""
    names = {f.name for f in dataclasses.fields(ProcessSettings)}
    settings = ProcessSettings(**{k: v for k, v in options.items() if k in names})
    rest = {k: v for k, v in options.items() if k not in names}
    return ProcessOptions(settings=settings, **rest)


TOPICS = Topics("t.")


def tp(partition: int) -> TopicPartition:
    """A ticks partition."""
    return TopicPartition(TOPICS.ticks, partition)


def batch(partition: int, first: int, last: int) -> Batch:
    """Records ``first`` to ``last`` of a ticks partition."""
    messages = [Message(b"k", b"v%d" % offset, offset) for offset in range(first, last + 1)]
    return Batch(TOPICS.ticks, partition, first, last, messages=messages)


def bars(*ends: int) -> pa.Table:
    """Bars ending at ``ends`` (ns)."""
    n = len(ends)
    columns = {f.name: pa.nulls(n, f.type) for f in BAR_SCHEMA}
    columns["bar_end"] = pa.array(ends, pa.int64())
    columns["bar_start"] = pa.array([end - 60 for end in ends], pa.int64())
    columns["symbol"] = pa.array(["AAA"] * n)
    columns["timeframe"] = pa.array(["1m"] * n)
    columns["dataset"] = pa.array(["test"] * n)
    return pa.table(columns, schema=BAR_SCHEMA)


class Log(list):
    """What the fakes were asked to do, in order: tuples ``(what, detail)``."""

    def names(self) -> list[str]:
        return [entry[0] for entry in self]


class FakeProducer:
    """A transactional producer keeping each transaction's records.

    ``fail`` is raised by the next commit once the offsets went and the
    state was sent: :class:`TransactionAborted` aborts the transaction,
    :class:`ProducerStuck` marks the producer stuck (its transaction still open).
    ``settle_fail`` is raised by the next settling, the same way; ``init_fails``
    by the next ``init`` calls, one each, in order.
    """

    def __init__(self, log: Log) -> None:
        self.log = log
        self.in_transaction = False
        self.stuck = False
        self.fail: Exception | None = None
        self.settle_fail: Exception | None = None
        self.init_fails: list[Exception] = []
        self.open: list[tuple[str, int, object]] = []
        self.committed: list[tuple[str, int, object]] = []
        self.offsets: list[dict[TopicPartition, int]] = []
        self.timeouts: list[float] = []

    def abandon(self) -> None:
        self.log.append(("abandon", None))

    def init(self, timeout: float = 30.0) -> None:
        self.log.append(("init", None))
        if self.init_fails:
            raise self.init_fails.pop(0)

    def settle(self, consumer, consumed) -> None:
        assert not self.in_transaction, "settle with a transaction open"
        self.log.append(("settle", consumed.partition))
        if self.settle_fail is not None:
            exc, self.settle_fail = self.settle_fail, None
            self.stuck = isinstance(exc, ProducerStuck)
            self.log.append(("failed", type(exc).__name__))
            raise exc

    def begin(self) -> None:
        assert not self.in_transaction, "begin with a transaction open"
        self.in_transaction = True
        self.log.append(("begin", None))

    def send_rows(self, topic, kind, rows, partition) -> None:
        _, values = encode_rows(kind, rows)
        self.open += [(topic, partition, value) for value in values]

    def send_encoded(self, topic, keys, values, partition) -> None:
        self.open += [(topic, partition, value) for value in values]

    def send_records(self, topic, records, partition) -> None:
        for key, value in records:
            self.send(topic, key, value, partition)

    def send(self, topic, key, value, partition=-1, headers=None) -> None:
        assert self.in_transaction, "send outside a transaction"
        self.open.append((topic, partition, (key, value)))
        self.log.append(("send", (topic, partition)))

    def send_alerts(self, topic, alerts, partition=-1) -> None:
        self.open += [(topic, partition, alert) for alert in alerts]

    def send_dead(self, topic, letters, partition=-1, dataset=None) -> None:
        self.open += [(topic, partition, letter) for letter in letters]

    def commit(self, offsets, consumer, timeout=60.0, meanwhile=None) -> None:
        assert self.in_transaction, "commit without a transaction"
        self.log.append(("offsets", dict(offsets)))
        self.timeouts.append(timeout)
        if meanwhile is not None:
            meanwhile()
        if self.fail is not None:
            exc, self.fail = self.fail, None
            if isinstance(exc, TransactionAborted):
                self.in_transaction, self.open = False, []
            elif isinstance(exc, ProducerStuck):
                self.stuck = True
            self.log.append(("failed", type(exc).__name__))
            raise exc
        self.committed += self.open
        self.offsets.append(dict(offsets))
        self.open = []
        self.in_transaction = False
        self.log.append(("commit", dict(offsets)))

    def abort(self, timeout=60.0) -> None:
        if self.in_transaction:
            self.log.append(("abort", None))
        self.in_transaction, self.open = False, []

    def close(self) -> None:
        self.log.append(("close producer", None))

    def topics(self, which: str = "open") -> list[str]:
        return [topic for topic, _, _ in getattr(self, which)]


class FakeConsumer:
    """A group member: committed offsets, seeks, and polls played from a script.

    Each poll takes the next step of ``script``: a list of batches to return,
    or a callable (given the consumer; it may fire the rebalance callbacks)
    returning one. An empty script sets ``stop`` and returns nothing.
    """

    def __init__(
        self,
        log: Log,
        committed: dict[TopicPartition, int] | None = None,
        on_assign: Callable | None = None,
        on_revoke: Callable | None = None,
        on_lost: Callable | None = None,
    ) -> None:
        self.log = log
        self.group_offsets = dict(committed or {})
        self.on_assign, self.on_revoke, self.on_lost = on_assign, on_revoke, on_lost
        self.script: list = []
        self.stop = None
        self.timeouts: list[float] = []
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.closed = False

    def poll(self, max_records: int = 65536, timeout: float = 0.1) -> list[Batch]:
        self.timeouts.append(timeout)
        if not self.script:
            if self.stop is not None:
                self.stop.set()
            return []
        step = self.script.pop(0)
        return step(self) if callable(step) else step

    def committed(self, partitions, timeout: float = 60.0) -> dict[TopicPartition, int]:
        self.log.append(("committed", sorted(p.partition for p in partitions)))
        return {p: self.group_offsets.get(p, -1) for p in partitions}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))
        self.log.append(("seek", (tp.partition, offset)))

    def lag(self, cached: bool = False, resumed=None) -> dict[TopicPartition, int]:
        return {}

    def close(self) -> None:
        self.closed = True


class FakeProcessor:
    """A processor that makes one bar per batch, ending at the batch's last offset."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.settings = SimpleNamespace(
            dataset="test", plugins=(), forecast=SimpleNamespace(models=())
        )
        #: what :meth:`closing` answers
        self.still_closing = True
        self.quiet: dict[int, float] = {}  # partition: when it counts as idle from
        self.closing_asked: list[tuple[int, float]] = []
        #: outputs :meth:`idle_each` returns, by (topic, partition)
        self.idle_outputs: dict[tuple[str, int], Output] = {}

    def warm_up(self, columns: bool = False) -> None:
        pass

    def process_each(self, batches) -> list[Output]:
        for b in batches:
            self.log.append(("process", (b.partition, b.first_offset, b.last_offset)))
        return [Output(bars=bars(b.last_offset), accepted=len(b.messages)) for b in batches]

    def idle_each(self, now=None, behind=()) -> dict[tuple[str, int], Output]:
        outputs, self.idle_outputs = self.idle_outputs, {}
        return outputs

    def closing(self, end: int, now: float, recent: float = 1.0) -> bool:
        self.closing_asked.append((end, now))
        return self.still_closing

    def checkpoint(self, topic: str, partition: int) -> list[tuple[bytes, bytes]]:
        self.log.append(("checkpoint", partition))
        return [(b"state-key", b"state-%d" % partition)]

    def restore(self, topic, partition, records, quiet_since=None) -> int:
        self.log.append(("restore", partition))
        return 0

    def quiet_since(self, topic: str, partition: int, since: float) -> None:
        self.quiet[partition] = since

    def drop(self, topic: str, partition: int) -> None:
        self.log.append(("drop", partition))


class FakeBus:
    """Makes the fakes above for :meth:`ProcessService.run`; keeps every producer made."""

    def __init__(self, log: Log, committed: dict[TopicPartition, int] | None = None) -> None:
        self.log = log
        self.settings = SimpleNamespace(bootstrap="fake")
        self.group_offsets = dict(committed or {})
        self.producers: list[FakeProducer] = []
        self.consumers: list[FakeConsumer] = []
        self.script: list = []
        #: set by the consumers made once their script is played
        self.stop = None

    def partitions(self, topic: str) -> int:
        return 4

    def transactional_producer(self, transactional_id, **kwargs) -> FakeProducer:
        producer = FakeProducer(self.log)
        self.producers.append(producer)
        return producer

    def read_partition(self, topic, partition, timeout=60.0, stop=None) -> dict[bytes, bytes]:
        """Reading the ``state`` topic: logged, nothing in it."""
        self.log.append(("read state", partition))
        return {}

    def close(self) -> None:
        self.log.append(("close bus", None))

    def consumer(self, group, topics, on_assign, on_revoke, on_lost, **extra) -> FakeConsumer:
        consumer = FakeConsumer(self.log, self.group_offsets, on_assign, on_revoke, on_lost)
        consumer.script, self.script = self.script, []
        consumer.stop = self.stop
        self.consumers.append(consumer)
        return consumer


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def empty_state() -> None:
    """The ``state`` topic is empty: :meth:`FakeBus.read_partition` logs each read."""


@pytest.fixture
def make_service(log, empty_state) -> Callable[..., ProcessService]:
    """A service wired to fakes, as if running: ``service.bus`` is a :class:`FakeBus`."""

    def make(committed=None, **options) -> ProcessService:
        bus = FakeBus(log, committed)
        service = ProcessService(
            bus,  # type: ignore[arg-type]
            TOPICS,
            FakeProcessor(log),  # type: ignore[arg-type]
            process_options(**options),
        )
        service._producer = bus.transactional_producer("fake")
        service._consumer = bus.consumer(
            "g", [TOPICS.ticks], service._assigned, service._revoked, service._lost
        )
        return service

    return make
