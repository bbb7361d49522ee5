"""The processor as a service: ticks in; bars, indicators, alerts, dead letters, trades out.

It runs on any :class:`~marketpulse.bus.base.Bus` (Kafka in deployments, the
in-memory bus in tests and the embedded runner): each bus carries the outputs
its own way (:meth:`~marketpulse.bus.base.Producer.send_rows`: JSON records on
Kafka, Arrow rows in memory).

Exactly once: the outputs of a stretch of input, the changed symbols' state
(``state`` topic, co-partitioned with ``ticks``) and the consumed offsets are
committed in one Kafka transaction. A partition that joins this instance gets
its state back from ``state`` and continues from the committed offset; when a
transaction fails, the work since the last commit is redone from there. Read
with ``read_committed``, the output topics hold exactly the records of a run
without the crash.

Each output record goes to the partition number of the ticks partition it
came from (keyed by symbol, as the producer's partitioner would place it when
the topics have as many partitions), so the order of a partition's outputs is
the order the processor made them.

The trades the processor kept (:attr:`.Output.trades`, what the embedded
pipeline stores as ``trades``) go to the ``trades`` topic in the same
transaction, unless ``ProcessOptions.settings.store_trades`` is off: from
Kafka, as references to their offsets on ``ticks``
(:mod:`marketpulse.stream.trade_refs`), which the sinks resolve.

At least once (``ProcessOptions.settings.guarantee`` ``at-least-once``): the
outputs do not wait for a commit. They go, as soon as they are made, through
an idempotent producer of their own, outside any transaction, so a
``read_committed`` reader has them a few milliseconds later. The state and
the offsets still commit together, in a transaction of their own: a
partition's ``state`` snapshot and the offset it was taken at become visible
at once or not at all, so a restart never applies ticks again onto state that
already holds them (bars would then be wrong, not only repeated). Before each
such commit the outputs sent so far are flushed (acknowledged by the broker);
if any failed, the commit is abandoned and the work since the last commit is
redone. After a crash, the new owner resumes from the last commit: the
outputs it sends again are those sent since that commit, record for record the
same (the processor is deterministic on its input), the duplicates being at
most the outputs of ``max(commit_interval, quiet_commit_interval)`` seconds of
input, twice that at worst, plus whatever was being handled (see
:mod:`marketpulse.runtime.commit_policy`). The database sinks upsert on
natural keys, so their stored rows are those of an exactly-once run; the lake
sink names its files after offsets and keeps a repeated row twice. (Bars closed by the idle
timeout depend on processing time under either guarantee.) A crashed instance
that has not died (a zombie) is fenced from the state and offsets only; the
outputs it may still send are duplicates of the same kind.

What the processor does not read passes on, in order, to the same partition:
the feed's quotes to ``quotes`` (where it exists), dead letters the feed
sent through ``ticks`` to ``dlq``, and the marks of a file replay's segments
to every output topic (:mod:`marketpulse.runtime.segments`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.bus.base import (
    Batch,
    Bus,
    Consumer,
    Producer,
    ProducerFenced,
    TopicPartition,
    TransactionAborted,
    TransactionalProducer,
)
from marketpulse.bus.kafka import ConsumerFatal, ProducerStuck
from marketpulse.bus.topics import (
    FORECAST_TOPICS,
    NEWS_TOPICS,
    OPTIONAL_TOPICS,
    OUTPUT_TOPICS,
    PLUGIN_TOPICS,
    QUOTE_TOPICS,
    TRADE_TOPICS,
    Topics,
)
from marketpulse.exceptions import BusError
from marketpulse.runtime.commit_policy import PARTITIONS_KEY, CommitPolicy
from marketpulse.runtime.forward import Encoded, encode_together, originals, send_output
from marketpulse.runtime.heap_trim import start_trimming
from marketpulse.runtime.idle import idle_expired, read_to_end, records_left
from marketpulse.runtime.latency_trace import trace_from_env
from marketpulse.runtime.outputs import OutputCounts
from marketpulse.runtime.process_options import AT_LEAST_ONCE, ProcessOptions, ProcessStats
from marketpulse.runtime.segments import MARK_KIND, read_marks
from marketpulse.stream import Processor
from marketpulse.stream.checkpoint import CheckpointError
from marketpulse.stream.output import Constant, Output, stamp

__all__ = ["AT_LEAST_ONCE", "ProcessOptions", "ProcessService", "ProcessStats"]

logger = logging.getLogger(__name__)

_OFFSET_BEGINNING = -2


class ProcessService:
    """Run a :class:`Processor` as a member of a consumer group, on Kafka or any other bus.

    The service polls, processes, sends, and follows the group's rebalances;
    its :class:`CommitPolicy` holds what the open transaction holds, says when
    to commit it, and commits it.

    Args:
        bus: the bus (Kafka, or the in-memory bus: each carries the outputs its own way).
        topics: topic names.
        processor: the processor (its state is managed per assigned partition).
        options: group, instance, commit interval.
        stop: set it to stop; the service commits what it processed and leaves.
        on_output: called with each output and the batch it came from (``None`` for
            bars closed by processing time), in the service's thread, for live views.
        on_commit: called with the rows of the outputs of each committed transaction,
            in the service's thread: what figures count (an aborted transaction's
            outputs are made again, and counted then).
    """

    def __init__(
        self,
        bus: Bus,
        topics: Topics,
        processor: Processor,
        options: ProcessOptions | None = None,
        stop: threading.Event | None = None,
        on_output: Callable[[Output, Batch | None], None] | None = None,
        on_commit: Callable[[OutputCounts], None] | None = None,
    ) -> None:
        self.bus = bus
        #: The level of the service's own progress lines: INFO on a bus of its own
        #: (Kafka), DEBUG as a stage of one process (the in-memory bus: the runner speaks).
        self._info = logging.INFO if getattr(bus, "durable", True) else logging.DEBUG
        self.topics = topics
        self.processor = processor
        self.options = options or ProcessOptions()
        self.stop = stop or threading.Event()
        self.on_output = on_output
        self.on_commit = on_commit
        #: Set it (before ``stop``) when the input has ended for good, as a finished
        #: replay's has: on stopping, the service then closes every open window instead
        #: of keeping them in its state for more input. (A replay with segment marks
        #: says so in-band: :mod:`marketpulse.runtime.segments`.)
        self.input_ended = threading.Event()
        self.stats = ProcessStats()
        #: When input last arrived (``time.monotonic()``): how long the service has been idle.
        self.last_input = time.monotonic()
        #: Records left to read per assigned ticks partition, refreshed every second.
        self.lag: dict[int, int] = {}
        #: When the loop last went round (``time.monotonic()``): whether it makes progress.
        self.beat = time.monotonic()
        #: Set once the processor's kernels are loaded (:meth:`Processor.warm_up`): a
        #: feed on the wall clock starts then, so that its first ticks do not wait for them.
        self.warm = threading.Event()
        given = self.options.settings
        #: The open transaction: what it holds, when it is due, how it commits.
        self.policy = CommitPolicy(
            processor, topics.state,
            commit_interval=given.commit_interval,
            quiet_commit_interval=given.quiet_commit_interval,
            output_grace=given.output_grace, max_batch=given.max_batch,
            step_timeout=given.step_timeout, at_least_once=given.guarantee == AT_LEAST_ONCE,
        )  # fmt: skip
        self._owned: set[TopicPartition] = set()
        self._producer: TransactionalProducer | None = None
        #: At least once: the idempotent producer of the outputs (outside the transactions).
        self._out: Producer | None = None
        self._out_failed = 0
        self._consumer: Consumer | None = None
        self._partitions = 0
        self._transactional_id = ""
        self._abandoned: list[TransactionalProducer] = []
        self._assigned_once = False
        #: The output topics that exist (a segment's marks go to each), and ``quotes``' name.
        self._outputs: list[str] = []
        self._quotes: str | None = None
        self._dataset = Constant(processor.settings.dataset)
        #: Stage times for the latency benchmark (``MARKETPULSE_PROCESS_TRACE``), else None.
        self._trace = trace_from_env()

    def run(self) -> ProcessStats:
        """Consume until stopped (or idle for ``exit_when_idle``); return the figures."""
        start_trimming()  # a backlog's buffers are given back once it is read
        self._partitions = self._check_topics()
        self.policy.partitions = self._partitions
        opts = self.options
        instance = opts.instance or _random_instance()
        self._transactional_id = f"{self.topics.prefix}process.{opts.group}.{instance}"
        logger.log(
            self._info,
            "process: group %s, instance %s, input %s (%d partitions), on %s",
            opts.group, instance, self.topics.ticks, self._partitions, self.bus,
        )  # fmt: skip
        # a durable bus (Kafka) carries JSON records, the in-memory bus Arrow columns
        self.processor.warm_up(columns=not getattr(self.bus, "durable", True))
        self.warm.set()
        self._producer = self._new_producer(new_id=not opts.instance)
        if opts.settings.guarantee == AT_LEAST_ONCE:
            self._out = self.bus.producer(compression=opts.compression, linger_ms=0)
        self._consumer = self._new_consumer()
        try:
            self._loop()
            if self.input_ended.is_set():
                self._finish()
            self._commit()
        except _StoppedRestoring as exc:  # what was committed before stays; nothing is lost
            logger.warning("process: stopped while restoring partition %d", exc.partition)
        finally:
            self._shutdown()
        logger.debug("process: stopped after %s", self.stats.line())  # the command prints it
        return self.stats

    @property
    def joined(self) -> bool:
        """Whether this instance has joined its group (been assigned partitions, maybe none)."""
        return self._assigned_once

    def caught_up(self) -> bool:
        """Whether every assigned partition was read to its end (exact on the in-memory bus)."""
        return read_to_end(self._consumer)

    def records_left(self) -> int | None:
        """Records left to read over the assigned partitions (``None``: not known now)."""
        return records_left(self._consumer)

    def _new_producer(self, new_id: bool = False) -> TransactionalProducer:
        producer = self._unregistered_producer(new_id)
        producer.init()
        return producer

    def _unregistered_producer(self, new_id: bool = False) -> TransactionalProducer:
        # every partition it may write to: an aborted transaction of this id left open
        # there without a marker is closed before the next one (see the Kafka producer);
        # ``new_id``: a random instance's first producer, whose id has no past
        guarded = [TopicPartition(topic, p) for topic in (*self._outputs, self.topics.state)
                   for p in range(self._partitions)]  # fmt: skip
        return self.bus.transactional_producer(
            self._transactional_id,
            compression=self.options.compression,
            transaction_timeout_s=self.options.settings.transaction_timeout,
            guarded=guarded,
            new_id=new_id,
        )

    def _new_consumer(self) -> Consumer:
        opts = self.options
        extra = {"group.instance.id": f"{opts.group}.{opts.instance}"} if opts.instance else {}
        return self.bus.consumer(
            opts.group,
            [self.topics.ticks],
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._lost,
            **extra,
        )

    def _replace_consumer(self, exc: ConsumerFatal) -> None:
        """Drop the uncommitted work and every partition; a new member gets them back."""
        self.stats.replaced += 1
        logger.warning("process: %s; joining the group again with a new consumer", exc)
        assert self._producer is not None and self._consumer is not None
        self._forget(sorted(self._owned))
        try:
            self._producer.abort(self.options.settings.step_timeout)
        except ProducerStuck as stuck:
            self._replace_producer(stuck)
        old, self._consumer = self._consumer, None
        try:
            old.close()
        except Exception:  # noqa: BLE001 - a fenced consumer may fail to leave; it is gone anyway
            logger.debug("process: closing the old consumer failed", exc_info=True)
        self._consumer = self._new_consumer()

    def _replace_producer(self, exc: ProducerStuck | ProducerFenced) -> None:
        """Leave a stuck or timed-out producer behind; a new one with its id fences it; redo."""
        logger.warning("process: %s; replacing the producer, redoing the work since the "
                       "last commit", exc)  # fmt: skip
        self._swap_producer()
        self._rewind_or_rejoin()

    def _swap_producer(self) -> None:
        """Abandon the producer (its stuck call still holds it); a new one with its id fences it."""
        assert self._producer is not None
        self.stats.replaced += 1
        self._producer.abandon()  # nothing it still holds may reach the broker later
        self._abandoned.append(self._producer)
        self._producer = None
        producer: TransactionalProducer | None = None
        while self._producer is None:
            try:
                producer = producer or self._unregistered_producer()
                producer.init()
                self._producer = producer
            except BusError as error:
                if self.stop.is_set():
                    raise
                if isinstance(error, ProducerStuck) and error.resumable:
                    # its registration goes on (a broker away): a new producer would race
                    # it, and whichever registered last would fence the other
                    logger.warning("process: %s; waiting on", error)
                    continue
                logger.warning("process: %s; trying again with a new producer", error)
                if producer is not None:
                    producer.abandon()
                    self._abandoned.append(producer)
                    producer = None

    def _loop(self) -> None:
        opts, policy = self.options, self.policy
        self.last_input = last_report = last_idle = last_lag = time.monotonic()
        backlog = False
        while not self.stop.is_set():
            now = self.beat = time.monotonic()
            assert self._consumer is not None and self._producer is not None
            try:
                wait = policy.wait(self._producer.in_transaction, backlog, now)
                batches = self._consumer.poll(opts.settings.max_batch, wait.seconds)
                now = time.monotonic()
                if self._trace is not None:
                    self._trace.polled()
                records = sum(map(_records, batches))
                if self._handle(batches):
                    self.last_input = now
                backlog = policy.backlog(records)
                if now - last_idle >= 0.25:
                    last_idle = now
                    self._idle(now)
                if policy.due(self._producer.in_transaction, now, records, wait):
                    self._commit()
            except TransactionAborted as exc:
                self.stats.aborted += 1
                logger.warning("process: %s; redoing the work since the last commit", exc)
                self._rewind_or_rejoin()
            except ProducerStuck as exc:
                self._replace_producer(exc)
                self.last_input = time.monotonic()
            except ProducerFenced as exc:
                # the broker fences a producer whose transaction outlived the
                # transaction timeout; anything else is a newer instance: give way
                if policy.age(time.monotonic()) < opts.settings.transaction_timeout:
                    raise
                self._replace_producer(exc)
                self.last_input = time.monotonic()
            except ConsumerFatal as exc:
                self._replace_consumer(exc)
                self.last_input = time.monotonic()
            if now - last_lag >= 1.0:
                last_lag = now
                self._read_lag()
            if now - last_report >= 5.0:
                last_report = now
                logger.log(self._info, "process: %s", self.stats.line())
            if idle_expired(opts.exit_when_idle, now - self.last_input, self._assigned_once):
                # the bars the idle rule closes by now leave with the last commit
                self._idle(now)
                logger.info("process: no input for %.1f s, exiting", now - self.last_input)
                break

    def _cached_lag(self) -> dict[TopicPartition, int] | None:
        """Records left per assigned partition, by the end offsets last fetched (no request)."""
        assert self._consumer is not None
        try:
            # a partition restored at its end has no position until a record comes:
            # it counts from the offset this instance resumed it at
            return self._consumer.lag(cached=True, resumed=self.policy.next)
        except Exception as exc:  # noqa: BLE001 - a figure; never stops processing
            logger.debug("process: lag not read: %s", exc)
            return None

    def _read_lag(self) -> None:
        lag = self._cached_lag()
        if lag is not None:
            self.lag = {tp.partition: max(n, 0) for tp, n in sorted(lag.items())}

    def _handle(self, batches: list[Batch]) -> bool:
        """Process the batches of a poll (one per partition); whether any was new input."""
        fresh = [batch for batch in map(self._unseen, batches) if batch is not None]
        if not fresh:
            return False
        assert self._producer is not None
        self.policy.begin(self._producer)
        ticks = [batch for batch in fresh if batch.kind not in _PASSED_ON]
        for batch in fresh:  # quotes (columns) are passed on, and give bars their quote columns
            if batch.kind == "quote":
                self.processor.add_quotes(batch)
        processed = self.processor.process_each(ticks)
        # records as bytes (Kafka): the poll's bars and indicators are encoded together
        together = len(ticks) > 1 and all(batch.columns is None for batch in ticks)
        encoded = encode_together(processed) if together else [None] * len(processed)
        outputs = zip(processed, encoded, strict=True)
        for batch in fresh:  # in order: what passes on keeps its place among the outputs
            if batch.kind in _PASSED_ON:
                self._pass_on(batch)
            else:
                out, records = next(outputs)
                if out.dead and batch.columns is None:  # records as bytes: keep them as they came
                    out.dead = originals(out.dead, batch)
                self._send(out, batch.partition, batch, records)
                self.stats.ticks += out.accepted
            self.policy.consumed(batch.tp, batch.last_offset + 1)
            self.stats.records += _records(batch)
        return True

    def _pass_on(self, batch: Batch) -> None:
        """Send on what the processor does not read (columns), to the same partition."""
        assert self._producer is not None and batch.columns is not None
        producer = self._out or self._producer
        rows = batch.columns
        rows = rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows])
        if batch.kind == MARK_KIND:
            if any(mark.source_ends for mark in read_marks(rows)):
                # a replay ran to its end: its last windows close before its last segment does
                out = self.processor.finish_partition(batch.topic, batch.partition)
                self._send(out, batch.partition, None)
            for name in self._outputs:
                producer.send_rows(name, MARK_KIND, rows, batch.partition)
        elif batch.kind == "dlq":
            producer.send_rows(self.topics.name("dlq"), "dlq", rows, batch.partition)
            self.stats.dead += rows.num_rows
        elif self._quotes is not None:
            quotes = stamp(rows, self._dataset)
            producer.send_rows(self._quotes, "quotes", quotes, batch.partition)

    def _unseen(self, batch: Batch) -> Batch | None:
        """The records of ``batch`` not yet processed (``None``: none, or not ours)."""
        tp = batch.tp
        if tp not in self._owned:
            return None  # fetched before the partition was revoked
        expected = self.policy.next.get(tp)
        if expected is not None and batch.first_offset < expected:
            if batch.columns is not None:  # offsets without gaps: row i at first_offset + i
                if batch.last_offset < expected:
                    return None
                rows = batch.columns.slice(expected - batch.first_offset)
                return Batch(batch.topic, batch.partition, expected, batch.last_offset,
                             kind=batch.kind, columns=rows)  # fmt: skip
            kept = [m for m in batch.messages if m.offset >= expected]
            if not kept:
                return None
            batch = Batch(batch.topic, batch.partition, kept[0].offset, kept[-1].offset,
                          messages=kept)  # fmt: skip
        return batch

    def _finish(self) -> None:
        """Close every owned partition's open windows: the input has ended.

        They leave with the last commit, together with the state that no longer
        holds them, so a restart does not emit them again.
        """
        self._send_closed(self.processor.finish_each())

    def _idle(self, now: float) -> None:
        if self.options.close_idle:
            self._send_closed(self.processor.idle_each(now, self._behind()))

    def _send_closed(self, outputs: dict[tuple[str, int], Output]) -> None:
        """Send the bars closed without input (by the clock, or at its end), per owned partition."""
        for (topic, partition), out in outputs.items():
            tp = TopicPartition(topic, partition)
            if tp in self._owned:
                assert self._producer is not None
                self.policy.begin(self._producer)
                self._send(out, partition, None)
                self.policy.touch(tp)

    def _behind(self) -> set[tuple[str, int]]:
        """Owned partitions not known to be read to their end: the clock closes none of theirs.

        A partition's lag is not known until a fetch has brought its end offset
        (just after an assignment, a restore or a rewind) or while the client
        cannot say: closing its bars by the clock then would move its watermark
        past ticks still to read (they would be late), and decide differently
        from a run without the restart. So only a partition known to be caught
        up closes by the clock.
        """
        lag = self._cached_lag() or {}
        return {(tp.topic, tp.partition) for tp in self._owned if lag.get(tp, 1) > 0}

    def _send(
        self, out: Output, partition: int, batch: Batch | None, encoded: Encoded | None = None
    ) -> None:
        assert self._producer is not None
        send_output(
            self._out or self._producer, self.topics, out, partition, batch,
            dataset=self.processor.settings.dataset,
            store_trades=self.options.settings.store_trades, quotes=self._quotes,
            by_reference=True, encoded=encoded,
        )  # fmt: skip
        self.policy.sent(out)
        if self._trace is not None and out.bars.num_rows:
            last = batch.messages[-1].timestamp if batch is not None and batch.messages else 0
            self._trace.output(partition, _bar_end(out), last)
        if self.on_output is not None:
            self.on_output(out, batch)

    def _commit(self) -> None:
        """Commit the open transaction (see :meth:`CommitPolicy.commit`)."""
        producer, consumer = self._producer, self._consumer
        if producer is None or consumer is None:
            return
        started, outputs = time.time_ns(), self.policy.outputs and self._out is None
        if self._out is not None and producer.in_transaction:
            self._flush_outputs(producer)
        if self.policy.commit(producer, consumer):
            self.stats.transactions += 1
            counts = self.policy.committed_outputs
            self.stats.committed(counts)
            if self.on_commit is not None:
                self.on_commit(counts)
            if self._trace is not None:
                self._trace.commit(started, getattr(producer, "offsets_sent_ns", 0), outputs)

    def _flush_outputs(self, producer: TransactionalProducer) -> None:
        """At least once: the outputs sent so far are acknowledged before their offsets commit.

        Raises:
            TransactionAborted: some were not (the transaction of state and
                offsets is aborted: the work since the last commit is redone).
        """
        assert self._out is not None
        try:
            self._out.flush(self.options.settings.step_timeout)
            failed = self._out.failed - self._out_failed
        except BusError as exc:
            failed, reason = -1, str(exc)
        self._out_failed = self._out.failed
        if failed:
            producer.abort(self.options.settings.step_timeout)
            why = reason if failed < 0 else f"{failed:,} outputs were not delivered"
            raise TransactionAborted(f"{why}: not committing their offsets")

    def _assigned(self, partitions: list[TopicPartition]) -> None:
        """Partitions joined this instance: restore their state before reading them.

        Restoring can take a while, so the open transaction is committed first:
        left open past the transaction timeout, the broker would abort it and
        fence the producer.
        """
        assert self._consumer is not None
        self._settle([])
        started = self.last_input = time.monotonic()  # idle time counts from here
        self._assigned_once = True
        self._settle_offsets(partitions)
        committed = self._consumer.committed(partitions)
        for tp in partitions:
            self._restore(tp, committed.get(tp, -1), quiet_since=started)
            self._owned.add(tp)
        # idle time counts from the end of the restores: a long one is not idleness
        self.last_input = restored = time.monotonic()
        for tp in partitions:
            self.processor.quiet_since(tp.topic, tp.partition, restored)
        logger.log(
            self._info,
            "process: assigned %s in %.2f s",
            ", ".join(f"{tp.partition}@{committed.get(tp, -1)}" for tp in sorted(partitions)),
            time.monotonic() - started,
        )

    def _revoked(self, partitions: list[TopicPartition]) -> None:
        """Partitions leave this instance: commit their work, then forget them."""
        self._settle(partitions)
        revoked = ", ".join(str(tp.partition) for tp in partitions)
        logger.log(self._info, "process: revoked %s", revoked)

    def _settle(self, leaving: list[TopicPartition]) -> None:
        """Commit before a rebalance, then forget ``leaving``; on failure, redo the rest."""
        try:
            self._commit()
        except TransactionAborted as exc:
            logger.warning("process: commit before a rebalance failed: %s", exc)
            self._forget(leaving)
            self._rewind(sorted(self._owned))
            return
        except ProducerStuck as exc:
            self._forget(leaving)
            self._replace_producer(exc)
            return
        self._forget(leaving)

    def _lost(self, partitions: list[TopicPartition]) -> None:
        """Partitions were taken away: what this instance did since its commit is void."""
        logger.warning(
            "process: lost partitions %s; discarding uncommitted work",
            ", ".join(str(tp.partition) for tp in partitions),
        )
        if self._producer is not None:
            self._producer.abort(self.options.settings.step_timeout)
        self._forget(partitions)
        self._rewind(sorted(self._owned))

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.processor.drop(tp.topic, tp.partition)
            self._owned.discard(tp)
            self.policy.forget(tp)

    def _rewind_or_rejoin(self) -> None:
        """Rewind every owned partition; if the group's offsets cannot be read, rejoin."""
        try:
            self._rewind(sorted(self._owned))
        except ConsumerFatal as exc:
            self._replace_consumer(exc)

    def _rewind(self, partitions: list[TopicPartition]) -> None:
        """Go back to the last commit: state from ``state``, reading from the committed offset."""
        assert self._consumer is not None
        if not partitions:
            return
        self._settle_offsets(partitions)
        committed = self._consumer.committed(partitions)
        for tp in partitions:
            offset = committed.get(tp, -1)
            self._restore(tp, offset)
            self._consumer.seek(tp, offset if offset >= 0 else _OFFSET_BEGINNING)
        self.policy.rewound(partitions)

    def _settle_offsets(self, partitions: list[TopicPartition]) -> None:
        """End what a crashed transaction of this id left pending before the offsets are read.

        A broker that restarts can abort a transaction without writing its
        markers: its offsets then stay pending, and reading the group's
        offsets waits for them until it times out. Settling the producer
        (see the Kafka producer) with the group ends them. A settling that
        fails here is left to the next transaction's start, where failures are
        handled; reading the offsets may then time out, and the member rejoins.
        A producer stuck in it (a step not done in time: the client may still
        be in that call, and refuses every later one) is replaced first: the
        new one settles at its first transaction. So is one fenced after the
        settling outlived the transaction timeout (the broker aborted it, as
        in the loop); fenced sooner, a newer instance took over: give way.
        """
        assert self._producer is not None and self._consumer is not None
        if not partitions:
            return
        started = time.monotonic()
        try:
            self._producer.settle(self._consumer, partitions[0])
        except (ProducerFenced, ProducerStuck) as exc:
            outlived = time.monotonic() - started >= self.options.settings.transaction_timeout
            if isinstance(exc, ProducerFenced) and not outlived:
                raise
            logger.warning("process: settling before reading the offsets failed: %s; "
                           "replacing the producer", exc)  # fmt: skip
            self._swap_producer()
        except BusError as exc:
            logger.warning("process: settling before reading the offsets failed: %s", exc)

    def _restore(
        self, tp: TopicPartition, committed: int, quiet_since: float | None = None
    ) -> None:
        """Set a partition's state from ``state``; it resumes at offset ``committed``.

        Its open windows then close by the same rules as windows built in this
        run: by the watermark, or by processing time once the partition has
        been idle (since ``quiet_since``, default now) for the idle timeout.
        """
        # a transaction a crashed owner left open on the partition is waited out (the
        # broker aborts it after the transaction timeout): reading past it matters
        wait = self.options.settings.transaction_timeout + 60.0
        try:
            records = dict(
                self.bus.read_partition(self.topics.state, tp.partition, wait, stop=self.stop)
            )
        except BusError as exc:
            if self.stop.is_set():  # stopping while the broker is away: nothing to wait for
                raise _StoppedRestoring(tp.partition) from None
            # the broker away (or a transaction left open) for longer than the wait:
            # a new member takes the partitions again once they can be read
            raise ConsumerFatal(f"restoring partition {tp.partition}: {exc}") from None
        self._check_partitioning(tp, records)
        try:
            symbols = self.processor.restore(tp.topic, tp.partition, records, quiet_since)
        except CheckpointError as exc:
            raise BusError(f"{self.topics.state}[{tp.partition}]: {exc}") from None
        self.policy.resume(tp, committed)
        self.stats.restored += 1
        logger.debug("process: partition %d restored, %d symbols", tp.partition, symbols)
        if symbols and committed < 0:
            # the state is another group's (or outlived the group's offsets): this group
            # reads the partition from its start, behind that state's watermark
            logger.warning(
                "process: %s[%d] has the state of %d symbols, but group %s committed no offset"
                " there: reading it from the start, its ticks before that state go to %s as"
                " late (the state topic serves one process group per topic prefix)",
                tp.topic, tp.partition, symbols, self.options.group, self.topics.name("dlq"),
            )  # fmt: skip

    def _check_partitioning(self, tp: TopicPartition, records: dict[bytes, bytes]) -> None:
        """Refuse state written when ``ticks`` had another partition count.

        Adding partitions to ``ticks`` moves symbols to other partitions (the key's
        hash modulo the count): their state would stay behind, and their
        indicators would start again from nothing, silently wrong. The count
        travels with the state (:data:`PARTITIONS_KEY`), taken out of ``records``.

        Raises:
            BusError: the state was written under another partition count.
        """
        written = records.pop(PARTITIONS_KEY, None)
        if written is None or not self._partitions or int(written) == self._partitions:
            return
        raise BusError(
            f"{self.topics.state}[{tp.partition}] was written when {self.topics.ticks} had "
            f"{int(written)} partitions; it has {self._partitions} now, so symbols have moved "
            "to other partitions without their state: refusing to compute indicators without "
            "their history (see 'Changing the partition count' in docs/operations.md)"
        )

    def _check_topics(self) -> int:
        """Return the ticks partitions; every output and ``state`` must have as many."""
        partitions = self.bus.partitions(self.topics.ticks)
        plugins = PLUGIN_TOPICS if self.processor.settings.plugins else ()
        trades = TRADE_TOPICS if self.options.settings.store_trades else ()
        forecasts = FORECAST_TOPICS if self.processor.settings.forecast.models else ()
        required = (*OUTPUT_TOPICS, *plugins, *trades, *forecasts, "state")
        self._outputs = []
        # headlines pass by the processor (marketpulse news writes them; sinks read them)
        passing = (*required, *NEWS_TOPICS)
        for short in (*required, *(t for t in OPTIONAL_TOPICS if t not in passing)):
            name = self.topics.name(short)
            try:
                count = self.bus.partitions(name)
            except BusError:
                if short in required:
                    raise
                continue
            if count < partitions:
                raise BusError(
                    f"topic {name} has {count} partitions, fewer than the {partitions} of "
                    f"{self.topics.ticks}: outputs and state go to the partition of their input"
                )
            if short != "state":
                self._outputs.append(name)
            if short in QUOTE_TOPICS:
                self._quotes = name
        return partitions

    def _shutdown(self) -> None:
        producer = self._producer
        stuck = getattr(producer, "stuck", False)  # a Kafka producer's step that never returned
        if producer is not None and producer.in_transaction and not stuck:
            try:  # left by a failure: leaving must not commit half the work
                producer.abort(self.options.settings.step_timeout)
            except BusError as exc:
                logger.warning("process: %s", exc)
        settle_all = getattr(producer, "settle_all", None)  # a Kafka producer's
        if settle_all is not None and not stuck and (self.stats.replaced or self.stats.aborted):
            # after a broker fault: no transaction of this id is left open anywhere
            try:
                settle_all()
            except BusError as exc:
                logger.warning("process: settling before leaving: %s", exc)
            else:
                logger.info("process: after %d aborted transactions and %d replaced clients, "
                            "none of its id is left open on its output partitions",
                            self.stats.aborted, self.stats.replaced)  # fmt: skip
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception:  # noqa: BLE001 - closing after a failure must not hide it
                logger.exception("process: closing the consumer failed")
        if self._producer is not None:
            self._producer.close()
        if self._out is not None:
            try:
                self._out.close()
            except BusError as exc:  # sent again by the next owner: at least once
                logger.warning("process: %s", exc)
        self.bus.close()  # the reader of the state topic
        if self._trace is not None:
            self._trace.close()


class _StoppedRestoring(Exception):
    """The service was stopped while a partition's state was being read (its broker away).

    No input of the partitions being restored was processed, so there is no
    work to commit: the service leaves at once.
    """

    def __init__(self, partition: int) -> None:
        super().__init__(partition)
        self.partition = partition


#: Kinds of ``ticks`` records the processor does not read: passed on as they are.
_PASSED_ON = frozenset({MARK_KIND, "dlq", "quote"})


def _records(batch: Batch) -> int:
    """The records of ``batch`` (Kafka's offsets may skip transaction markers)."""
    return batch.columns.num_rows if batch.columns is not None else len(batch.messages)


def _bar_end(out: Output) -> int:
    """The latest end (ns) of the bars of ``out``."""
    return int(pc.max(out.bars.column("bar_end")).as_py())


def _random_instance() -> str:
    import socket
    import uuid

    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
