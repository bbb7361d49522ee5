"""A file replay's segments: the same lines on every run, whatever the batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from marketpulse.feeds.base import FeedBatch
from marketpulse.models import DeadLetter
from marketpulse.runtime.segments import Segments


def batch(lines: list[int], dead: tuple[int, ...] = ()) -> FeedBatch:
    data = pa.RecordBatch.from_pydict({"line": pa.array(lines, pa.int64())})
    letters = [DeadLetter(reason="parse", error="bad", value=b"x", line=n) for n in dead]
    return FeedBatch("trade", data, letters)


def run(segments: Segments, batches: list[FeedBatch]) -> tuple[list, list]:
    """(ended segments, (segment, lines) of each piece) over a replay."""
    ended, pieces = [], []
    for b in batches:
        for first, item in segments.split(b):
            if isinstance(item, FeedBatch):
                lines = item.data.column("line").to_pylist() + [d.line for d in item.dead]
                pieces.append((first, sorted(lines)))
            else:
                ended.append((first, item))
    last = segments.end()
    return ended + ([last] if last else []), pieces


@pytest.mark.parametrize("size", [1, 3, 7, 100])
def test_segments_do_not_depend_on_batch_boundaries(size):
    lines = list(range(2, 40))  # a CSV: line 1 is the header
    batches = [batch(lines[i : i + size]) for i in range(0, len(lines), size)]
    ended, pieces = run(Segments(lines=10), batches)
    assert ended == [(1, 10), (11, 20), (21, 30), (31, 39)]
    for first, piece in pieces:  # every piece lies in the segment it is tagged with
        assert all(first <= n <= first + 9 for n in piece)
    assert sorted(n for _, piece in pieces for n in piece) == lines


def test_dead_letters_go_with_the_segment_of_their_line():
    ended, pieces = run(Segments(lines=10), [batch([2, 3, 12], dead=(4, 11, 25)), batch([26])])
    assert ended == [(1, 10), (11, 20), (21, 26)]
    assert pieces == [(1, [2, 3, 4]), (11, [11, 12]), (21, [25]), (21, [26])]


def test_lines_left_out_skip_empty_segments():
    ended, _ = run(Segments(lines=10), [batch([2, 3]), batch([57, 58])])
    assert ended == [(1, 10), (51, 58)]


def test_a_paced_replay_also_ends_a_segment_by_age():
    now = np.array([0.0])
    segments = Segments(lines=100, max_age_s=5.0, clock=lambda: float(now[0]))
    ended = []
    for lines, at in [([2, 3], 0.0), ([4], 3.0), ([5, 6], 6.0), ([7], 7.0)]:
        now[0] = at
        ended += [(f, item) for f, item in segments.split(batch(lines))
                  if not isinstance(item, FeedBatch)]  # fmt: skip
    assert ended == [(1, 4)]
    assert segments.end() == (5, 7)
