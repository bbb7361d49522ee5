"""A failed transaction step is aborted; an abort the client asks to resume is resumed."""

import threading
import time

import confluent_kafka as ck
import pytest

from marketpulse.bus.kafka_producer import ProducerStuck, TransactionAborted, TransactionalProducer
from marketpulse.exceptions import BusError


class FakeClient:
    """The abort_transaction of a client: raises ``errors`` in turn, then succeeds.

    Its transaction has failed: every record is refused as librdkafka refuses
    one after a ``TXNERR`` (``_STATE``); each call is kept in ``calls``.
    """

    def __init__(self, errors=()):
        self.errors = list(errors)
        self.aborts = 0
        self.calls = []

    def abort_transaction(self, timeout):
        self.calls.append("abort")
        self.aborts += 1
        if self.errors:
            raise ck.KafkaException(self.errors.pop(0))

    def produce(self, topic, value, key, partition):
        self.calls.append("produce")
        raise ck.KafkaException(ck.KafkaError(ck.KafkaError._STATE, "Erroneous state"))

    def send_offsets_to_transaction(self, offsets, group, timeout):
        time.sleep(0.2)  # the step is running when the record is refused
        self.calls.append("offsets sent")


def producer(client):
    p = TransactionalProducer.__new__(TransactionalProducer)  # no client made: a fake one
    p._producer, p.transactional_id, p.in_transaction, p.stuck = client, "t.1", True, False
    p.sent, p._guarded, p._stepping, p._abort_due = 0, (), False, False
    return p


def step_failed():
    return ck.KafkaException(
        ck.KafkaError(ck.KafkaError._INCONSISTENT, "messages failed delivery",
                      txn_requires_abort=True)
    )  # fmt: skip


TIMED_OUT = ck.KafkaError(ck.KafkaError._TIMED_OUT, "retry call to resume", retriable=True)


def test_an_abort_that_timed_out_is_resumed_and_the_transaction_counts_as_aborted():
    client = FakeClient([TIMED_OUT, TIMED_OUT])
    p = producer(client)
    with pytest.raises(TransactionAborted):
        p._fail("commit the transaction", step_failed())
    assert client.aborts == 3  # two timed out, the third finished
    assert not p.stuck and not p.in_transaction


def test_an_abort_that_cannot_finish_hands_over_to_a_new_producer():
    client = FakeClient([ck.KafkaError(ck.KafkaError._STATE, "broken", retriable=False)])
    p = producer(client)
    with pytest.raises(ProducerStuck):
        p._fail("commit the transaction", step_failed())
    assert client.aborts == 1 and p.stuck


def test_a_record_refused_because_the_client_failed_the_transaction_aborts_it():
    # the fault: librdkafka failed the open transaction (a broker refused a batch after
    # a restart: "skipped sequence numbers"); every record is refused until an abort
    client = FakeClient()
    p = producer(client)
    with pytest.raises(TransactionAborted, match="produce to t.bars"):
        p.send("t.bars", b"AAPL", b"{}", 0)
    assert client.calls == ["produce", "abort"]
    assert not p.in_transaction and not p.stuck


def test_a_record_refused_outside_a_transaction_is_an_error_not_an_abort():
    client = FakeClient()
    p = producer(client)
    p.in_transaction = False
    with pytest.raises(BusError, match="cannot produce to t.bars: Erroneous state") as raised:
        p.send_many("t.bars", ["AAPL"], [b"{}"], 0)
    assert not isinstance(raised.value, TransactionAborted)
    assert client.aborts == 0


def test_a_record_refused_while_the_offsets_travel_is_aborted_after_that_step_ends():
    client = FakeClient()
    p = producer(client)
    step = threading.Event()

    def meanwhile():  # the state records, made while the offsets travel
        step.set()
        p.send("t.state", b"AAPL", b"{}", 0)

    with pytest.raises(TransactionAborted, match="produce to t.state"):
        p._call("send the offsets to the transaction", client.send_offsets_to_transaction,
                [], None, timeout=5.0, meanwhile=meanwhile)  # fmt: skip
    assert step.is_set()
    # an abort while the step was in the client would conflict with it
    assert client.calls == ["produce", "offsets sent", "abort"]
    assert not p._stepping and not p._abort_due and not p.in_transaction


class SlowRegistration:
    """The init_transactions of a client whose broker is away: it answers "retry call to
    resume" until ``answers`` calls were made; each call is counted."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = 0

    def init_transactions(self, timeout):
        self.calls += 1
        if self.calls < self.answers:
            time.sleep(min(timeout, 0.05))
            raise ck.KafkaException(TIMED_OUT)


def test_init_not_done_in_time_is_resumable_on_the_same_producer():
    client = SlowRegistration(answers=1000)
    p = producer(client)
    with pytest.raises(ProducerStuck) as stuck:
        p.init(timeout=0.3)
    # the client answered and asks to be called again: the producer is not stuck
    assert stuck.value.resumable and not p.stuck
    assert client.calls >= 2  # retried within its time


def test_init_whose_call_hangs_is_stuck_and_not_resumable(monkeypatch):
    from marketpulse.bus import kafka_producer

    monkeypatch.setattr(kafka_producer, "_STUCK_GRACE_S", 0.05)
    hung = threading.Event()

    class Hanging:
        def init_transactions(self, timeout):
            hung.wait(5)  # never answers in time

    p = producer(Hanging())
    with pytest.raises(ProducerStuck) as stuck:
        p.init(timeout=0.1)
    hung.set()
    assert not stuck.value.resumable and p.stuck
