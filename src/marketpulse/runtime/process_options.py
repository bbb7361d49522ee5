"""How the process service runs (:class:`ProcessOptions`), what it did (:class:`ProcessStats`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from marketpulse.config import COMPRESSION, GUARANTEES, ProcessSettings
from marketpulse.exceptions import ConfigError
from marketpulse.human import human_rate

if TYPE_CHECKING:
    from marketpulse.runtime.outputs import OutputCounts

__all__ = ["AT_LEAST_ONCE", "ProcessOptions", "ProcessStats"]
#: ``ProcessOptions.settings.guarantee``: outputs outside the transactions.
AT_LEAST_ONCE = "at-least-once"


@dataclass(frozen=True, slots=True)
class ProcessOptions:
    """How the process service runs: its ``[process]`` settings and what one service adds.

    Attributes:
        group: consumer group of the processors (instances share its partitions).
        instance: this instance's name, stable across restarts: it names the
            transactional id (a restart fences the crashed instance at once) and
            the static group membership (a restart takes its partitions back
            without a rebalance). ``None``: a random name, so a restart waits for
            the transaction timeout and the session timeout instead.
        exit_when_idle: exit, committed, once no record arrived for this long
            (the bars the idle timeout closes by then are committed first).
        compression: codec of the output records.
        close_idle: close the windows of partitions without input by processing
            time (``ProcessorSettings.idle_timeout``); off for a replay at full
            speed, whose bars then depend on its input alone, however loaded the
            machine.
        settings: the ``[process]`` settings (:class:`~marketpulse.config.ProcessSettings`):
            the commit timings, the batch size, the step and transaction
            timeouts, whether trades are stored, and the guarantee:
            ``exactly-once`` (outputs, state and offsets in one transaction) or
            ``at-least-once`` (outputs sent at once, outside it; state and
            offsets committed together: see :mod:`marketpulse.runtime.process`).

    Raises:
        ConfigError: ``settings.guarantee`` is neither.
    """

    group: str = "marketpulse-process"
    instance: str | None = None
    exit_when_idle: float | None = None
    compression: str = COMPRESSION
    close_idle: bool = True
    settings: ProcessSettings = field(default_factory=ProcessSettings)

    def __post_init__(self) -> None:
        if self.settings.guarantee not in GUARANTEES:
            raise ConfigError(
                f"guarantee: expected one of {', '.join(GUARANTEES)}, "
                f"got {self.settings.guarantee!r}"
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

    def committed(self, counts: OutputCounts) -> None:
        """Count the outputs of a committed transaction."""
        self.bars += counts.bars
        self.indicators += counts.indicators
        self.alerts += counts.alerts
        self.dead += counts.dead

    def line(self) -> str:
        """One line of figures for logs and the terminal."""
        rate = human_rate(self.records, self.elapsed)
        return (
            f"{self.records:,} records in ({rate}/s), {self.bars:,} bars, "
            f"{self.indicators:,} indicator rows, {self.alerts:,} alerts, {self.dead:,} dead "
            f"letters, {self.transactions:,} transactions ({self.aborted:,} aborted)"
            + (f", Kafka clients replaced {self.replaced:,}x" if self.replaced else "")
        )
