"""Runtime failures as the user reads them: one line saying what failed, was stored, was not.

A :class:`~marketpulse.exceptions.RunFailure` ends a command that ran (exit
code 1, after its summary), unlike bad usage (exit code 2) or a bug
(``internal error:``). When storage failed, the line names the storage and
counts, per table it stores, the rows stored and those the pipeline made but
did not store.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from typing import TYPE_CHECKING

from marketpulse.exceptions import RunFailure

if TYPE_CHECKING:
    from marketpulse.runtime import MetricsSnapshot

__all__ = ["failure_line", "made_by", "os_failure"]

#: How the summary names each table's rows.
_NAMES = {"trades": "trades", "quotes": "quotes", "bars": "bars", "indicators": "indicator rows",
          "alerts": "alerts", "dlq": "DLQ rows", "custom": "custom rows"}  # fmt: skip
#: Errors of the machine, not of MarketPulse: they end a command as runtime failures.
_ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def made_by(snapshot: MetricsSnapshot) -> dict[str, int]:
    """The rows a pipeline made, per table, from its final figures (those it counts)."""
    return {"bars": snapshot.bars, "indicators": snapshot.indicator_rows,
            "alerts": snapshot.alerts, "dlq": snapshot.dlq}  # fmt: skip


def failure_line(failure: RunFailure, made: Mapping[str, int]) -> str:
    """Return ``failure``'s message with what its storage stored and did not store.

    Args:
        failure: what ended the command.
        made: rows the command had for each table (made, or read from the bus):
            those beyond what was stored are named as not stored.
    """
    # here, not at the top: the sinks package loads pyarrow, which `--help` must not
    from marketpulse.sinks.exceptions import StoreFailedError

    if not isinstance(failure, StoreFailedError) or failure.stored is None:
        return str(failure)
    stored = ", ".join(f"{_NAMES.get(t, t)} {n:,}" for t, n in failure.stored.items() if n)
    lost = ", ".join(
        f"{_NAMES[t]} {made[t] - n:,} of {made[t]:,}"
        for t, n in failure.stored.items()
        if t in made and made[t] > n
    )
    line = f"{failure}; stored in {failure.storage}: {stored or 'nothing'}"
    return f"{line}; not stored: {lost}" if lost else line


def os_failure(exc: BaseException) -> str | None:
    """Return the one line of an error of the machine (disk full, read-only), else ``None``.

    Such an error, where no part of MarketPulse said more, is not a bug: the
    line names the file when the system did.
    """
    if not isinstance(exc, OSError) or exc.errno not in _ENVIRONMENT_ERRNOS:
        return None
    where = f" writing {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or errno.errorcode.get(exc.errno, 'error')}{where}"
