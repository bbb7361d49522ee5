"""The embedded bus: topics as in-memory logs of columnar segments.

It keeps Kafka's model (partitions, offsets, consumer groups, commits) so
that the processor and sinks behave the same on it as on Kafka, but stores
Arrow record batches instead of bytes: appending a batch of ``n`` rows takes
``n`` offsets and costs one list append.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.bus.base import Batch, Bus, Consumer, Producer, TopicPartition, partition_for
from marketpulse.exceptions import BusError

__all__ = ["MemoryBus"]

logger = logging.getLogger(__name__)


@dataclass
class _Partition:
    """One partition's log: the segments still held, oldest first.

    Readers iterate ``segments`` without the bus lock: a trim therefore never
    changes a list in place but replaces it with a shorter one, so that a
    reader keeps a consistent (if slightly stale) list; appends only extend.
    """

    segments: list[tuple[int, str, pa.RecordBatch | pa.Table]] = field(default_factory=list)
    end_offset: int = 0


class MemoryBus(Bus):
    """An in-process bus with Kafka's semantics and columnar records.

    Args:
        retain: keep consumed segments (for tests); by default a segment is
            dropped once every group that reads its topic has committed past it.
    """

    def __init__(self, retain: bool = False) -> None:
        self._topics: dict[str, list[_Partition]] = {}
        self._committed: dict[str, dict[TopicPartition, int]] = {}
        self._readers: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._retain = retain

    def create_topics(self, names: Sequence[str], partitions: int = 1) -> None:
        """Create topics that do not exist yet."""
        with self._lock:
            for name in names:
                self._topics.setdefault(name, [_Partition() for _ in range(partitions)])

    def partitions(self, topic: str) -> int:
        """Return the number of partitions of ``topic``."""
        return len(self._partitions(topic))

    def end_offsets(self, topic: str) -> list[int]:
        """Return the next offset to be written, per partition."""
        return [p.end_offset for p in self._partitions(topic)]

    def read_all(self, topic: str) -> list[Batch]:
        """Return every retained batch of ``topic`` (for tests and tools)."""
        out = []
        for number, part in enumerate(self._partitions(topic)):
            for first, kind, data in part.segments:
                out.append(_batch(topic, number, first, kind, data))
        return out

    def producer(self) -> Producer:
        """Return a producer appending to this bus."""
        return _MemoryProducer(self)

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        """Return a consumer of every partition of ``topics``."""
        for topic in topics:
            self._partitions(topic)
            self._readers.setdefault(topic, set()).add(group)
        return _MemoryConsumer(self, group, list(topics))

    def _partitions(self, topic: str) -> list[_Partition]:
        try:
            return self._topics[topic]
        except KeyError:
            raise BusError(f"unknown topic {topic!r}") from None

    def _append(self, topic: str, partition: int, kind: str, data: pa.RecordBatch) -> None:
        with self._lock:
            part = self._partitions(topic)[partition]
            part.segments.append((part.end_offset, kind, data))
            part.end_offset += data.num_rows

    def _commit(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        with self._lock:
            self._committed.setdefault(group, {}).update(offsets)
            if not self._retain:
                for tp in offsets:
                    self._trim(tp)

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
        for first, _, data in part.segments:
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
            nbytes += sum(data.get_total_buffer_size() for _, _, data in held)
        return segments, nbytes


def _batch(topic: str, partition: int, first: int, kind: str, data: pa.RecordBatch) -> Batch:
    return Batch(topic, partition, first, first + data.num_rows - 1, kind=kind, columns=data)


def _table(data: pa.RecordBatch | pa.Table) -> pa.Table:
    return data if isinstance(data, pa.Table) else pa.Table.from_batches([data])


class _MemoryProducer(Producer):
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus

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


def _split_by_partition(
    data: pa.RecordBatch | pa.Table, partitions: int
) -> list[tuple[int, pa.RecordBatch | pa.Table]]:
    column = data.column("symbol" if "symbol" in data.schema.names else "key")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    lut = np.array(
        [partition_for(s or "", partitions) for s in column.dictionary.to_pylist()], np.int32
    )
    of_row = lut[column.indices.to_numpy(zero_copy_only=False)]
    out = []
    for partition in np.unique(of_row):
        out.append((int(partition), data.filter(pa.array(of_row == partition))))
    return out


class _MemoryConsumer(Consumer):
    def __init__(self, bus: MemoryBus, group: str, topics: list[str]) -> None:
        self._bus = bus
        self._group = group
        committed = bus._committed.get(group, {})
        self._position: dict[TopicPartition, int] = {}
        for topic in topics:
            for number in range(bus.partitions(topic)):
                tp = TopicPartition(topic, number)
                self._position[tp] = committed.get(tp, 0)

    def poll(self, max_records: int = 65536, timeout: float = 0.1) -> list[Batch]:
        out: list[Batch] = []
        budget = max_records
        for tp, position in self._position.items():
            part = self._bus._topics[tp.topic][tp.partition]
            for first, kind, data in part.segments:
                if budget <= 0:
                    break
                end = first + data.num_rows
                if end <= position:
                    continue
                start = position - first
                take = min(data.num_rows - start, budget)
                piece = data.slice(start, take) if (start or take < data.num_rows) else data
                previous = out[-1] if out else None
                if previous is not None and previous.tp == tp and previous.kind == kind:
                    # consecutive records of one kind: one batch, as Kafka would return
                    merged = pa.concat_tables([_table(previous.columns), _table(piece)])
                    out[-1] = _batch(tp.topic, tp.partition, previous.first_offset, kind, merged)
                else:
                    out.append(_batch(tp.topic, tp.partition, position, kind, piece))
                position += take
                budget -= take
            self._position[tp] = position
        return out

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self._bus._commit(self._group, offsets)

    def position(self) -> dict[TopicPartition, int]:
        return dict(self._position)

    def lag(self) -> dict[TopicPartition, int]:
        return {
            tp: self._bus._topics[tp.topic][tp.partition].end_offset - pos
            for tp, pos in self._position.items()
        }
