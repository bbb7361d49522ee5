"""A failed transaction step is aborted; an abort the client asks to resume is resumed."""

import confluent_kafka as ck
import pytest

from marketpulse.bus.kafka_producer import ProducerStuck, TransactionAborted, TransactionalProducer


class FakeClient:
    """The abort_transaction of a client: raises ``errors`` in turn, then succeeds."""

    def __init__(self, errors):
        self.errors = list(errors)
        self.aborts = 0

    def abort_transaction(self, timeout):
        self.aborts += 1
        if self.errors:
            raise ck.KafkaException(self.errors.pop(0))


def producer(client):
    p = TransactionalProducer.__new__(TransactionalProducer)  # no client made: a fake one
    p._producer, p.transactional_id, p.in_transaction, p.stuck = client, "t.1", True, False
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
