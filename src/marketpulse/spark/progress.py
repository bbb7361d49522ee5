"""What the query did, in the log: Spark's progress events as one line every few seconds."""

from __future__ import annotations

import logging
import time

from pyspark.sql.streaming import StreamingQueryListener

__all__ = ["ProgressLog"]

logger = logging.getLogger("marketpulse.spark")

#: Seconds between two progress lines at least.
EVERY_S = 5.0


class ProgressLog(StreamingQueryListener):
    """Logs the micro-batches, ticks read and their rate since the last line; the query's end.

    Attributes:
        batches: micro-batches finished so far.
        ticks: ticks read so far.
    """

    def __init__(self, every_s: float = EVERY_S) -> None:
        self.every_s = every_s
        self.batches = 0
        self.ticks = 0
        self._last = time.monotonic()
        self._since = (0, 0)  # batches and ticks at the last line

    def onQueryStarted(self, event) -> None:  # noqa: ANN001, N802 - Spark's interface
        """Log the query's start (its id names its checkpoint's runs)."""
        logger.info("spark: query %s started (id %s)", event.name, event.id)

    def onQueryProgress(self, event) -> None:  # noqa: ANN001, N802 - Spark's interface
        """Count a finished micro-batch; log a line when the last is old enough."""
        progress = event.progress
        self.batches += 1
        self.ticks += int(progress.numInputRows)
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._line(now, progress.batchId, progress.batchDuration)

    def onQueryIdle(self, event) -> None:  # noqa: ANN001, N802 - Spark's interface
        """Nothing to log: no input, no line."""

    def onQueryTerminated(self, event) -> None:  # noqa: ANN001, N802 - Spark's interface
        """Log what the query read since the last line."""
        if self.batches > self._since[0]:
            self._line(time.monotonic(), None, None)

    def _line(self, now: float, batch: int | None, duration_ms: int | None) -> None:
        batches, ticks = self.batches - self._since[0], self.ticks - self._since[1]
        rate = ticks / max(now - self._last, 1e-9)
        last = f"; batch {batch} took {duration_ms / 1000:.2f} s" if batch is not None else ""
        logger.info("spark: %d micro-batches, %s ticks (%s/s)%s", batches, f"{ticks:,}",
                    f"{rate:,.0f}", last)  # fmt: skip
        self._last, self._since = now, (self.batches, self.ticks)
