"""A transactional producer fenced while it flushes, on a real broker.

The fatal error reaches confluent-kafka's error callback, which leaves its
exception pending; its flush went on serving delivery reports in 200 ms chunks,
and the next one failed with a ``SystemError`` (an internal error for a user).
"""

import uuid

import confluent_kafka as ck
import pytest

from marketpulse.bus.kafka_producer import ProducerFenced

from .kafka_tools import bus_for

pytestmark = pytest.mark.integration


def _fenced_with_records_queued(bus, topic):
    """A producer mid-transaction with records queued, fenced by a new one of its id."""
    bus.create_topics([topic], 3, 1)
    transactional_id = f"fenced-{uuid.uuid4().hex}"
    # a long linger keeps the second records in the client's queue until the flush
    producer = bus.transactional_producer(transactional_id, linger_ms=1000, new_id=True)
    producer.init()
    producer.begin()
    producer.send_many(topic, [f"k{i}" for i in range(30)], [b"v"] * 30)
    producer.flush(30.0)
    newer = ck.Producer({**bus.config, "transactional.id": transactional_id})
    newer.init_transactions(30)  # fences the first: its next requests are refused
    producer.send_many(topic, [f"k{i}" for i in range(30)], [b"v"] * 30)
    return producer, newer


def test_a_producer_fenced_during_its_flush_raises_producer_fenced(kafka_bootstrap, topic_prefix):
    bus = bus_for(kafka_bootstrap)
    producer, newer = _fenced_with_records_queued(bus, f"{topic_prefix}bars")
    try:
        # the fatal error, not a SystemError of the delivery report served after it: the
        # process replaces a fenced producer and redoes the work of its transaction
        with pytest.raises(ProducerFenced, match="fenced"):
            producer.flush(10.0)
        assert not producer.in_transaction
        producer.close()  # a fenced producer closes without raising
    finally:
        newer.close()
        bus.close()
