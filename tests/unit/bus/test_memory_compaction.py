"""A compacted topic of the in-memory bus keeps the latest value per key, and no more."""

from __future__ import annotations

from marketpulse.bus import MemoryBus, TopicPartition
from marketpulse.bus.memory_compaction import COMPACT_MIN_ROWS

COMPACT = {"state": {"cleanup.policy": "compact"}}
KEYS = 200


def write_rounds(bus: MemoryBus, rounds: int, keys: int = KEYS, topic: str = "state") -> None:
    """Write every key's value ``round`` once per round, one producer call a round."""
    producer = bus.producer()
    for n in range(rounds):
        records = [(f"k{i}".encode(), f"{n}".encode()) for i in range(keys)]
        producer.send_records(topic, records, partition=0)


def held(bus: MemoryBus, topic: str = "state") -> int:
    start = bus._topics[topic][0].start_offset
    return bus.end_offsets(topic)[0] - start


def test_a_compacted_topic_holds_about_its_keys_however_often_they_are_written():
    bus = MemoryBus()
    bus.create_topics(["state"], 1, configs=COMPACT)
    write_rounds(bus, 500)  # 100,000 records of 200 keys
    assert bus.end_offsets("state") == [500 * KEYS]
    assert held(bus) <= 3 * KEYS + COMPACT_MIN_ROWS
    latest = {f"k{i}".encode(): b"499" for i in range(KEYS)}
    assert bus.read_partition("state", 0) == latest


def test_a_topic_without_the_compact_policy_keeps_what_no_group_committed():
    bus = MemoryBus()
    bus.create_topics(["state"], 1)
    write_rounds(bus, 50)
    assert held(bus) == 50 * KEYS


def test_a_deleted_key_stays_deleted_after_compaction():
    bus = MemoryBus()
    bus.create_topics(["state"], 1, configs=COMPACT)
    producer = bus.producer()
    producer.send_records("state", [(b"gone", b"1"), (b"kept", b"1")], partition=0)
    producer.send_records("state", [(b"gone", None)], partition=0)
    write_rounds(bus, 100)
    assert held(bus) <= 3 * KEYS + COMPACT_MIN_ROWS
    values = bus.read_partition("state", 0)
    assert b"gone" not in values
    assert values[b"kept"] == b"1"


def test_a_group_committing_on_a_compacted_topic_leaves_its_values_for_restores():
    bus = MemoryBus()
    bus.create_topics(["state"], 1, configs=COMPACT)
    write_rounds(bus, 3)
    consumer = bus.consumer("g", ["state"])
    read = sum(len(b) for b in consumer.poll(max_records=10_000, timeout=0))
    assert read == 3 * KEYS
    consumer.commit({TopicPartition("state", 0): 3 * KEYS})
    assert len(bus.read_partition("state", 0)) == KEYS


def test_a_consumer_reads_every_latest_value_it_had_not_read_across_compactions():
    bus = MemoryBus()
    bus.create_topics(["state"], 1, configs=COMPACT)
    producer = bus.producer()
    consumer = bus.consumer("g", ["state"])
    consumer.poll(timeout=0)  # joins
    producer.send_records("state", [(b"old", b"1")], partition=0)
    assert [len(b) for b in consumer.poll(timeout=0)] == [1]
    # the key read stays; others are written past it, many times over, and compacted
    producer.send_records("state", [(b"new", b"1")], partition=0)
    write_rounds(bus, 60)
    assert held(bus) < 60 * KEYS  # compacted meanwhile
    seen: dict[bytes, bytes] = {}
    while batches := consumer.poll(max_records=100_000, timeout=0):
        for batch in batches:
            keys = batch.columns.column("key").to_pylist()
            seen.update(zip(keys, batch.columns.column("value").to_pylist(), strict=True))
    assert seen[b"new"] == b"1"
    assert all(seen[f"k{i}".encode()] == b"59" for i in range(KEYS))
    assert consumer.position()[TopicPartition("state", 0)] == bus.end_offsets("state")[0]
