"""What the Kafka benchmarks share: a broker, fresh topics, offsets, CPU clocks.

A broker is started under a temporary directory on free ports
(``scripts/kafka_broker.py``, jars cached under ``~/.cache/marketpulse``)
unless ``MARKETPULSE_KAFKA_BOOTSTRAP`` names a running one. Each benchmark
uses topics under its own fresh prefix, so runs never see each other's data.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import confluent_kafka as ck

from marketpulse.bus.kafka import KafkaBus
from marketpulse.bus.topics import Topics, topic_specs
from marketpulse.config import KafkaSettings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LEAN = DATA / "lean-2013-10-07" / "trades.csv.gz"
BOOTSTRAP_ENV = "MARKETPULSE_KAFKA_BOOTSTRAP"
PARTITIONS = 6


def _kafka_broker_module():
    """Import scripts/kafka_broker.py (not a package; its siblings beside it) once."""
    scripts = str(ROOT / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    return importlib.import_module("kafka_broker")


@dataclass
class Cluster:
    """A reachable broker: its bootstrap servers and, when we started it, its pid."""

    bootstrap: str
    broker_pid: int | None = None
    #: the broker's scheduling priority (nice value), when we set one
    broker_nice: int | None = None

    @property
    def own(self) -> bool:
        """Whether this benchmark started the broker (and can read its CPU time)."""
        return self.broker_pid is not None

    def broker_cpu_seconds(self) -> float | None:
        """CPU seconds (user + system) used so far by our broker's JVM, else None."""
        return process_cpu_seconds(self.broker_pid) if self.broker_pid else None

    def describe(self) -> str:
        """A line for the report."""
        if self.own:
            kafka = _kafka_broker_module()
            line = f"a single-node Kafka {kafka.KAFKA_VERSION} broker (KRaft) started by the script"
            return line + (f", at nice {self.broker_nice}" if self.broker_nice else "")
        return f"the broker at {self.bootstrap} (${BOOTSTRAP_ENV})"


@contextlib.contextmanager
def cluster(nice: int = 0) -> Iterator[Cluster]:
    """Yield ``$MARKETPULSE_KAFKA_BOOTSTRAP``, or a broker of our own, stopped afterwards.

    ``nice``: the scheduling priority our broker's threads get (negative: ahead
    of the clients on the shared cores; needs root, else the broker keeps the
    default and a warning says so).
    """
    existing = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if existing:
        yield Cluster(existing)
        return
    kafka = _kafka_broker_module()
    home = Path(tempfile.mkdtemp(prefix="mp-bench-kafka-"))
    port, controller = kafka.free_ports(2)
    broker = kafka.Broker(home, port=port, controller_port=controller, die_with_parent=True)
    try:
        broker.start(timeout=120)
        pid = broker.pid()
        applied = renice(pid, nice) if nice and pid else False
        yield Cluster(broker.bootstrap, pid, nice if applied else None)
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)


def renice(pid: int, nice: int) -> bool:
    """Set the nice value of every thread of process ``pid``; whether it could.

    Linux keeps a nice value per thread, and a new thread takes its creator's.
    """
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
    except OSError as exc:
        print(f"warning: the broker keeps the default priority: {exc}", file=sys.stderr)
        return False
    return True


def bus_for(bootstrap: str) -> KafkaBus:
    """A bus on ``bootstrap`` with the project's default client settings."""
    return KafkaBus(KafkaSettings(bootstrap=bootstrap, client_id="marketpulse-bench"))


def new_prefix(name: str) -> str:
    """A topic prefix nobody used before, like ``bench-catchup-1a2b3c4d.``."""
    return f"bench-{name}-{uuid.uuid4().hex[:8]}."


def create_topics(bus: KafkaBus, topics: Topics, only: tuple[str, ...] | None = None) -> None:
    """Create the MarketPulse topics under ``topics.prefix`` (``only`` these short names)."""
    for spec in topic_specs(topics):
        if only is None or topics.table(spec.name) in only:
            bus.create_topics([spec.name], PARTITIONS, 1, {spec.name: spec.config})


def recreate_topics(bus: KafkaBus, topics: Topics, shorts: tuple[str, ...]) -> None:
    """Delete and create again the topics ``shorts`` (waiting while deletion completes)."""
    names = [topics.name(s) for s in shorts]
    bus.delete_topics(names)
    deadline = time.monotonic() + 60
    while set(names) & set(bus.admin().list_topics(timeout=10).topics):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{', '.join(names)} not deleted in time")
        time.sleep(0.2)
    while time.monotonic() < deadline:
        try:
            # "marked for deletion" errors, or topics still listed, until the broker is done
            create_topics(bus, topics, shorts)
            if all(bus.partitions(n) == PARTITIONS for n in names):
                return
        except Exception:  # noqa: BLE001
            time.sleep(0.2)
    raise RuntimeError(f"could not recreate {', '.join(names)}")


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The high watermark of each partition of ``topic``."""
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-offsets"})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        return {
            p: consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)[1]
            for p in sorted(metadata.topics[topic].partitions)
        }
    finally:
        consumer.close()


def dead_letter_reasons(bootstrap: str, topic: str, timeout: float = 60.0) -> dict[str, int]:
    """Count the committed records of a ``dlq`` topic by their ``reason`` header."""
    ends = end_offsets(bootstrap, topic)
    reasons: dict[str, int] = {}
    if not any(ends.values()):
        return reasons
    consumer = ck.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-dlq", "enable.auto.commit": False,
         "enable.partition.eof": True, "isolation.level": "read_committed"}
    )  # fmt: skip
    try:
        consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in ends])
        pending = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.5):
                error = message.error()
                if error is not None:
                    if error.code() == ck.KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                    continue
                headers = dict(message.headers() or ())
                reason = headers.get("reason", b"unknown").decode()
                reasons[reason] = reasons.get(reason, 0) + 1
    finally:
        consumer.close()
    return reasons


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
