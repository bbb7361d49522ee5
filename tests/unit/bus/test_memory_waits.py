"""The in-memory bus waits as Kafka's clients do: polls for records, a feed for its readers."""

from __future__ import annotations

import threading
import time

import pyarrow as pa

from marketpulse.bus import MemoryBus, TopicPartition


def rows(n: int) -> pa.Table:
    return pa.table({"symbol": ["A"] * n, "price": [1.0] * n})


def test_a_poll_waits_for_a_record_and_returns_it_as_it_arrives():
    bus = MemoryBus()
    bus.create_topics(["t"], 1)
    consumer = bus.consumer("g", ["t"])
    assert consumer.poll(timeout=0) == []  # joins; nothing yet
    timer = threading.Timer(0.2, lambda: bus.producer().send_columns("t", "trade", rows(3)))
    timer.start()
    started = time.monotonic()
    batches = consumer.poll(timeout=5.0)
    waited = time.monotonic() - started
    timer.join()
    assert [len(b) for b in batches] == [3]
    assert 0.1 < waited < 4.0  # it waited for the record, not for the whole timeout
    assert batches[0].sent_at > 0  # when the record was appended (epoch seconds)


def test_a_poll_with_nothing_to_read_returns_after_its_timeout():
    bus = MemoryBus()
    bus.create_topics(["t"], 1)
    consumer = bus.consumer("g", ["t"])
    consumer.poll(timeout=0)
    started = time.monotonic()
    assert consumer.poll(timeout=0.3) == []
    assert time.monotonic() - started >= 0.25


def test_a_feed_waits_while_its_readers_are_behind_then_goes_on_once_they_commit():
    bus = MemoryBus(hold_rows=10)
    bus.create_topics(["t"], 1)
    consumer = bus.consumer("g", ["t"])
    consumer.poll(timeout=0)
    producer = bus.producer()
    producer.send_columns("t", "trade", rows(10))  # the partition now holds its limit
    sent = threading.Event()

    def send_more() -> None:
        producer.send_columns("t", "trade", rows(5))
        sent.set()

    sender = threading.Thread(target=send_more)
    sender.start()
    assert not sent.wait(0.5)  # held back: the reader has committed nothing
    assert bus.end_offsets("t") == [10]
    batches = consumer.poll(timeout=0)
    consumer.commit({TopicPartition("t", 0): batches[-1].last_offset + 1})
    assert sent.wait(5.0)  # the commit let it through
    sender.join()
    assert bus.end_offsets("t") == [15]


def test_closing_the_bus_releases_a_waiting_feed():
    bus = MemoryBus(hold_rows=1)
    bus.create_topics(["t"], 1)
    bus.consumer("g", ["t"]).poll(timeout=0)
    producer = bus.producer()
    producer.send_columns("t", "trade", rows(1))
    sender = threading.Thread(target=lambda: producer.send_columns("t", "trade", rows(1)))
    sender.start()
    sender.join(0.3)
    assert sender.is_alive()  # waiting for the reader
    bus.close()
    sender.join(5.0)
    assert not sender.is_alive()
    assert bus.end_offsets("t") == [2]
