"""A sink restarted with its input fully consumed is quiet, not stalled.

The service runs without a broker: a real :class:`KafkaConsumer` whose librdkafka
client is replaced by one that reports a partition assigned with nothing handed
out since (librdkafka then knows no position: -1001), whose end is the group's
committed offset, as a restart leaves a partition whose last records came from
an idempotent producer (``produce``'s dead letters: no transaction marker after
them for the client to step past).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import confluent_kafka as ck
import pytest

from marketpulse.bus.base import TopicPartition
from marketpulse.bus.kafka_consumer import KafkaConsumer
from marketpulse.bus.topics import Topics
from marketpulse.runtime.sink import SinkOptions, SinkService
from marketpulse.sinks.lake import LakeSink

TOPICS = Topics("s.")
TP = TopicPartition(TOPICS.name("dlq"), 1)
END = 40  # records in the partition, every one stored and committed before the restart


class _Client:
    """Stands in for librdkafka's consumer of one partition, nothing read since assigned."""

    def __init__(self, end: int, committed: int, assign, fail_committed: bool = False) -> None:
        self.end = end
        self.offset = committed
        self.assign = assign
        self.fail_committed = fail_committed
        self.consumed = 0

    def assignment(self):
        return [ck.TopicPartition(TP.topic, TP.partition)]

    def position(self, partitions):
        # no record handed out since the assignment: librdkafka knows no position
        return [ck.TopicPartition(p.topic, p.partition, ck.OFFSET_INVALID) for p in partitions]

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        return 0, self.end

    def offsets_for_times(self, partitions, timeout=None):
        """The end offsets (asked with ``OFFSET_END``), else the start ones."""
        found = []
        for p in partitions:
            offset = self.end if p.offset == ck.OFFSET_END else 0
            found.append(ck.TopicPartition(p.topic, p.partition, offset))
        return found

    def committed(self, partitions, timeout=None):
        if self.fail_committed:
            raise ck.KafkaException(ck.KafkaError(ck.KafkaError._TIMED_OUT))
        return [ck.TopicPartition(p.topic, p.partition, self.offset) for p in partitions]

    def consume(self, num_messages, timeout):
        if self.assign is not None:  # the group assigns the partition in the first poll
            assign, self.assign = self.assign, None
            assign()
        self.consumed += 1
        time.sleep(min(timeout, 0.005))  # nothing arrives (a poll waits a little)
        return []

    def close(self):
        pass


def consumer_of(end, committed, on_assign=None, on_revoke=None, fail_committed=False):
    """A consumer of partition 1 of ``dlq``, its group at offset ``committed``."""
    consumer = KafkaConsumer(
        {"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}, [TP.topic], on_assign, on_revoke
    )  # never connects: its client is replaced
    consumer._consumer.close()

    def assign():
        consumer._assigned(None, [ck.TopicPartition(TP.topic, TP.partition)])

    consumer._consumer = _Client(end, committed, assign, fail_committed)
    return consumer


def service_of(tmp_path, end, committed, **options) -> tuple[SinkService, list[KafkaConsumer]]:
    """A lake sink service on a fake bus; also the list of consumers it made."""
    made: list[KafkaConsumer] = []

    def consumer(group, topics, read_committed=True, on_assign=None, on_revoke=None):
        made.append(consumer_of(end, committed, on_assign, on_revoke))
        return made[-1]

    bus = SimpleNamespace(
        settings=SimpleNamespace(bootstrap="fake"), partitions=lambda topic: 2, consumer=consumer
    )
    options = SinkOptions(group="g", tables=("dlq",), **options)
    return SinkService(bus, TOPICS, LakeSink(tmp_path / "lake"), options), made  # type: ignore[arg-type]


@pytest.fixture
def assigned(tmp_path):
    """A service whose consumer was just assigned ``TP``: call with (end, committed)."""

    def make(end, committed, fail_committed=False):
        service, _ = service_of(tmp_path, end, committed)
        service._consumer = consumer_of(end, committed, fail_committed=fail_committed)
        service._assigned([TP])
        return service

    return make


def test_a_partition_restored_at_its_end_has_nothing_unread(assigned):
    service = assigned(END, END)
    # the fault: the client reports no position, and its log starts at 0
    assert service._consumer.position() == {TP: ck.OFFSET_INVALID}
    assert service._unread() == 0


def test_records_past_the_committed_offset_are_unread(assigned):
    assert assigned(END + 25, END)._unread() == 25


def test_without_the_committed_offset_the_whole_log_counts(assigned):
    # the group's offsets cannot be fetched at the assignment: the check stays on the
    # safe side (a stuck client is replaced) and the assignment goes on
    service = assigned(END, END, fail_committed=True)
    assert service._unread() == END


def test_a_restarted_sink_with_nothing_to_read_does_not_rejoin(tmp_path):
    # stall checks every 0.05 s, exit after 0.6 s without input: several checks
    service, made = service_of(tmp_path, END, END, stall_after=0.05, exit_when_idle=0.6)
    stats = service.run()

    assert stats.rejoins == 0
    assert service._checks >= 3  # the stall check ran (two with records waiting rejoin)
    assert len(made) == 1
    assert stats.records == 0 and stats.commits == 0


def test_a_restarted_sink_with_records_waiting_that_never_come_rejoins(tmp_path):
    # the same service, with 25 records the client never delivers (left stuck)
    service, made = service_of(tmp_path, END + 25, END, stall_after=0.05, exit_when_idle=0.6)
    stats = service.run()

    assert stats.rejoins == 1  # once per quiet spell
    assert len(made) == 2
    assert made[0]._consumer.consumed > 0 and made[1]._consumer.consumed > 0
