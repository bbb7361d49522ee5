"""A partition restored with open windows and no input after closes them by the idle rule.

The service runs without a broker: a real :class:`KafkaConsumer` whose librdkafka
client is replaced by one that reports a partition assigned at its end (the
client has handed out no record of it, so it knows no position), a producer
that keeps what each transaction sent, and the ``state`` records a crashed
instance committed.
"""

from __future__ import annotations

from types import SimpleNamespace

import confluent_kafka as ck
import msgspec
import pyarrow as pa
import pytest

from marketpulse.bus.base import Batch, Message, TopicPartition
from marketpulse.bus.codec import decode_rows, encode_rows
from marketpulse.bus.kafka_consumer import KafkaConsumer
from marketpulse.bus.topics import Topics
from marketpulse.models import Trade
from marketpulse.runtime.process import ProcessOptions, ProcessService
from marketpulse.stream import Processor, ProcessorSettings

TOPICS = Topics("p.")
PARTITION = 2
TP = TopicPartition(TOPICS.ticks, PARTITION)
#: 2013-10-07 10:03:00.2 UTC: ticks every 250 ms to 10:04:59.95, the last ones
#: inside the 1 s, 1 min and 5 min windows that end at 10:05:00
START = 1_381_140_180 * 10**9 + 200_000_000
STEP = 250_000_000
TICKS_PER_SYMBOL = 480
SYMBOLS = ("AAA", "BBB")
LAST_END = 1_381_140_300 * 10**9  # 10:05:00


def ticks() -> Batch:
    """The partition's whole input: both symbols, alternating."""
    values = [
        msgspec.json.encode(Trade(symbol, START + i * STEP, 100.0 + (i % 9) * 0.01, 100.0))
        for i in range(TICKS_PER_SYMBOL)
        for symbol in SYMBOLS
    ]
    messages = [Message(b"k", value, offset) for offset, value in enumerate(values)]
    return Batch(TOPICS.ticks, PARTITION, 0, len(messages) - 1, messages=messages)


def committed_state(settings: ProcessorSettings) -> tuple[dict[bytes, bytes], Processor]:
    """The ``state`` records of an instance that consumed every tick, then crashed.

    Also returns that instance, as it was, for an uninterrupted reference.
    """
    processor = Processor(settings)
    processor.process(ticks())
    records = dict(processor.checkpoint(TOPICS.ticks, PARTITION))
    return records, processor


class _Client:
    """Stands in for librdkafka's consumer: one partition, fully consumed before."""

    def __init__(self, end: int, committed: int, on_first_consume=None) -> None:
        self.end = end
        self.offset = committed
        self.on_first_consume = on_first_consume

    def assignment(self):
        return [ck.TopicPartition(TP.topic, TP.partition)]

    def position(self, partitions):
        # nothing handed out since the assignment: librdkafka knows no position
        return [ck.TopicPartition(p.topic, p.partition, ck.OFFSET_INVALID) for p in partitions]

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        return 0, self.end

    def committed(self, partitions, timeout=None):
        return [ck.TopicPartition(p.topic, p.partition, self.offset) for p in partitions]

    def consume(self, num_messages, timeout):
        if self.on_first_consume is not None:
            callback, self.on_first_consume = self.on_first_consume, None
            callback()
        return []

    def close(self):
        pass


def consumer_of(
    end, committed=None, on_assign=None, on_revoke=None, on_lost=None, assign_on_poll=False
):
    """A consumer of partition 2, its group at offset ``committed`` (default: ``end``)."""
    consumer = KafkaConsumer(
        {"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}, [TOPICS.ticks],
        on_assign, on_revoke, on_lost,
    )  # fmt: skip  # never connects: its client is replaced
    consumer._consumer.close()

    def assign():
        consumer._assigned(None, [ck.TopicPartition(TP.topic, TP.partition)])

    committed = end if committed is None else committed
    consumer._consumer = _Client(end, committed, assign if assign_on_poll else None)
    return consumer


class _Producer:
    """A transactional producer that keeps the records of each committed transaction."""

    def __init__(self) -> None:
        self.in_transaction = False
        self.stuck = False
        self.open: list[tuple[str, int, object]] = []
        self.committed: list[tuple[str, int, object]] = []
        self.offsets: list[dict[TopicPartition, int]] = []

    def init(self):
        pass

    def settle(self, consumer, consumed):
        assert not self.in_transaction

    def begin(self):
        assert not self.in_transaction
        self.in_transaction = True

    def send_rows(self, topic, kind, rows, partition):
        _, values = encode_rows(kind, rows)
        self.open += [(topic, partition, value) for value in values]

    def send_records(self, topic, records, partition):
        for key, value in records:
            self.send(topic, key, value, partition)

    def send(self, topic, key, value, partition=-1, headers=None):
        self.open.append((topic, partition, value))

    def send_alerts(self, topic, alerts, partition=-1):
        self.open += [(topic, partition, alert) for alert in alerts]

    def send_dead(self, topic, letters, partition=-1, dataset=None):
        self.open += [(topic, partition, letter) for letter in letters]

    def commit(self, offsets, consumer, timeout=60.0, meanwhile=None):
        if meanwhile is not None:
            meanwhile()
        self.committed += self.open
        self.offsets.append(dict(offsets))
        self.open = []
        self.in_transaction = False

    def abort(self, timeout=60.0):
        self.open = []
        self.in_transaction = False

    def close(self):
        pass

    def bars(self) -> list[dict]:
        """The committed bars, in the order sent, each with its partition."""
        sent = [(p, v) for topic, p, v in self.committed if topic == TOPICS.name("bars")]
        table, errors = decode_rows("bars", [v for _, v in sent])
        assert not errors
        rows = table.to_pylist()
        return [{**row, "partition": p} for row, (p, _) in zip(rows, sent, strict=True)]


@pytest.fixture
def state_topic():
    """The ``state`` topic a restore reads: set ``records`` of partition 2 before use.

    ``bus`` reads it (a bus of nothing else).
    """
    topic = SimpleNamespace(records={})

    def read_partition(name, partition, timeout=60.0, stop=None):
        return dict(topic.records) if (name, partition) == (TOPICS.state, PARTITION) else {}

    topic.bus = SimpleNamespace(read_partition=read_partition, close=lambda: None)
    return topic


def last_bars(rows):
    return sorted(
        (r["symbol"], r["timeframe"], r["bar_start"], r["bar_end"], r["trades"]) for r in rows
    )


def expected_last_bars():
    """The windows open when the input ended, as the ticks make them."""
    per_window = {"1s": 4, "1m": 240, "5m": TICKS_PER_SYMBOL}
    lengths = {"1s": 10**9, "1m": 60 * 10**9, "5m": 300 * 10**9}
    return sorted(
        (symbol, interval, LAST_END - lengths[interval], LAST_END, per_window[interval])
        for symbol in SYMBOLS
        for interval in ("1s", "1m", "5m")
    )


def test_restored_open_windows_close_once_the_partition_is_idle(state_topic):
    settings = ProcessorSettings(intervals=("1s", "1m", "5m"), lateness=0.5, idle_timeout=2.0)
    state_topic.records, crashed = committed_state(settings)
    end = len(ticks().messages)
    producer = _Producer()
    outputs = []
    service = ProcessService(
        state_topic.bus, TOPICS, Processor(settings), ProcessOptions(),  # type: ignore[arg-type]
        on_output=lambda out, batch: outputs.append(out),
    )  # fmt: skip
    service._producer = producer
    service._consumer = consumer_of(end)
    service._assigned([TP])
    assert service.stats.restored == 1
    assigned = service.last_input

    service._idle(assigned + 1.0)  # not idle yet: nothing closes
    assert not producer.open and not outputs
    later = assigned + settings.idle_timeout + 1.0
    service._idle(later)  # the injected clock is past the idle timeout
    service._commit()

    bars = producer.bars()
    assert last_bars(bars) == expected_last_bars()
    assert {b["partition"] for b in bars} == {PARTITION}
    # the offsets committed with them are those it resumed from: no input was redone
    assert producer.offsets == [{TP: end}]
    # the same bars as the instance that never crashed closes by the same rule
    reference = crashed.state(TOPICS.ticks, PARTITION)
    closed = crashed.idle(now=reference.last_input + (later - assigned))
    got = pa.concat_tables([o.bars for o in outputs])
    assert got.to_pylist() == closed.bars.to_pylist()


def test_a_partition_restored_with_a_backlog_is_not_idle(state_topic):
    settings = ProcessorSettings(intervals=("1s", "1m", "5m"), lateness=0.5, idle_timeout=2.0)
    state_topic.records, _ = committed_state(settings)
    end = len(ticks().messages)
    producer = _Producer()
    service = ProcessService(state_topic.bus, TOPICS, Processor(settings))  # type: ignore[arg-type]
    service._producer = producer
    service._consumer = consumer_of(end + 50, end)  # 50 records arrived after the commit
    service._assigned([TP])

    assert service._behind() == {(TP.topic, TP.partition)}
    service._idle(service.last_input + 60.0)
    assert not producer.open


def test_exit_when_idle_commits_the_bars_the_idle_rule_closes_first(state_topic):
    # lateness 0: the last tick is 50 ms before the windows' end, so a partition
    # idle for the idle timeout and a little more closes them
    settings = ProcessorSettings(intervals=("1s", "1m", "5m"), lateness=0.0, idle_timeout=0.3)
    state_topic.records, _ = committed_state(settings)
    end = len(ticks().messages)
    producer = _Producer()
    bus = SimpleNamespace(
        settings=SimpleNamespace(bootstrap="fake"),
        partitions=lambda topic: 6,
        transactional_producer=lambda *args, **kwargs: producer,
        read_partition=state_topic.bus.read_partition,
        close=lambda: None,
        consumer=lambda group, topics, on_assign, on_revoke, on_lost, **extra: consumer_of(
            end, end, on_assign, on_revoke, on_lost, assign_on_poll=True
        ),
    )
    # exits soon after the partition turns idle, before a periodic idle check
    options = ProcessOptions(instance="one", exit_when_idle=0.35)
    stats = ProcessService(bus, TOPICS, Processor(settings), options).run()  # type: ignore[arg-type]

    assert stats.restored == 1
    assert last_bars(producer.bars()) == expected_last_bars()
    assert not producer.in_transaction and producer.offsets[-1] == {TP: end}
