from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketpulse.models import STORED_TIME, TRADE_SCHEMA
from marketpulse.sinks import TABLES, LakeSink, Sink, SourceRange
from marketpulse.sinks import lake as sink_module
from marketpulse.sinks import lake_store as lake_module
from marketpulse.sinks.exceptions import StorageFullError
from marketpulse.sinks.lake_format import LAKE_SCHEMAS
from marketpulse.testing import ManualClock

MIDNIGHT = 1_699_920_000 * 1_000_000_000  # 2023-11-14 00:00:00 UTC
NS_PER_S = 1_000_000_000


def files(root: Path, table: str) -> list[Path]:
    return sorted((root / table).rglob("*.parquet"))


def partition(path: Path, root: Path) -> str:
    """The partition directory of a file, below its table's directory."""
    return str(path.parent.relative_to(root).relative_to(path.relative_to(root).parts[0]))


def ns(column: pa.ChunkedArray) -> list[int]:
    return column.cast(pa.int64()).to_pylist()


def read(root: Path, table: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in files(root, table)])


def test_is_a_sink(tmp_path: Path) -> None:
    assert isinstance(LakeSink(tmp_path), Sink)
    assert LakeSink.name == "lake"


def test_unknown_table_is_an_error(make_rows, tmp_path: Path) -> None:
    with LakeSink(tmp_path) as sink, pytest.raises(ValueError, match="unknown table 'ticks'"):
        sink.write("ticks", make_rows("trades", 3))


def test_missing_columns_are_an_error(make_rows, tmp_path: Path) -> None:
    with LakeSink(tmp_path) as sink, pytest.raises(ValueError, match="missing columns price"):
        sink.write("trades", make_rows("trades", 3).drop_columns(["price"]))


@pytest.mark.parametrize("table", list(TABLES))
def test_files_hold_the_lake_schema_without_the_partition_columns(
    make_rows, tmp_path: Path, table: str
) -> None:
    rows = make_rows(table, 10)
    with LakeSink(tmp_path) as sink:
        sink.write(table, rows)
    [path] = files(tmp_path, table)
    by_bar = "timeframe" in TABLES[table].names
    expected = "dataset=test/timeframe=1m/period=2023-11-14" if by_bar else (
        "dataset=test/period=2023-11-14")  # fmt: skip
    assert partition(path, tmp_path) == expected
    stored = pq.read_table(path)
    assert stored.schema.remove_metadata() == LAKE_SCHEMAS[table]
    assert not {"dataset", "timeframe", "period"} & set(stored.column_names)
    assert stored.num_rows == 10
    times = [f.name for f in stored.schema if f.name in ("ts", "bar_start", "bar_end")]
    assert times and all(stored.schema.field(n).type == STORED_TIME for n in times)
    for name in times:  # the in-flight nanoseconds, unchanged
        assert sorted(ns(stored[name])) == sorted(rows[name].to_pylist())


def test_trades_extra_columns_dropped_and_symbol_stored_as_string(make_rows, tmp_path: Path):
    rows = make_rows("trades", 4).append_column("line", pa.array([2, 3, 4, 5], pa.int64()))
    assert rows.schema.field("symbol").type == TRADE_SCHEMA.field("symbol").type
    with LakeSink(tmp_path) as sink:
        sink.write("trades", rows.to_batches()[0])  # a RecordBatch is accepted too
    stored = read(tmp_path, "trades")
    assert stored.column_names == [n for n in TRADE_SCHEMA.names if n != "dataset"]
    assert stored.schema.field("symbol").type == pa.string()
    assert sorted(stored["symbol"].to_pylist()) == ["AAPL", "AAPL", "MSFT", "MSFT"]


@pytest.mark.parametrize(
    ("table", "column"),
    [("trades", "ts"), ("quotes", "ts"), ("bars", "bar_start"), ("indicators", "bar_start"),
     ("alerts", "bar_start"), ("dlq", "ts")],
)  # fmt: skip
def test_rows_straddling_midnight_go_to_two_utc_days(
    make_rows, tmp_path: Path, table: str, column: str
) -> None:
    # Four rows, one nanosecond apart, around midnight: two on each side.
    rows = make_rows(table, 4, start=MIDNIGHT - 2, step=1)
    if "bar_end" in rows.column_names:  # the partition follows the bar's start, not its end
        index = rows.schema.get_field_index("bar_end")
        rows = rows.set_column(index, "bar_end", pa.array([MIDNIGHT + 60 * NS_PER_S] * 4))
    with LakeSink(tmp_path) as sink:
        sink.write(table, rows)
    found = {p.parent.name: ns(pq.read_table(p)[column]) for p in files(tmp_path, table)}
    assert found == {
        "period=2023-11-13": [MIDNIGHT - 2, MIDNIGHT - 1],
        "period=2023-11-14": [MIDNIGHT, MIDNIGHT + 1],
    }


def test_daily_bars_go_to_the_partition_of_their_decade(make_rows, tmp_path: Path) -> None:
    # daily bars of 1965 to 2021 (one every 7 days, as in a weekly sample) and one 1m bar
    day = 86_400 * NS_PER_S
    first = -1_826 * day  # 1965-01-01
    count = (18_993 + 1_826) // 7  # to 2022-01-01
    daily = make_rows("bars", count, start=first, step=7 * day)
    daily = daily.set_column(1, "timeframe", pa.array(["1d"] * count))
    with LakeSink(tmp_path) as sink:
        sink.write("bars", daily)
        sink.write("bars", make_rows("bars", 3))
    periods = {
        partition(p, tmp_path): pq.read_metadata(p).num_rows for p in files(tmp_path, "bars")
    }
    decades = {f"dataset=test/timeframe=1d/period={y}-01-01" for y in range(1960, 2030, 10)}
    assert set(periods) == decades | {"dataset=test/timeframe=1m/period=2023-11-14"}
    assert sum(periods.values()) == count + 3
    for path in files(tmp_path, "bars"):  # every bar lies in its partition's period
        start = pq.read_table(path)["bar_start"].to_pylist()
        low = int(path.parent.name.removeprefix("period=")[:4])
        if "timeframe=1d" in str(path):
            assert all(low <= t.year < low + 10 for t in start)


def test_datasets_never_share_a_file(make_rows, tmp_path: Path) -> None:
    rows = make_rows("trades", 6)
    rows = rows.set_column(6, "dataset", pa.array(["lean", "sim", None] * 2))
    with LakeSink(tmp_path) as sink:
        sink.write("trades", rows)
    found = {partition(p, tmp_path): ns(pq.read_table(p)["ts"]) for p in files(tmp_path, "trades")}
    ts = rows["ts"].to_pylist()
    # a row a producer did not stamp is kept, under "unknown"
    assert found == {
        "dataset=lean/period=2023-11-14": ts[0::3],
        "dataset=sim/period=2023-11-14": ts[1::3],
        "dataset=unknown/period=2023-11-14": ts[2::3],
    }


@pytest.mark.parametrize("name", ["../etc", "", "a/b", "x" * 65, ".hidden"])
def test_a_dataset_that_cannot_be_a_directory_is_refused(make_rows, tmp_path, name) -> None:
    rows = make_rows("bars", 2).set_column(11, "dataset", pa.array([name, "ok"]))
    sink = LakeSink(tmp_path)
    with pytest.raises(ValueError, match="cannot name a lake partition"):
        sink.write("bars", rows)
        sink.flush()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_null_time_goes_to_the_current_date(make_rows, tmp_path: Path) -> None:
    rows = make_rows("dlq", 2)
    rows = rows.set_column(0, "ts", pa.array([None, MIDNIGHT], pa.int64()))
    with LakeSink(tmp_path) as sink:
        sink.write("dlq", rows)
    dates = {p.parent.name for p in files(tmp_path, "dlq")}
    assert "period=2023-11-14" in dates
    assert len(dates) == 2


def test_flush_by_size(make_rows, tmp_path: Path) -> None:
    sink = LakeSink(tmp_path, max_rows=100, max_age_s=3600)
    sink.write("bars", make_rows("bars", 60))
    assert files(tmp_path, "bars") == []
    assert sink.stats.buffered["bars"] == 60
    sink.write("bars", make_rows("bars", 60, start=MIDNIGHT + 7200 * NS_PER_S))
    assert len(files(tmp_path, "bars")) == 1
    assert read(tmp_path, "bars").num_rows == 120
    assert sink.stats.buffered["bars"] == 0
    sink.close()


def test_flush_by_age(make_rows, tmp_path: Path) -> None:
    clock = ManualClock()
    sink = LakeSink(tmp_path, max_rows=1_000_000, max_age_s=5.0, clock=clock)
    clock.now = 100.0
    sink.write("trades", make_rows("trades", 5))
    clock.now = 103.0
    sink.write("alerts", make_rows("alerts", 5))
    assert not sink.due(104.9)
    assert files(tmp_path, "trades") == []
    clock.now = 105.0
    assert sink.due()  # the oldest buffered row has waited 5 s
    sink.flush()  # as the runners do when due: every table
    assert len(files(tmp_path, "trades")) == 1
    assert len(files(tmp_path, "alerts")) == 1
    assert not sink.due(1000.0)
    clock.now = 200.0
    sink.write("trades", make_rows("trades", 5))
    assert not sink.due(204.9)
    assert sink.due(205.0)


def test_one_file_per_date_per_flush(make_rows, tmp_path: Path) -> None:
    with LakeSink(tmp_path) as sink:
        for i in range(10):  # ten writes, the last five after midnight
            start = MIDNIGHT + (i - 5) * 60 * NS_PER_S
            sink.write("trades", make_rows("trades", 100, start=start, step=1000))
    by_date = {p.parent.name: pq.read_metadata(p).num_rows for p in files(tmp_path, "trades")}
    assert by_date == {"period=2023-11-13": 500, "period=2023-11-14": 500}


def test_bars_grouped_by_symbol_in_arrival_order_and_trades_kept_in_arrival_order(
    make_rows, tmp_path: Path
) -> None:
    ts = [5, 1, 4, 2, 3, 0]
    trades = make_rows("trades", 6, symbols=("MSFT", "AAPL"))
    trades = trades.set_column(1, "ts", pa.array([MIDNIGHT + t for t in ts], pa.int64()))
    bars = make_rows("bars", 6, symbols=("MSFT", "AAPL"))
    bars = bars.set_column(2, "bar_start", pa.array([MIDNIGHT + t for t in ts], pa.int64()))
    with LakeSink(tmp_path) as sink:
        sink.write("trades", trades)
        sink.write("bars", bars)
    stored = read(tmp_path, "trades")
    assert stored["symbol"].to_pylist() == trades["symbol"].to_pylist()
    assert [t - MIDNIGHT for t in ns(stored["ts"])] == ts
    stored = read(tmp_path, "bars")
    assert stored["symbol"].to_pylist() == ["AAPL"] * 3 + ["MSFT"] * 3
    assert [t - MIDNIGHT for t in ns(stored["bar_start"])] == [1, 2, 0, 5, 4, 3]


def test_rows_of_every_partition_are_grouped_by_symbol_in_arrival_order(
    make_rows, tmp_path: Path
) -> None:
    # 24 bars of two timeframes either side of midnight, symbols interleaved, times shuffled
    n = 24
    bars = make_rows("bars", n, symbols=("MSFT", "AAPL", "IBM"))
    starts = [MIDNIGHT + (-1 if i % 4 < 2 else 1) * (100 - 7 * i) * NS_PER_S for i in range(n)]
    bars = bars.set_column(2, "bar_start", pa.array(starts, pa.int64()))
    bars = bars.set_column(1, "timeframe", pa.array(["1m", "5m"] * (n // 2)))
    with LakeSink(tmp_path) as sink:
        sink.write("bars", bars)
    sent = bars.to_pylist()
    stored = {}
    for path in files(tmp_path, "bars"):
        timeframe = re.search(r"timeframe=(\w+)", str(path)).group(1)
        day_of = "before" if "2023-11-13" in str(path) else "after"
        stored[timeframe, day_of] = pq.read_table(path)
    assert len(stored) == 4  # two timeframes, two days
    reordered = 0
    for (timeframe, day_of), rows in stored.items():
        mine = [r for r in sent if r["timeframe"] == timeframe
                and (r["bar_start"] < MIDNIGHT) == (day_of == "before")]  # fmt: skip
        expected = sorted(mine, key=lambda r: r["symbol"])  # stable: arrival order kept
        assert rows["symbol"].to_pylist() == [r["symbol"] for r in expected]
        assert ns(rows["bar_start"]) == [r["bar_start"] for r in expected]
        reordered += rows["symbol"].to_pylist() != [r["symbol"] for r in mine]
    assert reordered  # the rows did not arrive grouped


def test_deterministic_names_per_source_partition(make_rows, tmp_path: Path) -> None:
    with LakeSink(tmp_path) as sink:
        sink.write("bars", make_rows("bars", 10), SourceRange(3, 10, 19))
        sink.write("bars", make_rows("bars", 10), SourceRange(3, 20, 29))
        sink.write("bars", make_rows("bars", 4), SourceRange(12, 0, 3))
    names = [p.name for p in files(tmp_path, "bars")]
    assert names == [
        "part-p003-000000000010-000000000029.parquet",
        "part-p012-000000000000-000000000003.parquet",
    ]


def test_names_without_source_are_unique(make_rows, tmp_path: Path) -> None:
    with LakeSink(tmp_path) as first, LakeSink(tmp_path) as second:
        for sink in (first, second):
            sink.write("bars", make_rows("bars", 2))
            sink.flush()
            sink.write("bars", make_rows("bars", 2))
            sink.flush()
    names = [p.name for p in files(tmp_path, "bars")]
    assert len(set(names)) == 4
    assert all(re.fullmatch(r"part-\d{8}T\d{6}Z-\d+-\d+-00000[12]\.parquet", n) for n in names)


def test_rewriting_the_same_offsets_is_idempotent(make_rows, tmp_path: Path) -> None:
    rows = make_rows("indicators", 50)
    for _ in range(2):  # a replay after a crash: same offsets, new sink
        with LakeSink(tmp_path) as sink:
            sink.write("indicators", rows.slice(0, 20), SourceRange(0, 100, 119))
            sink.write("indicators", rows.slice(20), SourceRange(0, 120, 149))
    assert [p.name for p in files(tmp_path, "indicators")] == [
        "part-p000-000000000100-000000000149.parquet"
    ]
    assert read(tmp_path, "indicators").num_rows == 50


def test_replay_with_other_flush_boundaries_leaves_no_duplicates(make_rows, tmp_path: Path):
    rows = make_rows("bars", 30)
    with LakeSink(tmp_path) as sink:  # flushed 0-9, crashed before committing
        sink.write("bars", rows.slice(0, 10), SourceRange(1, 0, 9))
    with LakeSink(tmp_path) as sink:  # the replay buffers more before its flush
        sink.write("bars", rows.slice(0, 10), SourceRange(1, 0, 9))
        sink.write("bars", rows.slice(10, 10), SourceRange(1, 10, 19))
    assert [p.name for p in files(tmp_path, "bars")] == [
        "part-p001-000000000000-000000000019.parquet"
    ]
    with LakeSink(tmp_path) as sink:  # a replay that flushes less, then reads on past the end
        sink.write("bars", rows.slice(0, 5), SourceRange(1, 0, 4))
        sink.flush()
        # the longer file went whole: kept, its offsets 0-4 would be stored twice by the
        # next file that reads on past its end (5-24 overlaps 0-19)
        assert [p.name for p in files(tmp_path, "bars")] == [
            "part-p001-000000000000-000000000004.parquet"
        ]
        sink.write("bars", rows.slice(5, 20), SourceRange(1, 5, 24))
    assert read(tmp_path, "bars").num_rows == 25
    assert [p.name for p in files(tmp_path, "bars")] == [
        "part-p001-000000000000-000000000004.parquet",
        "part-p001-000000000005-000000000024.parquet",
    ]


def test_temporary_file_is_hidden_from_parquet_globs(
    make_rows, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[list[str], list[str]]] = []
    real_replace = os.replace

    def inspecting_replace(src: str | Path, dst: str | Path) -> None:
        directory = Path(src).parent
        seen.append(
            (
                sorted(p.name for p in directory.glob("*.parquet")),
                sorted(os.listdir(directory)),
            )
        )
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", inspecting_replace)
    with LakeSink(tmp_path) as sink:
        sink.write("trades", make_rows("trades", 10), SourceRange(0, 0, 9))
    [(globbed, listed)] = seen
    assert globbed == []
    [tmp_name] = listed
    assert tmp_name.startswith(".") and not tmp_name.endswith(".parquet")
    assert [p.name for p in files(tmp_path, "trades")] == [
        "part-p000-000000000000-000000000009.parquet"
    ]
    assert [p.name for p in (tmp_path / "trades").rglob(".*")] == []


def test_failed_write_keeps_rows_buffered_and_no_temporary_file(
    make_rows, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    sink = LakeSink(tmp_path)
    sink.write("alerts", make_rows("alerts", 7), SourceRange(0, 0, 6))
    with monkeypatch.context() as patch:
        patch.setattr(lake_module.pq.ParquetWriter, "write_table", disk_full)
        with pytest.raises(StorageFullError, match="no space left on the lake.s disk at "):
            sink.flush()
    assert [p for p in (tmp_path / "alerts").rglob("*") if p.is_file()] == []
    assert sink.stats.buffered["alerts"] == 7
    sink.close()
    assert read(tmp_path, "alerts").num_rows == 7


def test_retry_after_a_partial_flush_rewrites_the_same_files(
    make_rows, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = lake_module.pq.ParquetWriter.write_table
    calls = []

    def fail_second(*args: object, **kwargs: object) -> None:
        calls.append(args[1])
        if len(calls) == 2:
            raise OSError(5, "I/O error")
        real_write(*args, **kwargs)

    sink = LakeSink(tmp_path)  # no source: names from the run id
    sink.write("trades", make_rows("trades", 4, start=MIDNIGHT - 2, step=1))
    with monkeypatch.context() as patch:
        patch.setattr(lake_module.pq.ParquetWriter, "write_table", fail_second)
        with pytest.raises(OSError):
            sink.flush()
    # a flush publishes all of its files or none, and leaves no temporary file behind
    assert len(files(tmp_path, "trades")) == 0
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    sink.close()
    assert len(files(tmp_path, "trades")) == 2
    assert read(tmp_path, "trades").num_rows == 4


def test_rows_are_written_ahead_as_row_groups_and_published_only_by_a_flush(
    make_rows, tmp_path: Path
) -> None:
    sink = LakeSink(tmp_path, max_rows=1_000, row_group_rows=10)
    for n in range(3):
        sink.write("bars", make_rows("bars", 6, start=MIDNIGHT + n * 60 * NS_PER_S))
    # 18 rows: the first 12 are in a row group already, under a hidden name only
    hidden = [p for p in (tmp_path / "bars").rglob(".*") if p.is_file()]
    assert len(hidden) == 1 and hidden[0].stat().st_size > 100  # a row group, no footer yet
    assert files(tmp_path, "bars") == []
    assert sink.stats.buffered["bars"] == 18
    sink.flush()
    [published] = files(tmp_path, "bars")
    assert pq.ParquetFile(published).metadata.num_row_groups == 2  # 12 rows, then the last 6
    assert read(tmp_path, "bars").num_rows == 18
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]


def test_a_failed_write_ahead_leaves_no_file_and_the_flush_writes_every_row(
    make_rows, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def io_error(*args: object, **kwargs: object) -> None:
        raise OSError(5, "I/O error")

    sink = LakeSink(tmp_path, max_rows=1_000, row_group_rows=10)
    sink.write("trades", make_rows("trades", 12))  # written ahead
    with monkeypatch.context() as patch:
        patch.setattr(lake_module.pq.ParquetWriter, "write_table", io_error)
        with pytest.raises(OSError):
            sink.write("trades", make_rows("trades", 12, start=MIDNIGHT + 100 * NS_PER_S))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    sink.close()
    assert read(tmp_path, "trades").num_rows == 24


def test_rows_of_many_dates_keep_few_files_open_and_each_date_gets_its_file(
    make_rows, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sink_module, "MAX_OPEN_FILES", 4)
    day = 86_400 * NS_PER_S
    sink = LakeSink(tmp_path, max_rows=10_000, row_group_rows=5)
    open_most = 0
    for n in range(14):  # 4 writes of one date, then one date per write: 11 dates
        start = MIDNIGHT + max(0, n - 3) * day
        sink.write("bars", make_rows("bars", 6, start=start, step=60 * NS_PER_S))
        hidden = [p for p in tmp_path.rglob(".*") if p.is_file()]
        open_most = max(open_most, len(hidden))
    assert open_most == 4  # written ahead until the limit, the other dates at the flush
    sink.close()
    dates = sorted(p.parent.name for p in files(tmp_path, "bars"))
    assert len(dates) == len(set(dates)) == 11
    assert read(tmp_path, "bars").num_rows == 84
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]


def test_row_groups_record_min_max_of_the_columns_that_prune(make_rows, tmp_path: Path):
    with LakeSink(tmp_path) as sink:
        sink.write("trades", make_rows("trades", 10, start=MIDNIGHT + 5 * NS_PER_S))
        sink.write("bars", make_rows("bars", 10))
    trades = pq.ParquetFile(files(tmp_path, "trades")[0]).metadata.row_group(0)
    by_name = {trades.column(i).path_in_schema: trades.column(i) for i in range(5)}
    ts = by_name["ts"].statistics
    assert ts.logical_type.type == "TIMESTAMP"
    assert (ts.min_raw, ts.max_raw) == (MIDNIGHT + 5 * NS_PER_S, MIDNIGHT + 14 * NS_PER_S)
    assert by_name["price"].statistics is None and by_name["exchange"].statistics is None
    bars = pq.ParquetFile(files(tmp_path, "bars")[0]).metadata.row_group(0)
    names = [bars.column(i).path_in_schema for i in range(bars.num_columns)]
    symbol = bars.column(names.index("symbol")).statistics
    assert (symbol.min, symbol.max) == ("AAPL", "MSFT")
    assert bars.column(names.index("close")).statistics is None


def test_stats(make_rows, tmp_path: Path) -> None:
    sink = LakeSink(tmp_path)
    sink.write("trades", make_rows("trades", 4, start=MIDNIGHT - 2, step=1))
    sink.write("bars", make_rows("bars", 3))
    assert sink.stats.rows["trades"] == 0
    none = dict.fromkeys(TABLES, 0)
    assert sink.stats.buffered == none | {"trades": 4, "bars": 3}
    sink.close()
    stats = sink.stats
    assert stats.rows == none | {"trades": 4, "bars": 3}
    assert stats.files == 3
    assert stats.flushes == 2
    written = files(tmp_path, "trades") + files(tmp_path, "bars")
    assert stats.bytes == sum(p.stat().st_size for p in written)


def test_close_flushes_and_later_writes_fail(make_rows, tmp_path: Path) -> None:
    sink = LakeSink(tmp_path)
    sink.write("dlq", make_rows("dlq", 2))
    sink.close()
    sink.close()
    assert read(tmp_path, "dlq").num_rows == 2
    with pytest.raises(ValueError, match="closed"):
        sink.write("dlq", make_rows("dlq", 2))


def test_empty_writes_make_no_files(make_rows, tmp_path: Path) -> None:
    with LakeSink(tmp_path) as sink:
        sink.write("bars", make_rows("bars", 0))
    assert not (tmp_path / "bars").exists()


def test_source_range_is_validated() -> None:
    with pytest.raises(ValueError):
        SourceRange(0, 10, 9)


def test_compression_is_a_choice(make_rows, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    with LakeSink(tmp_path, compression="lz4") as sink:
        sink.write("bars", make_rows("bars", 3))
    (path,) = files(tmp_path, "bars")
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "LZ4"
    with pytest.raises(ValueError, match="compression"):
        LakeSink(tmp_path, compression="brotli-ish")


def test_row_groups_written_ahead_start_their_writeback(make_rows, tmp_path: Path, monkeypatch):
    advised: list[tuple[str, int]] = []

    def advise(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((os.readlink(f"/proc/self/fd/{fd}"), advice))

    monkeypatch.setattr(os, "posix_fadvise", advise)
    with LakeSink(str(tmp_path), max_rows=100, row_group_rows=10) as sink:
        sink.write("trades", make_rows("trades", 25))  # one row group, ahead of the flush
        hidden = [path for path, _ in advised]
        assert len(hidden) == 1 and advised[0][1] == os.POSIX_FADV_DONTNEED
        assert Path(hidden[0]).exists() and Path(hidden[0]).name.startswith(".")
    (published,) = (tmp_path / "trades").rglob("*.parquet")
    assert pq.read_table(published).num_rows == 25


def test_a_refused_writeback_advice_costs_nothing(make_rows, tmp_path: Path, monkeypatch):
    def refuse(fd: int, offset: int, length: int, advice: int) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "posix_fadvise", refuse)
    with LakeSink(str(tmp_path), max_rows=100, row_group_rows=10) as sink:
        sink.write("trades", make_rows("trades", 25))
    (published,) = (tmp_path / "trades").rglob("*.parquet")
    assert pq.read_table(published).num_rows == 25
