"""Grouping of the client's records into batches, without a broker."""

import confluent_kafka as ck
import pytest

from marketpulse.bus.base import Message, keys_of, offsets_of, values_of
from marketpulse.bus.kafka_consumer import ConsumerFatal, KafkaConsumer, _batches


def record(topic, partition, offset, key=b"k"):
    return ck.Message(topic=topic, partition=partition, offset=offset,
                      key=key, value=f"{topic}/{partition}/{offset}".encode())  # fmt: skip


def test_one_partition_is_one_batch_in_offset_order():
    batches = _batches([record("t", 3, o) for o in range(10, 15)])
    assert [(b.topic, b.partition, b.first_offset, b.last_offset) for b in batches] == [
        ("t", 3, 10, 14)
    ]
    assert offsets_of(batches[0].messages) == [10, 11, 12, 13, 14]
    assert values_of(batches[0].messages)[0] == b"t/3/10"
    assert batches[0].messages[1].offset == 11


def test_interleaved_partitions_and_topics_are_split_each_in_its_order():
    records = [
        record("a", 0, 1), record("a", 1, 7), record("b", 0, 4),
        record("a", 0, 2), record("a", 1, 8), record("a", 0, 3),
    ]  # fmt: skip
    batches = _batches(records)
    assert [(b.topic, b.partition, offsets_of(b.messages)) for b in batches] == [
        ("a", 0, [1, 2, 3]),
        ("a", 1, [7, 8]),
        ("b", 0, [4]),
    ]
    assert [(b.first_offset, b.last_offset) for b in batches] == [(1, 3), (7, 8), (4, 4)]


def test_keys_are_read_from_the_clients_records_and_from_messages():
    batches = _batches([record("t", 0, 1, b"AAPL"), record("t", 0, 2, None)])
    assert keys_of(batches[0].messages) == [b"AAPL", None]
    assert keys_of([Message(b"MSFT", b"{}", 3), Message(None, b"{}", 4)]) == [b"MSFT", None]


def test_no_records_no_batches():
    assert _batches([]) == []


def test_the_one_topic_read_names_every_batch():
    batches = _batches([record("t", 1, 5), record("t", 2, 9)], topic="t")
    assert [(b.topic, b.partition, b.first_offset) for b in batches] == [("t", 1, 5), ("t", 2, 9)]


class _Client:
    """Stands in for the librdkafka consumer: hands out the records it was given."""

    def __init__(self, records):
        self.records = records

    def consume(self, num_messages, timeout):
        records, self.records = self.records, []
        return records

    def close(self):
        pass


def consumer_of(records):
    consumer = KafkaConsumer(
        {"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}, ["t"]
    )  # never connects: its client is replaced
    consumer._consumer.close()
    consumer._consumer = _Client(records)
    return consumer


def test_error_events_are_dropped_and_the_records_around_them_kept():
    eof = ck.KafkaError(ck.KafkaError._PARTITION_EOF, "end")
    down = ck.KafkaError(ck.KafkaError._TRANSPORT, "broker down")
    records = [
        record("t", 0, 5),
        ck.Message(topic="t", partition=0, offset=6, error=eof),
        ck.Message(topic="t", partition=1, offset=-1, error=down),
        record("t", 1, 9),
    ]
    batches = consumer_of(records).poll(100, 0)
    assert [(b.partition, offsets_of(b.messages)) for b in batches] == [(0, [5]), (1, [9])]
    # nothing left pending in the interpreter by the client's error objects
    assert list(zip([1], [2], strict=True)) == [(1, 2)]


def test_a_fatal_error_event_stops_the_consumer_with_consumer_fatal():
    fatal = ck.KafkaError(ck.KafkaError._FATAL, "fenced", fatal=True)
    consumer = consumer_of([ck.Message(topic="t", partition=0, offset=-1, error=fatal)])
    with pytest.raises(ConsumerFatal, match="fenced"):
        consumer.poll(100, 0)
