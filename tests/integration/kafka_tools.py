"""Helpers of the Kafka integration tests: topics, loading ticks, reading topics back."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import confluent_kafka as ck
import msgspec

from marketpulse.bus.kafka import KafkaBus
from marketpulse.bus.topics import Topics, topic_specs
from marketpulse.config import KafkaSettings
from marketpulse.feeds import FileReplay
from marketpulse.stream.trade_refs import TradeResolver, is_ref

#: The processor's output topics the exactly-once tests compare (trades: those it kept).
OUTPUTS = ("bars", "indicators", "alerts", "trades")


def bus_for(bootstrap: str) -> KafkaBus:
    return KafkaBus(KafkaSettings(bootstrap=bootstrap))


def create_topics(bootstrap: str, prefix: str, partitions: int = 6) -> Topics:
    """Create every MarketPulse topic under ``prefix``."""
    bus, topics = bus_for(bootstrap), Topics(prefix)
    for spec in topic_specs(topics):
        bus.create_topics([spec.name], partitions, 1, {spec.name: spec.config})
    return topics


def load_file(bootstrap: str, prefix: str, path, rate: float | None = None, **options) -> int:
    """Publish a trades file to the ticks topic; return the records sent.

    ``rate``: at most this many records a second, as a live feed sends them (a
    batch at a time: pass a small ``batch_size``); ``None``: as fast as it goes.
    """
    bus, topics = bus_for(bootstrap), Topics(prefix)
    sent, started = 0, time.monotonic()
    with bus.producer() as producer:
        for batch in FileReplay(path, **options).batches():
            producer.send_columns(topics.ticks, batch.kind, batch.data)
            sent += batch.data.num_rows
            if rate:
                time.sleep(max(0.0, started + sent / rate - time.monotonic()))
    assert producer.failed == 0
    return sent


def end_offsets(bootstrap: str, topic: str) -> list[int]:
    """The high watermark of every partition of ``topic``."""
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "end-offsets"})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        parts = sorted(metadata.topics[topic].partitions)
        return [
            consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)[1]
            for p in parts
        ]
    finally:
        consumer.close()


class OpenTransactions:
    """Records of open transactions on a topic: past each partition's last stable offset.

    A read_committed consumer's watermark is the last stable offset, a
    read_uncommitted one's the high watermark; the consumers stay open so that
    a look takes a few milliseconds.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumers = [
            ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "open-transactions",
                         "isolation.level": isolation})
            for isolation in ("read_committed", "read_uncommitted")
        ]  # fmt: skip
        metadata = self._consumers[0].list_topics(topic, timeout=10)
        numbers = sorted(metadata.topics[topic].partitions)
        self._parts = [ck.TopicPartition(topic, p) for p in numbers]

    def records(self) -> int:
        """Records sent in transactions not yet committed or aborted."""
        stable, high = (
            sum(c.get_watermark_offsets(tp, timeout=10)[1] for tp in self._parts)
            for c in self._consumers
        )
        return high - stable

    def offsets(self) -> list[tuple[int, int]]:
        """Each partition's (last stable offset, high watermark)."""
        stable, high = (
            [c.get_watermark_offsets(tp, timeout=10)[1] for tp in self._parts]
            for c in self._consumers
        )
        return list(zip(stable, high, strict=True))

    def close(self) -> None:
        for consumer in self._consumers:
            consumer.close()


#: Errors of a group coordinator not ready yet (a new group, a broker just restarted).
_COORDINATOR = (ck.KafkaError.NOT_COORDINATOR, ck.KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                ck.KafkaError.COORDINATOR_NOT_AVAILABLE)  # fmt: skip


def committed_offsets(bootstrap: str, group: str, topic: str) -> int:
    """The offsets ``group`` has committed on ``topic``, summed over its partitions.

    Offsets of a transaction still open (a killed producer's, until it times out) are
    not counted: read_uncommitted asks for them without waiting for them to settle.
    """
    consumer = ck.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
         "isolation.level": "read_uncommitted"}
    )  # fmt: skip
    try:
        parts = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        deadline = time.monotonic() + 30
        while True:
            try:
                done = consumer.committed([ck.TopicPartition(topic, p) for p in parts], timeout=10)
                break
            except ck.KafkaException as exc:  # the group's coordinator moving or loading
                if not exc.args[0].retriable() and exc.args[0].code() not in _COORDINATOR:
                    raise
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
        return sum(max(tp.offset, 0) for tp in done)  # no commit yet: a negative sentinel
    finally:
        consumer.close()


def read_committed(bootstrap: str, topic: str, timeout: float = 60.0):
    """Every committed record of ``topic``: {partition: [(key, value, headers), ...]}."""
    return read_records(bootstrap, topic, "read_committed", timeout)


def read_records(bootstrap: str, topic: str, isolation: str, timeout: float = 60.0):
    """Every record of ``topic`` a reader of ``isolation`` level sees, per partition.

    ``read_uncommitted`` also returns the records of aborted transactions;
    neither level returns the transaction markers, which take offsets too.
    """
    consumer = ck.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "reader",
            "isolation.level": isolation,
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        parts = sorted(metadata.topics[topic].partitions)
        out = {p: [] for p in parts}
        pending = set()
        assign = []
        for p in parts:
            low, high = consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)
            if high > low:
                pending.add(p)
                assign.append(ck.TopicPartition(topic, p, low))
        consumer.assign(assign)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for record in consumer.consume(10_000, 0.5):
                if record.error():
                    if record.error().code() == ck.KafkaError._PARTITION_EOF:
                        pending.discard(record.partition())
                        continue
                    raise AssertionError(record.error().str())
                out[record.partition()].append(
                    (record.key(), record.value(), tuple(record.headers() or ()))
                )
        assert not pending, f"{topic}: partitions {pending} not read to the end"
        return out
    finally:
        consumer.close()


def process_command(bootstrap, prefix, instance, *extra):
    """`process` with settings tuned for the sharpest comparisons (not what users run).

    ``--idle-timeout 0``: outputs depend on the input alone, so a crashed run is
    compared record for record with any other; ``--commit-interval 0.05``: more
    transactions, so more moments a kill can strand one; ``--instance-id``: a
    restart takes its partitions back at once instead of waiting out the dead
    member's session. The same guarantees with the defaults users get are
    tested in ``test_kafka_exactly_once_defaults.py`` and ``test_kafka_state_restore.py``.
    """
    return [
        sys.executable, "-m", "marketpulse", "process", "--bootstrap-servers", bootstrap,
        "--topic-prefix", prefix, "--group", f"{prefix}process", "--instance-id", instance,
        "--idle-timeout", "0", "--commit-interval", "0.05", *extra,
    ]  # fmt: skip


#: Every process :func:`start` started, in order: a test's own are stopped when it ends
#: (conftest.py's ``_services_a_test_started_end_with_it``).
STARTED: list[subprocess.Popen] = []


def start(command):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    STARTED.append(proc)
    return proc


def stop_started_since(count):
    """Stop (SIGKILL) the processes :func:`start` started after the first ``count`` that
    still run; how many there were."""
    left = [proc for proc in STARTED[count:] if proc.poll() is None]
    for proc in left:
        proc.kill()
        proc.communicate()
    del STARTED[count:]
    return len(left)


def wait_log(proc, timeout):
    """The output of ``proc`` (from :func:`start`) once it exits; one still running after
    ``timeout`` s is stopped (SIGTERM, then SIGKILL) and the test fails with its log, so
    it neither outlives the test (a `process` looping on for the rest of a CI run) nor
    fails without saying what it was doing."""
    try:
        log, _ = proc.communicate(timeout=timeout)
        return log
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            log, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            log, _ = proc.communicate()
        raise AssertionError(
            f"still running after {timeout} s: {proc.args}\n{log[-6000:]}"
        ) from None


def run_to_end(bootstrap, prefix, instance="ref"):
    proc = start(process_command(bootstrap, prefix, instance, "--exit-when-idle", "4"))
    log = wait_log(proc, 300)
    assert proc.returncode == 0, log
    return log


def outputs(bootstrap, prefix):
    got = {t: read_committed(bootstrap, f"{prefix}{t}") for t in OUTPUTS}
    got["trades"] = resolved(bootstrap, got["trades"])
    return got


def resolved(bootstrap, topic_records):
    """``trades`` records (:func:`read_committed`) as a sink stores them: each reference
    replaced by the kept trades it names on ``ticks``, keyed by their symbol as copies are."""
    bus = bus_for(bootstrap)
    try:
        resolver = TradeResolver(bus)
        out = {}
        for p, rows in topic_records.items():
            values, origin, failed = resolver.records([v for _, v, _ in rows])
            assert not failed, failed
            out[p] = [
                (msgspec.json.decode(v)["symbol"].encode(), v, ()) if is_ref(rows[i][1])
                else (rows[i][0], v, rows[i][2])
                for v, i in zip(values, origin, strict=True)
            ]  # fmt: skip
        return out
    finally:
        bus.close()


def records(topic_records):
    """Keys and values per partition (headers are not part of the comparison)."""
    return {p: [(k, v) for k, v, _ in rows] for p, rows in topic_records.items()}


def wait_for_output(bootstrap, topic, at_least, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(end_offsets(bootstrap, topic)) >= at_least:
            return
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.02)
    raise AssertionError(f"{topic} did not reach {at_least} records")


def lean_reference_outputs(bootstrap, path):
    """Load a trades file under a fresh prefix and run the processor over it once."""
    prefix = f"ref{os.getpid()}x{time.monotonic_ns() % 10**6}."
    create_topics(bootstrap, prefix)
    sent = load_file(bootstrap, prefix, path)
    run_to_end(bootstrap, prefix)
    return sent, outputs(bootstrap, prefix)


def default_process(bootstrap, prefix, *extra):
    """`marketpulse process` as the README shows it: no option tuned."""
    return [sys.executable, "-m", "marketpulse", "process", "--bootstrap-servers", bootstrap,
            "--topic-prefix", prefix, "--group", f"{prefix}process", *extra]  # fmt: skip


def lean_default_outputs(bootstrap, path):
    """Load a trades file under a fresh prefix; one uninterrupted default `process` over it."""
    prefix = f"ref{os.getpid()}d{time.monotonic_ns() % 10**6}."
    create_topics(bootstrap, prefix)
    sent = load_file(bootstrap, prefix, path)
    proc = start(default_process(bootstrap, prefix, "--exit-when-idle", "5"))
    log = wait_log(proc, 300)
    assert proc.returncode == 0, log
    return sent, outputs(bootstrap, prefix)


def verify_topics(bootstrap, prefix):
    """Run `marketpulse verify` over the topics under ``prefix``; fail on a violation."""
    command = [sys.executable, "-m", "marketpulse", "verify", "--bootstrap-servers", bootstrap,
               "--topic-prefix", prefix]  # fmt: skip
    proc = start(command)
    out = wait_log(proc, 300)
    assert proc.returncode == 0, out
