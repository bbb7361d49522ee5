"""Kafka consumers: group members that return batches per partition.

Also :func:`read_partition`, which reads a compacted partition to its end.
"""

from __future__ import annotations

import itertools
import logging
import operator
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import confluent_kafka as ck

from marketpulse.bus.base import Batch, Consumer, ConsumerFatal, Message, Rebalance, TopicPartition
from marketpulse.exceptions import BusError

__all__ = ["ConsumerFatal", "KafkaConsumer", "Rebalance", "read_partition", "watermarks"]

logger = logging.getLogger(__name__)


def _tp(tp: ck.TopicPartition) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


def _message(record: ck.Message) -> Message:
    return Message(
        record.key(), record.value(), record.offset(), record.timestamp()[1],
        tuple(record.headers() or ()),
    )  # fmt: skip


class _Records(Sequence[Message]):
    """The client's records of one partition, made :class:`Message` only when read.

    Building a message costs more than decoding its JSON; the processor needs
    values and offsets only, which :meth:`values` and :meth:`offsets` read
    directly (see :func:`marketpulse.bus.base.values_of`).
    """

    __slots__ = ("_raw", "_values")

    def __init__(self, raw: list[ck.Message]) -> None:
        self._raw = raw
        self._values: list[bytes | None] | None = None

    def __len__(self) -> int:
        return len(self._raw)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return [_message(r) for r in self._raw[index]]
        return _message(self._raw[index])

    def __iter__(self) -> Iterator[Message]:
        return map(_message, self._raw)

    def values(self) -> list[bytes | None]:
        """Every record's value (read once: the decoder and the trades sent on both ask)."""
        if self._values is None:
            self._values = list(map(ck.Message.value, self._raw))
        return self._values

    def offsets(self) -> list[int]:
        """Every record's offset."""
        return list(map(ck.Message.offset, self._raw))

    def keys(self) -> list[bytes | None]:
        """Every record's key."""
        return list(map(ck.Message.key, self._raw))


def _batches(records: list[ck.Message], topic: str | None = None) -> list[Batch]:
    """Group records into one batch per partition, in offset order, partitions in order seen.

    ``topic``: the one topic all records come from, when the consumer reads only one.
    """
    if not records:
        return []
    topics = [topic] * len(records) if topic else list(map(ck.Message.topic, records))
    partitions = list(map(ck.Message.partition, records))
    first = (topics[0], partitions[0])
    if topics.count(first[0]) == len(topics) and partitions.count(first[1]) == len(partitions):
        groups = {first: records}  # the common case: one partition
    else:
        groups = {}
        for key, record in zip(zip(topics, partitions, strict=True), records, strict=True):
            group = groups.get(key)
            if group is None:
                groups[key] = [record]
            else:
                group.append(record)
    return [
        Batch(topic, partition, raw[0].offset(), raw[-1].offset(), messages=_Records(raw))
        for (topic, partition), raw in groups.items()
    ]


class KafkaConsumer(Consumer):
    """A consumer-group member that returns batches per partition (a bus :class:`Consumer`).

    Offsets are committed by hand (:meth:`commit`, or inside a producer's
    transaction). ``on_assign`` and ``on_revoke`` receive the partitions that
    join or leave this member (cooperative rebalancing); ``on_lost`` those
    taken away without a revoke (the member was too slow or cut off), whose
    uncommitted work must be discarded. Without ``on_lost``, ``on_revoke``
    gets them.
    """

    def __init__(
        self,
        config: dict[str, Any],
        topics: list[str],
        on_assign: Rebalance | None = None,
        on_revoke: Rebalance | None = None,
        on_lost: Rebalance | None = None,
    ) -> None:
        self._consumer = ck.Consumer(config)
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_lost = on_lost or on_revoke
        self.topics = topics
        self.group = config["group.id"]
        self._callback_error: Exception | None = None
        self._consumer.subscribe(
            topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    # An exception must not leave a rebalance callback: the client would raise
    # it mangled (not as an exception) from the consume() that ran the callback.
    # It is kept and raised from poll() instead.

    def _assigned(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        self._call_back(self._on_assign, partitions)

    def _revoked(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        self._call_back(self._on_revoke, partitions)

    def _lost(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        self._call_back(self._on_lost, partitions)

    def _call_back(self, callback: Rebalance | None, partitions: list[ck.TopicPartition]) -> None:
        if callback is None or not partitions or self._callback_error is not None:
            return
        try:
            callback([_tp(p) for p in partitions])
        except Exception as exc:  # noqa: BLE001 - raised again by poll()
            self._callback_error = exc

    def _raise_callback_error(self) -> None:
        error, self._callback_error = self._callback_error, None
        if error is not None:
            raise error

    def poll(self, max_records: int = 65536, timeout: float = 0.1) -> list[Batch]:
        """Return the next records as one batch per partition (in offset order)."""
        consume = self._consumer.consume
        try:
            # what is already fetched, at once; else wait for the first record only:
            # consume(n, timeout) would wait for n records, however long the timeout
            records = consume(max_records, 0)
            if not records and timeout > 0:
                records = consume(1, timeout)
                if records and max_records > 1:
                    records += consume(max_records - 1, 0)
        except ck.KafkaException as exc:
            raise BusError(f"consume from {', '.join(self.topics)}: {exc.args[0].str()}") from None
        self._raise_callback_error()
        if not records:
            return []
        # each field of every record at C speed (map over the method), no loop per record
        errors = list(map(ck.Message.error, records))
        # by identity: comparing a KafkaError with None leaves a TypeError pending in the
        # client (confluent-kafka 2.16), which surfaces later as a SystemError
        if any(map(operator.is_not, errors, itertools.repeat(None))):
            records = self._without_errors(records, errors)
        single = len(self.topics) == 1 and not self.topics[0].startswith("^")  # no pattern
        return _batches(records, self.topics[0] if single else None)

    def _without_errors(
        self, records: list[ck.Message], errors: list[ck.KafkaError | None]
    ) -> list[ck.Message]:
        """Drop end-of-partition events and errors; raise the fatal ones."""
        kept = []
        for record, error in zip(records, errors, strict=True):
            if error is None:
                kept.append(record)
            elif error.code() == ck.KafkaError._PARTITION_EOF:
                continue
            elif error.fatal() or error.code() == ck.KafkaError._FATAL:
                raise ConsumerFatal(f"consumer of {', '.join(self.topics)}: {error.str()}")
            else:
                logger.warning(
                    "consumer of %s: %s", record.topic() or ", ".join(self.topics), error.str()
                )
        return kept

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit, synchronously, the next offset to read per partition."""
        if not offsets:
            return
        positions = [ck.TopicPartition(tp.topic, tp.partition, off) for tp, off in offsets.items()]
        try:
            self._consumer.commit(offsets=positions, asynchronous=False)
        except ck.KafkaException as exc:
            raise BusError(f"commit offsets of group {self.group}: {exc.args[0].str()}") from None

    def committed(
        self, partitions: Sequence[TopicPartition], timeout: float = 60.0
    ) -> dict[TopicPartition, int]:
        """Return the group's committed offsets (``-1`` where none), waiting for stable ones.

        Raises:
            ConsumerFatal: the offsets could not be fetched (the coordinator still
                away after a broker restart, for one): rejoin with a new member.
        """
        asked = [ck.TopicPartition(tp.topic, tp.partition) for tp in partitions]
        try:
            found = self._consumer.committed(asked, timeout=timeout)
        except ck.KafkaException as exc:
            error = exc.args[0].str()
            raise ConsumerFatal(f"fetch committed offsets of {self.group}: {error}") from None
        return {_tp(p): (p.offset if p.offset >= 0 else -1) for p in found}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` from ``offset`` next."""
        self._consumer.seek(ck.TopicPartition(tp.topic, tp.partition, offset))

    def assignment(self) -> list[TopicPartition]:
        """Return the partitions assigned to this member."""
        return [_tp(p) for p in self._consumer.assignment()]

    def position(self) -> dict[TopicPartition, int]:
        """Return the next offset to read per assigned partition (``-1`` if unknown)."""
        positions = self._consumer.position(self._consumer.assignment())
        return {_tp(p): p.offset for p in positions}

    def lag(
        self, cached: bool = False, resumed: Mapping[TopicPartition, int] | None = None
    ) -> dict[TopicPartition, int]:
        """Return the records left to read per assigned partition.

        Args:
            cached: use the end offsets the last fetches brought (no request to
                the cluster, so it can be called on the hot path); a partition
                no fetch has brought them for yet is left out.
            resumed: the offset reading resumed from, per partition where the
                caller knows it (the committed offset). The client knows a
                partition's position only once it has handed out a record of
                it: a partition assigned at its end, with nothing to read,
                would otherwise count as behind by its whole length.
        """
        resumed = resumed or {}
        positions = {tp: pos if pos >= 0 else resumed.get(tp, -1)
                     for tp, pos in self.position().items()}  # fmt: skip
        if cached:
            # a partition whose fetches have brought no end offset yet (just assigned) is
            # left out, not counted as read to its end: its lag is not known
            lags = {}
            for tp, pos in positions.items():
                low, high = self._consumer.get_watermark_offsets(
                    ck.TopicPartition(tp.topic, tp.partition), cached=True
                )
                start = pos if pos >= 0 else low
                if high >= 0 and start >= 0:
                    lags[tp] = high - start
            return lags
        highs = self._list_offsets(list(positions), ck.OFFSET_END)
        lows = self._list_offsets([tp for tp, pos in positions.items() if pos < 0],
                                  ck.OFFSET_BEGINNING)  # fmt: skip
        return {tp: highs[tp] - (pos if pos >= 0 else lows[tp]) for tp, pos in positions.items()}

    def _list_offsets(
        self, partitions: list[TopicPartition], which: int
    ) -> dict[TopicPartition, int]:
        """The end (``OFFSET_END``) or start offsets of ``partitions``, in one request per leader.

        One watermark query per partition would queue each behind the fetch the
        broker holds for ``fetch.wait.max.ms`` (half a second by default): 21 s
        over the 42 partitions of a sink's seven topics, against half a second.
        """
        if not partitions:
            return {}
        asked = [ck.TopicPartition(tp.topic, tp.partition, which) for tp in partitions]
        found = self._consumer.offsets_for_times(asked, timeout=5.0)
        for p in found:
            if p.error is not None:
                raise BusError(f"{p.topic}[{p.partition}]: cannot read offsets: {p.error.str()}")
        return {_tp(p): p.offset for p in found}

    def group_metadata(self) -> Any:
        """The member's group metadata, for a producer's transaction."""
        return self._consumer.consumer_group_metadata()

    def close(self) -> None:
        """Leave the group (a failure of the last revoke callback is raised here)."""
        self._consumer.close()
        self._raise_callback_error()


#: Errors of a partition whose leader is not known yet (a topic created a moment ago).
_LEADER_MOVING = frozenset(
    {
        ck.KafkaError.NOT_LEADER_FOR_PARTITION,
        ck.KafkaError.LEADER_NOT_AVAILABLE,
        ck.KafkaError.UNKNOWN_TOPIC_OR_PART,
        ck.KafkaError._UNKNOWN_PARTITION,
        # a dead broker's handle, dropped from the metadata while a request was on it
        ck.KafkaError._DESTROY_BROKER,
        ck.KafkaError._TRANSPORT,
        ck.KafkaError._ALL_BROKERS_DOWN,
    }
)


def read_partition(
    reader: ck.Consumer,
    topic: str,
    partition: int,
    timeout: float = 60.0,
    uncommitted: ck.Consumer | None = None,
    stop: threading.Event | None = None,
) -> dict[bytes, bytes]:
    """Read one partition of a compacted topic to its end; return the last value per key.

    Records with a null value (tombstones) delete their key. ``reader`` reads
    committed records only, so it stops at the partition's last stable offset:
    a transaction left open before the end (a crashed instance's, until the
    broker aborts it after its timeout) would hide every record committed
    after it. Given ``uncommitted`` (a read_uncommitted client), the read
    first waits until every transaction open at the call has ended, so the
    values are those of all the transactions committed before the call.

    Raises:
        BusError: the end was not reached within ``timeout`` seconds, or
            ``stop`` was set first.
    """
    tp = ck.TopicPartition(topic, partition)
    deadline = time.monotonic() + timeout
    low, high = watermarks(reader, tp, deadline, stop)
    if uncommitted is not None:
        end = watermarks(uncommitted, tp, deadline, stop)[1]
        high = _wait_stable(reader, tp, end, high, deadline, stop)
    values: dict[bytes, bytes] = {}
    if high <= low:
        return values
    reader.assign([ck.TopicPartition(topic, partition, low)])
    try:
        while not _over(deadline, stop):
            done = False
            # a short wait: consume() returns early only with 10,000 records, so a
            # partition holding fewer would cost the whole wait (0.5 s each, before)
            for record in reader.consume(10_000, 0.02):
                error = record.error()
                if error is not None:
                    if error.code() == ck.KafkaError._PARTITION_EOF:
                        done = True
                        continue
                    if error.code() in _LEADER_MOVING and not error.fatal():
                        continue  # the client retries on the new leader; the deadline bounds it
                    raise BusError(f"read {topic}[{partition}]: {error.str()}")
                key = record.key()
                if record.value() is None:
                    values.pop(key, None)
                else:
                    values[key] = record.value()
                if record.offset() >= high - 1:
                    done = True
            if done:
                return values
        stopped = stop is not None and stop.is_set()
        why = "stopped before its end" if stopped else f"end not reached within {timeout:.0f} s"
        raise BusError(f"read {topic}[{partition}]: {why}")
    finally:
        reader.unassign()


def _over(deadline: float, stop: threading.Event | None) -> bool:
    """Whether ``deadline`` (monotonic) has passed or ``stop`` is set."""
    return time.monotonic() >= deadline or (stop is not None and stop.is_set())


def watermarks(
    client: ck.Consumer,
    tp: ck.TopicPartition,
    deadline: float,
    stop: threading.Event | None = None,
) -> tuple[int, int]:
    """The partition's low and high watermarks (a read_committed client's high: the last stable).

    A topic created a moment ago may have no leader yet, and a broker lost
    moves leaders: both are waited out until ``deadline``, or until ``stop`` is set.
    """
    while True:
        try:
            return client.get_watermark_offsets(
                tp, timeout=max(0.1, min(5.0, deadline - time.monotonic()))
            )
        except ck.KafkaException as exc:
            error = exc.args[0]
            waiting = (
                error.retriable()
                or error.code() in _LEADER_MOVING
                or error.code() == ck.KafkaError._TIMED_OUT
            )
            if not waiting or _over(deadline, stop):
                message = f"{tp.topic}[{tp.partition}]: cannot read offsets: {error.str()}"
                raise BusError(message) from None
            try:  # the leader may have moved (a broker lost): refresh the metadata
                client.list_topics(tp.topic, timeout=5)
            except ck.KafkaException:
                pass
            time.sleep(0.1)


def _wait_stable(
    reader: ck.Consumer,
    tp: ck.TopicPartition,
    end: int,
    stable: int,
    deadline: float,
    stop: threading.Event | None = None,
) -> int:
    """Wait until the last stable offset reaches ``end`` (the high watermark at the call).

    Returns the last stable offset then. Only one instance writes a state
    partition at a time, so a transaction open there when this instance takes
    the partition over is a crashed (or cut off) owner's: the broker ends it
    after its transaction timeout. Reading before then would return the state
    of before that transaction *and* hide the transactions committed after it,
    while the group's offsets already count them: their ticks would be skipped.

    Raises:
        BusError: a transaction was still open at ``deadline``.
    """
    if stable >= end:
        return stable
    logger.info(
        "%s[%d]: %d records are in a transaction still open (a crashed producer's, which the "
        "broker aborts after its transaction timeout): waiting for it to end before reading",
        tp.topic, tp.partition, end - stable,
    )  # fmt: skip
    started = time.monotonic()
    while not _over(deadline, stop):
        time.sleep(0.2)
        stable = watermarks(reader, tp, deadline, stop)[1]
        if stable >= end:
            logger.info("%s[%d]: the open transaction ended after %.1f s",
                        tp.topic, tp.partition, time.monotonic() - started)  # fmt: skip
            return stable
    raise BusError(
        f"{tp.topic}[{tp.partition}]: a transaction has stayed open for over "
        f"{time.monotonic() - started:.0f} s (records {stable}-{end - 1}): its state cannot be "
        "read consistently until the broker ends it"
    )
