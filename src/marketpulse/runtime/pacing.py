"""Replay pacing: feed batches let through at a multiple of their event-time pace."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from marketpulse.feeds.base import FeedBatch

__all__ = ["paced"]


def paced(
    batches: Iterator[FeedBatch],
    speed: float | None,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[FeedBatch]:
    """Yield feed batches at ``speed`` times the pace of their event times.

    Waits are ``stop.wait(seconds)``, so setting ``stop`` ends them at once;
    ``clock`` is the wall clock the pace follows (tests pass a fake one).
    """
    if speed is None:
        yield from batches
        return
    origin: tuple[float, int] | None = None
    done_before = 0
    for batch in batches:
        column = "bar_start" if batch.kind == "bar" else "ts"
        ts = batch.data.column(column).to_numpy(zero_copy_only=False).astype(np.int64)
        if len(ts) == 0:
            yield batch
            continue
        if origin is None:
            origin = (clock(), int(ts[0]))
        due = origin[0] + (ts - origin[1]) / 1e9 / speed
        # slices of at most 50 ms of wall time each
        cuts = np.flatnonzero(np.diff(np.floor((due - due[0]) / 0.05)) > 0) + 1
        bounds = [0, *cuts.tolist(), len(ts)]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            wait = due[lo] - clock()
            if wait > 0 and stop.wait(wait):
                return
            # progress moves through the batch with the rows actually replayed
            done = done_before + (batch.done - done_before) * hi // len(ts)
            yield FeedBatch(
                batch.kind, batch.data.slice(lo, hi - lo), batch.dead if lo == 0 else [], done,
                batch.total,
            )  # fmt: skip
        done_before = batch.done
