"""Restoring state on a real broker: a crashed producer's open transaction hides nothing."""

import signal
import threading
import time
import uuid

import confluent_kafka as ck
import pytest

from .conftest import LEAN_TRADES
from .kafka_tools import (
    OUTPUTS,
    OpenTransactions,
    bus_for,
    committed_offsets,
    create_topics,
    default_process,
    load_file,
    outputs,
    records,
    start,
    verify_topics,
    wait_log,
)

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


def test_process_restores_the_state_committed_after_a_crashed_owners_open_transaction(
    kafka_bootstrap, topic_prefix, lean_default_reference
):
    sent, expected = lean_default_reference
    create_topics(kafka_bootstrap, topic_prefix)
    assert load_file(kafka_bootstrap, topic_prefix, LEAN_TRADES) == sent
    state, group, ticks = (f"{topic_prefix}{name}" for name in ("state", "process", "ticks"))
    # what a SIGKILL leaves of an owner caught between writing its state and sending its
    # offsets: records in a transaction on every state partition, nothing to wait for in
    # the group's offsets; the broker aborts it after its timeout (40 s here, so that it
    # outlives the two restores below)
    crashed = ck.Producer({"bootstrap.servers": kafka_bootstrap, "transaction.timeout.ms": 40_000,
                           "transactional.id": f"crashed-{uuid.uuid4().hex}"})  # fmt: skip
    crashed.init_transactions()
    crashed.begin_transaction()
    for partition in range(6):
        crashed.produce(state, b"in flight", key=b"SPY", partition=partition)
    crashed.flush()
    open_state = OpenTransactions(kafka_bootstrap, state)
    assert open_state.records() >= 6  # the fault is in place when the next owner starts
    open_state.close()
    # the next owner restores, processes part of the input and commits, then is killed
    first = start(default_process(kafka_bootstrap, topic_prefix))
    deadline = time.monotonic() + 120
    while committed_offsets(kafka_bootstrap, group, ticks) < sent // 4:
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    consumed = committed_offsets(kafka_bootstrap, group, ticks)
    # killed mid-work: some of the input committed, some left to read
    assert first.returncode == -signal.SIGKILL and sent // 4 <= consumed < sent
    run_to = start(default_process(kafka_bootstrap, topic_prefix, "--exit-when-idle", "5"))
    log = wait_log(run_to, 300)
    assert run_to.returncode == 0, log
    got = outputs(kafka_bootstrap, topic_prefix)
    for topic in OUTPUTS:
        assert records(got[topic]) == records(expected[topic]), topic
    verify_topics(kafka_bootstrap, topic_prefix)
