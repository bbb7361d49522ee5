"""A sink as a service: output topics in, storage out, offsets committed after.

The service is a consumer group on the processor's output topics, on any bus
of the contract (:mod:`marketpulse.bus.base`): Kafka, or the embedded
:class:`~marketpulse.bus.memory.MemoryBus`. It reads committed records only
(Kafka's ``read_committed``). Records carried as raw messages (Kafka) are
decoded; records carried as columns (the embedded bus) are written as they
are. Rows go to a :class:`~marketpulse.sinks.base.Sink`; on a durable bus
(Kafka) with the offsets they came from, so the sink's writes are idempotent
(deterministic lake file names, upserts). The offsets are committed only once
the sink has made the rows durable. After a crash the records since the last
commit are written again, to the same place.

On the in-memory bus, whose offsets restart with every run, a file replay's
rows are written by input segment instead (:attr:`SinkOptions.origin`): a
partition's rows under the segment begun last there, and a segment ends once
its end mark came on every partition the service reads
(:mod:`marketpulse.runtime.segments`): a rerun of the same input then
rewrites the same lake files.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from marketpulse.bus.base import Batch, Bus, Consumer, ConsumerFatal, TopicPartition, values_of
from marketpulse.bus.codec import decode_dead_letters, decode_rows, record_dataset
from marketpulse.bus.topics import NEWS_TOPICS, OPTIONAL_TOPICS, OUTPUT_TOPICS, Topics
from marketpulse.exceptions import BusError
from marketpulse.human import human_rate
from marketpulse.models import DLQ_SCHEMA
from marketpulse.runtime.heap_trim import start_trimming
from marketpulse.runtime.idle import idle_expired, read_to_end, records_left
from marketpulse.runtime.segments import MARK_KIND, read_marks
from marketpulse.sinks.base import TABLES, InputSegment, Sink, SourceRange
from marketpulse.sinks.exceptions import StoreFailedError
from marketpulse.stream.trade_refs import TradeResolver, slices

__all__ = ["SINK_BATCH", "SinkOptions", "SinkService", "SinkServiceStats"]

logger = logging.getLogger(__name__)

#: Records a sink service consumes per poll at most, by default.
SINK_BATCH = 50_000

#: Trades a sink resolves from references at a time at most (a batch of references
#: can name a backlog's worth: see :func:`~marketpulse.stream.trade_refs.slices`).
RESOLVE_AT_MOST = 100_000

#: Seconds a poll waits for records at most.
_POLL_S = 0.1

#: Seconds an assignment waits at most for the group's committed offsets (a figure
#: for the stall check only: without them the assignment goes on).
_COMMITTED_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class SinkOptions:
    """How a sink service runs.

    Attributes:
        group: consumer group (each kind of sink has its own).
        tables: the output topics to store (their tables have the same names);
            those of :data:`~marketpulse.bus.topics.OPTIONAL_TOPICS` (plugins'
            values, the trades the processor kept) only where they exist. By
            default the processor's outputs: not ``news``, which the process
            service does not write, so no segment's marks come on it (the ``sink``
            commands name it).
        exit_when_idle: exit, flushed and committed, once no record arrived for this long.
        max_batch: records consumed per poll at most.
        stall_after: with no record for this long, and again this long later, the
            service asks the cluster whether committed records wait past this
            member's positions; if they do both times, it rejoins the group with a
            new consumer (once per quiet spell): a client left stuck by a broker
            restart then recovers.
        origin: the identity of the replayed input whose segments' marks the
            records carry (:func:`~marketpulse.runtime.segments.input_origin`);
            ``None``: none do.
    """

    group: str = "marketpulse-sink-lake"
    tables: tuple[str, ...] = (
        *OUTPUT_TOPICS, *(t for t in OPTIONAL_TOPICS if t not in NEWS_TOPICS)
    )  # fmt: skip
    exit_when_idle: float | None = None
    max_batch: int = SINK_BATCH
    stall_after: float = 15.0
    origin: str | None = None


@dataclass(slots=True)
class SinkServiceStats:
    """What the service has stored since it started."""

    records: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    undecodable: int = 0
    commits: int = 0
    failed_commits: int = 0
    rejoins: int = 0
    #: Records read but left unwritten when it stopped (read again by the next run).
    unwritten: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        """One line of figures."""
        elapsed = time.monotonic() - self.started
        rate = human_rate(self.records, elapsed)
        tables = ", ".join(f"{n:,} {t}" for t, n in sorted(self.rows.items())) or "no rows"
        return (
            f"{self.records:,} records ({rate}/s): {tables}; "
            f"{self.undecodable:,} undecodable; {self.commits:,} commits"
            + (f" ({self.failed_commits:,} failed)" if self.failed_commits else "")
            + (f"; {self.rejoins:,} rejoins" if self.rejoins else "")
        )


#: Seconds a read of kept trades under way may still take once the service is asked to
#: stop: the records it was handed are written, unless the broker stays away.
STOP_GRACE_S = 10.0


class _Graced(threading.Event):
    """Set once ``stop`` has been set for ``grace`` seconds (checked by :meth:`is_set`).

    A sink asked to stop still writes the records a poll handed it: a run's
    drain stops it once it looks caught up, and records committed just
    before (the last references of kept trades) may be on their way. Given up
    at once, they were left unwritten, and the run said so (exit 1).
    """

    def __init__(self, stop: threading.Event, grace: float) -> None:
        super().__init__()
        self._stop, self._grace = stop, grace
        self._since: float | None = None

    def is_set(self) -> bool:
        if not self._stop.is_set():
            self._since = None
            return False
        now = time.monotonic()
        if self._since is None:
            self._since = now
        return now - self._since >= self._grace


class SinkService:
    """Consume output topics into a sink.

    Args:
        bus: the bus (a Kafka cluster, or the embedded bus).
        topics: topic names.
        sink: where rows go; closed when the service stops.
        options: group, tables, idle exit.
        stop: set it to stop; the service flushes, commits and leaves.
    """

    def __init__(
        self,
        bus: Bus,
        topics: Topics,
        sink: Sink,
        options: SinkOptions | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.bus = bus
        #: The level of the service's own progress lines: INFO on a bus of its own
        #: (Kafka), DEBUG as a stage of one process (the in-memory bus: the runner speaks).
        self._info = logging.INFO if getattr(bus, "durable", True) else logging.DEBUG
        self.topics = topics
        self.sink = sink
        self.options = options or SinkOptions()
        self.stop = stop or threading.Event()
        self.stats = SinkServiceStats()
        #: When input last arrived (``time.monotonic()``): how long the service has been idle.
        self.last_input = time.monotonic()
        #: When the loop last went round (``time.monotonic()``): whether it makes progress.
        self.beat = time.monotonic()
        #: Records left to read per assigned partition, refreshed every second (a
        #: partition read to its end may show 1: the transaction's commit marker).
        self.lag: dict[TopicPartition, int] = {}
        #: Whether records it was handed are being written (a run's drain waits for them).
        self.writing = False
        #: Partitions of the topics it reads (set when it starts): a lone member of its
        #: group has read them all once :attr:`lag` covers every one.
        self.partitions = 0
        self._pending: dict[TopicPartition, int] = {}
        #: The group's committed offset of each assigned partition when it was assigned:
        #: where reading resumed (see :meth:`_unread`).
        self._resumed: dict[TopicPartition, int] = {}
        self._consumer: Consumer | None = None
        self._names: list[str] = []
        self._assigned_once = False
        # stall checks in this quiet spell: how many, whether records waited at the last one,
        # whether the member rejoined
        self._checks, self._waited, self._rejoined = 0, False, False
        #: The segment begun last on each partition (its first line), and the
        #: partitions each segment's end (or the input's: ``(0, 0)``) came on.
        self._segment: dict[TopicPartition, int] = {}
        self._ended: dict[tuple[int, int], set[TopicPartition]] = {}
        self._source_ended = False
        #: reads the kept trades that ``trades`` records name on ``ticks``
        self._trades = TradeResolver(bus, _Graced(self.stop, STOP_GRACE_S))

    @property
    def topic_names(self) -> list[str]:
        """The topics it reads (known once it runs)."""
        return list(self._names)

    @property
    def joined(self) -> bool:
        """Whether this member has joined its group (been assigned partitions, maybe none)."""
        return self._assigned_once

    def caught_up(self) -> bool:
        """Whether every assigned partition was read to its end (exact on the in-memory bus)."""
        return read_to_end(self._consumer)

    def records_left(self) -> int | None:
        """Records left to read over the assigned partitions (``None``: not known now)."""
        return records_left(self._consumer)

    def _new_consumer(self) -> Consumer:
        # read_committed: Kafka's consumers by default, the embedded bus's always
        return self.bus.consumer(
            self.options.group, self._names, on_assign=self._assigned, on_revoke=self._revoked
        )

    def run(self) -> SinkServiceStats:
        """Store records until stopped (or idle); return the figures."""
        start_trimming()  # a backlog's buffers are given back once it is stored
        names, partitions = [], 0
        for short in self.options.tables:
            name = self.topics.name(short)
            try:
                count = self.bus.partitions(name)  # a clear error when a topic is missing
            except BusError:
                if short not in OPTIONAL_TOPICS:
                    raise
                logger.log(self._info, "sink %s: no topic %s (nothing of it to store)",
                           self.sink.name, name)  # fmt: skip
                continue
            names.append(name)
            partitions += count
        self.partitions = partitions
        logger.log(
            self._info,
            "sink %s: group %s, topics %s, on %s",
            self.sink.name, self.options.group, ", ".join(names), self.bus,
        )  # fmt: skip
        self._names = names
        self._consumer = self._new_consumer()
        try:
            self._loop()
            self._flush()
        except StoreFailedError as exc:
            self._close_after(exc)
            raise
        except BaseException:
            self._close()
            raise
        self._close()
        logger.debug(  # the command prints it
            "sink %s: stopped after %s", self.sink.name, self.stats.line()
        )
        return self.stats

    def _close(self) -> None:
        assert self._consumer is not None
        try:
            self._consumer.close()
        finally:
            self.sink.close()

    def _close_after(self, failure: StoreFailedError) -> None:
        """Close after rows could not be stored; record in ``failure`` what was stored.

        Closing the sink tries the rows left once more (a lake whose disk has
        room again stores them); a second failure is logged, the first reported.
        """
        try:
            self._close()
        except StoreFailedError as again:
            logger.debug("sink %s: closing after the failure: %s", self.sink.name, again)
        failure.stored = dict(self.sink.stats.rows)

    def _loop(self) -> None:
        assert self._consumer is not None
        self.last_input = last_report = last_lag = time.monotonic()
        while not self.stop.is_set():
            self.beat = time.monotonic()
            try:
                batches = self._consumer.poll(self.options.max_batch, _POLL_S)
            except ConsumerFatal as exc:
                self._rejoin(str(exc))
                continue
            now = time.monotonic()
            if now - last_lag >= 1.0:
                last_lag = now
                self._read_lag(now)
            # records handed out count as read (the consumer's positions are past them):
            # until they are written, the service is not idle, however long that takes
            self.writing = bool(batches)
            for index, batch in enumerate(batches):
                if not self._write(batch):
                    # stopped while trades were read: the rest is read again
                    self.stats.unwritten += sum(len(b.messages) if b.columns is None
                                                else b.columns.num_rows
                                                for b in batches[index:])  # fmt: skip
                    break
                self.last_input = time.monotonic()
                self._checks, self._waited, self._rejoined = 0, False, False
            self.writing = False
            self._check_stall(now)
            if self.sink.due():
                self._flush()
            if now - last_report >= 5.0:
                last_report = now
                logger.log(self._info, "sink %s: %s", self.sink.name, self.stats.line())
            quiet = now - self.last_input
            if idle_expired(self.options.exit_when_idle, quiet, self._assigned_once):
                logger.info("sink %s: no input for %.1f s, exiting", self.sink.name, quiet)
                break

    def _check_stall(self, now: float) -> None:
        """Every ``stall_after`` of quiet, ask whether committed records wait unread.

        Waiting at two checks in a row (not just committed, then) means the
        member is stuck: it rejoins, once per quiet spell.
        """
        step = self.options.stall_after
        if self._rejoined or now - self.last_input < step * (self._checks + 1):
            return
        self._checks += 1
        waiting = self._unread()
        if not waiting:
            self._waited = False
        elif not self._waited:
            self._waited = True
        else:
            self._rejoined = True
            quiet = now - self.last_input
            self._rejoin(f"no record for {quiet:.0f} s while {waiting:,} committed records wait")

    def _read_lag(self, now: float) -> None:
        """Refresh :attr:`lag`, from the end offsets the fetches brought or asked for.

        The fetches' figures cost no request, but a fetch held by the broker, or
        a partition's fetches backing off after a broker restart, leaves them
        behind the log: after a second without input the sink asks the cluster
        (one request per leader), so that a run's drain does not take a stale
        end for its caught-up one.
        """
        assert self._consumer is not None
        try:
            quiet = now - self.last_input >= 1.0
            lag = self._consumer.lag(cached=not quiet, resumed=self._resumed)
        except Exception as exc:  # noqa: BLE001 - a figure; never stops the sink
            logger.debug("sink %s: lag not read: %s", self.sink.name, exc)
            return
        self.lag = {tp: max(n, 0) for tp, n in sorted(lag.items())}

    def _unread(self) -> int:
        """Committed records the cluster holds past this member's positions (0 if unknown).

        A partition read to its end still counts one: the transaction marker.
        One the client has handed out no record of since its assignment has no
        position: it counts from the offset reading resumed at (else from the
        log start), so a restart with everything stored finds nothing waiting.
        """
        assert self._consumer is not None
        try:
            lag = self._consumer.lag(resumed=self._resumed)
        except Exception as exc:  # noqa: BLE001 - a check only; the loop goes on
            logger.debug("sink %s: lag not read: %s", self.sink.name, exc)
            return 0
        return sum(n for n in lag.values() if n > 1)

    def _rejoin(self, why: str) -> None:
        """Flush and commit, then leave the group and join again with a new consumer."""
        assert self._consumer is not None
        logger.warning("sink %s: %s; rejoining the group with a new consumer", self.sink.name, why)
        self.stats.rejoins += 1
        self._flush()
        try:
            self._consumer.close()  # its revoke callback finds nothing left to flush
        except Exception:  # noqa: BLE001 - a broken member may fail to leave; it is replaced
            logger.debug("sink %s: closing the old consumer failed", self.sink.name, exc_info=True)
        self._resumed.clear()  # the new member's assignment fetches them again
        self._consumer = self._new_consumer()

    def _write(self, batch: Batch) -> bool:
        """Write a batch's rows; ``False``: stopped first (the rest of it not written).

        A batch of ``trades`` records is written in slices of at most
        :data:`RESOLVE_AT_MOST` trades, references resolved slice by slice.
        """
        table = self.topics.table(batch.topic)
        if table == "trades" and batch.columns is None:
            messages = batch.messages
            cuts = slices(values_of(messages), RESOLVE_AT_MOST)
            if len(cuts) > 1:
                for start, stop in cuts:
                    part = messages[start:stop]
                    piece = Batch(batch.topic, batch.partition, part[0].offset,
                                  part[-1].offset, messages=part)  # fmt: skip
                    if not self._write_rows(table, piece):
                        return False
                return True
        return self._write_rows(table, batch)

    def _write_rows(self, table: str, batch: Batch) -> bool:
        """Write the rows of ``batch`` (or of a slice of one); ``False``: stopped first."""
        if batch.kind == MARK_KIND and batch.columns is not None:
            self._pending[batch.tp] = batch.last_offset + 1
            self._marked(batch)
            return True
        if batch.columns is not None:  # the embedded bus: rows as they were sent
            rows, count = _table_columns(table, batch.columns), batch.columns.num_rows
        else:
            decoded = self._decode(table, batch)
            if decoded is None:
                return False
            rows, count = decoded, len(batch.messages)
        self._pending[batch.tp] = batch.last_offset + 1
        # offsets name the sink's files only where a rerun reads the same offsets again;
        # elsewhere a replay's segments do
        source: SourceRange | InputSegment | None = None
        if self.bus.durable:
            source = SourceRange(batch.partition, batch.first_offset, batch.last_offset)
        elif self.options.origin is not None and batch.tp in self._segment:
            source = InputSegment(self.options.origin, self._segment[batch.tp])
        self.sink.write(table, rows, source)
        self.stats.records += count
        self.stats.rows[table] = self.stats.rows.get(table, 0) + rows.num_rows
        return True

    def _marked(self, batch: Batch) -> None:
        """Follow a partition's segment marks; end each segment once it ended everywhere."""
        assert self._consumer is not None and batch.columns is not None
        origin = self.options.origin
        for mark in read_marks(batch.columns):
            if mark.begins:
                self._segment[batch.tp] = mark.first
                continue
            if not mark.source_ends:
                self._segment.pop(batch.tp, None)
            seen = self._ended.setdefault((mark.first, mark.last), set())
            seen.add(batch.tp)
            if origin is None or not seen.issuperset(self._consumer.assignment()):
                continue
            del self._ended[(mark.first, mark.last)]
            if mark.source_ends:
                self._source_ended = True
            else:
                self.sink.end_segment(origin, mark.first, mark.last)
            if self._source_ended and not self._ended and not self._segment:
                # the input's end, and its last segment, came on every partition
                self._source_ended = False
                self.sink.end_source(origin)

    def _decode(self, table: str, batch: Batch) -> pa.Table | None:
        """The rows of a batch of raw messages; those not of ``table`` go to the dlq.

        References among ``trades`` records are resolved to the trades they name
        (:mod:`marketpulse.stream.trade_refs`); ``None``: stopped meanwhile.
        """
        messages = batch.messages
        if table == "dlq":
            messages = list(messages)  # each made once
            rows = decode_dead_letters(
                [m.key for m in messages], [m.value for m in messages],
                [m.headers for m in messages], [m.timestamp * 1_000_000 for m in messages],
            )  # fmt: skip
        elif table == "trades":
            resolved = self._trades.records([v or b"" for v in values_of(messages)])
            if resolved is None:
                return None
            values, origin, failed = resolved
            rows, errors = decode_rows(table, values)
            failed += [(origin[index], error) for index, error in errors]
            if failed:
                self._undecodable(batch, sorted(failed))
        else:
            rows, errors = decode_rows(table, [v or b"" for v in values_of(messages)])
            if errors:
                self._undecodable(batch, errors)
        return rows

    def _undecodable(self, batch: Batch, errors: Sequence[tuple[int, str]]) -> None:
        """Keep records that are not what their topic should hold, as dead letters."""
        self.stats.undecodable += len(errors)
        rows = []
        for index, error in errors:
            message = batch.messages[index]
            where = f"{batch.topic}[{batch.partition}]@{message.offset}"
            logger.error("sink %s: %s: %s", self.sink.name, where, error)
            rows.append(
                {
                    "ts": message.timestamp * 1_000_000, "reason": "schema",
                    "error": f"{where}: {error}",
                    "key": message.key.decode(errors="replace") if message.key else None,
                    "value": message.value or b"", "source_topic": batch.topic,
                    "source_partition": batch.partition, "source_offset": message.offset,
                    "source_file": None, "source_line": None,
                    "dataset": record_dataset(message.value),
                }
            )  # fmt: skip
        self.sink.write("dlq", pa.Table.from_pylist(rows, schema=DLQ_SCHEMA))

    def _flush(self) -> None:
        """Make every buffered row durable, then commit the offsets after them."""
        assert self._consumer is not None
        self.sink.flush()
        if self._pending:
            pending, self._pending = self._pending, {}
            try:
                self._consumer.commit(pending)
            except BusError as exc:
                # e.g. the member was dropped while the broker was away; the rows are
                # durable, and reading them again rewrites the same files
                logger.warning("sink %s: %s; records since the last commit will be written "
                               "again, to the same files", self.sink.name, exc)  # fmt: skip
                self.stats.failed_commits += 1
            else:
                self.stats.commits += 1

    def _assigned(self, partitions: list[TopicPartition]) -> None:
        self.last_input = time.monotonic()  # idle time counts from here
        self._assigned_once = True
        assert self._consumer is not None
        try:
            committed = self._consumer.committed(partitions, timeout=_COMMITTED_TIMEOUT_S)
        except BusError as exc:  # the stall check then counts from the log start
            logger.debug("sink %s: committed offsets not read: %s", self.sink.name, exc)
            return
        self._resumed.update({tp: offset for tp, offset in committed.items() if offset >= 0})

    def _revoked(self, partitions: list[TopicPartition]) -> None:
        self._flush()
        for tp in partitions:
            self._resumed.pop(tp, None)
        logger.log(
            self._info,
            "sink %s: revoked %s", self.sink.name, ", ".join(f"{p.topic}[{p.partition}]"
                                                             for p in partitions)
        )  # fmt: skip


def _table_columns(table: str, data: pa.RecordBatch | pa.Table) -> pa.RecordBatch | pa.Table:
    """``data`` with the columns of ``table`` only.

    On the in-memory bus trades and quotes carry the feed's columns (a file's
    lines, a live feed's extra fields); a table lacking some of the columns is
    left to the sink to refuse, naming them.
    """
    schema = TABLES.get(table)
    names = data.schema.names
    if schema is None or names == schema.names or not set(schema.names) <= set(names):
        return data
    return data.select(schema.names)
