"""Kafka producers: idempotent (:class:`KafkaProducer`) and transactional.

A transaction step is bounded in time even where librdkafka is not (see
:meth:`TransactionalProducer._call`); a producer that cannot go on says why
with :class:`TransactionAborted`, :class:`ProducerFenced` or
:class:`ProducerStuck`.
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
import operator
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import confluent_kafka as ck
import pyarrow as pa

from marketpulse.bus import base
from marketpulse.bus.base import (
    Consumer,
    Producer,
    ProducerFenced,
    TopicPartition,
    TransactionAborted,
)
from marketpulse.bus.codec import dead_letter_headers, encode_alerts, encode_rows
from marketpulse.exceptions import BusError
from marketpulse.models import Alert, DeadLetter

__all__ = [
    "KafkaProducer",
    "ProducerFenced",
    "ProducerStuck",
    "TransactionAborted",
    "TransactionalProducer",
]

logger = logging.getLogger(__name__)


#: Delivery errors of the records the client purged: an aborted transaction's queue, or all of
#: an abandoned producer's (:meth:`TransactionalProducer.abandon`).
_PURGED = (ck.KafkaError._PURGE_QUEUE, ck.KafkaError._PURGE_INFLIGHT)


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
    def in_flight(self) -> int:
        """Records sent but neither acknowledged nor failed yet."""
        return len(self._producer)

    @property
    def delivered(self) -> int:
        """Records acknowledged so far (sent, minus failed, minus in flight)."""
        return self.sent - self.failed - self.in_flight

    def send(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes | None,
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
                raise self._refused(topic, exc.args[0]) from None
        self.sent += 1

    def send_many(
        self, topic: str, keys: Sequence[str], values: Sequence[bytes], partition: int = -1
    ) -> None:
        """Append records keyed by ``keys``, in order.

        The records are handed to the client in a loop that runs in C (``map``
        drained by a ``deque``): a catch-up sends one record per input trade,
        and Python's own loop cost a third of the time of each. When the
        client's queue is full, the record refused is sent again once there is
        room (:meth:`send`), and the loop goes on from the next.
        """
        n = len(values)
        if len(keys) != n:
            raise ValueError(f"{len(keys)} keys for {n} values")
        if n == 1:  # a reference to a batch's trades, most often: no loop to set up
            self.send(topic, keys[0], values[0], partition)
            self._producer.poll(0)
            return
        produce = functools.partial(self._producer.produce, topic)
        left_values, left_keys = iter(values), iter(keys)
        while True:
            try:
                collections.deque(map(produce, left_values, left_keys, itertools.repeat(partition)),
                                  maxlen=0)  # fmt: skip
                break
            except BufferError:
                # map had taken the refused record's value and key from the iterators
                at = n - operator.length_hint(left_values) - 1
                self._producer.poll(0.05)
                self.send(topic, keys[at], values[at], partition)
                self.sent -= 1  # counted below with the others
            except ck.KafkaException as exc:
                self.sent += n - operator.length_hint(left_values) - 1
                raise self._refused(topic, exc.args[0]) from None
        self.sent += n
        self._producer.poll(0)

    def _refused(self, topic: str, error: ck.KafkaError) -> BusError:
        """The error to raise for a record the client refused."""
        return BusError(f"cannot produce to {topic}: {error.str()}")

    def send_columns(self, topic: str, kind: str, data: pa.RecordBatch | pa.Table) -> None:
        """Append rows as JSON records keyed by their ``symbol`` column.

        ``kind``: ``trade``, ``quote``, ``bar`` (a feed's bars: the ``bars``
        records of the ticks topic) or an output table. Dictionary columns (a
        feed's symbol) are decoded first, in one vectorised cast: the encoder
        reads columns as Python lists, and a dictionary array converts to one
        about 40 times slower than a plain string array.
        """
        for index, column in enumerate(data.columns):
            if pa.types.is_dictionary(column.type):
                name = data.schema.field(index).name
                data = data.set_column(index, name, column.cast(column.type.value_type))
        keys, values = encode_rows("bars" if kind == "bar" else kind, data)
        self.send_many(topic, keys, values)

    def send_rows(self, topic: str, kind: str, rows: pa.Table, partition: int) -> None:
        """Append the rows of output table ``kind`` as JSON records keyed by symbol."""
        if rows.num_rows:
            keys, values = encode_rows(kind, rows)
            self.send_many(topic, keys, values, partition)

    def send_encoded(
        self, topic: str, keys: Sequence[str], values: Sequence[bytes], partition: int
    ) -> None:
        """Append records already encoded (``values``, keyed by ``keys``) to a partition."""
        self.send_many(topic, keys, values, partition)

    def send_records(
        self, topic: str, records: Iterable[tuple[bytes, bytes | None]], partition: int
    ) -> None:
        """Append key/value records to a partition (a ``None`` value is a tombstone).

        Handed to the client in one loop that runs in C (:meth:`send_many`): a
        commit at 100,000 symbols writes tens of thousands of state records.
        """
        pairs = records if isinstance(records, list) else list(records)
        if pairs:
            keys, values = zip(*pairs, strict=True)
            self.send_many(topic, keys, values, partition)

    def send_alerts(self, topic: str, alerts: Iterable[Alert], partition: int = -1) -> None:
        """Append alerts keyed by symbol."""
        keys, values = encode_alerts(alerts)
        self.send_many(topic, keys, values, partition)

    def send_dead(
        self,
        topic: str,
        letters: Iterable[DeadLetter],
        partition: int = -1,
        dataset: str | None = None,
    ) -> None:
        """Append dead letters: the original key and bytes, what went wrong in headers.

        ``dataset``, when given, is a header too: the dataset the letters belong to.
        """
        for letter in letters:
            headers = dead_letter_headers(letter, dataset)
            self.send(topic, letter.key, letter.value, partition, headers)

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports."""
        self._producer.poll(timeout)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record is acknowledged.

        Raises:
            BusError: records are still unacknowledged after ``timeout`` seconds,
                or the client failed (:class:`ProducerFenced` for a fatal error
                of a transactional producer).
        """
        try:
            left = self._flush(timeout)
        except ck.KafkaException as exc:
            raise self._flush_failed(exc.args[0]) from None
        if left:
            raise BusError(f"{left} records not acknowledged within {timeout} s")

    def _flush(self, timeout: float | None) -> int:
        """Serve delivery reports until no record is left or ``timeout`` (None: none) is up.

        Returns the records left. The client is flushed in slices shorter than
        its own 200 ms chunks: confluent-kafka 2.16 flushes longer timeouts
        chunk by chunk and goes on with the next chunk after a callback failed.
        A fatal error (a fenced producer) is such a failure that leaves its
        exception pending in the interpreter, so the next delivery report ran
        with it and failed with a ``SystemError`` (``<method 'topic' ...>
        returned a result with an exception set``), raised as an internal error
        in place of the fatal error. A single slice stops at the failed callback
        and raises its exception.

        Raises:
            confluent_kafka.KafkaException: the client failed (a fatal error).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = max(0.0, _FLUSH_SLICE_S if deadline is None else
                       min(_FLUSH_SLICE_S, deadline - time.monotonic()))  # fmt: skip
            unsent: int = self._producer.flush(left)
            if not unsent or (deadline is not None and time.monotonic() >= deadline):
                return unsent

    def _flush_failed(self, error: ck.KafkaError) -> BusError:
        """The error to raise for a flush the client failed."""
        return BusError(f"cannot flush the producer: {error.str()}")

    def close(self) -> None:
        """Flush (waiting up to 30 s)."""
        self.flush(30.0)


class TransactionalProducer(KafkaProducer, base.TransactionalProducer):
    """A producer whose records, and the consumer offsets, commit atomically.

    A transactional id names one logical producer across restarts: starting a
    producer with the id of a crashed one fences the old one and aborts its
    open transaction. It fulfils :class:`marketpulse.bus.base.TransactionalProducer`
    with a :class:`~marketpulse.bus.kafka_consumer.KafkaConsumer` for the offsets.

    An aborted transaction can stay open on a partition: the broker's
    transaction coordinator skips the markers of partitions whose leader it
    does not know, as right after a restart, when it aborts the transaction
    that timed out while it was down or that a new producer's init fenced
    (its log: "Couldn't find leader endpoint for partitions ...; these
    partitions are likely deleted already and hence can be skipped"). The
    next marker of the same producer id on that partition ends it, and a
    commit would make the aborted records visible: measured, 519 trades twice
    in ``trades`` after a 15 s broker outage. So before the first transaction
    after an init or an abort, the producer *settles* its ``guarded``
    partitions: one aborted transaction with a record on each puts an abort
    marker there, and a partition whose last stable offset does not pass the
    end it had before (the marker was skipped again) is settled again.
    """

    #: Whether a transaction is open (set by :meth:`begin`, :meth:`commit`, :meth:`abort`).
    in_transaction: bool = False
    #: When the last commit's offsets were in the transaction (``time.time_ns()``),
    #: before it asked the broker to commit: how long each step took.
    offsets_sent_ns: int = 0
    #: The partitions settled after an init or an abort (none: nothing is).
    _guarded: tuple[TopicPartition, ...] = ()

    def __init__(
        self,
        config: dict[str, Any],
        guarded: Sequence[TopicPartition] = (),
        last_offsets: LastOffsets | None = None,
        settled: bool = False,
    ) -> None:
        super().__init__(config)
        self.transactional_id = config["transactional.id"]
        self.in_transaction = False
        self.stuck = False
        if guarded and last_offsets is None:
            raise ValueError("guarded partitions need last_offsets to check them")
        self._guarded = tuple(guarded)
        self._last_offsets = last_offsets
        #: Whether the guarded partitions are to be settled before the next transaction
        #: (``settled``: the transactional id is new, none of its transactions is left).
        self.unsettled = bool(self._guarded) and not settled
        #: Seconds a settling may take: an open transaction of another producer
        #: holds a partition's last stable offset until it ends.
        self.settle_timeout = config.get("transaction.timeout.ms", 60_000) / 1000 + 30.0
        #: Settling transactions run, and those run again for a marker skipped.
        self.settled = self.resettled = 0
        #: Whether a transaction step runs on a helper thread while records are made
        #: (its ``meanwhile``), and whether the transaction is to be aborted once it ends.
        self._stepping = self._abort_due = False

    def init(self, timeout: float = 30.0) -> None:
        """Register the transactional id with the cluster (fencing older instances).

        Raises:
            ProducerStuck: not done in time; ``resumable`` when the client answered
                and asks to be called again (call ``init`` again, on this producer).
        """
        self._call("init transactions", self._producer.init_transactions, timeout=timeout,
                   resumable=True)  # fmt: skip

    def settle(self, consumer: Consumer, consumed: TopicPartition) -> None:
        """Settle the guarded partitions now if due, and the offsets of ``consumer``'s group.

        A transaction with offsets that lost its markers leaves its offsets
        pending at the group's coordinator, and every read of the group's
        committed offsets waits for them until it times out (measured: a
        ``run --kafka`` after a broker restart could not read where it was).
        The settling transaction adds the group (offset 0 of ``consumed``, never
        committed), so its abort marker ends them too.
        """
        if self.unsettled:
            self._settle((consumer, consumed))

    def settle_all(self) -> None:
        """Settle every guarded partition now, outside a transaction (see the class).

        A producer that saw a broker fail may have left, on some partition, an
        aborted transaction without its marker that no later transaction of
        its id touched: that partition's last stable offset then stays behind
        it, and read_committed readers see nothing past it.

        Raises:
            ProducerStuck: a partition's last stable offset did not pass its end.
        """
        if self._guarded and not self.in_transaction:
            self._settle()

    def begin(self) -> None:
        """Start a transaction (settling the guarded partitions first if due)."""
        if self.unsettled:
            self._settle()
        self._call("begin a transaction", self._producer.begin_transaction)
        self.in_transaction = True

    def _settle(self, group: tuple[Consumer, TopicPartition] | None = None) -> None:
        """Put an abort marker of this producer id on every guarded partition, and check it.

        With ``group`` (a consumer, a partition it reads), the first settling
        transaction has offsets of the consumer's group, so a marker lands on
        its offsets partition too. The check waits, too, for the transactions
        other producers have open on the partitions (a crashed one's until the
        broker aborts it, after its transaction timeout): settling is for a
        transactional id used before.

        Raises:
            ProducerStuck: some partition's last stable offset did not pass its
                end within :attr:`settle_timeout` (an open transaction holds it).
        """
        assert self._last_offsets is not None
        deadline = time.monotonic() + self.settle_timeout
        pending = list(self._guarded)
        while pending:
            ends = self._last_offsets(pending, False, deadline)
            self._call("begin a settling transaction", self._producer.begin_transaction)
            for tp in pending:
                try:
                    self._producer.produce(tp.topic, b"", _SETTLE_KEY, tp.partition)
                except ck.KafkaException as exc:
                    raise self._refused(tp.topic, exc.args[0], settling=True) from None
            open_ = group is None or self._add_group(*group, deadline)
            group = None
            try:
                unsent = self._flush(max(deadline - time.monotonic(), 1.0))
            except ck.KafkaException as exc:
                raise self._flush_failed(exc.args[0]) from None
            if open_:
                self._call("abort the settling transaction", self._producer.abort_transaction,
                           timeout=max(deadline - time.monotonic(), 1.0))  # fmt: skip
            self.settled += 1
            pending = self._unstable(pending, ends, min(deadline, time.monotonic() + 5.0))
            if pending and time.monotonic() >= deadline:
                self.stuck = True
                raise ProducerStuck(
                    f"cannot settle ({self.transactional_id}): a transaction stays open on "
                    + ", ".join(f"{tp.topic}[{tp.partition}]" for tp in pending[:5])
                )
            if pending:
                self.resettled += 1
                logger.warning(
                    "%s: no abort marker on %d partitions (%s%s; %d records unsent); settling "
                    "them again", self.transactional_id, len(pending),
                    ", ".join(f"{tp.topic}[{tp.partition}]" for tp in pending[:3]),
                    ", ..." if len(pending) > 3 else "", unsent,
                )  # fmt: skip
        self.unsettled = False

    def _add_group(self, consumer: Consumer, consumed: TopicPartition, deadline: float) -> bool:
        """Add ``consumer``'s group to the settling transaction; whether it is still open.

        The group's coordinator may refuse the offsets (the consumer's
        generation is gone): the client then aborts the transaction, and the
        abort marker still lands on the group's offsets partition.
        """
        group_metadata = getattr(consumer, "group_metadata", None)
        if group_metadata is None:
            return True
        offset = ck.TopicPartition(consumed.topic, consumed.partition, 0)
        try:
            self._call("add the group's offsets to the settling transaction",
                       self._producer.send_offsets_to_transaction, [offset], group_metadata(),
                       timeout=max(deadline - time.monotonic(), 1.0))  # fmt: skip
        except TransactionAborted as exc:
            logger.info("%s; the abort ended the settling transaction", exc)
            return False
        return True

    def _unstable(
        self, partitions: list[TopicPartition], ends: dict[TopicPartition, int], until: float
    ) -> list[TopicPartition]:
        """The partitions whose last stable offset has not passed ``ends`` by ``until``."""
        assert self._last_offsets is not None
        while True:
            stable = self._last_offsets(partitions, True, until + 5.0)
            partitions = [tp for tp in partitions if stable[tp] <= ends[tp]]
            if not partitions or time.monotonic() >= until:
                return partitions
            time.sleep(0.05)

    def commit(
        self,
        offsets: dict[TopicPartition, int],
        consumer: Consumer,
        timeout: float = 60.0,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        """Commit the open transaction with the consumer's next offsets.

        Args:
            offsets: the next offset of each partition consumed in this transaction.
            consumer: the consumer whose group commits them (a
                :class:`~marketpulse.bus.kafka_consumer.KafkaConsumer`).
            timeout: seconds each step may take.
            meanwhile: called in this thread while the offsets travel to the
                group coordinator (two round trips in which the client holds no
                interpreter lock): the last records of the transaction can be
                made and sent then.

        Raises:
            TransactionAborted: the commit failed and the transaction was aborted:
                redo the work since the last commit.
            ProducerStuck: the client did not answer within ``timeout``; replace
                this producer.
            BusError: the commit failed otherwise.
        """
        positions = [ck.TopicPartition(tp.topic, tp.partition, off) for tp, off in offsets.items()]
        if positions:
            group_metadata = getattr(consumer, "group_metadata", None)
            if group_metadata is None:
                raise BusError(
                    f"cannot send the offsets to the transaction ({self.transactional_id}): "
                    "they come from a Kafka consumer's group"
                )
            self._call(
                "send the offsets to the transaction",
                self._producer.send_offsets_to_transaction,
                positions, group_metadata(), timeout=timeout, meanwhile=meanwhile,
            )  # fmt: skip
        elif meanwhile is not None:
            meanwhile()
        self.offsets_sent_ns = time.time_ns()
        self._call("commit the transaction", self._producer.commit_transaction, timeout=timeout)
        self.in_transaction = False

    def abort(self, timeout: float = 60.0) -> None:
        """Abort the open transaction: its records are never read as committed."""
        if self.in_transaction:
            self.in_transaction = False
            self.unsettled = bool(self._guarded)
            self._call("abort the transaction", self._producer.abort_transaction, timeout=timeout)

    def _on_delivery(self, error: ck.KafkaError | None, message: ck.Message) -> None:
        if error is not None and error.code() in _PURGED:
            # records dropped with their transaction (abort_transaction purges what is
            # queued; abandon purges all): not delivered, and their work is redone, which
            # the caller says in one line: no error line each
            self.failed += 1
            logger.debug("%s: purged: %s[%s]", self.transactional_id, message.topic(),
                         message.partition())  # fmt: skip
            return
        super()._on_delivery(error, message)

    def abandon(self) -> None:
        """Drop the records not yet sent, queued or waiting for a retry (no request is made).

        Its successor with the same transactional id aborts its transaction;
        records of it sent afterwards, retried by a client that knew nothing of
        that, could land past the abort marker of a partition and hold its last
        stable offset (a hanging transaction: read_committed readers stop there).
        """
        self.stuck = True
        try:
            self._producer.purge(in_queue=True, in_flight=True, blocking=False)
        except (ck.KafkaException, RuntimeError) as exc:  # a fatal client has nothing to send
            logger.debug("%s: purge: %s", self.transactional_id, exc)

    def close(self) -> None:
        """Abort any open transaction, then flush; a stuck producer is left alone."""
        if self.stuck:
            return
        try:
            self.abort(10.0)
        except BusError as exc:
            logger.warning("%s", exc)
        try:
            self._flush(10.0)
        except ck.KafkaException as exc:  # fenced or fatal: nothing left to flush is ours
            logger.warning("%s: %s", self.transactional_id, exc.args[0].str())

    def _call(
        self,
        what: str,
        call: Callable[..., Any],
        *args: Any,
        timeout: float | None = None,
        meanwhile: Callable[[], None] | None = None,
        resumable: bool = False,
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
        stuck: a new producer with the same transactional id must take over;
        except a ``resumable`` step whose client answered, asking to be called
        again (``init``: see :class:`ProducerStuck`).
        ``meanwhile`` runs in this thread during the first attempt (timed steps only).
        """
        if timeout is None:
            outcome = _attempt(call, args)
        else:
            deadline = time.monotonic() + timeout
            while True:
                left = max(deadline - time.monotonic(), 0.0)
                self._stepping = meanwhile is not None
                try:
                    outcome = _attempt_within(call, (*args, left), left + _STUCK_GRACE_S,
                                              meanwhile)  # fmt: skip
                except TransactionAborted as exc:
                    if not self._abort_due:
                        raise
                    # a record made meanwhile was refused: the step is done (or stuck), abort now
                    self._abort_due = False
                    raise self._aborted(what, str(exc)) from None
                finally:
                    self._stepping = False
                meanwhile = None
                retry = (
                    isinstance(outcome, ck.KafkaException)
                    and outcome.args[0].retriable()
                    and not outcome.args[0].txn_requires_abort()
                )
                if outcome is _TIMED_OUT or (retry and time.monotonic() >= deadline):
                    again = resumable and outcome is not _TIMED_OUT
                    self.stuck = not again
                    raise ProducerStuck(
                        f"cannot {what} ({self.transactional_id}): not done within "
                        f"{timeout:.0f} s" + (f" ({outcome.args[0].str()})" if retry else ""),
                        resumable=again,
                    )
                if not retry:
                    break
                logger.info("%s: %s; retrying", what, outcome.args[0].str())
                time.sleep(min(0.2, left))
        if isinstance(outcome, ck.KafkaException):
            self._fail(what, outcome)

    def _refused(self, topic: str, error: ck.KafkaError, settling: bool = False) -> BusError:
        """The error to raise for a refused record: a failed transaction is aborted.

        Once the client fails the open transaction (a broker refused a record
        of it, or its epoch must be bumped: librdkafka logs ``TXNERR``), it
        refuses every record with ``_STATE`` until the transaction is aborted;
        the work since the last commit is then redone, as for a failed step.
        """
        what = f"produce to {topic}"
        if error.fatal():
            return self._fenced(what, error)
        if error.code() != ck.KafkaError._STATE or not (self.in_transaction or settling):
            return super()._refused(topic, error)
        why = "the client failed the open transaction"
        if self._stepping:  # a step is running on the helper thread: abort after it (_call)
            self._abort_due = True
            return TransactionAborted(f"cannot {what} ({self.transactional_id}): {why}")
        return self._aborted(what, why)

    def _flush_failed(self, error: ck.KafkaError) -> BusError:
        """A fatal error (fenced) is :class:`ProducerFenced`: a new producer must take over."""
        if error.fatal():
            self.in_transaction = False
            return self._fenced("flush", error)
        return BusError(f"cannot flush ({self.transactional_id}): {error.str()}")

    def _fenced(self, what: str, error: ck.KafkaError) -> ProducerFenced:
        return ProducerFenced(
            f"cannot {what} ({self.transactional_id}): {error.str()}; another instance "
            "with this transactional id took over, or the producer hit a fatal error"
        )

    def _aborted(self, what: str, why: str) -> BusError:
        """Abort after a failed step: ``TransactionAborted``, or ``ProducerStuck`` if it hangs."""
        self.in_transaction = False
        self.unsettled = bool(self._guarded)
        if not self._abort_after_failure():
            # an abort still in progress makes every later step of this client fail
            # ("conflicting abort_transaction call"): a new producer takes over
            self.stuck = True
            return ProducerStuck(
                f"cannot {what} ({self.transactional_id}): {why}; "
                "and the abort that followed did not finish"
            )
        return TransactionAborted(f"cannot {what} ({self.transactional_id}): {why}")

    def _fail(self, what: str, exc: ck.KafkaException) -> None:
        error: ck.KafkaError = exc.args[0]
        if error.txn_requires_abort():
            raise self._aborted(what, error.str())
        if error.fatal():
            raise self._fenced(what, error)
        raise BusError(f"cannot {what} ({self.transactional_id}): {error.str()}")

    def _abort_after_failure(self, timeout: float = 60.0) -> bool:
        """Abort after a failed step, resuming while the client says to retry; whether it did.

        An abort that times out (a broker away) is resumed by calling it again,
        as librdkafka asks ("retry call to resume").
        """
        deadline = time.monotonic() + timeout
        while True:
            left = max(deadline - time.monotonic(), 0.0)
            outcome = _attempt_within(
                self._producer.abort_transaction, (min(left, 30.0),), left + _STUCK_GRACE_S
            )
            if outcome is None:
                return True
            if outcome is _TIMED_OUT:
                return False
            assert isinstance(outcome, ck.KafkaException)
            if not outcome.args[0].retriable() or time.monotonic() >= deadline:
                logger.error("abort after a failed transaction step failed too: %s", outcome)
                return False
            logger.warning("abort after a failed transaction step: %s; resuming", outcome)


#: ``last_offsets(partitions, stable, deadline)``: each partition's last stable
#: offset (``stable``) or high watermark, read by ``deadline`` (monotonic seconds).
LastOffsets = Callable[[Sequence[TopicPartition], bool, float], dict[TopicPartition, int]]

#: Key of the records of a settling transaction (aborted: no reader sees them).
_SETTLE_KEY = b"marketpulse.settle"

#: Seconds of one flush of the client: under its 200 ms chunks (see ``KafkaProducer._flush``).
_FLUSH_SLICE_S = 0.19

#: Seconds a transaction step may overrun its own timeout before it counts as stuck.
_STUCK_GRACE_S = 5.0

_TIMED_OUT = object()


def _attempt(call: Callable[..., Any], args: tuple[Any, ...]) -> ck.KafkaException | None:
    try:
        call(*args)
    except ck.KafkaException as exc:
        return exc
    return None


def _attempt_within(
    call: Callable[..., Any],
    args: tuple[Any, ...],
    seconds: float,
    meanwhile: Callable[[], None] | None = None,
) -> Any:
    """Run ``call`` on a daemon thread; return its error, ``None``, or ``_TIMED_OUT``.

    ``meanwhile`` runs in the calling thread while ``call`` runs; ``seconds``
    count from its end. What it raises is raised once ``call`` is done.
    """
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(_attempt(call, args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=target, name="kafka-transaction-step", daemon=True)
    thread.start()
    if meanwhile is not None:
        try:
            meanwhile()
        except BaseException:
            thread.join(seconds)
            raise
    thread.join(seconds)
    if thread.is_alive():
        return _TIMED_OUT
    result = outcome[0]
    if isinstance(result, BaseException) and not isinstance(result, ck.KafkaException):
        raise result
    return result


class ProducerStuck(BusError):
    """The client did not answer a transaction step in time; make a new producer.

    ``resumable``: the step was registering the transactional id (``init``) and the
    client answered, asking to be called again (a broker away): its request goes
    on in the background, so the same producer is to call ``init`` again. A new
    producer with that id would race it, and whichever registered last would fence
    the other (a run whose broker was away for 40 s failed so).
    """

    def __init__(self, message: str, resumable: bool = False) -> None:
        super().__init__(message)
        self.resumable = resumable
