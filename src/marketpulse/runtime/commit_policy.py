"""The process service's open transaction: what it holds, when it is due, how it commits.

The service's loop polls, processes and sends; this object keeps what the open
Kafka transaction holds (the partitions it touched, the next offset of each
partition, whether it holds outputs, when the first of them went, the latest
end of the bars it holds, when it began) and decides from that when to commit
it, the way quix-streams' ``Checkpoint`` does (``expired()``, ``commit()``).
The rules are those of :class:`~marketpulse.runtime.process.ProcessOptions`:

* outputs are committed once the input at hand is handled: a poll found
  nothing, or their grace for more input is over;
* their grace (``output_grace``, from the first output) ends early on the first
  poll after every partition with recent input has closed the bars they hold;
* while polls come back full (a backlog), outputs have no grace: they are
  committed every ``commit_interval``, for throughput;
* a transaction holding no outputs (offsets and state only) waits for the next
  outputs, or ``max(commit_interval, quiet_commit_interval)``;
* whatever is open is committed when a poll finds no input.

At least once (``at_least_once``) the outputs are not in the transaction (they
were sent, outside it, as soon as they were made): it holds offsets and state
only, and is committed when a poll finds no input, or once it is
``max(commit_interval, quiet_commit_interval)`` old and holds outputs, the
last of them sent ``output_grace`` ago or more (the closes of one moment are
then all out, and the next are furthest away: a commit blocks the loop for a
few milliseconds), or at twice that age whatever the polls made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow.compute as pc

from marketpulse.bus.base import Consumer, TopicPartition, TransactionalProducer
from marketpulse.runtime.outputs import OutputCounts
from marketpulse.stream import Processor
from marketpulse.stream.output import Output

__all__ = ["PARTITIONS_KEY", "CommitPolicy", "PollWait"]

logger = logging.getLogger(__name__)

#: Seconds a poll waits for input when no outputs are waiting to be committed.
IDLE_POLL = 0.05
#: Key of the ``state`` record that holds the partition count of ``ticks`` when the
#: state was written (never a symbol: symbols are upper case).
PARTITIONS_KEY = b"__partitions__"


@dataclass(frozen=True, slots=True)
class PollWait:
    """How long the next poll may wait, and why.

    Attributes:
        seconds: the poll's timeout.
        grace: whether the open transaction's outputs are waiting out their
            grace for more input (``seconds`` is then what is left of it).
    """

    seconds: float
    grace: bool


class CommitPolicy:
    """The open transaction of a process service and the rules that commit it.

    Args:
        processor: the service's processor: it says whether bars are still
            closing and makes the ``state`` snapshot of a partition.
        state_topic: the ``state`` topic (co-partitioned with the input).
        commit_interval: see ``ProcessSettings.commit_interval``.
        quiet_commit_interval: see ``ProcessSettings.quiet_commit_interval``.
        output_grace: see ``ProcessSettings.output_grace``.
        max_batch: records per poll at most: a full poll means a backlog.
        step_timeout: seconds each commit step may take.
        clock: the monotonic clock (``time.monotonic``).
        at_least_once: the outputs are not in the transactions (see the module
            docstring).

    Attributes:
        next: the next offset to read of each owned partition that has one
            (restored from the group's committed offset, then advanced by
            what is consumed); lasts across transactions.
        touched: partitions whose offsets or state the open transaction changed.
        began: when the open transaction began (the clock's time).
        outputs: whether the open transaction holds outputs (not only offsets
            and state).
        outputs_at: when its first output was sent.
        closes_to: the latest end (ns) of the bars it holds.
    """

    def __init__(
        self,
        processor: Processor,
        state_topic: str,
        *,
        commit_interval: float,
        quiet_commit_interval: float,
        output_grace: float,
        max_batch: int,
        step_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        at_least_once: bool = False,
    ) -> None:
        self.processor = processor
        self.state_topic = state_topic
        self.commit_interval = commit_interval
        self.quiet_commit_interval = quiet_commit_interval
        self.output_grace = output_grace
        self.max_batch = max_batch
        self.step_timeout = step_timeout
        self.clock = clock
        self.at_least_once = at_least_once
        #: when the last output was sent (at least once)
        self.last_output_at = 0.0
        #: the partition count of the input, written with the state (0: not written)
        self.partitions = 0
        #: partitions whose count record a committed transaction holds since they
        #: were assigned here (it is written once an assignment, not every commit)
        self.counted: set[TopicPartition] = set()
        self.next: dict[TopicPartition, int] = {}
        #: the next offset of each owned partition as the last commit left it (the
        #: work up to it is visible: a run's drain waits for it, not for ``next``)
        self.committed: dict[TopicPartition, int] = {}
        self.touched: set[TopicPartition] = set()
        self.began = 0.0
        self.outputs = False
        self.outputs_at = 0.0
        self.closes_to = 0
        #: the rows of the outputs sent in the open transaction, and of those the
        #: last commit made visible (a service counts its outputs by them)
        self.pending = OutputCounts()
        self.committed_outputs = OutputCounts()

    # -- what the transaction holds -------------------------------------------------

    def begin(self, producer: TransactionalProducer) -> None:
        """Begin a transaction unless one is open."""
        if not producer.in_transaction:
            producer.begin()
            self.began = self.clock()
            self.outputs = False
            self.closes_to = 0
            self.pending = OutputCounts()  # a transaction not committed: its outputs never were

    def consumed(self, tp: TopicPartition, next_offset: int) -> None:
        """Record that a partition was consumed up to ``next_offset`` (excluded)."""
        self.next[tp] = next_offset
        self.touched.add(tp)

    def touch(self, tp: TopicPartition) -> None:
        """Record that a partition's state changed without input (bars closed by the clock)."""
        self.touched.add(tp)

    def sent(self, out: Output) -> None:
        """Record that ``out`` was sent in the open transaction."""
        self.pending.add(out)
        if out.bars.num_rows:
            self.closes_to = max(self.closes_to, pc.max(out.bars.column("bar_end")).as_py())
        if out.bars.num_rows or out.indicators.num_rows or out.alerts or out.dead:
            self.last_output_at = self.clock()
            if not self.outputs:
                self.outputs = True
                self.outputs_at = self.clock()

    def resume(self, tp: TopicPartition, committed: int) -> None:
        """Set where a restored partition resumes: ``committed`` (negative: none known)."""
        if committed >= 0:
            self.next[tp] = self.committed[tp] = committed
        else:
            self.next.pop(tp, None)
            self.committed.pop(tp, None)

    def rewound(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions went back to their last commit: the open transaction holds nothing of them."""
        self.touched.difference_update(partitions)

    def forget(self, tp: TopicPartition) -> None:
        """A partition left this instance: drop its offsets."""
        self.next.pop(tp, None)
        self.committed.pop(tp, None)
        self.touched.discard(tp)
        self.counted.discard(tp)

    def age(self, now: float) -> float:
        """Seconds since the open transaction began."""
        return now - self.began

    # -- when to commit ---------------------------------------------------------

    def backlog(self, records: int) -> bool:
        """Whether a poll that returned ``records`` came back full."""
        return records >= self.max_batch

    def wait(self, in_transaction: bool, backlog: bool, now: float) -> PollWait:
        """How long the next poll may wait for input.

        Outputs waiting to be committed wait only what is left of their grace
        for more input (the other partitions of the same moment), and not at
        all once no partition with recent input is yet to close their bars.
        During a backlog they have no grace.
        """
        grace = in_transaction and self.outputs and not backlog and not self.at_least_once
        if not grace:
            return PollWait(IDLE_POLL, False)
        seconds = max(self.outputs_at + self.output_grace - now, 0.0)
        if seconds and not self.processor.closing(self.closes_to, now):
            seconds = 0.0  # no partition is yet to close these bars
        return PollWait(seconds, True)

    def due(self, in_transaction: bool, now: float, records: int, wait: PollWait) -> bool:
        """Whether to commit after a poll, made with ``wait``, that returned ``records``.

        Outputs are committed once the input at hand is handled (their grace
        is over, or a poll found nothing), unless polls come back full (a
        backlog: then every ``commit_interval``, for throughput); offsets and
        state alone after ``quiet_commit_interval``. Whatever is open is
        committed when input pauses.
        """
        if not in_transaction:
            return False
        if records == 0:
            return True
        age = self.age(now)
        if self.at_least_once:
            interval = max(self.commit_interval, self.quiet_commit_interval)
            settled = self.outputs and now - self.last_output_at >= self.output_grace
            return age >= 2 * interval or (age >= interval and settled)
        if self.outputs:
            graced = wait.grace and (
                wait.seconds == 0.0 or now >= self.outputs_at + self.output_grace
            )
            return graced or (self.backlog(records) and age >= self.commit_interval)
        return age >= max(self.commit_interval, self.quiet_commit_interval)

    # -- committing -------------------------------------------------------------

    def commit(self, producer: TransactionalProducer, consumer: Consumer) -> bool:
        """Commit the open transaction: outputs, changed state, next offsets.

        Steps:

        1. Nothing open: nothing to commit.
        2. The offsets: the next offset of each partition the transaction
           touched (one restored without a committed offset has none).
        3. The offsets go to the transaction; while they travel to the group
           coordinator, the ``state`` snapshot of each touched partition is
           made and sent (both only need to be in the transaction before it
           commits): the symbols it changed, and the partition count of the
           input in the first transaction of the partition's assignment (the
           compacted topic keeps it).
        4. The transaction commits: outputs, state and offsets become visible
           together.
        5. The next transaction starts with nothing touched.

        A failed step raises (``TransactionAborted``, ``ProducerStuck``, ...)
        and leaves what the transaction held as it was, for the caller to
        redo from the last commit.

        Returns:
            Whether a transaction was committed.
        """
        # 1
        if not producer.in_transaction:
            return False
        # 2
        touched = sorted(self.touched)
        offsets = {tp: off for tp, off in self.next.items() if tp in self.touched}
        counting: list[TopicPartition] = []

        def send_state() -> None:
            for tp in touched:
                records = self.processor.checkpoint(tp.topic, tp.partition)
                if records and self.partitions and tp not in self.counted:
                    records.append((PARTITIONS_KEY, b"%d" % self.partitions))
                    counting.append(tp)
                producer.send_records(self.state_topic, records, tp.partition)

        # 3 and 4
        producer.commit(offsets, consumer, self.step_timeout, meanwhile=send_state)
        # 5
        self.committed.update(offsets)
        self.touched.clear()
        self.counted.update(counting)
        self.committed_outputs, self.pending = self.pending, OutputCounts()
        return True
