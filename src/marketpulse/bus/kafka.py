"""Apache Kafka as the bus: a thin typed wrapper around confluent-kafka.

No network work happens in a constructor; producers flush on close; every
error the client reports is checked and wrapped in :class:`BusError` with the
topic, partition or broker it concerns. Records are JSON, keyed by symbol
(:mod:`marketpulse.bus.codec`); the producer partitions with Kafka's murmur2,
as the Java client does, so every tool agrees on where a symbol lives.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic

from marketpulse.bus.base import Batch, Bus, TopicPartition
from marketpulse.bus.kafka_consumer import (
    ConsumerFatal,
    KafkaConsumer,
    Rebalance,
    read_partition,
    watermarks,
)
from marketpulse.bus.kafka_producer import (
    KafkaProducer,
    ProducerFenced,
    ProducerStuck,
    TransactionAborted,
    TransactionalProducer,
)
from marketpulse.bus.kafka_ranges import RangeReader
from marketpulse.config import COMPRESSION, KAFKA_COMPRESSIONS, KafkaSettings
from marketpulse.exceptions import BusError

__all__ = [
    "ConsumerFatal",
    "KafkaBus",
    "KafkaConsumer",
    "KafkaProducer",
    "ProducerFenced",
    "ProducerStuck",
    "TransactionAborted",
    "TransactionalProducer",
    "client_config",
    "read_partition",
]

logger = logging.getLogger(__name__)
_client_logger = logging.getLogger("marketpulse.bus.librdkafka")


def _not_reported_by_error_cb(record: logging.LogRecord) -> bool:
    # librdkafka logs a failed broker connection ("FAIL") and hands the same error to
    # error_cb (_error_cb below), once per attempt while a broker is away: log it once
    return not (record.args and isinstance(record.args, tuple) and record.args[0] == "FAIL")


_client_logger.addFilter(_not_reported_by_error_cb)


def client_config(settings: KafkaSettings) -> dict[str, Any]:
    """Return the librdkafka settings every client shares (connection and security)."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "client.id": settings.client_id,
        "security.protocol": settings.security_protocol,
        "logger": _client_logger,
        # requests are small and latency-bound (transaction steps above all): send at once
        "socket.nagle.disable": True,
    }
    if settings.sasl_mechanism:
        config["sasl.mechanisms"] = settings.sasl_mechanism
    if settings.sasl_username:
        config["sasl.username"] = settings.sasl_username
    password = settings.sasl_password.reveal()
    if password:
        config["sasl.password"] = password
    for key, value in (
        ("ssl.ca.location", settings.ssl_ca),
        ("ssl.certificate.location", settings.ssl_certificate),
        ("ssl.key.location", settings.ssl_key),
    ):
        if value:
            config[key] = value
    return config


def _error_cb(error: ck.KafkaError) -> None:
    # transport errors repeat while a broker is away; the client retries by itself
    level = logging.ERROR if error.fatal() else logging.WARNING
    logger.log(level, "kafka: %s", error.str())


#: Seconds of one metadata request in :meth:`KafkaBus.check`, between looks at the errors.
_CHECK_SLICE = 0.5
#: Seconds topics just created may take to get their leaders (see ``_await_metadata``).
TOPIC_LEADERS_S = 60.0
_AFTER_STATE = re.compile(r"\s*\(after \d+ms in state \w+\)\s*$")
_BROKER_PREFIX = re.compile(r"^\S+://\S+/\S+: ")


def _refusal(error: ck.KafkaError, settings: KafkaSettings) -> str | None:
    """Return the line for an error that retrying cannot cure (credentials, TLS), else None.

    librdkafka retries a failed authentication or TLS handshake like a broker that is
    away, so without this a wrong password would wait out the whole connect timeout.
    """
    text = _AFTER_STATE.sub("", _BROKER_PREFIX.sub("", error.str()))
    where = f"Kafka at {settings.bootstrap}"
    if error.code() == ck.KafkaError._AUTHENTICATION:
        return (
            f"{where} refused the credentials: {text} (check MARKETPULSE_KAFKA_SASL_USERNAME, "
            "MARKETPULSE_KAFKA_SASL_PASSWORD and MARKETPULSE_KAFKA_SASL_MECHANISM)"
        )
    if error.code() == ck.KafkaError._SSL or "SSL alert" in text:
        return (
            f"TLS with {where} failed: {text} (check MARKETPULSE_KAFKA_SSL_CA, "
            "MARKETPULSE_KAFKA_SSL_CERTIFICATE, MARKETPULSE_KAFKA_SSL_KEY and "
            "MARKETPULSE_KAFKA_SECURITY_PROTOCOL)"
        )
    return None


#: A :meth:`KafkaBus.read_range` client's settings: a range no longer held is an error,
#: not a jump to the log's start; records fetched ahead are bounded (one client a
#: partition), and never paused for (librdkafka pauses a partition's fetches for a
#: second whenever 100,000 records wait, by default).
_RANGE_READER = {
    "auto.offset.reset": "error",
    "fetch.wait.max.ms": 100,
    "queued.max.messages.kbytes": 16 * 1024,
    "queued.min.messages": 1_000_000,
}


#: Errors of a group's coordinator that is moving or loading (a broker restarting).
_COORDINATOR_MOVING = {
    ck.KafkaError.NOT_COORDINATOR,
    ck.KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    ck.KafkaError.COORDINATOR_NOT_AVAILABLE,
    ck.KafkaError._WAIT_COORD,
}


class KafkaBus(Bus):
    """Topics, producers and consumers on a Kafka cluster.

    Args:
        settings: connection settings (bootstrap servers, security).
        connect_timeout: seconds :meth:`check` waits for the cluster.
    """

    durable = True

    def __init__(self, settings: KafkaSettings, connect_timeout: float = 15.0) -> None:
        self.settings = settings
        self.connect_timeout = connect_timeout
        self._admin: AdminClient | None = None
        #: errors the admin client reported (read by :meth:`check`)
        self._admin_errors: deque[ck.KafkaError] = deque(maxlen=64)
        #: readers of :meth:`read_partition` not in use (one per concurrent caller at most),
        #: each a read_committed client and a read_uncommitted one (for the high watermark)
        self._readers: list[tuple[ck.Consumer, ck.Consumer]] = []
        self._readers_lock = threading.Lock()
        #: readers of :meth:`read_range`, one per partition read
        self._ranges: dict[tuple[str, int], RangeReader] = {}

    def __str__(self) -> str:
        return f"Kafka at {self.settings.bootstrap}"

    @property
    def config(self) -> dict[str, Any]:
        """The shared client settings."""
        return {**client_config(self.settings), "error_cb": _error_cb}

    def admin(self) -> AdminClient:
        """Return the (lazily created) admin client.

        Raises:
            BusError: librdkafka refused the settings (a bad ``security_protocol``,
                an unreadable certificate file, ...).
        """
        if self._admin is None:
            config = {**self.config, "error_cb": self._admin_errors.append}
            try:
                self._admin = AdminClient(config)
            except ck.KafkaException as exc:
                error = exc.args[0] if exc.args else exc
                text = error.str() if isinstance(error, ck.KafkaError) else str(error)
                raise BusError(
                    f"the Kafka client settings are not valid: {text} "
                    "(see the [kafka] settings, MARKETPULSE_KAFKA_*)"
                ) from None
        return self._admin

    def check(self, timeout: float | None = None) -> int:
        """Wait until the cluster answers; return its number of brokers.

        A refused login or TLS handshake fails at once: retrying cannot cure it.

        Raises:
            BusError: no broker answered within ``timeout`` seconds, or one refused the
                credentials or the TLS handshake.
        """
        timeout = self.connect_timeout if timeout is None else timeout
        started = time.monotonic()
        admin = self.admin()
        while True:
            remaining = started + timeout - time.monotonic()
            try:
                metadata = admin.list_topics(timeout=max(min(_CHECK_SLICE, remaining), 0.01))
                return len(metadata.brokers)
            except ck.KafkaException as exc:
                failure = exc
            admin.poll(0)  # serves the error callback
            while self._admin_errors:
                error = self._admin_errors.popleft()
                refusal = _refusal(error, self.settings)
                if refusal:
                    raise BusError(refusal) from None
            if time.monotonic() - started >= timeout:
                break
        raise BusError(
            f"cannot reach Kafka at {self.settings.bootstrap} within {timeout:.0f} s: "
            f"{failure.args[0].str() if failure.args else failure} (is the broker running? "
            "set --bootstrap-servers or MARKETPULSE_KAFKA_BOOTSTRAP)"
        ) from None

    def partitions(self, topic: str, timeout: float | None = None) -> int:
        """Return the number of partitions of ``topic``.

        Raises:
            BusError: the topic does not exist.
        """
        timeout = self.connect_timeout if timeout is None else timeout
        try:
            metadata = self.admin().list_topics(topic, timeout=timeout)
        except ck.KafkaException as exc:
            raise BusError(f"cannot describe topic {topic}: {exc}") from None
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise BusError(
                f"topic {topic} does not exist on {self.settings.bootstrap} "
                "(create it with `marketpulse topics create`)"
            )
        return len(found.partitions)

    def end_offsets(self, topic: str) -> list[int]:
        """Return the high watermark of every partition of ``topic``.

        Raises:
            BusError: the topic does not exist or its offsets cannot be read.
        """
        count = self.partitions(topic)
        reader = self.reader(**{"isolation.level": "read_uncommitted"})
        try:
            deadline = time.monotonic() + self.connect_timeout
            return [watermarks(reader, ck.TopicPartition(topic, p), deadline)[1]
                    for p in range(count)]  # fmt: skip
        finally:
            reader.close()

    def committed_offsets(self, group: str, topic: str) -> list[int]:
        """Return the offsets ``group`` has committed, per partition of ``topic`` (-1: none).

        Asked without joining the group; offsets of a transaction still open
        are waited for (up to the connect timeout).

        Raises:
            BusError: the offsets cannot be read.
        """
        count = self.partitions(topic)
        client = ck.Consumer({**self.config, "group.id": group, "enable.auto.commit": False,
                              "isolation.level": "read_committed"})  # fmt: skip
        deadline = time.monotonic() + self.connect_timeout
        asked = [ck.TopicPartition(topic, p) for p in range(count)]
        try:
            while True:
                try:
                    found = client.committed(asked, timeout=self.connect_timeout)
                    break
                except ck.KafkaException as exc:
                    # a coordinator moving or loading after a broker restart says so
                    # (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS): asked again
                    error = exc.args[0]
                    again = error.retriable() or error.code() in _COORDINATOR_MOVING
                    if not again or time.monotonic() >= deadline:
                        raise BusError(
                            f"cannot read the offsets of group {group}: {error.str()}"
                        ) from None
                    time.sleep(0.2)
        finally:
            client.close()
        return [p.offset if p.offset >= 0 else -1 for p in sorted(found, key=lambda p: p.partition)]

    def create_topics(
        self,
        names: Sequence[str],
        partitions: int = 6,
        replication: int = 1,
        configs: dict[str, dict[str, str]] | None = None,
    ) -> list[str]:
        """Create topics that do not exist yet; return the names created."""
        existing = set(self.admin().list_topics(timeout=self.connect_timeout).topics)
        wanted = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication,
                config=(configs or {}).get(name, {}),
            )
            for name in names
            if name not in existing
        ]
        if not wanted:
            return []
        futures = self.admin().create_topics(wanted, operation_timeout=self.connect_timeout)
        created = []
        for name, future in futures.items():
            try:
                future.result()
                created.append(name)
            except ck.KafkaException as exc:
                error = exc.args[0]
                if error.code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                    raise BusError(f"cannot create topic {name}: {error.str()}") from None
        self._await_metadata(created)
        return created

    def _await_metadata(self, names: Sequence[str]) -> None:
        """Wait until new topics show in the metadata with leaders (the broker lags a moment).

        Up to :data:`TOPIC_LEADERS_S` (or the connect timeout, if longer): a
        controller held up by a slow disk gives the leaders late (measured: a
        single broker's controller stalled 8 s while other writers flushed).
        """
        wait = max(self.connect_timeout, TOPIC_LEADERS_S)
        deadline = time.monotonic() + wait
        pending = set(names)
        while pending:
            topics = self.admin().list_topics(timeout=self.connect_timeout).topics
            pending = {
                name for name in pending
                if name not in topics or topics[name].error is not None
                or any(p.leader < 0 for p in topics[name].partitions.values())
            }  # fmt: skip
            if pending and time.monotonic() >= deadline:
                raise BusError(
                    f"topics {', '.join(sorted(pending))} were created but have no leader "
                    f"after {wait:.0f} s"
                )
            if pending:
                time.sleep(0.1)

    def delete_topics(self, names: Sequence[str]) -> list[str]:
        """Delete the topics that exist; return the names deleted."""
        existing = set(self.admin().list_topics(timeout=self.connect_timeout).topics)
        present = [name for name in names if name in existing]
        if not present:
            return []
        futures = self.admin().delete_topics(present, operation_timeout=self.connect_timeout)
        for name, future in futures.items():
            try:
                future.result()
            except ck.KafkaException as exc:
                raise BusError(f"cannot delete topic {name}: {exc.args[0].str()}") from None
        return present

    def producer(
        self, *, compression: str = COMPRESSION, linger_ms: float = 5.0, **overrides: Any
    ) -> KafkaProducer:
        """Return an idempotent producer (acks=all) tuned for throughput."""
        return KafkaProducer(self._producer_config(compression, linger_ms, overrides))

    def transactional_producer(
        self,
        transactional_id: str,
        *,
        compression: str = COMPRESSION,
        linger_ms: float = 1.0,
        transaction_timeout_s: float = 30.0,
        guarded: Sequence[TopicPartition] = (),
        new_id: bool = False,
        **overrides: Any,
    ) -> TransactionalProducer:
        """Return a transactional producer; call :meth:`TransactionalProducer.init` first.

        ``guarded``: the partitions it writes to, kept free of transactions of
        its id left open without a marker (see :class:`TransactionalProducer`);
        ``new_id``: no producer had the transactional id before, so none of its
        transactions can be left open: the first transaction needs no settling.
        """
        config = self._producer_config(compression, linger_ms, overrides)
        config["transactional.id"] = transactional_id
        config["transaction.timeout.ms"] = int(transaction_timeout_s * 1000)
        # A transaction started right after a commit is refused with
        # CONCURRENT_TRANSACTIONS until the broker has written the commit's
        # markers; librdkafka retries after retry.backoff.ms, 100 ms by default,
        # which alone made every commit take 100 ms (measured: 2-20 ms with these)
        config.setdefault("retry.backoff.ms", 5)
        config.setdefault("retry.backoff.max.ms", 50)
        return TransactionalProducer(config, guarded, self.last_offsets, settled=new_id)

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        read_committed: bool = True,
        on_assign: Rebalance | None = None,
        on_revoke: Rebalance | None = None,
        on_lost: Rebalance | None = None,
        **overrides: Any,
    ) -> KafkaConsumer:
        """Return a consumer of ``topics`` in group ``group`` (offsets committed by hand)."""
        config = {
            **self.config,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            "partition.assignment.strategy": "cooperative-sticky",
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
            "queued.max.messages.kbytes": 256 * 1024,
            # librdkafka's default (100,000) pauses a partition's fetches for
            # fetch.queue.backoff.ms whenever that many records wait locally
            "queued.min.messages": 1_000_000,
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            **overrides,
        }
        return KafkaConsumer(config, list(topics), on_assign, on_revoke, on_lost)

    def reader(self, **overrides: Any) -> ck.Consumer:
        """Return a group-less read_committed consumer for :func:`read_partition`."""
        config = {
            **self.config,
            "group.id": f"{self.settings.client_id}-reader",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            # the end of a partition is known by an empty fetch, which the broker holds
            # for this long (default 500 ms: half a second per partition restored)
            "fetch.wait.max.ms": 10,
            **overrides,
        }
        return ck.Consumer(config)

    def last_offsets(
        self, partitions: Sequence[TopicPartition], stable: bool, deadline: float
    ) -> dict[TopicPartition, int]:
        """Each partition's end: its last stable offset, or (``stable`` false) its high watermark.

        Raises:
            BusError: a partition's offsets could not be read by ``deadline`` (monotonic).
        """
        with self._reader_pair() as (committed, uncommitted):
            client = committed if stable else uncommitted
            return {
                tp: watermarks(client, ck.TopicPartition(tp.topic, tp.partition), deadline)[1]
                for tp in partitions
            }

    def read_partition(
        self,
        topic: str,
        partition: int,
        timeout: float = 60.0,
        stop: threading.Event | None = None,
    ) -> dict[bytes, bytes]:
        """Read a compacted partition to its end (see :func:`read_partition`).

        Every transaction open on the partition at the call has ended first
        (committed or aborted), so what is read is all that was committed
        before the call. :meth:`reader` clients made for it are kept for the
        next call, until :meth:`close`.
        """
        with self._reader_pair() as (committed, uncommitted):
            return read_partition(
                committed, topic, partition, timeout, uncommitted=uncommitted, stop=stop
            )

    @contextlib.contextmanager
    def _reader_pair(self) -> Iterator[tuple[ck.Consumer, ck.Consumer]]:
        """A kept (read_committed, read_uncommitted) pair of readers, or a new one; kept after."""
        with self._readers_lock:
            pair = self._readers.pop() if self._readers else None
        if pair is None:
            pair = (self.reader(), self.reader(**{"isolation.level": "read_uncommitted"}))
        try:
            yield pair
        finally:
            with self._readers_lock:
                self._readers.append(pair)

    def read_range(
        self,
        topic: str,
        partition: int,
        first: int,
        last: int,
        timeout: float = 60.0,
        stop: threading.Event | None = None,
    ) -> list[Batch]:
        """Read committed records from ``first`` to ``last`` (see :meth:`Bus.read_range`).

        Each partition has a reader of its own, kept until :meth:`close`: a range
        that follows the last one read there is fetched on, without a seek.
        """
        with self._readers_lock:
            reader = self._ranges.get((topic, partition))
            if reader is None:
                client = self.reader(**_RANGE_READER)
                reader = self._ranges[(topic, partition)] = RangeReader(client, topic, partition)
        with reader.lock:
            batch = reader.read(first, last, timeout, stop)
        return [] if batch is None else [batch]

    def close(self) -> None:
        """Close the readers :meth:`read_partition` and :meth:`read_range` kept."""
        with self._readers_lock:
            pairs, self._readers = self._readers, []
            ranges, self._ranges = self._ranges, {}
        for pair in pairs:
            for reader in pair:
                reader.close()
        for kept in ranges.values():
            with kept.lock:
                kept.close()

    def transactional_config(
        self, transactional_id: str, compression: str = COMPRESSION, timeout_s: float = 60.0
    ) -> dict[str, Any]:
        """The settings of a plain confluent-kafka transactional producer with ``transactional_id``.

        For writers that commit records without consumed offsets (the Spark
        route's micro-batches); idempotent, ``acks=all``, as every producer here.
        """
        config = self._producer_config(compression, 5.0, {})
        config["transactional.id"] = transactional_id
        config["transaction.timeout.ms"] = int(timeout_s * 1000)
        return config

    def _producer_config(
        self, compression: str, linger_ms: float, overrides: dict[str, Any]
    ) -> dict[str, Any]:
        if compression not in KAFKA_COMPRESSIONS:
            raise BusError(
                f"unknown compression {compression!r} (choose {', '.join(KAFKA_COMPRESSIONS)})"
            )
        return {
            **self.config,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": compression,
            "linger.ms": linger_ms,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1024 * 1024,
            "partitioner": "murmur2_random",
            "delivery.report.only.error": True,
            **overrides,
        }
