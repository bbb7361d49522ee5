"""Restoring state on a real broker: a crashed producer's open transaction hides nothing."""

import threading
import time
import uuid

import confluent_kafka as ck
import pytest

from .kafka_tools import OpenTransactions, bus_for

pytestmark = pytest.mark.integration


def test_a_read_waits_out_an_open_transaction_and_returns_what_was_committed_after_it(
    kafka_bootstrap, topic_prefix
):
    topic = f"{topic_prefix}state"
    bus = bus_for(kafka_bootstrap)
    bus.create_topics([topic], 1, 1)
    config = {"bootstrap.servers": kafka_bootstrap}
    # a crashed owner's transaction: records sent, never committed (this producer is
    # simply left alone, as a SIGKILL leaves it); the broker aborts it after its timeout
    crashed = ck.Producer({**config, "transactional.id": f"crashed-{uuid.uuid4().hex}",
                           "transaction.timeout.ms": 3000})  # fmt: skip
    crashed.init_transactions()
    crashed.begin_transaction()
    crashed.produce(topic, b"old-value-in-flight", key=b"AAPL")
    crashed.flush()
    # the next owner commits its state after it
    owner = ck.Producer({**config, "transactional.id": f"owner-{uuid.uuid4().hex}"})
    owner.init_transactions()
    owner.begin_transaction()
    owner.produce(topic, b"committed", key=b"AAPL")
    owner.produce(topic, b"committed", key=b"MSFT")
    owner.commit_transaction()
    # the fault is there: a read_committed reader stops before both committed records
    open_records = OpenTransactions(kafka_bootstrap, topic)
    assert open_records.records() >= 3  # the open one, the committed two past it (and a marker)
    stable_ends = []
    watcher = threading.Thread(
        target=lambda: stable_ends.append(_wait_for(lambda: open_records.records() == 0))
    )
    watcher.start()
    started = time.monotonic()
    values = bus.read_partition(topic, 0, timeout=60)
    waited = time.monotonic() - started
    watcher.join()
    open_records.close()
    bus.close()
    assert values == {b"AAPL": b"committed", b"MSFT": b"committed"}
    # it waited for the broker's abort (the crashed transaction's timeout), not less
    assert stable_ends and stable_ends[0] - started <= waited + 0.5


def _wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError("the broker did not end the open transaction")
