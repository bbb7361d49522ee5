"""The embedded bus: topics as in-memory logs of columnar segments.

It fulfils the whole bus contract of :mod:`marketpulse.bus.base` with Kafka's
model (partitions, offsets, consumer groups, commits, transactions), so that
the processor and sinks behave the same on it as on Kafka, but stores Arrow
record batches instead of bytes: appending a batch of ``n`` rows takes ``n``
offsets and costs one list append.

* Transactions: a transactional producer holds the batches it sends until the
  commit, which appends them and commits the consumer group's offsets at once
  (under the bus lock); an abort drops them. Consumers therefore read
  committed records only (Kafka's ``read_committed``), and a transaction's
  records take their offsets when it commits, without Kafka's commit marker.
* Groups: a consumer joins its group at its first poll; the members share the
  partitions of each topic in contiguous ranges (Kafka's range assignor,
  members in the order they joined). When a member joins or leaves, each
  member at its next poll first revokes (``on_revoke``) the partitions it no
  longer gets, then takes (``on_assign``) those released to it: a partition
  moves only once its previous owner has revoked it (as in cooperative
  rebalancing). :meth:`MemoryBus.lose` takes a member's partitions away
  without a revoke (``on_lost``), as Kafka does to a member that missed its
  session timeout.
* Polls wait up to ``timeout`` for records (a commit or an append wakes them).
* A producer outside transactions (a feed's) waits while a partition holds
  ``hold_rows`` records its readers have not committed yet: the bus keeps a
  bounded backlog, as a feed that runs ahead of the processor must not fill
  the memory.
* Each record keeps the time it was appended (:attr:`Batch.sent_at`), the
  start of the latencies a live view shows.
* Records sent to a partition chosen by the caller keep their Arrow form too:
  output rows as they are, alerts and dead letters as ``alerts`` and ``dlq``
  rows, key/value records (``state``) as a table of ``key`` and ``value``
  binary columns, which :meth:`MemoryBus.read_partition` reads back.
* A topic created with ``cleanup.policy=compact`` (``state``) keeps the latest
  value of each key (:mod:`marketpulse.bus.memory_compaction`), as Kafka's log
  cleaner does; other topics drop what every reading group has committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.bus.base import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Batch,
    Bus,
    Consumer,
    Producer,
    ProducerFenced,
    Rebalance,
    RecordsGone,
    TopicPartition,
    TransactionAborted,
    TransactionalProducer,
    partition_for,
)
from marketpulse.bus.memory_compaction import COMPACT_MIN_ROWS, compact, compacted_topics
from marketpulse.exceptions import BusError

if TYPE_CHECKING:
    from marketpulse.models import Alert, DeadLetter

__all__ = ["MemoryBus"]

logger = logging.getLogger(__name__)


@dataclass
class _Partition:
    """One partition's log: the segments still held, oldest first.

    Readers iterate ``segments`` without the bus lock: a trim or a compaction
    therefore never changes a list in place but replaces it with a shorter one,
    so that a reader keeps a consistent (if slightly stale) list; appends only
    extend. A ``compacted`` partition keeps each key's latest value instead of
    dropping what its readers committed; ``kept`` is the records its last
    compaction kept.
    """

    segments: list[tuple[int, str, pa.RecordBatch | pa.Table, float]] = field(default_factory=list)
    end_offset: int = 0
    compacted: bool = False
    kept: int = 0

    @property
    def start_offset(self) -> int:
        """The offset of the oldest record still held (the end when none is)."""
        segments = self.segments
        return segments[0][0] if segments else self.end_offset


@dataclass(eq=False)
class _Group:
    """A consumer group's members (in the order they joined) and who owns which partition.

    ``generation`` changes with every change of members or owners: a member
    that sees a generation it has not seen rebalances at its next poll.
    """

    members: list[_MemoryConsumer] = field(default_factory=list)
    owner: dict[TopicPartition, _MemoryConsumer] = field(default_factory=dict)
    generation: int = 0


class MemoryBus(Bus):
    """An in-process bus with Kafka's semantics and columnar records.

    Args:
        retain: keep consumed segments (for tests); by default a segment is
            dropped once every group that reads its topic has committed past it,
            and a compacted topic keeps the latest value of each key.
        hold_rows: records a partition holds for its readers at most before a
            producer outside transactions waits for them (unbounded with ``retain``).
    """

    def __init__(self, retain: bool = False, hold_rows: int = 1 << 20) -> None:
        self._topics: dict[str, list[_Partition]] = {}
        self._committed: dict[str, dict[TopicPartition, int]] = {}
        self._readers: dict[str, set[str]] = {}
        self._groups: dict[str, _Group] = {}
        self._transactional: dict[str, _MemoryTransactionalProducer] = {}
        self._lock = threading.Lock()
        #: Notified when records are appended or committed, and when the bus closes.
        self._changed = threading.Condition(self._lock)
        self._retain = retain
        self._hold_rows = hold_rows
        self._closed = False

    def create_topics(self, names: Sequence[str], partitions: int = 1, **options: Any) -> list[str]:
        """Create topics that do not exist yet; return the names created.

        Of ``options`` (Kafka's replication and topic configs), a topic's
        ``cleanup.policy`` of ``compact`` alone means something here.
        """
        created = []
        compacted = compacted_topics(list(names), options.get("configs"))
        with self._lock:
            for name in names:
                if name not in self._topics:
                    self._topics[name] = [
                        _Partition(compacted=name in compacted) for _ in range(partitions)
                    ]
                    created.append(name)
        return created

    def partitions(self, topic: str) -> int:
        """Return the number of partitions of ``topic``."""
        return len(self._partitions(topic))

    def end_offsets(self, topic: str) -> list[int]:
        """Return the next offset to be written, per partition."""
        return [p.end_offset for p in self._partitions(topic)]

    def committed_offsets(self, group: str, topic: str) -> list[int]:
        """Return the offsets ``group`` has committed, per partition of ``topic`` (-1: none)."""
        with self._lock:
            committed = dict(self._committed.get(group, {}))
        return [committed.get(TopicPartition(topic, p), -1)
                for p in range(len(self._partitions(topic)))]  # fmt: skip

    def read_all(self, topic: str) -> list[Batch]:
        """Return every retained batch of ``topic`` (for tests and tools)."""
        out = []
        for number, part in enumerate(self._partitions(topic)):
            for first, kind, data, sent in part.segments:
                out.append(_batch(topic, number, first, kind, data, sent))
        return out

    def producer(self, **options: Any) -> Producer:
        """Return a producer appending to this bus (``options``, Kafka's, mean nothing here)."""
        return _MemoryProducer(self)

    def transactional_producer(
        self, transactional_id: str, **options: Any
    ) -> TransactionalProducer:
        """Return a transactional producer; its ``init`` fences older ones with its id.

        ``options`` (Kafka's client options) mean nothing here.
        """
        return _MemoryTransactionalProducer(self, transactional_id)

    def read_partition(
        self,
        topic: str,
        partition: int,
        timeout: float = 60.0,
        stop: threading.Event | None = None,
    ) -> dict[bytes, bytes]:
        """Return the latest value per key of a partition of ``key``/``value`` records."""
        values: dict[bytes, bytes] = {}
        for _, _, data, _ in self._partitions(topic)[partition].segments:
            keys = data.column("key").to_pylist()
            for key, value in zip(keys, data.column("value").to_pylist(), strict=True):
                if value is None:
                    values.pop(key, None)
                else:
                    values[key] = value
        return values

    def read_range(
        self,
        topic: str,
        partition: int,
        first: int,
        last: int,
        timeout: float = 60.0,
        stop: threading.Event | None = None,
    ) -> list[Batch]:
        """The records from ``first`` to ``last`` still held, as columns, a batch a segment."""
        held = self._partitions(topic)[partition]
        segments = held.segments  # replaced, never changed in place (see _Partition)
        if first < held.start_offset:
            raise RecordsGone(f"{topic}[{partition}] no longer holds offset {first:,} "
                              f"(it starts at {held.start_offset:,})")  # fmt: skip
        out = []
        for offset, kind, data, sent in segments:
            start, end = max(first, offset), min(last + 1, offset + data.num_rows)
            if start < end:
                rows = data.slice(start - offset, end - start)
                out.append(Batch(topic, partition, start, end - 1, kind, rows, sent_at=sent))
        return out

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
        """Return a member of ``group`` reading ``topics``; it joins the group at its first poll.

        See :meth:`marketpulse.bus.base.Bus.consumer` for the callbacks;
        ``options`` (Kafka's client options) mean nothing here.
        """
        for topic in topics:
            self._partitions(topic)
        with self._lock:
            for topic in topics:
                self._readers.setdefault(topic, set()).add(group)
            state = self._groups.setdefault(group, _Group())
        return _MemoryConsumer(
            self, group, state, list(topics), on_assign, on_revoke, on_lost or on_revoke
        )

    def lose(self, consumer: Consumer) -> None:
        """Take ``consumer``'s partitions away without a revoke (for tests).

        As Kafka does to a member that missed its session timeout: the other
        members may take the partitions at once; ``consumer``'s next poll
        calls its ``on_lost`` with them and joins the group again, and a
        transaction with their offsets can no longer commit.
        """
        if not isinstance(consumer, _MemoryConsumer) or consumer._bus is not self:
            raise BusError("not a consumer of this bus")
        with self._lock:
            group = consumer._group
            if consumer in group.members:
                group.members.remove(consumer)
            _release(group, consumer, list(consumer._position))
            consumer._lost = True
            group.generation += 1
            self._changed.notify_all()  # members waiting in a poll rebalance

    def _partitions(self, topic: str) -> list[_Partition]:
        try:
            return self._topics[topic]
        except KeyError:
            raise BusError(f"unknown topic {topic!r}") from None

    def close(self) -> None:
        """Wake every waiting poll and producer; producers no longer wait for readers."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _append(self, topic: str, partition: int, kind: str, data: pa.RecordBatch) -> None:
        with self._changed:
            part = self._partitions(topic)[partition]
            while (
                not self._retain
                and not self._closed
                and self._readers.get(topic)
                and part.end_offset - part.start_offset >= self._hold_rows
            ):
                self._changed.wait(0.5)
            self._append_locked(topic, partition, kind, data)

    def _append_locked(self, topic: str, partition: int, kind: str, data: pa.RecordBatch) -> None:
        part = self._partitions(topic)[partition]
        part.segments.append((part.end_offset, kind, data, time.time()))
        part.end_offset += data.num_rows
        if (
            part.compacted
            and not self._retain
            and part.end_offset - part.start_offset >= 2 * part.kept + COMPACT_MIN_ROWS
        ):
            self._compact(topic, part)
        self._changed.notify_all()

    def _compact(self, topic: str, part: _Partition) -> None:
        segments = compact(part.segments, part.end_offset)
        if segments is None:
            # rows other than key/value records have no key to compact by: held as
            # Kafka would hold them, the compaction put off as far again
            part.kept = part.end_offset - part.start_offset
            logger.debug("%s: records without keys, not compacted", topic)
            return
        part.segments = segments  # a new list: readers iterate the old one
        part.kept = part.end_offset - part.start_offset

    def _commit(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        with self._lock:
            self._commit_locked(group, offsets)

    def _commit_locked(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        self._committed.setdefault(group, {}).update(offsets)
        if not self._retain:
            for tp in offsets:
                # a compacted topic's records outlive its readers' commits (state restores)
                if not self._topics[tp.topic][tp.partition].compacted:
                    self._trim(tp)
        self._changed.notify_all()

    def _trim(self, tp: TopicPartition) -> None:
        """Drop the segments every reading group has committed past.

        They are dropped, not replaced by empty slices: a zero-row slice of an
        Arrow batch still holds its parent's buffers, and a list entry per
        segment ever published grows with the run.
        """
        groups = self._readers.get(tp.topic, set())
        low = min((self._committed.get(g, {}).get(tp, 0) for g in groups), default=0)
        part = self._topics[tp.topic][tp.partition]
        done = 0
        for first, _, data, _ in part.segments:
            if first + data.num_rows > low:
                break
            done += 1
        if done:
            part.segments = part.segments[done:]  # a new list: readers iterate the old one

    def retained(self, topic: str) -> tuple[int, int]:
        """Return the segments and Arrow bytes still held for ``topic``, all partitions."""
        segments = nbytes = 0
        for part in self._partitions(topic):
            held = part.segments
            segments += len(held)
            nbytes += sum(data.get_total_buffer_size() for _, _, data, _ in held)
        return segments, nbytes


def _batch(
    topic: str, partition: int, first: int, kind: str, data: pa.RecordBatch, sent: float
) -> Batch:
    last = first + data.num_rows - 1
    return Batch(topic, partition, first, last, kind=kind, columns=data, sent_at=sent)


def _table(data: pa.RecordBatch | pa.Table) -> pa.Table:
    return data if isinstance(data, pa.Table) else pa.Table.from_batches([data])


def _release(group: _Group, member: _MemoryConsumer, partitions: list[TopicPartition]) -> None:
    """Give up ``member``'s ownership of ``partitions`` (under the bus lock)."""
    for tp in partitions:
        if group.owner.get(tp) is member:
            del group.owner[tp]


def _by_partition(
    bus: MemoryBus, topic: str, data: pa.RecordBatch | pa.Table
) -> list[tuple[int, pa.RecordBatch | pa.Table]]:
    """Split rows by the partition of their key."""
    n = bus.partitions(topic)
    return [(0, data)] if n == 1 else _split_by_partition(data, n)


#: The columns of key/value records (:meth:`Producer.send_records`) on this bus.
_RECORD_SCHEMA = pa.schema([("key", pa.binary()), ("value", pa.binary())])


class _Sends(Producer):
    """The sends to a partition chosen by the caller, Arrow rows all: each lands in ``_put``."""

    _bus: MemoryBus

    def _put(self, topic: str, partition: int, kind: str, data: pa.Table) -> None:
        raise NotImplementedError

    def send_rows(self, topic: str, kind: str, rows: pa.Table, partition: int) -> None:
        if rows.num_rows:
            self._put(topic, partition, kind, rows)

    def send_alerts(self, topic: str, alerts: Iterable[Alert], partition: int = -1) -> None:
        # imported here: marketpulse.stream imports the bus
        from marketpulse.stream.output import alerts_table

        alerts = list(alerts)
        if alerts:
            self._keyed(topic, "alerts", alerts_table(alerts), partition)

    def send_dead(
        self,
        topic: str,
        letters: Iterable[DeadLetter],
        partition: int = -1,
        dataset: str | None = None,
    ) -> None:
        from marketpulse.stream.output import dlq_table

        letters = list(letters)
        if letters:
            self._keyed(topic, "dlq", dlq_table(letters, time.time_ns(), dataset), partition)

    def send_records(
        self, topic: str, records: Iterable[tuple[bytes, bytes | None]], partition: int
    ) -> None:
        pairs = list(records)
        if pairs:
            keys, values = zip(*pairs, strict=True)
            table = pa.table([pa.array(keys, pa.binary()), pa.array(values, pa.binary())],
                             schema=_RECORD_SCHEMA)  # fmt: skip
            self._put(topic, partition, "records", table)

    def send_encoded(
        self, topic: str, keys: Sequence[str], values: Sequence[bytes], partition: int
    ) -> None:
        self.send_records(topic, zip([k.encode() for k in keys], values, strict=True), partition)

    def _keyed(self, topic: str, kind: str, data: pa.Table, partition: int) -> None:
        if partition >= 0:
            self._put(topic, partition, kind, data)
        else:
            for number, part in _by_partition(self._bus, topic, data):
                self._put(topic, number, kind, part)


class _MemoryProducer(_Sends):
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus

    def _put(self, topic: str, partition: int, kind: str, data: pa.Table) -> None:
        self._bus._append(topic, partition, kind, data)

    def send_columns(self, topic: str, kind: str, data: pa.RecordBatch | pa.Table) -> None:
        if data.num_rows == 0:
            return
        n = self._bus.partitions(topic)
        if n == 1:
            self._bus._append(topic, 0, kind, data)
            return
        for partition, part in _split_by_partition(data, n):
            self._bus._append(topic, partition, kind, part)

    def flush(self, timeout: float | None = None) -> None:
        return None


class _MemoryTransactionalProducer(_Sends, TransactionalProducer):
    """Holds a transaction's batches aside until its commit appends them."""

    def __init__(self, bus: MemoryBus, transactional_id: str) -> None:
        self._bus = bus
        self.transactional_id = transactional_id
        self._pending: list[tuple[str, int, str, pa.RecordBatch | pa.Table]] | None = None
        self._fenced = False

    @property
    def in_transaction(self) -> bool:
        return self._pending is not None

    def init(self, timeout: float = 30.0) -> None:
        bus = self._bus
        with bus._lock:
            older = bus._transactional.get(self.transactional_id)
            if older is not None and older is not self:
                older._pending = None  # its open transaction is aborted
                older._fenced = True
            bus._transactional[self.transactional_id] = self

    def begin(self) -> None:
        self._check_fenced("begin a transaction")
        if self._pending is not None:
            raise BusError(f"{self.transactional_id}: a transaction is already open")
        self._pending = []

    def send_columns(self, topic: str, kind: str, data: pa.RecordBatch | pa.Table) -> None:
        self._check_fenced(f"send to {topic}")
        if self._pending is None:
            raise BusError(f"{self.transactional_id}: send to {topic} outside a transaction")
        if data.num_rows == 0:
            return
        for partition, part in _by_partition(self._bus, topic, data):
            self._pending.append((topic, partition, kind, part))

    def _put(self, topic: str, partition: int, kind: str, data: pa.Table) -> None:
        self._check_fenced(f"send to {topic}")
        if self._pending is None:
            raise BusError(f"{self.transactional_id}: send to {topic} outside a transaction")
        if not 0 <= partition < self._bus.partitions(topic):
            raise BusError(f"{self.transactional_id}: {topic} has no partition {partition}")
        self._pending.append((topic, partition, kind, data))

    def commit(
        self,
        offsets: dict[TopicPartition, int],
        consumer: Consumer,
        timeout: float = 60.0,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        self._check_fenced("commit the transaction")
        if self._pending is None:
            raise BusError(f"{self.transactional_id}: commit without an open transaction")
        if not isinstance(consumer, _MemoryConsumer) or consumer._bus is not self._bus:
            raise BusError(f"{self.transactional_id}: the consumer is not one of this bus")
        if meanwhile is not None:
            meanwhile()
        bus = self._bus
        with bus._lock:
            self._check_fenced("commit the transaction")  # fenced while ``meanwhile`` ran
            assert self._pending is not None
            foreign = [tp for tp in offsets if consumer._group.owner.get(tp) is not consumer]
            if foreign:
                self._pending = None
                raise TransactionAborted(
                    f"cannot commit the transaction ({self.transactional_id}): partitions "
                    f"{', '.join(f'{tp.topic}[{tp.partition}]' for tp in sorted(foreign))} "
                    f"are not assigned to this member of group {consumer.group}"
                )
            for topic, partition, kind, data in self._pending:
                bus._append_locked(topic, partition, kind, data)
            if offsets:
                bus._commit_locked(consumer.group, offsets)
            self._pending = None

    def abort(self, timeout: float = 60.0) -> None:
        self._pending = None

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self) -> None:
        """Abort any open transaction."""
        self._pending = None

    def _check_fenced(self, what: str) -> None:
        if self._fenced:
            raise ProducerFenced(
                f"cannot {what} ({self.transactional_id}): another producer with this "
                "transactional id took over"
            )


def _split_by_partition(
    data: pa.RecordBatch | pa.Table, partitions: int
) -> list[tuple[int, pa.RecordBatch | pa.Table]]:
    column = data.column("symbol" if "symbol" in data.schema.names else "key")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type) and column.null_count:
        column = column.cast(column.type.value_type)
    if not pa.types.is_dictionary(column.type):
        # a null key (a dead letter without one) is a value: it goes where "" goes
        column = pc.dictionary_encode(column, null_encoding="encode")
    lut = np.array(
        [partition_for(s or "", partitions) for s in column.dictionary.to_pylist()], np.int32
    )
    of_row = lut[column.indices.to_numpy(zero_copy_only=False)]
    out = []
    for partition in np.unique(of_row):
        out.append((int(partition), data.filter(pa.array(of_row == partition))))
    return out


def _range_of(group: _Group, member: _MemoryConsumer, bus: MemoryBus) -> set[TopicPartition]:
    """The partitions the range assignor gives ``member`` (under the bus lock)."""
    out: set[TopicPartition] = set()
    for topic in member.topics:
        readers = [m for m in group.members if topic in m.topics]
        if member not in readers:
            continue
        count, index = len(bus._topics[topic]), readers.index(member)
        each, extra = divmod(count, len(readers))
        first = index * each + min(index, extra)
        for number in range(first, first + each + (index < extra)):
            out.add(TopicPartition(topic, number))
    return out


class _MemoryConsumer(Consumer):
    def __init__(
        self,
        bus: MemoryBus,
        group: str,
        state: _Group,
        topics: list[str],
        on_assign: Rebalance | None,
        on_revoke: Rebalance | None,
        on_lost: Rebalance | None,
    ) -> None:
        self._bus = bus
        self.group = group
        self.topics = topics
        self._group = state
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_lost = on_lost
        self._generation = -1  # none seen: the first poll joins
        self._joined = False
        self._lost = False
        self._closed = False
        self._position: dict[TopicPartition, int] = {}

    def poll(self, max_records: int = 65536, timeout: float = 0.1) -> list[Batch]:
        if self._generation != self._group.generation:
            self._rebalance()
        out = self._take(max_records)
        if out or timeout <= 0:
            return out
        bus = self._bus
        deadline = time.monotonic() + timeout
        with bus._changed:  # until a record arrives, the group changes or the bus closes
            while (
                not self._waiting()
                and not bus._closed
                and self._generation == self._group.generation
                and (left := deadline - time.monotonic()) > 0
            ):
                bus._changed.wait(left)
        return self._take(max_records) if self._generation == self._group.generation else []

    def _waiting(self) -> bool:
        """Whether an assigned partition holds records past this member's position."""
        topics = self._bus._topics
        return any(
            topics[tp.topic][tp.partition].end_offset > position
            for tp, position in self._position.items()
        )

    def _take(self, max_records: int) -> list[Batch]:
        out: list[Batch] = []
        budget = max_records
        for tp, position in self._position.items():
            part = self._bus._topics[tp.topic][tp.partition]
            for first, kind, data, sent in part.segments:
                if budget <= 0:
                    break
                end = first + data.num_rows
                if end <= position:
                    continue
                # records before the oldest held were compacted away: read on from it
                position = max(position, first)
                start = position - first
                take = min(data.num_rows - start, budget)
                piece = data.slice(start, take) if (start or take < data.num_rows) else data
                previous = out[-1] if out else None
                if previous is not None and previous.tp == tp and previous.kind == kind:
                    # consecutive records of one kind: one batch, as Kafka would return
                    merged = pa.concat_tables([_table(previous.columns), _table(piece)])
                    out[-1] = _batch(
                        tp.topic, tp.partition, previous.first_offset, kind, merged, sent
                    )
                else:
                    out.append(_batch(tp.topic, tp.partition, position, kind, piece, sent))
                position += take
                budget -= take
            self._position[tp] = position
        return out

    def _rebalance(self) -> None:
        """Lost, then revoke, then assign: what the group's new generation asks of this member."""
        if self._closed:
            raise BusError(f"consumer of group {self.group} is closed")
        bus, group = self._bus, self._group
        if self._lost:
            lost, self._lost = sorted(self._position), False
            try:
                if lost and self._on_lost is not None:
                    self._on_lost(lost)
            finally:
                self._position.clear()
                self._joined = False
        with bus._lock:
            if not self._joined:
                group.members.append(self)
                group.generation += 1
                bus._changed.notify_all()  # members waiting in a poll rebalance
                self._joined = True
            revoked = sorted(set(self._position) - _range_of(group, self, bus))
        if revoked:
            try:
                if self._on_revoke is not None:
                    self._on_revoke(revoked)
            finally:
                with bus._lock:
                    _release(group, self, revoked)
                    for tp in revoked:
                        del self._position[tp]
                    group.generation += 1
                    bus._changed.notify_all()  # members waiting in a poll rebalance
        with bus._lock:
            wanted = _range_of(group, self, bus) - set(self._position)
            assigned = sorted(tp for tp in wanted if tp not in group.owner)
            committed = bus._committed.get(self.group, {})
            # read in the order subscribed (topics as given, then partitions), as before groups
            for tp in sorted(assigned, key=lambda tp: (self.topics.index(tp.topic), tp.partition)):
                group.owner[tp] = self
                start = bus._topics[tp.topic][tp.partition].start_offset
                self._position[tp] = committed.get(tp, start)
            if assigned:
                group.generation += 1
                bus._changed.notify_all()  # members waiting in a poll rebalance
            self._generation = group.generation
        if assigned and self._on_assign is not None:
            self._on_assign(assigned)

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self._closed or self._lost:
            raise BusError(
                f"commit offsets of group {self.group}: this member is no longer in the group"
            )
        self._bus._commit(self.group, offsets)

    def committed(
        self, partitions: Sequence[TopicPartition], timeout: float = 60.0
    ) -> dict[TopicPartition, int]:
        committed = self._bus._committed.get(self.group, {})
        return {tp: committed.get(tp, -1) for tp in partitions}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._position:
            raise BusError(f"seek {tp.topic}[{tp.partition}]: not assigned to this member")
        part = self._bus._topics[tp.topic][tp.partition]
        if offset == OFFSET_BEGINNING:
            offset = part.start_offset
        elif offset == OFFSET_END:
            offset = part.end_offset
        elif offset < 0:
            raise BusError(f"seek {tp.topic}[{tp.partition}]: no offset {offset}")
        self._position[tp] = offset

    def assignment(self) -> list[TopicPartition]:
        return sorted(self._position)

    def position(self) -> dict[TopicPartition, int]:
        return dict(self._position)

    def lag(
        self, *, cached: bool = False, resumed: Mapping[TopicPartition, int] | None = None
    ) -> dict[TopicPartition, int]:
        # end offsets are always at hand (``cached`` changes nothing), and
        # positions are known from the assignment on (``resumed`` neither)
        return {
            tp: self._bus._topics[tp.topic][tp.partition].end_offset - pos
            for tp, pos in self._position.items()
        }

    def close(self) -> None:
        """Leave the group: ``on_revoke`` gets this member's partitions first."""
        if self._closed:
            return
        bus, group = self._bus, self._group
        owned = [] if self._lost else sorted(self._position)
        try:
            if owned and self._on_revoke is not None:
                self._on_revoke(owned)
        finally:
            self._closed = True
            self._generation = -1  # a poll now fails
            with bus._lock:
                _release(group, self, list(self._position))
                if self in group.members:
                    group.members.remove(self)
                group.generation += 1
                bus._changed.notify_all()  # members waiting in a poll rebalance
            self._position.clear()
