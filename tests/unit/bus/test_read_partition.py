"""Reading a compacted partition while a broker dies, without a broker."""

import threading
import time

import confluent_kafka as ck
import pytest

from marketpulse.bus.base import BusError
from marketpulse.bus.kafka_consumer import read_partition


class Reader:
    """A reader whose first offset requests fail with ``failures``, then succeed."""

    def __init__(self, failures, records, high):
        self.failures = list(failures)
        self.records = list(records)
        self.high = high
        self.watermark_calls = 0
        self.metadata_refreshes = 0

    def get_watermark_offsets(self, tp, timeout=None):
        self.watermark_calls += 1
        if self.failures:
            raise ck.KafkaException(ck.KafkaError(self.failures.pop(0)))
        return 0, self.high

    def list_topics(self, topic, timeout=None):
        self.metadata_refreshes += 1

    def assign(self, partitions):
        pass

    def unassign(self):
        pass

    def consume(self, count, timeout):
        out, self.records = self.records, []
        return out


def message(offset, key, value):
    return ck.Message(topic="state", partition=1, offset=offset, key=key, value=value)


def error_record(code):
    return ck.Message(topic="state", partition=1, error=ck.KafkaError(code))


def test_a_dead_brokers_destroyed_handle_is_waited_out_with_fresh_metadata():
    reader = Reader([ck.KafkaError._DESTROY_BROKER, ck.KafkaError._TRANSPORT],
                    [message(0, b"a", b"1"), message(1, b"b", b"2")], high=2)  # fmt: skip
    assert read_partition(reader, "state", 1, timeout=10) == {b"a": b"1", b"b": b"2"}
    assert reader.watermark_calls == 3  # two failed requests, then the answer
    assert reader.metadata_refreshes == 2


def test_a_transport_error_while_reading_is_retried_by_the_client_not_raised():
    records = [message(0, b"a", b"1"), error_record(ck.KafkaError._TRANSPORT),
               message(1, b"a", b"3")]  # fmt: skip
    assert read_partition(Reader([], records, high=2), "state", 1, timeout=10) == {b"a": b"3"}


def test_an_error_that_waiting_cannot_cure_is_raised_at_once_naming_the_partition():
    reader = Reader([ck.KafkaError.TOPIC_AUTHORIZATION_FAILED], [], high=0)
    with pytest.raises(BusError, match=r"state\[1\]: cannot read offsets"):
        read_partition(reader, "state", 1, timeout=10)
    assert reader.watermark_calls == 1


class StoppingReader(Reader):
    """A reader whose broker is away; the service stops after ``stop_after`` offset requests."""

    def __init__(self, stop, stop_after):
        super().__init__([], [], high=0)
        self.stop, self.stop_after = stop, stop_after

    def get_watermark_offsets(self, tp, timeout=None):
        self.watermark_calls += 1
        if self.watermark_calls >= self.stop_after:
            self.stop.set()
        raise ck.KafkaException(ck.KafkaError(ck.KafkaError._TRANSPORT))


def test_a_read_waiting_for_an_away_broker_ends_when_the_service_stops():
    stop = threading.Event()
    reader = StoppingReader(stop, stop_after=3)
    started = time.monotonic()
    with pytest.raises(BusError, match=r"state\[1\]: cannot read offsets"):
        read_partition(reader, "state", 1, timeout=60, stop=stop)
    assert reader.watermark_calls == 3  # it waited for the broker until the stop, not after
    assert time.monotonic() - started < 10


def test_a_read_stopped_between_batches_says_so():
    stop = threading.Event()

    class Endless(Reader):
        def consume(self, count, timeout):
            stop.set()  # stopped while the partition was read: its end never came
            return [message(0, b"a", b"1")]

    with pytest.raises(BusError, match=r"read state\[1\]: stopped before its end"):
        read_partition(Endless([], [], high=5), "state", 1, timeout=60, stop=stop)
