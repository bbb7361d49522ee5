"""send_many hands every record to the client in order, whatever the queue says."""

import confluent_kafka as ck
import pytest

from marketpulse.bus.kafka_producer import KafkaProducer
from marketpulse.exceptions import BusError


class FakeClient:
    """A client's produce: refuses the calls numbered in ``full`` (queue full) once each."""

    def __init__(self, full=(), fail_at=None):
        self.full, self.fail_at = set(full), fail_at
        self.calls, self.records, self.polls = 0, [], 0

    def produce(self, topic, value, key, partition, headers=None):
        self.calls += 1
        if self.calls in self.full:
            self.full.discard(self.calls)
            raise BufferError("Local: Queue full")
        if self.calls == self.fail_at:
            raise ck.KafkaException(ck.KafkaError(ck.KafkaError._UNKNOWN_TOPIC, "no such topic"))
        self.records.append((topic, key, value, partition))

    def poll(self, timeout):
        self.polls += 1
        return 0


def producer(client):
    p = KafkaProducer.__new__(KafkaProducer)  # no client made: a fake one
    p._producer, p.sent, p.failed, p.errors = client, 0, 0, []
    return p


@pytest.mark.parametrize("full", [(), (1,), (3,), (5,), (2, 3, 4)])
def test_every_record_goes_once_in_order_when_the_queue_fills(full):
    client = FakeClient(full)
    p = producer(client)
    keys, values = ["A", "B", "C", "D", "E"], [b"1", b"2", b"3", b"4", b"5"]
    p.send_many("t", keys, values, 2)
    assert client.records == [("t", k, v, 2) for k, v in zip(keys, values, strict=True)]
    assert p.sent == 5
    assert client.calls == 5 + len(full)  # each refused record was offered again
    assert client.polls >= len(full) + 1  # room was made by serving the client


def test_a_produce_error_names_the_topic_and_counts_what_went():
    client = FakeClient(fail_at=3)
    p = producer(client)
    with pytest.raises(BusError, match="cannot produce to t: no such topic"):
        p.send_many("t", ["A", "B", "C", "D"], [b"1", b"2", b"3", b"4"], 0)
    assert [r[2] for r in client.records] == [b"1", b"2"] and p.sent == 2


def test_keys_and_values_must_pair():
    with pytest.raises(ValueError, match="2 keys for 3 values"):
        producer(FakeClient()).send_many("t", ["A", "B"], [b"1", b"2", b"3"])
