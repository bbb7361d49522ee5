"""The bus interface: what the embedded bus and Kafka both provide.

A topic has partitions; a partition is an ordered log of records with
offsets. Producers append; consumers in a group read batches of consecutive
records of one partition (:class:`Batch`) and commit the next offset to read.
The processor is written against this interface only, so it runs list-in,
list-out on :mod:`marketpulse.bus.memory` and unchanged on Kafka.

A batch carries its records in one of two forms:

* ``columns``: an Arrow record batch, one row per record (the embedded bus
  keeps decoded columns, so the hot path never builds one object per event);
* ``messages``: raw Kafka-style messages (key, value bytes, offset, headers),
  which the processor decodes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import pyarrow as pa

__all__ = [
    "Batch",
    "Bus",
    "Consumer",
    "Message",
    "Producer",
    "TopicPartition",
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
    """

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    kind: str = ""
    columns: pa.RecordBatch | pa.Table | None = None
    messages: Sequence[Message] = field(default_factory=tuple)

    @property
    def tp(self) -> TopicPartition:
        """The batch's topic partition."""
        return TopicPartition(self.topic, self.partition)

    def __len__(self) -> int:
        return self.last_offset - self.first_offset + 1


class Producer(ABC):
    """Appends records to topics."""

    @abstractmethod
    def send_columns(self, topic: str, kind: str, data: pa.RecordBatch | pa.Table) -> None:
        """Append rows keyed by their ``symbol`` column, partitioned by key."""

    @abstractmethod
    def flush(self, timeout: float | None = None) -> None:
        """Block until every appended record is durable."""

    def close(self) -> None:
        """Flush and release resources."""
        self.flush()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Consumer(ABC):
    """Reads batches of records of the partitions assigned to it."""

    @abstractmethod
    def poll(self, max_records: int = 65536, timeout: float = 0.1) -> list[Batch]:
        """Return the next batches (possibly none before ``timeout`` seconds)."""

    @abstractmethod
    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit, per partition, the offset of the next record to read."""

    @abstractmethod
    def position(self) -> dict[TopicPartition, int]:
        """Return, per assigned partition, the offset of the next record poll returns."""

    @abstractmethod
    def lag(self) -> dict[TopicPartition, int]:
        """Return the records not yet read, per assigned partition."""

    def close(self) -> None:  # noqa: B027 - optional for consumers holding nothing
        """Leave the group and release resources."""

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus(ABC):
    """A transport: topics, producers and consumers."""

    @abstractmethod
    def create_topics(self, names: Sequence[str], partitions: int) -> None:
        """Create topics that do not exist yet."""

    @abstractmethod
    def producer(self) -> Producer:
        """Return a new producer."""

    @abstractmethod
    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        """Return a consumer of ``topics`` in consumer group ``group``."""


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
