"""How the process service runs (:class:`ProcessOptions`), what it did (:class:`ProcessStats`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from marketpulse.config import (
    COMMIT_INTERVAL,
    COMPRESSION,
    GUARANTEE,
    GUARANTEES,
    MAX_BATCH,
    OUTPUT_GRACE,
    QUIET_COMMIT_INTERVAL,
    STEP_TIMEOUT,
    STORE_TRADES,
    TRANSACTION_TIMEOUT,
)
from marketpulse.exceptions import ConfigError
from marketpulse.human import human_rate

__all__ = ["AT_LEAST_ONCE", "ProcessOptions", "ProcessStats"]
#: :attr:`ProcessOptions.guarantee`: outputs outside the transactions.
AT_LEAST_ONCE = "at-least-once"


@dataclass(frozen=True, slots=True)
class ProcessOptions:
    """How the process service runs.

    The timings' defaults are :mod:`marketpulse.config`'s (the ``[process]``
    settings: ``Settings.process`` has the same field names).

    Attributes:
        group: consumer group of the processors (instances share its partitions).
        instance: this instance's name, stable across restarts: it names the
            transactional id (a restart fences the crashed instance at once) and
            the static group membership (a restart takes its partitions back
            without a rebalance). ``None``: a random name, so a restart waits for
            the transaction timeout and the session timeout instead.
        commit_interval: seconds a transaction holding outputs may stay open
            while input keeps coming faster than it is handled (catching up).
            Otherwise outputs do not wait for it: they are committed as soon as
            the input at hand is handled (``read_committed`` readers see them
            then).
        quiet_commit_interval: seconds a transaction holding no outputs (only
            consumed offsets and changed state) may stay open while input keeps
            arriving; its work is otherwise committed with the next outputs, or
            when input pauses. Each commit makes the next transaction wait until
            the broker has written its markers (librdkafka retries the refused
            AddPartitionsToTxn after a fixed 20 ms) and costs the broker a marker
            per partition, so committing offsets alone often delays the outputs.
        output_grace: seconds outputs may wait, from the first output of a
            transaction, for more input before they are committed: the partitions
            of one produced request reach the consumer one by one, and the outputs
            they close then share one commit. Input that keeps arriving within
            it is handled; a poll that finds none commits at once, and so does
            the first poll after every partition with recent input has closed
            the bars the transaction holds. 20 ms: a producer's linger spreads
            the partitions of one moment over several fetches, several
            milliseconds apart, and a partition that misses the commit waits
            a whole commit longer (10 to 30 ms).
        max_batch: records consumed per poll at most.
        exit_when_idle: exit, committed, once no record arrived for this long
            (the bars the idle timeout closes by then are committed first).
        transaction_timeout: seconds after which the broker aborts a transaction
            of a crashed instance (when another instance takes over its partitions).
        compression: codec of the output records.
        step_timeout: seconds a transaction step (offsets, commit) may take
            before the producer counts as stuck and is replaced, its work redone.
        store_trades: send the trades the processor kept to the ``trades``
            topic (with the bars, in the transaction); off, that topic is
            neither required nor written.
        close_idle: close the windows of partitions without input by processing
            time (``ProcessorSettings.idle_timeout``); off for a replay at full
            speed, whose bars then depend on its input alone, however loaded the
            machine.
        guarantee: ``exactly-once`` (outputs, state and offsets in one
            transaction) or ``at-least-once`` (outputs sent at once, outside
            it; state and offsets committed together: see
            :mod:`marketpulse.runtime.process`).

    Raises:
        ConfigError: ``guarantee`` is neither.
    """

    group: str = "marketpulse-process"
    instance: str | None = None
    commit_interval: float = COMMIT_INTERVAL
    quiet_commit_interval: float = QUIET_COMMIT_INTERVAL
    output_grace: float = OUTPUT_GRACE
    max_batch: int = MAX_BATCH
    exit_when_idle: float | None = None
    transaction_timeout: float = TRANSACTION_TIMEOUT
    compression: str = COMPRESSION
    step_timeout: float = STEP_TIMEOUT
    store_trades: bool = STORE_TRADES
    close_idle: bool = True
    guarantee: str = GUARANTEE

    def __post_init__(self) -> None:
        if self.guarantee not in GUARANTEES:
            raise ConfigError(
                f"guarantee: expected one of {', '.join(GUARANTEES)}, got {self.guarantee!r}"
            )


@dataclass(slots=True)
class ProcessStats:
    """What the service has done since it started."""

    records: int = 0
    ticks: int = 0
    bars: int = 0
    indicators: int = 0
    alerts: int = 0
    dead: int = 0
    transactions: int = 0
    aborted: int = 0
    replaced: int = 0
    restored: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.started

    def line(self) -> str:
        """One line of figures for logs and the terminal."""
        rate = human_rate(self.records, self.elapsed)
        return (
            f"{self.records:,} records in ({rate}/s), {self.bars:,} bars, "
            f"{self.indicators:,} indicator rows, {self.alerts:,} alerts, {self.dead:,} dead "
            f"letters, {self.transactions:,} transactions ({self.aborted:,} aborted)"
            + (f", Kafka clients replaced {self.replaced:,}x" if self.replaced else "")
        )
