"""The floor of the Kafka latency benchmark: a relay that closes 1-second bars and does nothing else.

    python bench/kafka_relay.py --bootstrap HOST:PORT --prefix PREFIX --guarantee exactly-once

It stands where ``marketpulse process`` stands in ``bench_kafka_latency.py``
(``--engine relay``), with the same clients and client settings (the project's
Kafka bus: the service's consumer, its transactional producer; at least once,
its producer with no linger), but none of the analytics: it decodes each
trade's symbol and time, and when a ``ticks`` partition's largest time
reaches the end ``E`` of a second, writes one row per symbol of that
partition traded in the closed second (``{"symbol", "timeframe": "1s",
"bar_end": E}``) to the same partition of ``indicators``. That is the same
rule by which the service closes a bar with lateness 0, so the reader times
both alike.

Exactly once, rows are committed with the consumer's offsets as soon as
every partition with input in the last second has closed the second they
close, or 20 ms after the first of them (the service's rule: the closes of
one moment share a transaction; committing each partition's close on its
own queues transactions behind each other's markers, measured: p50 84 ms),
with no state and no commit interval; polls that closed nothing commit
their offsets every 0.1 s. At least once, the rows are sent at once and the offsets committed
every 0.1 s. What is left is what any engine on these clients pays: the
trades' way to the broker and to the consumer, the transaction's round
trips, the markers and the reader's fetch.

Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kafka_common import bus_for  # noqa: E402

from marketpulse.bus.base import TopicPartition  # noqa: E402
from marketpulse.bus.topics import Topics  # noqa: E402

SECOND_NS = 1_000_000_000
COMMIT_EVERY_S = 0.1
#: Longest wait from a transaction's first close for the other partitions' (the service's).
GRACE_S = 0.02


class _Tick(msgspec.Struct):
    symbol: str
    ts: int
    type: str = "trade"  # quotes (marketpulse produce's simulator sends them too) close nothing


class _Row(msgspec.Struct):
    symbol: str
    timeframe: str
    bar_end: int


_decode = msgspec.json.Decoder(_Tick).decode
_encode = msgspec.json.Encoder().encode


class Closer:
    """Per partition: the second open now and the symbols traded in it."""

    def __init__(self) -> None:
        self.end: dict[int, int] = {}
        self.seen: dict[int, set[str]] = {}
        #: when each partition last had input (monotonic seconds)
        self.heard: dict[int, float] = {}

    def all_past(self, end: int, now: float) -> bool:
        """Whether every partition with input in the last second has closed ``end``."""
        return all(self.end[p] > end for p, t in self.heard.items() if now - t < 1.0)

    def add(self, partition: int, values: list[bytes | None]) -> list[tuple[str, int]]:
        """Take a partition's trades in order; (symbol, end) of the bars they closed."""
        rows = []
        end, seen = self.end.get(partition, 0), self.seen.setdefault(partition, set())
        for value in values:
            if value is None:
                continue
            tick = _decode(value)
            if tick.type != "trade":
                continue
            if tick.ts >= end:
                rows += [(symbol, end) for symbol in sorted(seen)] if end else []
                seen.clear()
                end = (tick.ts // SECOND_NS + 1) * SECOND_NS
            seen.add(tick.symbol)
        self.end[partition] = end
        self.heard[partition] = time.monotonic()
        return rows


def relay(bootstrap: str, prefix: str, guarantee: str, stop: threading.Event) -> int:
    """Relay until ``stop``; the number of rows written."""
    topics = Topics(prefix)
    out_topic = topics.name("indicators")
    bus = bus_for(bootstrap)
    exactly_once = guarantee == "exactly-once"
    if exactly_once:
        producer = bus.transactional_producer(f"{prefix}relay")
        producer.init()
        producer.begin()
    else:
        producer = bus.producer(linger_ms=0)
    consumer = bus.consumer(f"{prefix}relay", [topics.ticks], read_committed=True)
    closer, written, last_commit = Closer(), 0, time.monotonic()
    offsets: dict[TopicPartition, int] = {}
    first_close, closed_end = 0.0, 0  # of the open transaction
    try:
        while not stop.is_set():
            for batch in consumer.poll(timeout=0.005 if first_close else 0.1):
                rows = closer.add(batch.partition, batch.messages.values())  # type: ignore[attr-defined]
                if rows:
                    keys = [symbol for symbol, _ in rows]
                    values = [_encode(_Row(symbol, "1s", end)) for symbol, end in rows]
                    producer.send_encoded(out_topic, keys, values, batch.partition)
                    written += len(rows)
                    first_close = first_close or time.monotonic()
                    closed_end = max(closed_end, rows[-1][1])
                offsets[TopicPartition(batch.topic, batch.partition)] = batch.last_offset + 1
            now = time.monotonic()
            due = now - last_commit >= COMMIT_EVERY_S
            ready = first_close and (
                closer.all_past(closed_end, now) or now - first_close >= GRACE_S
            )
            if exactly_once and (ready or (due and offsets and not first_close)):
                producer.commit(offsets, consumer)
                producer.begin()
                offsets, last_commit, first_close = {}, time.monotonic(), 0.0
            elif not exactly_once:
                producer.poll(0)
                if due and offsets:
                    consumer.commit(offsets)
                    offsets, last_commit = {}, time.monotonic()
    finally:
        consumer.close()
        producer.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True, help="the topics' prefix")
    parser.add_argument("--guarantee", choices=("exactly-once", "at-least-once"), required=True)
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    written = relay(args.bootstrap, args.prefix, args.guarantee, stop)
    print(f"relay: {written:,} rows written", file=sys.stderr)


if __name__ == "__main__":
    main()
