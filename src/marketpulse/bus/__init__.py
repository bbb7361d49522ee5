"""Transport: the embedded bus and (in deployments) Apache Kafka, behind one contract."""

from marketpulse.bus.base import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Batch,
    Bus,
    Consumer,
    Message,
    Producer,
    ProducerFenced,
    Rebalance,
    TopicPartition,
    TransactionAborted,
    TransactionalProducer,
    partition_for,
)
from marketpulse.bus.memory import MemoryBus

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "Batch",
    "Bus",
    "Consumer",
    "MemoryBus",
    "Message",
    "Producer",
    "ProducerFenced",
    "Rebalance",
    "TopicPartition",
    "TransactionAborted",
    "TransactionalProducer",
    "partition_for",
]
