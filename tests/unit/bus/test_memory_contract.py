"""The bus contract on the memory bus, list in, list out.

Transactions (visibility, abort, offsets committed with the records, fencing),
rebalancing callbacks and their order, a group sharing partitions (range
assignment, revoke then assign as members join and leave, lost partitions),
and committed/seek/assignment/position/lag.
"""

import pyarrow as pa
import pytest

from marketpulse.bus import (
    OFFSET_BEGINNING,
    OFFSET_END,
    MemoryBus,
    ProducerFenced,
    TopicPartition,
    TransactionAborted,
    partition_for,
)
from marketpulse.exceptions import BusError


def rows(symbols):
    return pa.record_batch({"symbol": symbols, "x": list(range(len(symbols)))})


def symbols_of(batches):
    return [s for b in batches for s in b.columns.column("symbol").to_pylist()]


def tps(topic, *numbers):
    return [TopicPartition(topic, n) for n in numbers]


class Events:
    """Records the rebalancing callbacks of consumers, in the order they fire."""

    def __init__(self):
        self.seen = []

    def callbacks(self, name):
        return {
            "on_assign": lambda parts: self.seen.append((name, "assign", parts)),
            "on_revoke": lambda parts: self.seen.append((name, "revoke", parts)),
            "on_lost": lambda parts: self.seen.append((name, "lost", parts)),
        }

    def take(self):
        seen, self.seen = self.seen, []
        return seen


@pytest.fixture
def bus():
    bus = MemoryBus(retain=True)
    bus.create_topics(["in"], partitions=1)
    bus.create_topics(["out"], partitions=1)
    bus.producer().send_columns("in", "trade", rows(["A", "B", "C"]))
    return bus


def consumed(bus, group="g"):
    """A member of ``group`` that read all of ``in`` (so it owns its partition)."""
    consumer = bus.consumer(group, ["in"])
    assert symbols_of(consumer.poll()) == ["A", "B", "C"]
    return consumer


# transactions


def test_records_of_a_transaction_are_read_only_once_it_commits(bus):
    source = consumed(bus)
    reader = bus.consumer("readers", ["out"])
    producer = bus.transactional_producer("p")
    producer.init()
    producer.begin()
    assert producer.in_transaction
    producer.send_columns("out", "trade", rows(["X", "Y"]))
    producer.send_columns("out", "trade", rows(["Z"]))
    assert reader.poll() == [] and reader.lag() == {TopicPartition("out", 0): 0}
    assert bus.end_offsets("out") == [0]
    producer.commit({TopicPartition("in", 0): 3}, source)
    assert not producer.in_transaction
    assert symbols_of(reader.poll()) == ["X", "Y", "Z"]


def test_an_aborted_transaction_is_dropped_and_the_next_one_alone_is_read(bus):
    source = consumed(bus)
    reader = bus.consumer("readers", ["out"])
    producer = bus.transactional_producer("p")
    producer.init()
    producer.begin()
    producer.send_columns("out", "trade", rows(["DROPPED"]))
    producer.abort()
    assert not producer.in_transaction
    producer.begin()
    producer.send_columns("out", "trade", rows(["KEPT"]))
    producer.commit({TopicPartition("in", 0): 1}, source)
    assert symbols_of(reader.poll()) == ["KEPT"]
    assert symbols_of(bus.read_all("out")) == ["KEPT"]


def test_offsets_are_committed_with_the_transaction_and_not_before_or_on_abort(bus):
    source = consumed(bus)
    tp = TopicPartition("in", 0)
    producer = bus.transactional_producer("p")
    producer.init()
    producer.begin()
    producer.send_columns("out", "trade", rows(["X"]))
    assert source.committed([tp]) == {tp: -1}
    producer.abort()
    assert source.committed([tp]) == {tp: -1}
    producer.begin()
    producer.send_columns("out", "trade", rows(["X"]))
    steps = []
    producer.commit({tp: 2}, source, meanwhile=lambda: steps.append(source.committed([tp])))
    assert steps == [{tp: -1}]  # ``meanwhile`` runs before the commit
    assert source.committed([tp]) == {tp: 2}
    source.close()
    again = bus.consumer("g", ["in"])
    assert symbols_of(again.poll()) == ["C"]  # the group resumes where the transaction left it


def test_a_transaction_with_offsets_of_a_partition_not_owned_is_aborted(bus):
    source = consumed(bus)
    producer = bus.transactional_producer("p")
    producer.init()
    producer.begin()
    producer.send_columns("out", "trade", rows(["X"]))
    bus.lose(source)
    with pytest.raises(TransactionAborted, match="not assigned"):
        producer.commit({TopicPartition("in", 0): 3}, source)
    assert not producer.in_transaction
    assert bus.read_all("out") == []
    assert source.committed([TopicPartition("in", 0)]) == {TopicPartition("in", 0): -1}


def test_a_producer_with_the_same_id_fences_the_older_and_aborts_its_transaction(bus):
    source = consumed(bus)
    old = bus.transactional_producer("p")
    old.init()
    old.begin()
    old.send_columns("out", "trade", rows(["OLD"]))
    new = bus.transactional_producer("p")
    new.init()
    assert not old.in_transaction
    with pytest.raises(ProducerFenced):
        old.commit({TopicPartition("in", 0): 3}, source)
    with pytest.raises(ProducerFenced):
        old.begin()
    new.begin()
    new.send_columns("out", "trade", rows(["NEW"]))
    new.commit({}, source)
    assert symbols_of(bus.read_all("out")) == ["NEW"]


def test_sends_outside_a_transaction_are_refused_and_close_aborts(bus):
    producer = bus.transactional_producer("p")
    producer.init()
    with pytest.raises(BusError, match="outside a transaction"):
        producer.send_columns("out", "trade", rows(["X"]))
    producer.begin()
    with pytest.raises(BusError, match="already open"):
        producer.begin()
    producer.send_columns("out", "trade", rows(["X"]))
    producer.close()
    assert not producer.in_transaction and bus.read_all("out") == []


def test_a_transaction_spreads_its_rows_over_partitions_by_key():
    bus = MemoryBus(retain=True)
    bus.create_topics(["in"], 1)
    bus.create_topics(["out"], 4)
    source = bus.consumer("g", ["in"])
    source.poll()
    producer = bus.transactional_producer("p")
    producer.begin()
    symbols = ["AAPL", "MSFT", "SPY", "IBM", "BAC"]
    producer.send_columns("out", "trade", rows(symbols))
    producer.commit({}, source)
    for batch in bus.read_all("out"):
        assert {partition_for(s, 4) for s in batch.columns.column("symbol").to_pylist()} == {
            batch.partition
        }
    assert sorted(symbols_of(bus.read_all("out"))) == sorted(symbols)


# rebalancing callbacks and groups


def test_partitions_are_assigned_at_the_first_poll_and_revoked_at_close():
    bus = MemoryBus()
    bus.create_topics(["t"], 2)
    events = Events()
    consumer = bus.consumer("g", ["t"], **events.callbacks("a"))
    assert consumer.assignment() == [] and events.take() == []
    assert consumer.poll() == []
    assert events.take() == [("a", "assign", tps("t", 0, 1))]
    assert consumer.assignment() == tps("t", 0, 1)
    consumer.poll()
    assert events.take() == []  # nothing changed
    consumer.close()
    assert events.take() == [("a", "revoke", tps("t", 0, 1))]
    assert consumer.assignment() == []
    with pytest.raises(BusError, match="closed"):
        consumer.poll()


def test_members_share_the_partitions_in_ranges_revoke_before_assign():
    bus = MemoryBus(retain=True)
    bus.create_topics(["t"], 5)
    events = Events()
    a = bus.consumer("g", ["t"], **events.callbacks("a"))
    b = bus.consumer("g", ["t"], **events.callbacks("b"))
    c = bus.consumer("g", ["t"], **events.callbacks("c"))
    a.poll()
    assert events.take() == [("a", "assign", tps("t", 0, 1, 2, 3, 4))]
    b.poll()  # joins: a still holds every partition until it revokes some
    assert events.take() == [] and b.assignment() == []
    a.poll()
    b.poll()
    assert events.take() == [("a", "revoke", tps("t", 3, 4)), ("b", "assign", tps("t", 3, 4))]
    c.poll()  # joins: its partition 4 is b's until b revokes it
    a.poll()
    b.poll()
    c.poll()
    assert events.take() == [
        ("a", "revoke", tps("t", 2)),
        ("b", "revoke", tps("t", 4)),
        ("b", "assign", tps("t", 2)),
        ("c", "assign", tps("t", 4)),
    ]
    # range assignment over three members in join order: 2, 2, 1 partitions
    assert [m.assignment() for m in (a, b, c)] == [tps("t", 0, 1), tps("t", 2, 3), tps("t", 4)]
    b.close()
    assert events.take() == [("b", "revoke", tps("t", 2, 3))]
    a.poll()
    c.poll()
    assert events.take() == [("a", "assign", tps("t", 2)), ("c", "assign", tps("t", 3))]
    assert [m.assignment() for m in (a, c)] == [tps("t", 0, 1, 2), tps("t", 3, 4)]


def test_a_member_reads_only_its_partitions_and_a_new_owner_resumes_at_the_commit():
    bus = MemoryBus(retain=True)
    bus.create_topics(["t"], 2)
    symbols = ["AAPL", "MSFT", "SPY", "IBM", "BAC", "XOM"]
    bus.producer().send_columns("t", "trade", rows(symbols))
    committed = {}

    def commit_on_revoke(parts):
        # the revoked partitions are still this member's: their work is committed now
        assert set(parts) <= set(a.assignment())
        offsets = {tp: a.position()[tp] for tp in parts}
        a.commit(offsets)
        committed.update(offsets)

    a = bus.consumer("g", ["t"], on_revoke=commit_on_revoke)
    b = bus.consumer("g", ["t"])
    first = a.poll()
    assert sorted(symbols_of(first)) == sorted(symbols)
    b.poll()
    assert a.poll() == []  # revokes partition 1 (committing it), reads nothing new
    in_one = sum(partition_for(s, 2) == 1 for s in symbols)
    assert committed == {TopicPartition("t", 1): in_one}
    assert b.poll() == []  # partition 1 resumes at a's commit: all read already
    assert b.assignment() == tps("t", 1)
    more = ["AAPL", "MSFT", "SPY", "IBM"]
    bus.producer().send_columns("t", "trade", rows(more))
    mine_a, mine_b = symbols_of(a.poll()), symbols_of(b.poll())
    assert {partition_for(s, 2) for s in mine_a} <= {0}
    assert {partition_for(s, 2) for s in mine_b} <= {1}
    assert sorted(mine_a + mine_b) == sorted(more)


def test_lost_partitions_go_to_on_lost_and_the_member_rejoins():
    bus = MemoryBus()
    bus.create_topics(["t"], 2)
    events = Events()
    a = bus.consumer("g", ["t"], **events.callbacks("a"))
    b = bus.consumer("g", ["t"], **events.callbacks("b"))
    a.poll()
    b.poll()
    a.poll()
    b.poll()
    events.take()
    bus.lose(a)
    with pytest.raises(BusError, match="no longer in the group"):
        a.commit({TopicPartition("t", 0): 0})
    b.poll()  # a left the group: b takes its partition at once
    assert events.take() == [("b", "assign", tps("t", 0))]
    a.poll()  # a learns it lost partition 0, rejoins: b must give one back first
    assert events.take() == [("a", "lost", tps("t", 0))]
    b.poll()
    a.poll()
    assert events.take() == [("b", "revoke", tps("t", 1)), ("a", "assign", tps("t", 1))]


def test_without_on_lost_on_revoke_gets_the_lost_partitions():
    bus = MemoryBus()
    bus.create_topics(["t"], 1)
    seen = []
    a = bus.consumer("g", ["t"], on_revoke=lambda parts: seen.append(parts))
    a.poll()
    bus.lose(a)
    a.poll()
    assert seen == [tps("t", 0)]


def test_a_consumer_of_two_topics_gets_partitions_of_each():
    bus = MemoryBus()
    bus.create_topics(["t", "u"], 2)
    events = Events()
    a = bus.consumer("g", ["t", "u"], **events.callbacks("a"))
    b = bus.consumer("g", ["u"], **events.callbacks("b"))
    a.poll()
    b.poll()
    a.poll()
    b.poll()
    assert a.assignment() == [*tps("t", 0, 1), *tps("u", 0)]
    assert b.assignment() == tps("u", 1)


# committed, seek, position, lag


def test_committed_seek_position_and_lag():
    bus = MemoryBus(retain=True)
    bus.create_topics(["t"], 1)
    bus.producer().send_columns("t", "trade", rows(["A", "B", "C", "D"]))
    tp = TopicPartition("t", 0)
    consumer = bus.consumer("g", ["t"])
    with pytest.raises(BusError, match="not assigned"):
        consumer.seek(tp, 0)  # no partitions before the first poll
    assert symbols_of(consumer.poll(max_records=3)) == ["A", "B", "C"]
    assert consumer.position() == {tp: 3} and consumer.lag() == {tp: 1}
    assert consumer.committed([tp]) == {tp: -1}
    consumer.commit({tp: 2})
    assert consumer.committed([tp]) == {tp: 2}
    consumer.seek(tp, 1)
    assert consumer.position() == {tp: 1} and consumer.lag() == {tp: 3}
    assert symbols_of(consumer.poll()) == ["B", "C", "D"]
    consumer.seek(tp, OFFSET_BEGINNING)
    assert symbols_of(consumer.poll()) == ["A", "B", "C", "D"]
    consumer.seek(tp, OFFSET_END)
    bus.producer().send_columns("t", "trade", rows(["E"]))
    assert symbols_of(consumer.poll()) == ["E"]
    with pytest.raises(BusError):
        consumer.seek(TopicPartition("t", 7), 0)


def test_a_new_group_starts_at_the_oldest_record_still_held():
    bus = MemoryBus()
    bus.create_topics(["t"], 1)
    first = bus.consumer("first", ["t"])
    first.poll()
    bus.producer().send_columns("t", "trade", rows(["A", "B"]))
    first.poll()
    first.commit(first.position())  # the only reading group is past them: dropped
    bus.producer().send_columns("t", "trade", rows(["C"]))
    late = bus.consumer("late", ["t"])
    assert symbols_of(late.poll()) == ["C"]
    assert late.position() == {TopicPartition("t", 0): 3} and late.lag() == {
        TopicPartition("t", 0): 0
    }


def test_a_consumer_reads_its_topics_in_the_order_given():
    bus = MemoryBus()
    bus.create_topics(["z", "a"], 2)
    producer = bus.producer()
    for topic in ("a", "z"):
        producer.send_columns(topic, "trade", rows(["AAPL", "MSFT"]))
    consumer = bus.consumer("g", ["z", "a"])
    assert [b.tp for b in consumer.poll()] == [*tps("z", 0, 1), *tps("a", 0, 1)]
    assert consumer.assignment() == [*tps("a", 0, 1), *tps("z", 0, 1)]  # sorted
