"""The floors of the scale benchmark: the service's Kafka traffic with no processing at all.

After the services of one size have finished, a relay in this process reads
the same ``ticks`` topic from the start with the service's consumer (the
project's Kafka bus, a group of its own) and writes, for every tick it reads,
as many records as the service wrote bars and indicator rows per tick at this
size, each the size of a real one (the mean of records sampled from the
service's ``bars`` and ``indicators`` topics), to the same partition of a
topic of its own, in transactions that carry the consumer's offsets and are
committed after each poll once 0.1 s has passed since the last (the service
commits every 0.1 s under a backlog). It
decodes nothing and computes nothing.

On top of that, as the service does with its default settings:

* ``trades_bytes``: one record for every batch read, as the service names the
  trades it keeps on ``ticks`` in its ``trades`` topic (a reference a batch, of
  the mean size of the service's);
* ``state_bytes``: before each commit, one record of that size for every
  symbol (the key of a tick) read since the last commit, to a compacted topic
  (the service writes the state of each symbol a transaction changed to ``state``).

Its rate (the ticks over the time from its first record to its last commit)
is a ceiling for any engine that must read these ticks and write these records
through these clients on this machine.
"""

from __future__ import annotations

import itertools
import resource
import time
from collections.abc import Sequence

import confluent_kafka as ck
from kafka_common import PARTITIONS, bus_for, new_prefix

from marketpulse.bus.base import TopicPartition, keys_of
from marketpulse.bus.topics import Topics

COMMIT_EVERY_S = 0.1
KEY = "FLOORSYM"


def sample_sizes(bootstrap: str, topic: str, records: int = 2000, last: bool = False,
                 skip_keys: tuple[bytes, ...] = ()) -> float:  # fmt: skip
    """Mean value size (bytes) of up to ``records`` committed records of ``topic``.

    ``last``: the last records of each partition rather than the first; ``skip_keys``:
    records whose key starts with one of these are not counted.
    """
    values = sample_values(bootstrap, topic, records, last, skip_keys)
    return sum(map(len, values)) / len(values)


def sample_values(bootstrap: str, topic: str, records: int = 2000, last: bool = False,
                  skip_keys: tuple[bytes, ...] = ()) -> list[bytes]:  # fmt: skip
    """Up to ``records`` committed values of ``topic`` (``sample_sizes``'s arguments)."""
    consumer = ck.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": new_prefix("sizes"),
         "enable.auto.commit": False, "isolation.level": "read_committed",
         "enable.partition.eof": True}
    )  # fmt: skip
    values: list[bytes] = []
    try:
        starts = []
        for p in range(PARTITIONS):
            start = ck.OFFSET_BEGINNING
            if last:
                low, high = consumer.get_watermark_offsets(ck.TopicPartition(topic, p), 10)
                start = max(low, high - records // PARTITIONS)
            starts.append(ck.TopicPartition(topic, p, start))
        consumer.assign(starts)
        # until enough records, or every partition read to its end (a topic holding
        # fewer records than asked for: waiting for more would only wait)
        pending = set(range(PARTITIONS))
        deadline = time.monotonic() + 30
        while len(values) < records and pending and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                error = message.error()
                if error is not None:
                    if error.code() == ck.KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                elif message.value() is not None \
                        and not (message.key() or b"").startswith(skip_keys):  # fmt: skip
                    values.append(message.value())
    finally:
        consumer.close()
    if not values:
        raise RuntimeError(f"scale floor: no committed record in {topic} to take a size from")
    return values


def relay(bootstrap: str, topics: Topics, ticks: int, outputs_per_tick: float,
          value_bytes: float, trades_bytes: float = 0.0, state_bytes: float = 0.0,
          values: Sequence[bytes] = ()) -> dict:  # fmt: skip
    """Relay every tick of ``topics.ticks`` as ``outputs_per_tick`` records; the figures.

    ``trades_bytes``, ``state_bytes``: see the module's docstring (0: not written).
    ``values``: real records to write, in turn (so that they compress as the
    service's do), instead of ``value_bytes`` repeated bytes.
    """
    bus = bus_for(bootstrap)
    own = new_prefix("floor")  # each relay its own group, transactional id and topics
    out, copies, state = (own + name for name in ("outputs", "trades", "state"))
    names = [out] + [copies] * bool(trades_bytes) + [state] * bool(state_bytes)
    configs = {name: {} for name in names}
    if state_bytes:
        configs[state] = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1"}
    bus.create_topics(names, PARTITIONS, 1, configs)
    outputs = itertools.cycle(values or [b"x" * round(value_bytes)])
    copy = b"t" * round(trades_bytes)
    snapshot = b"s" * round(state_bytes)
    producer = bus.transactional_producer(f"{own}relay")
    producer.init()
    consumer = bus.consumer(f"{own}relay", [topics.ticks])
    read = written = copied = snapshots = transactions = 0
    owed = 0.0  # outputs due but not written yet (a fraction of one, between polls)
    offsets: dict[TopicPartition, int] = {}
    changed: dict[int, set[bytes]] = {}  # partition: the symbols read since the last commit
    first = last_commit = 0.0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    deadline = time.monotonic() + 1800
    try:
        producer.begin()
        while read < ticks and time.monotonic() < deadline:
            for batch in consumer.poll(timeout=0.5):
                first = first or time.perf_counter()
                n = batch.last_offset - batch.first_offset + 1
                read += n
                owed += n * outputs_per_tick
                k = int(owed)
                owed -= k
                # the partition is given: the key (a symbol's, in the service) only rides along
                producer.send_encoded(
                    out, [KEY] * k, list(itertools.islice(outputs, k)), batch.partition
                )
                written += k
                if trades_bytes:  # the reference to the batch's kept trades
                    producer.send_encoded(copies, [KEY], [copy], batch.partition)
                    copied += 1
                if state_bytes:
                    changed.setdefault(batch.partition, set()).update(keys_of(batch.messages))
                offsets[TopicPartition(batch.topic, batch.partition)] = batch.last_offset + 1
            if offsets and (read >= ticks or time.perf_counter() - last_commit >= COMMIT_EVERY_S):
                for partition, symbols in changed.items():
                    producer.send_records(state, ((s, snapshot) for s in symbols), partition)
                    snapshots += len(symbols)
                producer.commit(offsets, consumer)
                producer.begin()
                transactions += 1
                offsets, changed, last_commit = {}, {}, time.perf_counter()
        seconds = time.perf_counter() - first
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        consumer.close()
        producer.close()
        bus.delete_topics(names)
    if read < ticks:
        raise RuntimeError(f"scale floor: read {read:,} of {ticks:,} ticks within 30 minutes")
    return {"ticks": read, "written": written, "transactions": transactions,
            "value_bytes": round(value_bytes), "copied": copied,
            "trades_bytes": round(trades_bytes), "state_records": snapshots,
            "state_bytes": round(state_bytes), "seconds": seconds,
            "ticks_per_s": read / seconds,
            "cpu_seconds": (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)}  # fmt: skip
