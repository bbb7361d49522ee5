"""The bus contract: what the embedded bus and Kafka both fulfil.

A topic has partitions; a partition is an ordered log of records with
offsets. The contract, in the manner of httpx's transports (one abstract
interface, a real implementation and an in-memory one that fulfils all of it):

* :class:`Producer`: appends records (:meth:`Producer.send_columns`), keyed
  by their ``symbol`` and partitioned as Kafka's default partitioner does
  (:func:`partition_for`); or to a partition chosen by the caller: rows of an
  output table (:meth:`~Producer.send_rows`), alerts, dead letters and
  key/value records (:meth:`~Producer.send_records`). Each bus carries them
  its own way (Kafka: JSON records; in memory: Arrow rows as they are).
* :class:`TransactionalProducer`: a producer whose records, and a consumer
  group's offsets, commit atomically: :meth:`~TransactionalProducer.begin`,
  sends, then :meth:`~TransactionalProducer.commit` (with the next offsets of
  a :class:`Consumer`) or :meth:`~TransactionalProducer.abort`. Records sent in
  a transaction are read by no (read-committed) consumer until it commits,
  and never once it aborts. A producer started with the transactional id of
  another fences the older one (:class:`ProducerFenced`).
* :class:`Consumer`: a member of a consumer group. The group shares the
  partitions of its topics among its members; a member learns which it reads
  in :meth:`Consumer.poll`, through callbacks given to :meth:`Bus.consumer`:
  ``on_assign`` (partitions join it: it reads them from the group's committed
  offset), ``on_revoke`` (they leave it, in a rebalance or when it closes:
  commit their work now) and ``on_lost`` (they were taken without a revoke:
  their uncommitted work is void). It reads batches of consecutive records of
  one partition (:class:`Batch`), commits the next offset to read
  (:meth:`Consumer.commit`, or in a transaction), and can read the group's
  :meth:`~Consumer.committed` offsets, :meth:`~Consumer.seek`, its
  :meth:`~Consumer.assignment`, :meth:`~Consumer.position` and
  :meth:`~Consumer.lag`. :meth:`Consumer.close` leaves the group (its
  partitions are revoked).
* :class:`Bus`: creates topics, producers and consumers, and reads a
  partition's latest value per key (:meth:`Bus.read_partition`).

The processor is written against this contract only, so it runs list-in,
list-out on :mod:`marketpulse.bus.memory` and unchanged on Kafka
(:mod:`marketpulse.bus.kafka`).

A batch carries its records in one of two forms:

* ``columns``: an Arrow record batch, one row per record (the embedded bus
  keeps decoded columns, so the hot path never builds one object per event);
* ``messages``: raw Kafka-style messages (key, value bytes, offset, headers),
  which the processor decodes.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Self

import pyarrow as pa

from marketpulse.exceptions import BusError

if TYPE_CHECKING:
    from marketpulse.models import Alert, DeadLetter

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "Batch",
    "Bus",
    "Consumer",
    "ConsumerFatal",
    "Message",
    "Producer",
    "ProducerFenced",
    "Rebalance",
    "RecordsGone",
    "TopicPartition",
    "TransactionAborted",
    "TransactionalProducer",
    "keys_of",
    "offsets_of",
    "partition_for",
    "values_of",
]


class TopicPartition(NamedTuple):
    """A partition of a topic."""

    topic: str
    partition: int


class Message(NamedTuple):
    """One raw record as Kafka carries it."""

    key: bytes | None
    value: bytes | None
    offset: int
    timestamp: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


def values_of(messages: Sequence[Message]) -> list[bytes | None]:
    """Return the values of ``messages``, without building each message where possible.

    A Kafka batch holds the client's records and makes a :class:`Message` of
    one only when asked; this reads the one field directly from all of them.
    """
    direct = getattr(messages, "values", None)
    return direct() if direct is not None else [m.value for m in messages]


def offsets_of(messages: Sequence[Message]) -> list[int]:
    """Return the offsets of ``messages`` (see :func:`values_of`)."""
    direct = getattr(messages, "offsets", None)
    return direct() if direct is not None else [m.offset for m in messages]


def keys_of(messages: Sequence[Message]) -> list[bytes | None]:
    """Return the keys of ``messages`` (see :func:`values_of`)."""
    direct = getattr(messages, "keys", None)
    return direct() if direct is not None else [m.key for m in messages]


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive records of one topic partition.

    Attributes:
        topic: the topic name, prefix included.
        partition: the partition number.
        first_offset: offset of the first record.
        last_offset: offset of the last record; commit ``last_offset + 1``.
        kind: what the records are when ``columns`` is set: ``trade``,
            ``bar``, or the output table name (``bars``, ``indicators``, ...).
        columns: the records as columns (embedded bus), row ``i`` at offset
            ``first_offset + i``.
        messages: the records as raw messages (Kafka).
        sent_at: when the last record was appended, epoch seconds (columns:
            the in-memory bus; Kafka's records carry their own timestamps).
    """

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    kind: str = ""
    columns: pa.RecordBatch | pa.Table | None = None
    messages: Sequence[Message] = field(default_factory=tuple)
    sent_at: float = 0.0

    @property
    def tp(self) -> TopicPartition:
        """The batch's topic partition."""
        return TopicPartition(self.topic, self.partition)

    def __len__(self) -> int:
        return self.last_offset - self.first_offset + 1


#: Rebalancing callback: receives the partitions that join, leave or were lost.
Rebalance = Callable[[list[TopicPartition]], None]

#: :meth:`Consumer.seek` offset: the oldest record still held.
OFFSET_BEGINNING = -2

#: :meth:`Consumer.seek` offset: after the newest record.
OFFSET_END = -1


class TransactionAborted(BusError):
    """A transaction failed and was aborted; redo the work since the last commit."""


class ProducerFenced(BusError):
    """The producer can no longer commit: a newer instance owns its transactional id."""


class ConsumerFatal(BusError):
    """The consumer cannot go on (fenced, for one); make a new one."""


class RecordsGone(BusError):
    """A partition no longer holds records asked for (its retention removed them)."""


class Producer(ABC):
    """Appends records to topics.

    Attributes:
        failed: records the bus refused after accepting them (Kafka: failed
            delivery reports); none where an append is done when it returns.
        errors: the first of those failures, one line each.
    """

    failed: int = 0
    errors: Sequence[str] = ()

    @property
    def in_flight(self) -> int:
        """Records appended but not yet acknowledged (none where an append is done at once)."""
        return 0

    @abstractmethod
    def send_columns(self, topic: str, kind: str, data: pa.RecordBatch | pa.Table) -> None:
        """Append rows keyed by their ``symbol`` column, partitioned by key."""

    @abstractmethod
    def send_rows(self, topic: str, kind: str, rows: pa.Table, partition: int) -> None:
        """Append the rows of output table ``kind`` (``bars``, ``trades``, ...) to a partition."""

    @abstractmethod
    def send_encoded(
        self, topic: str, keys: Sequence[str], values: Sequence[bytes], partition: int
    ) -> None:
        """Append records already encoded (``values``, keyed by ``keys``) to a partition."""

    @abstractmethod
    def send_alerts(self, topic: str, alerts: Iterable[Alert], partition: int = -1) -> None:
        """Append alerts to ``partition`` (``-1``: by their symbol)."""

    @abstractmethod
    def send_dead(
        self,
        topic: str,
        letters: Iterable[DeadLetter],
        partition: int = -1,
        dataset: str | None = None,
    ) -> None:
        """Append dead letters to ``partition``; ``dataset``: the dataset they belong to."""

    @abstractmethod
    def send_records(
        self, topic: str, records: Iterable[tuple[bytes, bytes | None]], partition: int
    ) -> None:
        """Append key/value records to a partition (a ``None`` value deletes its key)."""

    @abstractmethod
    def flush(self, timeout: float | None = None) -> None:
        """Block until every appended record is durable.

        Raises:
            BusError: records are still unacknowledged after ``timeout`` seconds.
        """

    def close(self) -> None:
        """Flush and release resources."""
        self.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TransactionalProducer(Producer):
    """A producer whose records, and a consumer group's offsets, commit atomically.

    Records are sent only inside a transaction: :meth:`begin`, sends,
    :meth:`commit` or :meth:`abort`. A transactional id names one logical
    producer across restarts: :meth:`init` with the id of another producer
    fences that one (its next step raises :class:`ProducerFenced`) and aborts
    its open transaction. :meth:`close` aborts an open transaction.
    """

    @property
    @abstractmethod
    def in_transaction(self) -> bool:
        """Whether a transaction is open (begun, neither committed nor aborted)."""

    def init(self, timeout: float = 30.0) -> None:  # noqa: B027 - nothing to register by default
        """Register the transactional id, fencing older producers with it; call once first."""

    def settle(  # noqa: B027 - nothing is left open by default
        self, consumer: Consumer, consumed: TopicPartition
    ) -> None:
        """End what an earlier producer of this id may have left open, before reading offsets.

        Called before ``consumer``'s group offsets are read, with a partition
        ``consumed`` reads: a bus whose transactions can be left half-ended (a
        broker's restart) ends them here, so that the offsets can be read.
        """

    @abstractmethod
    def begin(self) -> None:
        """Start a transaction."""

    @abstractmethod
    def commit(
        self,
        offsets: dict[TopicPartition, int],
        consumer: Consumer,
        timeout: float = 60.0,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        """Commit the open transaction together with ``consumer``'s group offsets.

        Args:
            offsets: the next offset to read of each partition consumed in
                this transaction; committed for ``consumer``'s group with the
                records, or not at all.
            consumer: the consumer whose group commits them.
            timeout: seconds each step may take.
            meanwhile: called before the commit completes: the last records of
                the transaction can be made and sent then.

        Raises:
            TransactionAborted: the commit failed and the transaction was
                aborted (``consumer`` lost its partitions, for one): redo the
                work since the last commit.
            ProducerFenced: a newer producer with this transactional id took over.
        """

    @abstractmethod
    def abort(self, timeout: float = 60.0) -> None:
        """Abort the open transaction, if any: its records are never read as committed."""

    def abandon(self) -> None:  # noqa: B027 - nothing is sent later by default
        """Give this producer up for one that takes over its id: drop what it has not sent.

        A producer left behind with records queued (a broker away) would send
        them once the broker is back, into a transaction its successor has
        already aborted.
        """


class Consumer(ABC):
    """A consumer-group member: reads batches of records of the partitions assigned to it.

    Partitions are assigned in :meth:`poll` (the first poll joins the group);
    see :meth:`Bus.consumer` for the rebalancing callbacks.
    """

    @abstractmethod
    def poll(self, max_records: int = 65536, timeout: float = 0.1) -> list[Batch]:
        """Return the next batches (possibly none before ``timeout`` seconds).

        Rebalancing callbacks run in here, before the batches are read.
        """

    @abstractmethod
    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit, per partition, the offset of the next record to read."""

    @abstractmethod
    def committed(
        self, partitions: Sequence[TopicPartition], timeout: float = 60.0
    ) -> dict[TopicPartition, int]:
        """Return the group's committed offset per partition (``-1`` where none)."""

    @abstractmethod
    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read assigned partition ``tp`` from ``offset`` next.

        ``offset`` may be :data:`OFFSET_BEGINNING` or :data:`OFFSET_END`.
        """

    @abstractmethod
    def assignment(self) -> list[TopicPartition]:
        """Return the partitions assigned to this member."""

    @abstractmethod
    def position(self) -> dict[TopicPartition, int]:
        """Return, per assigned partition, the offset of the next record poll returns."""

    @abstractmethod
    def lag(
        self, *, cached: bool = False, resumed: Mapping[TopicPartition, int] | None = None
    ) -> dict[TopicPartition, int]:
        """Return the records not yet read, per assigned partition.

        Args:
            cached: from the end offsets the consumer already knows (no request:
                cheap enough for the hot path, maybe a moment stale); a partition
                whose end or position the consumer does not know yet is left out.
            resumed: the offset reading resumed from (the committed offset), per
                partition where the caller knows it: for a partition whose
                position the consumer does not know yet (Kafka's, before it
                hands out a record of it).
        """

    def close(self) -> None:  # noqa: B027 - optional for consumers holding nothing
        """Leave the group (``on_revoke`` gets the partitions) and release resources."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus(ABC):
    """A transport: topics, producers and consumers.

    Attributes:
        durable: whether records and offsets outlive the process (Kafka's do,
            the embedded bus's restart at 0): only then may a consumer name
            what it stores by offsets, as a rerun reads the same offsets again.
    """

    durable: bool = False

    def __str__(self) -> str:
        """Where the bus is, for log lines."""
        return type(self).__name__

    @abstractmethod
    def create_topics(self, names: Sequence[str], partitions: int, **options: Any) -> list[str]:
        """Create topics that do not exist yet; return the names created.

        ``options``: the transport's topic settings (Kafka: ``replication``,
        ``configs`` per topic name); a bus ignores those it has no use for.
        """

    @abstractmethod
    def partitions(self, topic: str) -> int:
        """Return the number of partitions of ``topic``.

        Raises:
            BusError: the topic does not exist.
        """

    @abstractmethod
    def end_offsets(self, topic: str) -> list[int]:
        """Return the next offset to be written, per partition of ``topic``.

        Raises:
            BusError: the topic does not exist or its offsets cannot be read.
        """

    @abstractmethod
    def committed_offsets(self, group: str, topic: str) -> list[int]:
        """Return the offsets ``group`` has committed, per partition of ``topic`` (-1: none).

        Raises:
            BusError: the offsets cannot be read.
        """

    @abstractmethod
    def producer(self, **options: Any) -> Producer:
        """Return a new producer.

        ``options``: the transport's client options (Kafka: ``compression``,
        ``linger_ms``, ...); a bus ignores those it has no use for.
        """

    @abstractmethod
    def transactional_producer(
        self, transactional_id: str, **options: Any
    ) -> TransactionalProducer:
        """Return a new transactional producer; call its ``init`` first.

        ``options``: the transport's client options (Kafka: ``compression``,
        ``transaction_timeout_s``, ...); a bus ignores those it has no use for.
        """

    @abstractmethod
    def read_partition(
        self,
        topic: str,
        partition: int,
        timeout: float = 60.0,
        stop: threading.Event | None = None,
    ) -> dict[bytes, bytes]:
        """Read a partition of key/value records to its end: the latest value per key.

        Committed records only; a ``None`` value deletes its key. Every
        transaction open on the partition at the call ends first (the broker
        aborts a crashed producer's after its timeout): a read stopped at it
        would miss what was committed after it.

        Raises:
            BusError: the end was not reached within ``timeout`` seconds, or
                ``stop`` was set first (a service stopping while its broker is away).
        """

    @abstractmethod
    def read_range(
        self,
        topic: str,
        partition: int,
        first: int,
        last: int,
        timeout: float = 60.0,
        stop: threading.Event | None = None,
    ) -> list[Batch]:
        """Read the committed records of a partition from ``first`` to ``last`` (inclusive).

        Made for reading a log again where another reader has been, range after
        range in order (the trades the processor kept, by reference): a range
        that follows the last one read continues where it ended.

        Raises:
            RecordsGone: the partition no longer holds ``first`` (retention).
            BusError: ``last`` was not reached within ``timeout`` seconds, or
                ``stop`` was set first.
        """

    def close(self) -> None:  # noqa: B027 - a bus may keep nothing between calls
        """Release the clients kept between calls (made again when needed)."""

    @abstractmethod
    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        on_assign: Rebalance | None = None,
        on_revoke: Rebalance | None = None,
        on_lost: Rebalance | None = None,
        **options: Any,
    ) -> Consumer:
        """Return a member of consumer group ``group`` reading ``topics``.

        ``options``: the transport's client options; a bus ignores those it
        has no use for.

        The group's members share the partitions of ``topics``. Callbacks run
        in the member's :meth:`Consumer.poll` (``on_revoke`` in
        :meth:`Consumer.close` too), with the partitions concerned:

        * ``on_revoke``: partitions leave this member (a member joined or
          left); they are still its own during the call, so that their work
          can be committed; always before ``on_assign`` of the same poll.
        * ``on_assign``: partitions join this member; it reads them from the
          group's committed offset (from the oldest record without one).
        * ``on_lost``: partitions were taken away without a revoke (the
          member was too slow, or cut off): their uncommitted work must be
          discarded; a transaction with their offsets can no longer commit.
          Without ``on_lost``, ``on_revoke`` gets them.
        """


def _murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (the Java client's default partitioner)."""
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    length = len(data)
    h = (seed ^ length) & 0xFFFFFFFF
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length & 3
    tail = data[4 * n4 :]
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_for(key: str, partitions: int) -> int:
    """Return the partition of ``key`` as Kafka's default partitioner picks it."""
    return (_murmur2(key.encode()) & 0x7FFFFFFF) % partitions
