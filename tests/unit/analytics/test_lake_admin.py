import threading
from datetime import date

import pyarrow as pa
import pytest

from marketpulse.analytics import Lake
from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.analytics.lake_admin import compact, list_lake
from marketpulse.sinks import LakeSink, SourceRange
from marketpulse.sinks.lake_store import LocalStore

from ..conftest import MIDNIGHT, NS_PER_S, build_rows


def _small_files(root):
    """Bars over two days in many small files: 2 source partitions by offsets, and unnamed."""
    sink = LakeSink(root, max_rows=10**9)
    offset = 0
    for n in range(12):
        rows = build_rows("bars", 50, start=MIDNIGHT + n * 8_000 * NS_PER_S, step=60 * NS_PER_S)
        if n % 3 == 2:
            sink.write("bars", rows)  # embedded: no offsets
        else:
            sink.write("bars", rows, SourceRange(n % 2, offset, offset + 49))
            offset += 50
        sink.flush()
    sink.close()


def _all_rows(root):
    with Lake(root) as lake:
        return lake.query("SELECT * FROM bars ORDER BY ALL")


def test_compaction_keeps_every_row_in_fewer_files(tmp_path):
    _small_files(tmp_path)
    store = LocalStore(tmp_path)
    before = list_lake(store, "bars")
    assert before.num_rows == 2 and sum(before.column("files").to_pylist()) >= 12
    expected = _all_rows(tmp_path)
    result = compact(store, ["bars"], before=date(2100, 1, 1))
    after = list_lake(store, "bars")
    assert result.files_after < result.files_before <= sum(before.column("files").to_pylist())
    assert sum(after.column("files").to_pylist()) < sum(before.column("files").to_pylist())
    assert after.column("rows").to_pylist() == before.column("rows").to_pylist()
    assert _all_rows(tmp_path).equals(expected)
    names = sorted(p.name for p in (tmp_path / "bars").rglob("*.parquet"))
    assert any(n.startswith("part-p000-") for n in names)
    assert any(n.startswith("part-compact-") for n in names)
    assert not (tmp_path / ".compact" / "bars").exists() or not any(
        (tmp_path / ".compact" / "bars").rglob("*.parquet")
    )
    # a Kafka sink that reads partition 0 again from its start (its group's offsets reset)
    # replaces the compacted file as it goes, and holds every row once when it is through
    again = LakeSink(tmp_path)
    for n, first in ((0, 0), (4, 150), (6, 200), (10, 350)):  # partition 0's writes above
        rows = build_rows("bars", 50, start=MIDNIGHT + n * 8_000 * NS_PER_S, step=60 * NS_PER_S)
        again.write("bars", rows, SourceRange(0, first, first + 49))
        again.flush()
    again.close()
    assert _all_rows(tmp_path).equals(expected)


def test_open_dates_are_left_alone(tmp_path):
    _small_files(tmp_path)
    result = compact(LocalStore(tmp_path), ["bars"], before=date(2023, 11, 14))
    assert result.partitions == 0


def test_readers_never_see_a_partition_half_compacted(tmp_path):
    _small_files(tmp_path)
    total = _all_rows(tmp_path).num_rows
    seen, errors, stop = [], [], threading.Event()

    def read():
        with Lake(tmp_path) as lake:
            while not stop.is_set():
                try:
                    seen.append(lake.query("SELECT count(*) AS n FROM bars")["n"][0].as_py())
                except Exception as exc:  # reported below
                    errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            _small_files(tmp_path / "x")  # unrelated work between compactions
            compact(LocalStore(tmp_path), ["bars"], before=date(2100, 1, 1), min_files=2)
    finally:
        stop.set()
        reader.join()
    assert not errors
    assert seen and set(seen) == {total}


def test_unknown_table_is_named(tmp_path):
    with pytest.raises(AnalyticsError, match="unknown table 'ticks'"):
        list_lake(LocalStore(tmp_path), "ticks")


def test_listing_counts_rows_and_files(tmp_path):
    _small_files(tmp_path)
    listing = list_lake(LocalStore(tmp_path))
    bars = listing.filter(pa.compute.equal(listing["table"], "bars")).to_pylist()[0]
    assert bars["rows"] == 600 and bars["files"] >= 12 and bars["partitions"] == 2
    assert bars["bytes"] == sum(p.stat().st_size for p in (tmp_path / "bars").rglob("*.parquet"))
    assert bars["dataset"] == "test"
    assert (bars["first_period"], bars["last_period"]) == (date(2023, 11, 14), date(2023, 11, 15))
    empty = listing.filter(pa.compute.equal(listing["table"], "quotes")).to_pylist()
    assert empty == [{"table": "quotes", "dataset": None, "partitions": 0, "first_period": None,
                      "last_period": None, "files": 0, "rows": 0, "bytes": 0}]  # fmt: skip


def test_listing_shows_each_dataset_and_partition(tmp_path):
    rows = build_rows("trades", 4)
    other = rows.set_column(6, "dataset", pa.array(["other"] * 4))
    with LakeSink(tmp_path) as sink:
        sink.write("trades", rows)
        sink.write("trades", other.slice(0, 3))
        sink.write("bars", build_rows("bars", 2))
    listing = list_lake(LocalStore(tmp_path))
    trades = [(r["dataset"], r["rows"]) for r in listing.to_pylist() if r["table"] == "trades"]
    assert trades == [("other", 3), ("test", 4)]
    parts = list_lake(LocalStore(tmp_path), "bars").to_pylist()
    assert [(p["dataset"], p["timeframe"], p["period"], p["rows"]) for p in parts] == [
        ("test", "1m", date(2023, 11, 14), 2)
    ]


def test_a_decade_of_daily_bars_is_compacted_once_it_is_over(tmp_path):
    day = 86_400 * NS_PER_S
    for _ in range(2):  # two runs: two files in each decade's partition
        with LakeSink(tmp_path) as sink:
            for first in (10_957 * day, 18_262 * day):  # 2000-01-01, 2020-01-01
                rows = build_rows("bars", 30, start=first, step=day)
                sink.write("bars", rows.set_column(1, "timeframe", pa.array(["1d"] * 30)))
    result = compact(LocalStore(tmp_path), ["bars"], before=date(2023, 1, 1))
    files = {p["period"]: p["files"] for p in list_lake(LocalStore(tmp_path), "bars").to_pylist()}
    assert result.partitions == 1
    assert files == {date(2000, 1, 1): 1, date(2020, 1, 1): 2}  # the 2020s are not over
