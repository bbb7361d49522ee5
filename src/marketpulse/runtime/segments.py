"""Segments of a replayed file: what makes a rerun of the same input rewrite, not add.

A file replay cuts its input into segments of consecutive lines, lines
``k * SEGMENT_LINES + 1`` to ``(k + 1) * SEGMENT_LINES``, the same on every
run of the input. On the in-memory bus, where offsets restart with every run
and cannot name files, the bounds of the segments travel in-band, as marks
(records of kind :data:`MARK_KIND`, the way Flink's checkpoint barriers
travel with the data): the produce service sends a mark to every ``ticks``
partition where a segment begins and where it ends; the process service
passes each mark on, in order, to the same partition of every output topic;
so every row on an output partition lies between the marks of the segment it
came from. A sink writes the rows of a partition under the segment begun
last there, and ends a segment once its end mark came on every partition it
reads; the lake then writes the segment's files under names made of the
input's identity (:func:`input_origin`) and the segment's lines.

A replay that runs to its end marks that too, before its last segment ends:
the process service then closes the partition's open windows (their bars
belong to the last segment), and a sink, once the last segment has ended
everywhere, removes what earlier replays of the input left that this one
did not write again (:meth:`~marketpulse.sinks.base.Sink.end_source`).
A paced replay (``--speed``) also ends a segment once it is ``max_age_s``
old, so that the lake follows it; such segments differ from run to run, and
the lake replaces their files by the lines they overlap instead of by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from marketpulse.alerts import Rule
from marketpulse.feeds.base import Feed, FeedBatch
from marketpulse.stream import ProcessorSettings
from marketpulse.stream.identity import output_origin

__all__ = [
    "MARK_KIND",
    "SEGMENT_LINES",
    "Mark",
    "Segments",
    "begin_mark",
    "end_mark",
    "input_origin",
    "read_marks",
    "source_end_mark",
]

#: Input lines per segment (about one lake file of trades).
SEGMENT_LINES = 2_097_152
#: The kind of the records that mark the bounds of segments on the bus.
MARK_KIND = "segment"
_MARK_SCHEMA = pa.schema([("first", pa.int64()), ("last", pa.int64())])


@dataclass(frozen=True, slots=True)
class Mark:
    """A bound of a segment: it begins (``last`` 0), it ends, or the input ends (``first`` 0)."""

    first: int
    last: int

    @property
    def begins(self) -> bool:
        """Whether the segment beginning at line ``first`` begins here."""
        return self.first > 0 and self.last == 0

    @property
    def source_ends(self) -> bool:
        """Whether the input ends here (the last segment ends next)."""
        return self.first == 0


def begin_mark(first: int) -> pa.Table:
    """The mark of the segment beginning at line ``first``."""
    return pa.table([[first], [0]], schema=_MARK_SCHEMA)


def end_mark(first: int, last: int) -> pa.Table:
    """The mark of the end of the segment of lines ``first``-``last``."""
    return pa.table([[first], [last]], schema=_MARK_SCHEMA)


def source_end_mark() -> pa.Table:
    """The mark of the input's end (a replay that ran to its end), before its last segment's."""
    return pa.table([[0], [0]], schema=_MARK_SCHEMA)


def read_marks(data: pa.Table | pa.RecordBatch) -> list[Mark]:
    """The marks of a batch of :data:`MARK_KIND` records, in order."""
    first, last = data.column("first").to_pylist(), data.column("last").to_pylist()
    return [Mark(f, n) for f, n in zip(first, last, strict=True)]


def input_origin(feed: Feed, processor: ProcessorSettings, rules: list[Rule]) -> str | None:
    """The identity of a replay's input and of the options that shape its rows (16 hex digits).

    ``None`` for a feed without one (a simulated or live market: no two runs
    read the same input). ``backfill --file`` names its files by the same
    identity (:func:`~marketpulse.stream.identity.output_origin`).
    """
    identity = getattr(feed, "identity", None)
    if identity is None:
        return None
    return output_origin(identity(), processor, rules)


class Segments:
    """Cuts a file feed's batches at segment boundaries.

    Args:
        lines: input lines per segment.
        max_age_s: also end a segment this many seconds after it began (paced
            replays); ``None``: by lines only.
        clock: monotonic clock in seconds.
    """

    def __init__(
        self,
        lines: int = SEGMENT_LINES,
        max_age_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lines = lines
        self.max_age_s = max_age_s
        self._clock = clock
        #: The open segment's first line; the last line seen in it.
        self.first = 1
        self.last = 0
        self._since: float | None = None

    def split(self, batch: FeedBatch) -> list[tuple[int, int | FeedBatch]]:
        """Cut ``batch`` at segment boundaries.

        Returns:
            in input order, ``(first, piece)`` for each piece of ``batch``
            (within the segment beginning at line ``first``) and, between
            them, ``(first, last)`` for each segment that ends there.
        """
        out: list[tuple[int, int | FeedBatch]] = []
        if self._since is None:
            self._since = self._clock()
        elif (
            self.max_age_s is not None
            and self.last >= self.first
            and self._clock() - self._since >= self.max_age_s
        ):
            out.append(self._end(self.last + 1))
        rows = batch.data
        lines = rows.column("line").to_numpy() if rows.num_rows else np.empty(0, np.int64)
        dead = batch.dead
        while rows.num_rows or dead:
            known = [int(lines[0])] if len(lines) else []
            known += [d.line for d in dead if d.line is not None]
            if known and self.last < self.first:  # nothing in the open segment yet
                self.first = max(self.first, (min(known) - 1) // self.lines * self.lines + 1)
            stop = (self.first - 1) // self.lines * self.lines + self.lines
            cut = int(np.searchsorted(lines, stop, side="right"))
            mine = [d for d in dead if d.line is None or d.line <= stop]
            dead = [d for d in dead if d.line is not None and d.line > stop]
            if cut or mine:
                seen = [int(lines[cut - 1])] if cut else []
                self.last = max(self.last, *seen, *(d.line or 0 for d in mine))
                out.append((self.first, replace(batch, data=rows.slice(0, cut), dead=mine)))
            rows, lines = rows.slice(cut), lines[cut:]
            if rows.num_rows or dead:
                out.append(self._end(stop + 1))
        return out

    def end(self) -> tuple[int, int] | None:
        """End the open segment (the input ended or the replay stops): its lines, if any."""
        if self.last < self.first:
            return None
        return self._end(self.last + 1)

    def _end(self, next_first: int) -> tuple[int, int]:
        ended = (self.first, next_first - 1)
        self.first, self._since = next_first, self._clock()
        return ended
