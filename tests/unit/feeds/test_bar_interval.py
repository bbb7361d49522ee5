"""A bar file's interval comes from the file: the spacing of its bars, not a fixed 1d."""

import collections

import pyarrow as pa
import pytest

from marketpulse.feeds import FileReplay
from marketpulse.feeds.columns import infer_interval

from .conftest import DATA, KAGGLE_BARS

LEAN_MINUTE_BARS = DATA / "lean-2013-10-07" / "minute_bars.csv.gz"
MINUTE = 60 * 10**9


def timeframes(path, **options):
    counts = collections.Counter()
    for batch in FileReplay(path, **options).batches():
        counts.update(batch.data.column("timeframe").to_pylist())
    return counts


def test_lean_minute_bars_are_1m_bars_ending_a_minute_after_they_start():
    # the data's README: Lean's own 1-minute trade bars, timestamp = bar start
    counts = timeframes(LEAN_MINUTE_BARS)
    assert set(counts) == {"1m"} and sum(counts.values()) > 2000
    batch = next(iter(FileReplay(LEAN_MINUTE_BARS).batches())).data
    ends = pa.compute.subtract(batch.column("bar_end"), batch.column("bar_start"))
    assert set(ends.to_pylist()) == {MINUTE}


def test_kaggle_daily_bars_are_1d_bars():
    assert set(timeframes(KAGGLE_BARS)) == {"1d"}


def test_a_given_interval_wins_over_the_inferred_one():
    assert set(timeframes(LEAN_MINUTE_BARS, interval="5m")) == {"5m"}


@pytest.mark.parametrize(
    ("symbols", "minutes", "expected"),
    [
        # gaps of quiet minutes leave the closest spacing at one minute
        (["A", "A", "A", "B", "B"], [0, 1, 7, 0, 3], "1m"),
        # one symbol's bars interleaved with another's at the same times
        (["A", "B", "A", "B"], [0, 0, 5, 5], "5m"),
        # an hour and a half apart: the longest known interval within it
        (["A", "A"], [0, 90], "1h"),
        # one bar per symbol says nothing about the length
        (["A", "B"], [0, 1], "1d"),
    ],
)
def test_infer_interval_takes_the_closest_spacing_of_one_symbol(symbols, minutes, expected):
    start = pa.array([m * MINUTE for m in minutes], pa.int64())
    assert infer_interval(pa.array(symbols), start) == expected
