"""Helpers of the Kafka integration tests: topics, loading ticks, reading topics back."""

from __future__ import annotations

import time

import confluent_kafka as ck

from marketpulse.bus.kafka import KafkaBus
from marketpulse.bus.topics import Topics, topic_specs
from marketpulse.config import KafkaSettings
from marketpulse.feeds import FileReplay


def bus_for(bootstrap: str) -> KafkaBus:
    return KafkaBus(KafkaSettings(bootstrap=bootstrap))


def create_topics(bootstrap: str, prefix: str, partitions: int = 6) -> Topics:
    """Create every MarketPulse topic under ``prefix``."""
    bus, topics = bus_for(bootstrap), Topics(prefix)
    for spec in topic_specs(topics):
        bus.create_topics([spec.name], partitions, 1, {spec.name: spec.config})
    return topics


def load_file(bootstrap: str, prefix: str, path, **options) -> int:
    """Publish a trades file to the ticks topic; return the records sent."""
    bus, topics = bus_for(bootstrap), Topics(prefix)
    sent = 0
    with bus.producer() as producer:
        for batch in FileReplay(path, **options).batches():
            producer.send_columns(topics.ticks, batch.kind, batch.data)
            sent += batch.data.num_rows
    assert producer.failed == 0
    return sent


def end_offsets(bootstrap: str, topic: str) -> list[int]:
    """The high watermark of every partition of ``topic``."""
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "end-offsets"})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        parts = sorted(metadata.topics[topic].partitions)
        return [
            consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)[1]
            for p in parts
        ]
    finally:
        consumer.close()


def read_committed(bootstrap: str, topic: str, timeout: float = 60.0):
    """Every committed record of ``topic``: {partition: [(key, value, headers), ...]}."""
    consumer = ck.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "reader",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        parts = sorted(metadata.topics[topic].partitions)
        out = {p: [] for p in parts}
        pending = set()
        assign = []
        for p in parts:
            low, high = consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)
            if high > low:
                pending.add(p)
                assign.append(ck.TopicPartition(topic, p, low))
        consumer.assign(assign)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for record in consumer.consume(10_000, 0.5):
                if record.error():
                    if record.error().code() == ck.KafkaError._PARTITION_EOF:
                        pending.discard(record.partition())
                        continue
                    raise AssertionError(record.error().str())
                out[record.partition()].append(
                    (record.key(), record.value(), tuple(record.headers() or ()))
                )
        assert not pending, f"{topic}: partitions {pending} not read to the end"
        return out
    finally:
        consumer.close()
