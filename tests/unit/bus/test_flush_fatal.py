"""A fatal error while a producer flushes is raised as such, not as a SystemError.

The fake client behaves as confluent-kafka 2.16 was measured to on a real
broker (``tests/integration/test_kafka_fenced_flush.py``): a flush of 200 ms
or more runs in chunks and goes on after a callback failed; a fatal error's
exception is left pending, and the next delivery report fails with a
``SystemError``. A shorter flush stops at the failure and raises it.
"""

import confluent_kafka as ck
import pytest

from marketpulse.bus.kafka_producer import KafkaProducer, ProducerFenced, TransactionalProducer
from marketpulse.exceptions import BusError

FENCED = ck.KafkaError(ck.KafkaError._FENCED, "fenced by newer producer instance", fatal=True)


class FencedClient:
    """A client fenced while ``queued`` records wait for their delivery reports."""

    def __init__(self, queued=5):
        self.queued = queued
        self.timeouts = []

    def flush(self, timeout):
        self.timeouts.append(timeout)
        fatal = ck.KafkaException(FENCED)
        if timeout >= 0.2:  # chunk after chunk: the next delivery report runs with it pending
            message = "<method 'topic' ...> returned a result with an exception set"
            raise SystemError(message) from fatal
        raise fatal


class SlowClient:
    """A client that acknowledges one record per flush."""

    def __init__(self, queued):
        self.queued = queued
        self.timeouts = []

    def flush(self, timeout):
        self.timeouts.append(timeout)
        self.queued = max(0, self.queued - 1)
        return self.queued


def transactional(client):
    p = TransactionalProducer.__new__(TransactionalProducer)  # no client made: a fake one
    p._producer, p.transactional_id, p.in_transaction, p.stuck = client, "t.1", True, False
    return p


def plain(client):
    p = KafkaProducer.__new__(KafkaProducer)
    p._producer = client
    return p


def test_a_transactional_producer_fenced_during_a_flush_raises_producer_fenced():
    p = transactional(FencedClient())
    with pytest.raises(ProducerFenced, match="fenced"):
        p.flush(10.0)
    assert not p.in_transaction


def test_a_fatal_error_of_a_plain_producer_is_a_bus_error():
    with pytest.raises(BusError, match="cannot flush the producer: fenced"):
        plain(FencedClient()).flush()


def test_a_flush_serves_the_client_in_slices_until_nothing_is_left():
    client = SlowClient(queued=4)
    plain(client).flush(30.0)
    assert len(client.timeouts) == 4 and all(0 < t < 0.2 for t in client.timeouts)


def test_a_flush_without_a_timeout_waits_until_nothing_is_left():
    client = SlowClient(queued=3)
    plain(client).flush()
    assert len(client.timeouts) == 3 and client.queued == 0


def test_records_left_at_the_timeout_are_an_error():
    client = SlowClient(queued=10**9)
    with pytest.raises(BusError, match="not acknowledged within 0.3 s"):
        plain(client).flush(0.3)


class Message:
    def topic(self):
        return "t.bars"

    def partition(self):
        return 3


PURGED = ck.KafkaError(ck.KafkaError._PURGE_QUEUE, "Purged in queue")


def test_a_transactional_producers_purged_records_count_as_failed_without_an_error_line(caplog):
    """An aborted or abandoned transaction's records are purged by the client (their work
    is redone): each is not delivered, and none is an ERROR line; another error still is,
    and a plain producer's purged record too."""
    p = transactional(SlowClient(0))
    p.failed, p.errors = 0, []
    with caplog.at_level("DEBUG", logger="marketpulse.bus.kafka_producer"):
        p._on_delivery(PURGED, Message())
        p.stuck = True
        p._on_delivery(PURGED, Message())
    assert p.failed == 2
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    caplog.clear()
    p._on_delivery(ck.KafkaError(ck.KafkaError._MSG_TIMED_OUT, "timed out"), Message())
    q = plain(SlowClient(0))
    q.failed, q.errors = 0, []
    q._on_delivery(PURGED, Message())
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    expected = [
        "delivery failed: t.bars[3]: timed out",
        "delivery failed: t.bars[3]: Purged in queue",
    ]
    assert errors == expected
    assert (p.failed, q.failed) == (3, 1)
