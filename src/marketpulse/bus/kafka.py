"""Apache Kafka as the bus: a thin typed wrapper around confluent-kafka.

No network work happens in a constructor; producers flush on close; every
error the client reports is checked and wrapped in :class:`BusError` with the
topic, partition or broker it concerns. Records are JSON, keyed by symbol
(:mod:`marketpulse.bus.codec`); the producer partitions with Kafka's murmur2,
as the Java client does, so every tool agrees on where a symbol lives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import confluent_kafka as ck
import pyarrow as pa
from confluent_kafka.admin import AdminClient, NewTopic

from marketpulse.bus.base import Batch, Bus, Consumer, Message, Producer, TopicPartition
from marketpulse.bus.codec import dead_letter_headers, encode_alerts, encode_rows
from marketpulse.config import KafkaSettings
from marketpulse.exceptions import BusError
from marketpulse.models import Alert, DeadLetter

__all__ = [
    "COMPRESSIONS",
    "ConsumerFatal",
    "KafkaBus",
    "KafkaConsumer",
    "KafkaProducer",
    "ProducerFenced",
    "ProducerStuck",
    "TransactionAborted",
    "TransactionalProducer",
    "client_config",
]

logger = logging.getLogger(__name__)
_client_logger = logging.getLogger("marketpulse.bus.librdkafka")

#: Producer compression codecs offered by the CLI.
COMPRESSIONS = ("lz4", "zstd", "snappy", "gzip", "none")

Rebalance = Callable[[list[TopicPartition]], None]


def client_config(settings: KafkaSettings) -> dict[str, Any]:
    """Return the librdkafka settings every client shares (connection and security)."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "client.id": settings.client_id,
        "security.protocol": settings.security_protocol,
        "logger": _client_logger,
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


def _tp(tp: ck.TopicPartition) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


def _message(record: ck.Message) -> Message:
    return Message(
        record.key(), record.value(), record.offset(), record.timestamp()[1],
        tuple(record.headers() or ()),
    )  # fmt: skip


class _Records(Sequence[Message]):
    """The client's records of one partition, made :class:`Message` only when read.

    Building a message costs more than decoding its JSON; the processor needs
    values and offsets only, which :meth:`values` and :meth:`offsets` read
    directly (see :func:`marketpulse.bus.base.values_of`).
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: list[ck.Message]) -> None:
        self._raw = raw

    def __len__(self) -> int:
        return len(self._raw)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return [_message(r) for r in self._raw[index]]
        return _message(self._raw[index])

    def __iter__(self) -> Iterator[Message]:
        return map(_message, self._raw)

    def values(self) -> list[bytes | None]:
        """Every record's value."""
        return [r.value() for r in self._raw]

    def offsets(self) -> list[int]:
        """Every record's offset."""
        return [r.offset() for r in self._raw]


class KafkaBus(Bus):
    """Topics, producers and consumers on a Kafka cluster.

    Args:
        settings: connection settings (bootstrap servers, security).
        connect_timeout: seconds :meth:`check` waits for the cluster.
    """

    def __init__(self, settings: KafkaSettings, connect_timeout: float = 15.0) -> None:
        self.settings = settings
        self.connect_timeout = connect_timeout
        self._admin: AdminClient | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The shared client settings."""
        return {**client_config(self.settings), "error_cb": _error_cb}

    def admin(self) -> AdminClient:
        """Return the (lazily created) admin client."""
        if self._admin is None:
            self._admin = AdminClient(self.config)
        return self._admin

    def check(self, timeout: float | None = None) -> int:
        """Wait until the cluster answers; return its number of brokers.

        Raises:
            BusError: no broker answered within ``timeout`` seconds.
        """
        timeout = self.connect_timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            metadata = self.admin().list_topics(timeout=timeout)
        except ck.KafkaException as exc:
            waited = time.monotonic() - started
            raise BusError(
                f"cannot reach Kafka at {self.settings.bootstrap} within {waited:.0f} s: "
                f"{exc.args[0].str() if exc.args else exc} (is the broker running? "
                "set --bootstrap-servers or MARKETPULSE_KAFKA_BOOTSTRAP)"
            ) from None
        return len(metadata.brokers)

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
        """Wait until new topics show in the metadata with leaders (the broker lags a moment)."""
        deadline = time.monotonic() + self.connect_timeout
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
                    f"after {self.connect_timeout:.0f} s"
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
        self, *, compression: str = "lz4", linger_ms: float = 5.0, **overrides: Any
    ) -> KafkaProducer:
        """Return an idempotent producer (acks=all) tuned for throughput."""
        return KafkaProducer(self._producer_config(compression, linger_ms, overrides))

    def transactional_producer(
        self,
        transactional_id: str,
        *,
        compression: str = "lz4",
        linger_ms: float = 1.0,
        transaction_timeout_s: float = 30.0,
        **overrides: Any,
    ) -> TransactionalProducer:
        """Return a transactional producer; call :meth:`TransactionalProducer.init` first."""
        config = self._producer_config(compression, linger_ms, overrides)
        config["transactional.id"] = transactional_id
        config["transaction.timeout.ms"] = int(transaction_timeout_s * 1000)
        # A transaction started right after a commit is refused with
        # CONCURRENT_TRANSACTIONS until the broker has written the commit's
        # markers; librdkafka retries after retry.backoff.ms, 100 ms by default,
        # which alone made every commit take 100 ms (measured: 2-20 ms with these)
        config.setdefault("retry.backoff.ms", 5)
        config.setdefault("retry.backoff.max.ms", 50)
        return TransactionalProducer(config)

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
            **overrides,
        }
        return ck.Consumer(config)

    def _producer_config(
        self, compression: str, linger_ms: float, overrides: dict[str, Any]
    ) -> dict[str, Any]:
        if compression not in COMPRESSIONS:
            raise BusError(
                f"unknown compression {compression!r} (choose {', '.join(COMPRESSIONS)})"
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


class KafkaProducer(Producer):
    """An idempotent producer that counts what it sent and what failed.

    When the client's queue is full, :meth:`send` serves delivery reports
    until there is room: backpressure, not loss.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._producer = ck.Producer({**config, "on_delivery": self._on_delivery})
        self.sent = 0
        self.failed = 0
        self.errors: list[str] = []

    def _on_delivery(self, error: ck.KafkaError | None, message: ck.Message) -> None:
        if error is None:
            return
        self.failed += 1
        text = f"{message.topic()}[{message.partition()}]: {error.str()}"
        if len(self.errors) < 10:
            self.errors.append(text)
        logger.error("delivery failed: %s", text)

    @property
    def delivered(self) -> int:
        """Records acknowledged so far (sent, minus failed, minus in flight)."""
        return self.sent - self.failed - len(self._producer)

    def send(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes,
        partition: int = -1,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Append one record; blocks while the client's queue is full."""
        produce = self._producer.produce
        while True:
            try:
                if headers:
                    produce(topic, value, key, partition, headers=headers)
                else:
                    produce(topic, value, key, partition)
                break
            except BufferError:
                self._producer.poll(0.05)
            except ck.KafkaException as exc:
                raise BusError(f"cannot produce to {topic}: {exc.args[0].str()}") from None
        self.sent += 1

    def send_many(
        self, topic: str, keys: Sequence[str], values: Sequence[bytes], partition: int = -1
    ) -> None:
        """Append records keyed by ``keys``, in order."""
        produce = self._producer.produce
        poll = self._producer.poll
        for key, value in zip(keys, values, strict=True):
            try:
                produce(topic, value, key, partition)
            except BufferError:
                poll(0.05)
                self.send(topic, key, value, partition)
                continue
            except ck.KafkaException as exc:
                raise BusError(f"cannot produce to {topic}: {exc.args[0].str()}") from None
            self.sent += 1
        poll(0)

    def send_columns(self, topic: str, kind: str, data: pa.RecordBatch | pa.Table) -> None:
        """Append rows as JSON records keyed by their ``symbol`` column."""
        keys, values = encode_rows(kind, data)
        self.send_many(topic, keys, values)

    def send_alerts(self, topic: str, alerts: Iterable[Alert], partition: int = -1) -> None:
        """Append alerts keyed by symbol."""
        keys, values = encode_alerts(alerts)
        self.send_many(topic, keys, values, partition)

    def send_dead(self, topic: str, letters: Iterable[DeadLetter], partition: int = -1) -> None:
        """Append dead letters: the original key and bytes, what went wrong in headers."""
        for letter in letters:
            self.send(topic, letter.key, letter.value, partition, dead_letter_headers(letter))

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports."""
        self._producer.poll(timeout)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record is acknowledged.

        Raises:
            BusError: records are still unacknowledged after ``timeout`` seconds.
        """
        left = self._producer.flush(-1 if timeout is None else timeout)
        if left:
            raise BusError(f"{left} records not acknowledged within {timeout} s")

    def close(self) -> None:
        """Flush (waiting up to 30 s)."""
        self.flush(30.0)


class TransactionalProducer(KafkaProducer):
    """A producer whose records, and the consumer offsets, commit atomically.

    A transactional id names one logical producer across restarts: starting a
    producer with the id of a crashed one fences the old one and aborts its
    open transaction.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.transactional_id = config["transactional.id"]
        self.in_transaction = False
        self.stuck = False

    def init(self, timeout: float = 30.0) -> None:
        """Register the transactional id with the cluster (fencing older instances)."""
        self._call("init transactions", self._producer.init_transactions, timeout=timeout)

    def begin(self) -> None:
        """Start a transaction."""
        self._call("begin a transaction", self._producer.begin_transaction)
        self.in_transaction = True

    def commit(
        self, offsets: dict[TopicPartition, int], consumer: KafkaConsumer, timeout: float = 60.0
    ) -> None:
        """Commit the open transaction with the consumer's next offsets.

        Raises:
            TransactionAborted: the commit failed and the transaction was aborted:
                redo the work since the last commit.
            ProducerStuck: the client did not answer within ``timeout``; replace
                this producer.
            BusError: the commit failed otherwise.
        """
        positions = [ck.TopicPartition(tp.topic, tp.partition, off) for tp, off in offsets.items()]
        if positions:
            self._call(
                "send the offsets to the transaction",
                self._producer.send_offsets_to_transaction,
                positions, consumer.group_metadata(), timeout=timeout,
            )  # fmt: skip
        self._call("commit the transaction", self._producer.commit_transaction, timeout=timeout)
        self.in_transaction = False

    def abort(self, timeout: float = 60.0) -> None:
        """Abort the open transaction: its records are never read as committed."""
        if self.in_transaction:
            self.in_transaction = False
            self._call("abort the transaction", self._producer.abort_transaction, timeout=timeout)

    def close(self) -> None:
        """Abort any open transaction, then flush; a stuck producer is left alone."""
        if self.stuck:
            return
        try:
            self.abort(10.0)
        except BusError as exc:
            logger.warning("%s", exc)
        try:
            self._producer.flush(10.0)
        except ck.KafkaException as exc:  # fenced or fatal: nothing left to flush is ours
            logger.warning("%s: %s", self.transactional_id, exc.args[0].str())

    def _call(
        self, what: str, call: Callable[..., Any], *args: Any, timeout: float | None = None
    ) -> None:
        """Run a transaction step; with ``timeout``, bounded in time even where the client is not.

        A timed step gets the time left as its last argument and is retried
        while the client calls its error retriable (a coordinator moving, a
        broker restarting). librdkafka can also block in
        ``send_offsets_to_transaction`` past its timeout when the group
        coordinator went away (librdkafka issues 5456 and 5511; a broker
        restart is enough), so each attempt runs on a helper thread (the client
        releases the GIL) and is given up after the time left and a grace
        period. Either way, a step still not done in time marks the producer
        stuck: a new producer with the same transactional id must take over.
        """
        if timeout is None:
            outcome = _attempt(call, args)
        else:
            deadline = time.monotonic() + timeout
            while True:
                left = max(deadline - time.monotonic(), 0.0)
                outcome = _attempt_within(call, (*args, left), left + _STUCK_GRACE_S)
                retry = (
                    isinstance(outcome, ck.KafkaException)
                    and outcome.args[0].retriable()
                    and not outcome.args[0].txn_requires_abort()
                )
                if outcome is _TIMED_OUT or (retry and time.monotonic() >= deadline):
                    self.stuck = True
                    raise ProducerStuck(
                        f"cannot {what} ({self.transactional_id}): not done within "
                        f"{timeout:.0f} s" + (f" ({outcome.args[0].str()})" if retry else "")
                    )
                if not retry:
                    break
                logger.info("%s: %s; retrying", what, outcome.args[0].str())
                time.sleep(min(0.2, left))
        if isinstance(outcome, ck.KafkaException):
            self._fail(what, outcome)

    def _fail(self, what: str, exc: ck.KafkaException) -> None:
        error: ck.KafkaError = exc.args[0]
        if error.txn_requires_abort():
            abort = self._producer.abort_transaction
            outcome = _attempt_within(abort, (30.0,), 30.0 + _STUCK_GRACE_S)
            if outcome is _TIMED_OUT:
                self.stuck = True
            elif outcome is not None:
                logger.error("abort after a failed transaction step failed too: %s", outcome)
            self.in_transaction = False
            raise TransactionAborted(f"cannot {what} ({self.transactional_id}): {error.str()}")
        if error.fatal():
            raise ProducerFenced(
                f"cannot {what} ({self.transactional_id}): {error.str()}; another instance "
                "with this transactional id took over, or the producer hit a fatal error"
            )
        raise BusError(f"cannot {what} ({self.transactional_id}): {error.str()}")


#: Seconds a transaction step may overrun its own timeout before it counts as stuck.
_STUCK_GRACE_S = 5.0

_TIMED_OUT = object()


def _attempt(call: Callable[..., Any], args: tuple[Any, ...]) -> ck.KafkaException | None:
    try:
        call(*args)
    except ck.KafkaException as exc:
        return exc
    return None


def _attempt_within(call: Callable[..., Any], args: tuple[Any, ...], seconds: float) -> Any:
    """Run ``call`` on a daemon thread; return its error, ``None``, or ``_TIMED_OUT``."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(_attempt(call, args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=target, name="kafka-transaction-step", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return _TIMED_OUT
    result = outcome[0]
    if isinstance(result, BaseException) and not isinstance(result, ck.KafkaException):
        raise result
    return result


class TransactionAborted(BusError):
    """A transaction failed and was aborted; redo the work since the last commit."""


class ProducerFenced(BusError):
    """The producer can no longer commit: a newer instance owns its transactional id."""


class ProducerStuck(BusError):
    """The client did not answer a transaction step in time; make a new producer."""


class ConsumerFatal(BusError):
    """The consumer cannot go on (fenced, for one); make a new one."""


class KafkaConsumer(Consumer):
    """A consumer-group member that returns batches per partition.

    Offsets are committed by hand (:meth:`commit`, or inside a producer's
    transaction). ``on_assign`` and ``on_revoke`` receive the partitions that
    join or leave this member (cooperative rebalancing); ``on_lost`` those
    taken away without a revoke (the member was too slow or cut off), whose
    uncommitted work must be discarded. Without ``on_lost``, ``on_revoke``
    gets them.
    """

    def __init__(
        self,
        config: dict[str, Any],
        topics: list[str],
        on_assign: Rebalance | None = None,
        on_revoke: Rebalance | None = None,
        on_lost: Rebalance | None = None,
    ) -> None:
        self._consumer = ck.Consumer(config)
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_lost = on_lost or on_revoke
        self.topics = topics
        self.group = config["group.id"]
        self._callback_error: Exception | None = None
        self._consumer.subscribe(
            topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    # An exception must not leave a rebalance callback: the client would raise
    # it mangled (not as an exception) from the consume() that ran the callback.
    # It is kept and raised from poll() instead.

    def _assigned(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        self._call_back(self._on_assign, partitions)

    def _revoked(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        self._call_back(self._on_revoke, partitions)

    def _lost(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        self._call_back(self._on_lost, partitions)

    def _call_back(self, callback: Rebalance | None, partitions: list[ck.TopicPartition]) -> None:
        if callback is None or not partitions or self._callback_error is not None:
            return
        try:
            callback([_tp(p) for p in partitions])
        except Exception as exc:  # noqa: BLE001 - raised again by poll()
            self._callback_error = exc

    def _raise_callback_error(self) -> None:
        error, self._callback_error = self._callback_error, None
        if error is not None:
            raise error

    def poll(self, max_records: int = 65536, timeout: float = 0.1) -> list[Batch]:
        """Return the next records as one batch per partition (in offset order)."""
        consume = self._consumer.consume
        try:
            # what is already fetched, at once; else wait for the first record only:
            # consume(n, timeout) would wait for n records, however long the timeout
            records = consume(max_records, 0)
            if not records and timeout > 0:
                records = consume(1, timeout)
                if records and max_records > 1:
                    records += consume(max_records - 1, 0)
        except ck.KafkaException as exc:
            raise BusError(f"consume from {', '.join(self.topics)}: {exc.args[0].str()}") from None
        self._raise_callback_error()
        if not records:
            return []
        groups: dict[tuple[str, int], list[ck.Message]] = {}
        for record in records:
            error = record.error()
            if error is not None:
                if error.code() == ck.KafkaError._PARTITION_EOF:
                    continue
                if error.fatal() or error.code() == ck.KafkaError._FATAL:
                    raise ConsumerFatal(f"consumer of {', '.join(self.topics)}: {error.str()}")
                logger.warning(
                    "consumer of %s: %s", record.topic() or ", ".join(self.topics), error.str()
                )
                continue
            key = (record.topic(), record.partition())
            group = groups.get(key)
            if group is None:
                groups[key] = [record]
            else:
                group.append(record)
        return [
            Batch(topic, partition, raw[0].offset(), raw[-1].offset(), messages=_Records(raw))
            for (topic, partition), raw in groups.items()
        ]

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit, synchronously, the next offset to read per partition."""
        if not offsets:
            return
        positions = [ck.TopicPartition(tp.topic, tp.partition, off) for tp, off in offsets.items()]
        try:
            self._consumer.commit(offsets=positions, asynchronous=False)
        except ck.KafkaException as exc:
            raise BusError(f"commit offsets of group {self.group}: {exc.args[0].str()}") from None

    def committed(
        self, partitions: Sequence[TopicPartition], timeout: float = 60.0
    ) -> dict[TopicPartition, int]:
        """Return the group's committed offsets (``-1`` where none), waiting for stable ones."""
        asked = [ck.TopicPartition(tp.topic, tp.partition) for tp in partitions]
        try:
            found = self._consumer.committed(asked, timeout=timeout)
        except ck.KafkaException as exc:
            error = exc.args[0].str()
            raise BusError(f"fetch committed offsets of {self.group}: {error}") from None
        return {_tp(p): (p.offset if p.offset >= 0 else -1) for p in found}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` from ``offset`` next."""
        self._consumer.seek(ck.TopicPartition(tp.topic, tp.partition, offset))

    def assignment(self) -> list[TopicPartition]:
        """Return the partitions assigned to this member."""
        return [_tp(p) for p in self._consumer.assignment()]

    def position(self) -> dict[TopicPartition, int]:
        """Return the next offset to read per assigned partition (``-1`` if unknown)."""
        positions = self._consumer.position(self._consumer.assignment())
        return {_tp(p): p.offset for p in positions}

    def lag(self, cached: bool = False) -> dict[TopicPartition, int]:
        """Return the records left to read per assigned partition.

        ``cached``: use the end offsets the last fetches brought (no request to
        the cluster, so it can be called on the hot path).
        """
        lags = {}
        for tp, pos in self.position().items():
            low, high = self._consumer.get_watermark_offsets(
                ck.TopicPartition(tp.topic, tp.partition), timeout=5.0, cached=cached
            )
            lags[tp] = high - (pos if pos >= 0 else low)
        return lags

    def group_metadata(self) -> Any:
        """The member's group metadata, for a producer's transaction."""
        return self._consumer.consumer_group_metadata()

    def close(self) -> None:
        """Leave the group (a failure of the last revoke callback is raised here)."""
        self._consumer.close()
        self._raise_callback_error()


#: Errors of a partition whose leader is not known yet (a topic created a moment ago).
_LEADER_MOVING = frozenset(
    {
        ck.KafkaError.NOT_LEADER_FOR_PARTITION,
        ck.KafkaError.LEADER_NOT_AVAILABLE,
        ck.KafkaError.UNKNOWN_TOPIC_OR_PART,
        ck.KafkaError._UNKNOWN_PARTITION,
    }
)


def read_partition(
    reader: ck.Consumer, topic: str, partition: int, timeout: float = 60.0
) -> dict[bytes, bytes]:
    """Read one partition of a compacted topic to its end; return the last value per key.

    Records with a null value (tombstones) delete their key.

    Raises:
        BusError: the end was not reached within ``timeout`` seconds.
    """
    tp = ck.TopicPartition(topic, partition)
    deadline = time.monotonic() + timeout
    while True:  # a topic created a moment ago may have no leader yet
        try:
            low, high = reader.get_watermark_offsets(tp, timeout=timeout)
            break
        except ck.KafkaException as exc:
            error = exc.args[0]
            waiting = error.retriable() or error.code() in _LEADER_MOVING
            if not waiting or time.monotonic() >= deadline:
                message = f"{topic}[{partition}]: cannot read offsets: {error.str()}"
                raise BusError(message) from None
            time.sleep(0.1)
    values: dict[bytes, bytes] = {}
    if high <= low:
        return values
    reader.assign([ck.TopicPartition(topic, partition, low)])
    try:
        while time.monotonic() < deadline:
            done = False
            for record in reader.consume(10_000, 0.5):
                error = record.error()
                if error is not None:
                    if error.code() == ck.KafkaError._PARTITION_EOF:
                        done = True
                        continue
                    raise BusError(f"read {topic}[{partition}]: {error.str()}")
                key = record.key()
                if record.value() is None:
                    values.pop(key, None)
                else:
                    values[key] = record.value()
                if record.offset() >= high - 1:
                    done = True
            if done:
                return values
        raise BusError(f"read {topic}[{partition}]: end not reached within {timeout:.0f} s")
    finally:
        reader.unassign()
