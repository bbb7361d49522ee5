"""Times beyond int64 nanoseconds are read errors (dead letters), never wrapped values."""

import datetime as dt

import pyarrow as pa
import pytest

from marketpulse.feeds import FileReplay
from marketpulse.feeds.timestamps import TimestampParser

HEADER = "timestamp,symbol,price,size,exchange,condition,suspicious\n"
LAST_MS = (2**63 - 1) // 10**6 - 1  # the last whole millisecond (2262) with room for its fraction


@pytest.mark.parametrize(
    "values",
    [
        pa.array([dt.date(1, 1, 1)], pa.date32()),  # year 1: wrapped to 1754 before
        pa.array([dt.date(9999, 12, 31)], pa.date32()),
        pa.array([LAST_MS + 2], pa.int64()),  # milliseconds past 2262
        pa.array([-(LAST_MS + 2)], pa.int64()),
        pa.array([str(LAST_MS + 2)]),
        pa.array([9_999_999_999_999.0]),
        pa.array([1e300]),
        pa.array([float("inf")]),
    ],
)
def test_times_out_of_range_raise(values):
    with pytest.raises(ValueError):
        TimestampParser()(values)


def test_the_last_time_in_range_is_read():
    assert TimestampParser()(pa.array([LAST_MS], pa.int64())).to_pylist() == [LAST_MS * 10**6]
    day = dt.datetime(2262, 4, 10, tzinfo=dt.UTC)
    read = TimestampParser()(pa.array([day.date()], pa.date32())).to_pylist()
    assert read == [int(day.timestamp()) * 10**9]


def test_a_time_out_of_range_in_a_file_is_a_parse_dead_letter(tmp_path):
    path = tmp_path / "epoch.csv"
    path.write_text(
        HEADER + "1381132800464,SPY,167.41,100,P,,0\n"
        f"{LAST_MS + 2},SPY,167.41,100,P,,0\n"
        "1381132800465,SPY,167.42,100,P,,0\n"
    )
    batches = list(FileReplay(path).batches())
    rows = [r for b in batches for r in b.data.to_pylist()]
    dead = [d for b in batches for d in b.dead]
    assert [r["ts"] for r in rows] == [1381132800464 * 10**6, 1381132800465 * 10**6]
    assert [(d.reason, d.line) for d in dead] == [("parse", 3)]
    assert dead[0].error == f"timestamp: '{LAST_MS + 2}' is not a timestamp"
