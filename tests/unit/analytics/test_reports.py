"""Reports over small lakes: which dataset and timeframe they read (the Kaggle figures are
checked in tests/integration/test_reports.py)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from marketpulse.analytics import AnalyticsError, Lake
from marketpulse.analytics.reports import ReportRange, lake_datasets, report
from marketpulse.sinks import LakeSink

MIDNIGHT = 1_699_920_000 * 1_000_000_000  # 2023-11-14 00:00:00 UTC
DAY = date(2023, 11, 14)
MINUTE = 60 * 1_000_000_000


def _bars(make_rows, dataset: str, timeframe: str, n: int, start: int, price: float) -> pa.Table:
    rows = make_rows("bars", n, start=start, step=MINUTE, symbols=("AAPL",))
    for name, values in {
        "dataset": [dataset] * n,
        "timeframe": [timeframe] * n,
        "open": [price + i for i in range(n)],
        "close": [price + i + 0.5 for i in range(n)],
        "high": [price + i + 1 for i in range(n)],
        "low": [price + i - 1 for i in range(n)],
        "volume": [10.0] * n,
    }.items():
        index = rows.schema.get_field_index(name)
        rows = rows.set_column(index, name, pa.array(values, rows.schema.field(name).type))
    return rows


@pytest.fixture
def lake(tmp_path, make_rows):
    with LakeSink(tmp_path) as sink:
        # dataset "sim": 1m and 5m bars across midnight; dataset "real": one 1d bar
        sink.write("bars", _bars(make_rows, "sim", "1m", 4, MIDNIGHT - 2 * MINUTE, 50.0))
        sink.write("bars", _bars(make_rows, "sim", "5m", 1, MIDNIGHT, 900.0))
        sink.write("bars", _bars(make_rows, "real", "1d", 1, MIDNIGHT, 400.0))
    with Lake(tmp_path) as opened:
        yield opened


def test_datasets_come_from_the_partitions(lake):
    assert lake_datasets(lake) == ["real", "sim"]


def test_several_datasets_and_none_chosen_is_refused(lake):
    with pytest.raises(AnalyticsError, match=r"holds 2 datasets \(real, sim\): choose one"):
        report(lake, "daily", ReportRange(DAY, DAY))


def test_an_intraday_dataset_is_read_at_its_smallest_timeframe_by_utc_day(lake):
    days = report(lake, "daily", ReportRange(date(2023, 11, 13), DAY, dataset="sim")).to_pylist()
    # the 5m bar (900) is never mixed in; the 1m bars split at midnight UTC
    assert [(d["date"], d["open"], d["close"], d["bars"]) for d in days] == [
        (date(2023, 11, 13), 50.0, 51.5, 2),
        (DAY, 52.0, 53.5, 2),
    ]


def test_a_daily_dataset_is_read_at_1d(lake):
    (day,) = report(lake, "daily", ReportRange(DAY, DAY, dataset="real")).to_pylist()
    assert (day["date"], day["open"], day["close"], day["bars"]) == (DAY, 400.0, 400.5, 1)


def test_a_range_without_bars_of_the_dataset_is_named(lake):
    # the decade's partition holds the day; its 1d bars do not
    with pytest.raises(AnalyticsError, match="no 1d bars between 2023-11-13 and 2023-11-13 in "
                                             "dataset real"):  # fmt: skip
        report(lake, "daily", ReportRange(date(2023, 11, 13), date(2023, 11, 13), dataset="real"))
