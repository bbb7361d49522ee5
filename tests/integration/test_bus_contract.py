"""The bus contract (marketpulse.bus.base), the same tests on the memory bus and on Kafka.

Transactions (records read only once committed, abort drops them, a group's
offsets commit with them), rebalancing callbacks (assign at the first poll,
revoke on close, revoke before assign when a member joins), and committed
offsets and seek. The Kafka case uses the shared broker (``kafka_bootstrap``).
"""

from __future__ import annotations

import time
import uuid

import pyarrow as pa
import pytest

from marketpulse.bus import MemoryBus, TopicPartition
from marketpulse.bus.kafka import KafkaBus
from marketpulse.config import KafkaSettings

PARTITIONS = 2


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.integration)])
def kit(request):
    """(bus, input topic, output topic), both topics of PARTITIONS partitions."""
    if request.param == "memory":
        bus, prefix = MemoryBus(retain=True), "m."
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        bus, prefix = KafkaBus(KafkaSettings(bootstrap=bootstrap)), f"t{uuid.uuid4().hex[:8]}."
    source, sink = f"{prefix}in", f"{prefix}out"
    bus.create_topics([source, sink], PARTITIONS)
    return bus, source, sink


def trades(symbols):
    n = len(symbols)
    return pa.table(
        {
            "symbol": symbols,
            "ts": pa.array(range(1, n + 1), pa.int64()),
            "price": [1.0] * n,
            "size": [1.0] * n,
        }
    )


def symbols_of(batches):
    """The symbol of every record (columns on the memory bus, keys on Kafka)."""
    out = []
    for batch in batches:
        if batch.columns is not None:
            out += batch.columns.column("symbol").to_pylist()
        else:
            out += [m.key.decode() for m in batch.messages]
    return out


def publish(bus, topic, symbols):
    producer = bus.producer()
    producer.send_columns(topic, "trade", trades(symbols))
    producer.flush(30)


def poll_until(consumers, done, seconds=60.0, what="the condition"):
    """Poll ``consumers`` in turn until ``done(read)``; return the symbols each read."""
    read = [[] for _ in consumers]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for i, consumer in enumerate(consumers):
            read[i] += symbols_of(consumer.poll(timeout=0.2))
        if done(read):
            return read
    pytest.fail(f"timed out waiting for {what}; read {read}")


def settle(consumers, seconds):
    """Poll each consumer once, then for ``seconds`` longer; return what was read."""
    read = []
    deadline = time.monotonic() + seconds
    while True:
        for consumer in consumers:
            read += symbols_of(consumer.poll(timeout=0.2))
        if time.monotonic() >= deadline:
            return read


def wait_seconds(bus):
    """How long to keep looking for records that must not come."""
    return 0.0 if isinstance(bus, MemoryBus) else 3.0


class Events:
    def __init__(self):
        self.seen = []

    def callbacks(self, name):
        return {
            "on_assign": lambda parts: self.seen.append((name, "assign", sorted(parts))),
            "on_revoke": lambda parts: self.seen.append((name, "revoke", sorted(parts))),
        }


INPUT = ["AAPL", "MSFT", "SPY", "IBM", "BAC", "XOM"]


def read_input(bus, source, group="g", **callbacks):
    """A member of ``group`` that read all the input; with the next offset per partition."""
    publish(bus, source, INPUT)
    consumer = bus.consumer(group, [source], **callbacks)
    poll_until([consumer], lambda r: sorted(r[0]) == sorted(INPUT), what="the input")
    return consumer, dict(consumer.position())


def transactional(bus, name):
    producer = bus.transactional_producer(f"{name}-{uuid.uuid4().hex[:8]}")
    producer.init()
    return producer


def test_transaction_records_are_read_only_after_commit_with_the_offsets(kit):
    bus, source, sink = kit
    consumer, offsets = read_input(bus, source)
    assert sum(offsets.values()) == len(INPUT)
    reader = bus.consumer("readers", [sink])
    producer = transactional(bus, "commit")
    producer.begin()
    assert producer.in_transaction
    producer.send_columns(sink, "trade", trades(["X1", "X2", "X3"]))
    producer.flush(30)
    assert settle([reader], wait_seconds(bus)) == []
    parts = sorted(offsets)
    assert consumer.committed(parts) == {tp: -1 for tp in parts}
    producer.commit(offsets, consumer)
    assert not producer.in_transaction
    (read,) = poll_until([reader], lambda r: len(r[0]) >= 3, what="the committed records")
    assert sorted(read) == ["X1", "X2", "X3"]
    assert consumer.committed(parts) == offsets
    producer.close()
    consumer.close()
    reader.close()


def test_an_aborted_transaction_is_never_read_nor_its_offsets_committed(kit):
    bus, source, sink = kit
    consumer, offsets = read_input(bus, source)
    reader = bus.consumer("readers", [sink])
    producer = transactional(bus, "abort")
    producer.begin()
    producer.send_columns(sink, "trade", trades(["DROPPED"]))
    producer.flush(30)
    producer.abort()
    assert not producer.in_transaction
    parts = sorted(offsets)
    assert consumer.committed(parts) == {tp: -1 for tp in parts}
    producer.begin()
    producer.send_columns(sink, "trade", trades(["KEPT"]))
    first = next(iter(parts))
    producer.commit({first: 1}, consumer)
    (read,) = poll_until([reader], lambda r: "KEPT" in r[0], what="the second transaction")
    read += settle([reader], wait_seconds(bus))
    assert read == ["KEPT"]
    assert consumer.committed(parts) == {tp: 1 if tp == first else -1 for tp in parts}
    producer.close()
    consumer.close()
    reader.close()


def test_partitions_are_assigned_in_poll_and_revoked_when_the_member_leaves(kit):
    bus, source, _ = kit
    events = Events()
    consumer, _ = read_input(bus, source, **events.callbacks("a"))
    every = [TopicPartition(source, p) for p in range(PARTITIONS)]
    assert events.seen == [("a", "assign", every)]
    assert sorted(consumer.assignment()) == every
    consumer.close()
    assert events.seen == [("a", "assign", every), ("a", "revoke", every)]


def test_a_joining_member_gets_a_share_once_the_other_revoked_it(kit):
    bus, source, _ = kit
    events = Events()
    a, _ = read_input(bus, source, **events.callbacks("a"))
    a.commit(a.position())
    b = bus.consumer("g", [source], **events.callbacks("b"))
    poll_until(
        [a, b], lambda r: a.assignment() and b.assignment(), what="both members to hold partitions"
    )
    every = [TopicPartition(source, p) for p in range(PARTITIONS)]
    assert sorted(a.assignment() + b.assignment()) == every
    moved = sorted(b.assignment())
    assert [e for e in events.seen if e[1] == "revoke"] == [("a", "revoke", moved)]
    assert events.seen.index(("a", "revoke", moved)) < events.seen.index(("b", "assign", moved))
    # b resumes at the group's committed offsets: nothing is read twice
    assert settle([a, b], wait_seconds(bus)) == []
    publish(bus, source, ["NEW1", "NEW2", "NEW3", "NEW4"])
    a_read, b_read = poll_until(
        [a, b], lambda r: len(r[0]) + len(r[1]) >= 4, what="the new records"
    )
    assert sorted(a_read + b_read) == ["NEW1", "NEW2", "NEW3", "NEW4"]
    b.close()
    poll_until([a], lambda r: sorted(a.assignment()) == every, what="a to get every partition")
    assert events.seen[-2:] == [("b", "revoke", moved), ("a", "assign", moved)]
    a.close()


def test_committed_offsets_and_seek(kit):
    bus, source, _ = kit
    consumer, offsets = read_input(bus, source)
    tp = max(offsets, key=offsets.get)  # the partition with the most records
    assert offsets[tp] >= 2
    consumer.commit({tp: 1})
    assert consumer.committed([tp]) == {tp: 1}
    consumer.seek(tp, 1)
    (again,) = poll_until([consumer], lambda r: len(r[0]) >= offsets[tp] - 1, what="re-read")
    assert len(again) == offsets[tp] - 1
    assert consumer.position()[tp] == offsets[tp]
    assert consumer.lag()[tp] == 0
    consumer.close()
