"""Reading ranges of a Kafka partition again, in order, with a client kept per partition.

A sink that stores the trades the processor kept reads them on ``ticks`` by
their offsets (:mod:`marketpulse.stream.trade_refs`). The ranges of one
partition follow each other, so a reader keeps its client assigned there and
goes on from where the last range ended: a fetch, not a seek, per range.
Records fetched past a range's end are held for the next one.
"""

from __future__ import annotations

import threading
import time

import confluent_kafka as ck

from marketpulse.bus.base import Batch, RecordsGone
from marketpulse.bus.kafka_consumer import _LEADER_MOVING, _Records
from marketpulse.exceptions import BusError

__all__ = ["RangeReader"]

#: Records a reader reads past, rather than seek, to reach a range further on.
_READ_PAST = 50_000

#: Errors after which the client goes on by itself (the end for now, a new leader, a
#: broker back).
_TRANSIENT = {ck.KafkaError._PARTITION_EOF, ck.KafkaError._TRANSPORT,
              ck.KafkaError._ALL_BROKERS_DOWN, *_LEADER_MOVING}  # fmt: skip


class RangeReader:
    """Reads ranges of one partition's committed records with a group-less client.

    Args:
        client: a read_committed consumer of no group, with ``auto.offset.reset``
            ``error`` (a range the partition no longer holds is an error, not a jump).
        topic: the topic.
        partition: the partition.
    """

    def __init__(self, client: ck.Consumer, topic: str, partition: int) -> None:
        self.client = client
        self.topic = topic
        self.partition = partition
        #: held by one caller at a time
        self.lock = threading.Lock()
        self._next: int | None = None
        self._ahead: list[ck.Message] = []

    def read(
        self, first: int, last: int, timeout: float, stop: threading.Event | None
    ) -> Batch | None:
        """The records from ``first`` to ``last`` (inclusive); ``None``: there are none.

        Raises:
            RecordsGone: the partition no longer holds ``first``.
            BusError: ``last`` not reached within ``timeout`` s, or ``stop`` set first.
        """
        where = f"{self.topic}[{self.partition}]"
        if self._next is None or first < self._next or first - self._next > _READ_PAST:
            self.client.assign([ck.TopicPartition(self.topic, self.partition, first)])
            self._ahead = []
        deadline = time.monotonic() + timeout
        got: list[ck.Message] = []
        pending, self._ahead = self._ahead, []
        self._next = None  # until the range is read whole: a failed read seeks again
        while True:
            for record in pending:
                offset = record.offset()
                if offset > last:
                    self._ahead.append(record)
                elif offset >= first:
                    got.append(record)
            if self._ahead or (got and got[-1].offset() >= last):
                break
            if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                why = "stopped" if stop is not None and stop.is_set() else (
                    f"not reached within {timeout:.0f} s")  # fmt: skip
                raise BusError(f"read {where} offsets {first:,} to {last:,}: {why}")
            pending = []
            for record in self.client.consume(10_000, 0.05):
                error = record.error()
                if error is None:
                    pending.append(record)
                elif error.code() == ck.KafkaError._AUTO_OFFSET_RESET:
                    raise RecordsGone(f"{where} no longer holds offset {first:,} (its retention "
                                      "removed it?)")  # fmt: skip
                elif error.code() not in _TRANSIENT and (error.fatal() or not error.retriable()):
                    raise BusError(f"read {where}: {error.str()}")
        self._next = last + 1
        if not got:
            return None
        return Batch(self.topic, self.partition, got[0].offset(), got[-1].offset(),
                     messages=_Records(got))  # fmt: skip

    def close(self) -> None:
        """Close the client."""
        self.client.close()
