"""Transport: the embedded bus and (in deployments) Apache Kafka, behind one interface."""

from marketpulse.bus.base import (
    Batch,
    Bus,
    Consumer,
    Message,
    Producer,
    TopicPartition,
    partition_for,
)
from marketpulse.bus.memory import MemoryBus

__all__ = [
    "Batch",
    "Bus",
    "Consumer",
    "MemoryBus",
    "Message",
    "Producer",
    "TopicPartition",
    "partition_for",
]
