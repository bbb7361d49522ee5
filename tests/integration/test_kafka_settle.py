"""Settling a transactional producer's partitions on a real broker (see TransactionalProducer).

A broker that restarts can abort a transaction without writing its markers
where it knows no leader yet; the end-to-end case is
``test_kafka_run_broker_crash.py``. Here: what settling leaves on the
partitions, that a partition whose marker did not show is settled again, and
that settling with a consumer's group ends the offsets such a transaction left
pending (reading them timed out).
"""

import time
import uuid
from types import SimpleNamespace

import confluent_kafka as ck
import pytest

from marketpulse.bus.base import TopicPartition

from .kafka_tools import bus_for, read_committed, read_records

pytestmark = pytest.mark.integration


def _producer(bus, topic, last_offsets=None):
    guarded = [TopicPartition(topic, p) for p in range(3)]
    producer = bus.transactional_producer(
        f"settle-{uuid.uuid4().hex}", transaction_timeout_s=10, guarded=guarded
    )
    if last_offsets is not None:
        producer._last_offsets = last_offsets
    producer.init()
    return producer


def test_the_first_transaction_after_an_init_or_an_abort_settles_every_guarded_partition(
    kafka_bootstrap, topic_prefix
):
    topic = f"{topic_prefix}bars"
    bus = bus_for(kafka_bootstrap)
    bus.create_topics([topic], 3, 1)
    producer = _producer(bus, topic)
    assert producer.unsettled
    producer.begin()
    producer.send(topic, b"k", b"committed", 0)
    producer.commit({}, None)
    producer.begin()  # after a commit: nothing to settle
    producer.send(topic, b"k", b"aborted", 1)
    producer.flush(30)  # on the broker, then aborted
    producer.abort()
    assert producer.unsettled
    producer.begin()
    producer.send(topic, b"k", b"after the abort", 2)
    producer.commit({}, None)

    assert (producer.settled, producer.resettled) == (2, 0)
    # each settling put a record and an abort marker on every partition: none is read as
    # committed, and no transaction stays open (the last stable offset is the end)
    committed = read_committed(kafka_bootstrap, topic)
    assert {p: [v for _, v, _ in rows] for p, rows in committed.items()} == {
        0: [b"committed"],
        1: [],
        2: [b"after the abort"],
    }
    every = read_records(kafka_bootstrap, topic, "read_uncommitted")
    assert [len(every[p]) for p in range(3)] == [3, 3, 3]  # 2 settling records each
    tps = [TopicPartition(topic, p) for p in range(3)]
    deadline = time.monotonic() + 30
    assert bus.last_offsets(tps, True, deadline) == bus.last_offsets(tps, False, deadline)
    producer.close()
    bus.close()


def test_a_partition_whose_abort_marker_did_not_show_is_settled_again(
    kafka_bootstrap, topic_prefix
):
    topic = f"{topic_prefix}trades"
    bus = bus_for(kafka_bootstrap)
    bus.create_topics([topic], 3, 1)
    reads = []
    producer = None

    def last_offsets(partitions, stable, deadline):
        # the fault: after the first settling, partition 1 looks as if the coordinator had
        # skipped its marker (its last stable offset behind its end) for the 5 s waited
        found = bus.last_offsets(partitions, stable, deadline)
        reads.append((stable, sorted(tp.partition for tp in partitions)))
        if stable and producer.settled == 1:
            found[TopicPartition(topic, 1)] = 0
        return found

    producer = _producer(bus, topic, last_offsets)
    producer.begin()
    producer.send(topic, b"k", b"v", 1)
    producer.commit({}, None)

    assert reads[1] == (True, [0, 1, 2])  # the fault was met: partition 1 looked open
    assert (producer.settled, producer.resettled) == (2, 1)
    again = reads.index((False, [1]))  # settled again: partition 1 alone
    assert reads[again + 1 :] and all(read == (True, [1]) for read in reads[again + 1 :])
    every = read_records(kafka_bootstrap, topic, "read_uncommitted")
    assert [len(every[p]) for p in range(3)] == [1, 3, 1]
    assert [v for _, v, _ in read_committed(kafka_bootstrap, topic)[1]] == [b"v"]
    producer.close()
    bus.close()


#: Plays of the broker-restart fault: whether the coordinator skips a marker depends on
#: what it learnt about the leaders by the time it aborts, which a loaded machine changes.
_FAULT_PLAYS = 3


def _offsets_left_pending(private_broker, bus, prefix):
    """A transaction with a group's offsets open as the only broker is killed and restarted.

    Returns (the group's member, the successor producer, a reader, topic names) when
    the fault happened: the group's offsets stay pending, and reading them times out;
    ``None`` when the restarted coordinator ended the transaction cleanly.
    """
    bootstrap = private_broker.bootstrap
    source, out = f"{prefix}ticks", f"{prefix}bars"
    bus.create_topics([source, out], 1, 1)
    group, transactional_id = f"{prefix}process", f"{prefix}process-0"
    member = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                          "enable.auto.commit": False})  # fmt: skip
    # the fault: a transaction with the group's offsets is open when the only broker dies;
    # right after the restart, the coordinator aborts it (timed out), and it skips the
    # markers of partitions whose leader it does not know yet
    crashed = ck.Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                           "transaction.timeout.ms": 5000})  # fmt: skip
    crashed.init_transactions(30)
    crashed.begin_transaction()
    crashed.produce(out, b"crashed", b"k", 0)
    crashed.flush(30)
    crashed.send_offsets_to_transaction(
        [ck.TopicPartition(source, 0, 1)], member.consumer_group_metadata(), 30
    )
    assert private_broker.kill() is not None
    private_broker.start(timeout=120)
    producer = bus.transactional_producer(
        transactional_id, transaction_timeout_s=10, guarded=[TopicPartition(out, 0)]
    )
    producer.init()
    reader = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                          "isolation.level": "read_committed"})  # fmt: skip
    try:
        reader.committed([ck.TopicPartition(source, 0)], timeout=15)
    except ck.KafkaException:
        return member, producer, reader, source, out
    for client in (reader, member, producer):
        client.close()
    return None


def test_settling_with_the_group_ends_offsets_a_restarted_broker_left_pending(
    private_broker, topic_prefix
):
    bootstrap = private_broker.bootstrap
    bus = bus_for(bootstrap)
    for play in range(_FAULT_PLAYS):
        fault = _offsets_left_pending(private_broker, bus, f"{topic_prefix}{play}.")
        if fault is not None:
            break
    # the fault happened: the group's offsets stayed pending, reading them timed out
    assert fault is not None, f"the restart left no offsets pending in {_FAULT_PLAYS} plays"
    member, producer, reader, source, out = fault
    asked = [ck.TopicPartition(source, 0)]

    producer.settle(SimpleNamespace(group_metadata=member.consumer_group_metadata),
                    TopicPartition(source, 0))  # fmt: skip
    assert producer.settled >= 1 and not producer.unsettled
    # the settling transaction's abort marker ended them: the crashed offset was not committed
    (found,) = reader.committed(asked, timeout=15)
    assert found.offset < 0
    assert [v for _, v, _ in read_committed(bootstrap, out)[0]] == []
    reader.close()
    member.close()
    producer.close()
    bus.close()
