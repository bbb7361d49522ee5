"""The local Kafka broker really stores and serves messages, across a restart too."""

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration


def create_topic(bootstrap, name, partitions=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(timeout=30)


def produce(bootstrap, topic, records):
    errors = []

    def on_delivery(error, _message):
        if error is not None:
            errors.append(error)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(30) == 0, "messages still queued after 30 s"
    assert errors == []


def consume(consumer, count, timeout=30):
    received, deadline = [], time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
            continue
        received.append((message.key(), message.value(), message.offset()))
    return received


def test_produce_and_consume_round_trip(kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}quotes"
    create_topic(kafka_bootstrap, topic)
    records = [(f"AAPL-{i}".encode(), f'{{"price": {100 + i}}}'.encode()) for i in range(5)]
    produce(kafka_bootstrap, topic, records)

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{topic_prefix}group",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        received = consume(consumer, len(records))
    finally:
        consumer.close()

    assert [(key, value) for key, value, _ in received] == records
    assert [offset for *_, offset in received] == list(range(5))


def test_private_broker_keeps_messages_across_restart(private_broker, topic_prefix):
    topic = f"{topic_prefix}durable"
    create_topic(private_broker.bootstrap, topic)
    produce(private_broker.bootstrap, topic, [(b"MSFT", b"before restart")])

    private_broker.stop()
    assert not private_broker.running()
    assert not private_broker.pid_file.exists()
    private_broker.stop()  # stopping twice is harmless

    private_broker.start()
    assert private_broker.running()
    metadata = AdminClient({"bootstrap.servers": private_broker.bootstrap}).list_topics(timeout=30)
    assert topic in metadata.topics

    consumer = Consumer(
        {
            "bootstrap.servers": private_broker.bootstrap,
            "group.id": f"{topic_prefix}reader",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        received = consume(consumer, 1)
    finally:
        consumer.close()

    assert received == [(b"MSFT", b"before restart", 0)]
