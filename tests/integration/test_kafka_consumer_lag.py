"""A Kafka consumer's lag over many partitions: exact, and asked of the cluster at once.

A sink reads seven topics; asked one partition at a time, the end offsets of
their 42 partitions queued behind the fetches the broker holds and took 21 s,
during which the sink's loop (and the pipeline's drain, waiting for the same
client) stood still.
"""

from __future__ import annotations

import time
import uuid

import confluent_kafka as ck
import pytest

from marketpulse.bus.base import TopicPartition

from .kafka_tools import bus_for

pytestmark = pytest.mark.integration

TOPICS, PARTITIONS = 3, 4


def produce(bootstrap, counts):
    """Write ``counts[(topic, partition)]`` records to each partition."""
    producer = ck.Producer({"bootstrap.servers": bootstrap})
    for (topic, partition), n in counts.items():
        for i in range(n):
            producer.produce(topic, f"v{i}".encode(), b"k", partition=partition)
    assert producer.flush(30) == 0


def test_lag_counts_the_records_left_in_every_partition(kafka_bootstrap):
    bus = bus_for(kafka_bootstrap)
    prefix = f"lag{uuid.uuid4().hex[:8]}."
    names = [f"{prefix}t{i}" for i in range(TOPICS)]
    bus.create_topics(names, PARTITIONS)
    counts = {(t, p): 1 + 3 * p + i for i, t in enumerate(names) for p in range(PARTITIONS)}
    produce(kafka_bootstrap, counts)
    consumer = bus.consumer(f"{prefix}g", names)
    try:
        # one record handed out: every other partition's position is not known yet,
        # so it counts from the start of its log (or where reading resumed)
        read = []
        deadline = time.monotonic() + 60
        while not read and time.monotonic() < deadline:
            read = [b for b in consumer.poll(1, 0.5) if b.messages]
        assert len(read) == 1 and len(read[0].messages) == 1
        first = TopicPartition(read[0].topic, read[0].partition)
        lag = consumer.lag()
        expected = {TopicPartition(t, p): n for (t, p), n in counts.items()}
        expected[first] -= 1
        assert lag == expected
        others = [tp for tp in expected if tp != first]
        resumed = {tp: 1 for tp in others}
        assert consumer.lag(resumed=resumed) == {
            tp: n - (1 if tp in resumed else 0) for tp, n in expected.items()
        }  # fmt: skip
        # everything read, then two more records each: the end offsets are the cluster's now
        seen = 1
        while seen < sum(counts.values()) and time.monotonic() < deadline:
            seen += sum(len(b.messages) for b in consumer.poll(10_000, 0.5))
        assert seen == sum(counts.values())
        assert set(consumer.lag().values()) == {0}
        produce(kafka_bootstrap, dict.fromkeys(counts, 2))
        assert consumer.lag() == dict.fromkeys(expected, 2)
    finally:
        consumer.close()
