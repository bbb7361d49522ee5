"""Bounded retries with exponential backoff, for sinks whose storage can go away."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from marketpulse.sinks.exceptions import SinkUnavailableError, StorageLostError

__all__ = ["with_retries"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def with_retries(
    action: Callable[[], T],
    what: str,
    transient: tuple[type[BaseException], ...],
    budget_s: float,
    *,
    first_delay: float = 0.2,
    max_delay: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: Callable[[BaseException], None] | None = None,
    lost: str | None = None,
) -> T:
    """Call ``action`` until it succeeds, retrying ``transient`` errors for ``budget_s`` seconds.

    Delays double from ``first_delay`` up to ``max_delay``; the last attempt
    starts before the budget runs out. ``on_retry`` is called with the error of
    each failed attempt that is retried (sinks count them in their statistics).
    ``lost``: the storage's name when ``action`` stores rows of a running
    command, which then ends as a runtime failure, not as bad usage.

    Raises:
        SinkUnavailableError: every attempt failed with a transient error; the
            message says what was tried, how often and the last error
            (:class:`StorageLostError` when ``lost`` is given).
    """
    deadline = clock() + budget_s
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            return action()
        except transient as exc:
            remaining = deadline - clock()
            if remaining <= 0:
                message = (f"{what}: failed {attempt} time(s) over {budget_s:g} s; last error: "
                           f"{_one_line(exc)}")  # fmt: skip
                if lost is not None:
                    window = "retry window: setting storage_retry, MARKETPULSE_STORAGE_RETRY"
                    raise StorageLostError(f"{message} ({window})", lost) from exc
                raise SinkUnavailableError(message) from exc
            logger.warning("%s failed (attempt %d), retrying in %.1f s: %s",
                           what, attempt, min(delay, remaining), _one_line(exc))  # fmt: skip
            if on_retry is not None:
                on_retry(exc)
            sleep(min(delay, remaining))
            delay = min(delay * 2, max_delay)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
