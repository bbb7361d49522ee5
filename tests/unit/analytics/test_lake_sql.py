from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketpulse.analytics import (
    AnalyticsError,
    Lake,
    SQLError,
    open_lake,
    query,
)
from marketpulse.analytics.sql import view_schema
from marketpulse.exceptions import MarketPulseError
from marketpulse.sinks import TABLES, LakeSink, SourceRange
from marketpulse.sinks.lake_store import OldLayoutError

from ..conftest import build_rows

MIDNIGHT = 1_699_920_000 * 1_000_000_000  # 2023-11-14 00:00:00 UTC
NS_PER_S = 1_000_000_000
TABLE_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE",
    pa.binary(): "BLOB",
    pa.date32(): "DATE",
    pa.timestamp("ns", tz="UTC"): "TIMESTAMP WITH TIME ZONE",
    pa.map_(pa.string(), pa.float64()): "MAP(VARCHAR, DOUBLE)",
}
VIEWS = [*TABLES, "bars_with_indicators"]


@pytest.mark.parametrize("table", list(TABLES))
def test_round_trip_through_the_sink_and_the_views(make_rows, tmp_path: Path, table: str) -> None:
    rows = make_rows(table, 6, start=MIDNIGHT - 3_000, step=1_000)  # microseconds: SQL's unit
    with LakeSink(tmp_path) as sink:
        sink.write(table, rows.slice(0, 4))
        sink.write(table, rows.slice(4))
    got = query(tmp_path, f"SELECT * FROM {table}")  # noqa: S608 (table names are ours)
    assert got.column_names == TABLES[table].names + ["period"]
    assert got.column_names == view_schema(table).names
    key = next(n for n in ("ts", "bar_start") if n in rows.column_names)
    received = sorted(got.drop_columns(["period"]).to_pylist(), key=lambda r: r[key])
    for row in received:  # times are timestamps with time zone, in UTC
        assert row[key].tzinfo is not None and row[key].utcoffset().total_seconds() == 0
    expected = rows.cast(view_schema(table).remove(len(rows.schema))).to_pylist()
    assert received == expected
    periods = sorted(zip(got[key].to_pylist(), got["period"].to_pylist(), strict=True))
    assert [d for _, d in periods] == [date(2023, 11, 13)] * 3 + [date(2023, 11, 14)] * 3
    assert set(got["dataset"].to_pylist()) == {"test"}


def test_empty_lake_has_every_view_with_its_columns(tmp_path: Path) -> None:
    con = open_lake(tmp_path)
    for table in TABLES:
        described = con.sql(f"DESCRIBE {table}").fetchall()
        columns = [(name, type_) for name, type_, *_ in described]
        assert columns == [(f.name, TABLE_TYPES[f.type]) for f in view_schema(table)]
        assert con.sql(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
    for view in VIEWS:
        assert query(tmp_path, f"SELECT * FROM {view}").num_rows == 0  # noqa: S608


def test_no_view_column_needs_quoting(tmp_path: Path) -> None:
    con = open_lake(tmp_path)
    keywords = "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'"
    reserved = {row[0].lower() for row in con.sql(keywords).fetchall()}
    for view in VIEWS:
        names = [row[0] for row in con.sql(f"DESCRIBE {view}").fetchall()]
        assert names and not set(names) & reserved, view


def test_views_pick_up_tables_written_after_opening(make_rows, tmp_path: Path) -> None:
    with Lake(tmp_path) as lake:
        assert lake.query("SELECT count(*) AS n FROM bars")["n"].to_pylist() == [0]
        with LakeSink(tmp_path) as sink:
            sink.write("bars", make_rows("bars", 5))
        assert lake.query("SELECT count(*) AS n FROM bars")["n"].to_pylist() == [5]
        with LakeSink(tmp_path) as sink:
            sink.write("bars", make_rows("bars", 5))
        assert lake.query("SELECT count(*) AS n FROM bars")["n"].to_pylist() == [10]


def _with_dataset(rows: pa.Table, name: str) -> pa.Table:
    index = rows.schema.get_field_index("dataset")
    return rows.set_column(index, "dataset", pa.array([name] * rows.num_rows))


def test_partition_filters_and_parameters(make_rows, tmp_path: Path) -> None:
    with LakeSink(tmp_path) as sink:
        sink.write("trades", make_rows("trades", 10, start=MIDNIGHT - 5, step=1))
        sink.write("trades", _with_dataset(make_rows("trades", 7), "other"))
    got = query(
        tmp_path,
        "SELECT count(*) AS n FROM trades WHERE period = $1 AND symbol = $2 AND dataset = $3",
        [date(2023, 11, 14), "AAPL", "test"],
    )
    assert got["n"].to_pylist() == [2]  # rows 5..9 are after midnight; 6 and 8 are AAPL
    for where, scanned in [("period = DATE '2023-11-14'", "2/3"), ("dataset = 'other'", "1/3"),
                           ("dataset = 'test' AND period = DATE '2023-11-13'", "1/3")]:  # fmt: skip
        explained = query(tmp_path, f"EXPLAIN SELECT * FROM trades WHERE {where}")  # noqa: S608
        assert f"Scanning Files: {scanned}" in "".join(explained.column(1).to_pylist()), where


def test_times_are_timestamps_with_time_zone(make_rows, tmp_path: Path) -> None:
    with LakeSink(tmp_path) as sink:
        sink.write("bars", make_rows("bars", 90, step=60 * NS_PER_S))  # 01:00 to 02:29
    got = query(
        tmp_path,
        "SELECT time_bucket(INTERVAL 1 hour, bar_start) AS hour, count(*) AS n,"
        " any_value(typeof(bar_end)) AS type FROM bars"
        " WHERE bar_start >= TIMESTAMPTZ '2023-11-14 01:00:00+00' GROUP BY 1 ORDER BY 1",
    )
    kind = "TIMESTAMP WITH TIME ZONE"
    assert got.to_pylist() == [
        {"hour": datetime(2023, 11, 14, 1, tzinfo=UTC), "n": 60, "type": kind},
        {"hour": datetime(2023, 11, 14, 2, tzinfo=UTC), "n": 30, "type": kind},
    ]


def test_a_filter_on_time_skips_row_groups(make_rows, tmp_path: Path) -> None:
    with LakeSink(tmp_path, row_group_rows=1_000) as sink:  # 10 row groups of 1,000 s each
        for n in range(10):
            sink.write("trades", make_rows("trades", 1_000, start=MIDNIGHT + n * 1_000 * NS_PER_S))
    explained = query(tmp_path, "EXPLAIN ANALYZE SELECT count(*) FROM trades"
                                " WHERE ts >= TIMESTAMPTZ '2023-11-14 02:30:00+00'")  # fmt: skip
    plan = "".join(str(v) for c in explained.columns for v in c.to_pylist())
    assert "Row Groups Scanned: 1 / 10" in plan


def test_bars_with_indicators_joins_each_bar_with_its_own_indicators(tmp_path: Path) -> None:
    bars = build_rows("bars", 8, step=60 * NS_PER_S)
    indicators = build_rows("indicators", 8, step=60 * NS_PER_S)
    index = indicators.schema.get_field_index("sma_20")
    marked = indicators.set_column(index, "sma_20", pa.array([float(i) for i in range(8)]))
    # another dataset's indicators of the same symbols and bars, and a bar without indicators
    other = _with_dataset(indicators, "other").set_column(index, "sma_20", pa.array([-1.0] * 8))
    lone = build_rows("bars", 1, start=MIDNIGHT + 86_400 * NS_PER_S)
    with LakeSink(tmp_path) as sink:
        sink.write("bars", bars)
        sink.write("bars", lone)
        sink.write("indicators", marked.slice(0, 5))  # shuffled across files
        sink.write("indicators", other)
        sink.flush()
        sink.write("indicators", marked.slice(5))
    got = query(tmp_path, "SELECT * FROM bars_with_indicators ORDER BY bar_start")
    assert got.num_rows == 8
    assert got["sma_20"].to_pylist() == [float(i) for i in range(8)]
    assert set(got["dataset"].to_pylist()) == {"test"}
    assert got["close"].to_pylist() == bars["close"].to_pylist()
    assert {"session_vwap", "vwap", "period", "bar_end", "rsi_14"} <= set(got.column_names)
    key = ("dataset", "symbol", "timeframe", "bar_start")
    assert got.column_names[:4] == list(key)
    assert len(got.column_names) == len(set(got.column_names))


def _old_layout(root: Path) -> None:
    """A lake as MarketPulse wrote it before datasets: date=YYYY-MM-DD, int64 times."""
    directory = root / "bars" / "date=2023-11-14"
    directory.mkdir(parents=True)
    old = pa.table({"symbol": ["AAPL"], "interval": ["1m"], "start": [MIDNIGHT],
                    "end": [MIDNIGHT + 60 * NS_PER_S], "open": [1.0], "high": [2.0],
                    "low": [0.5], "close": [1.5], "volume": [10.0], "vwap": [1.2],
                    "trades": [3]})  # fmt: skip
    pq.write_table(old, directory / "part-x.parquet")


def test_an_old_layout_is_refused_with_how_to_convert_it(tmp_path: Path) -> None:
    _old_layout(tmp_path)
    message = (
        f"lake {tmp_path} uses the layout of an earlier MarketPulse; convert it with: "
        f"marketpulse lake migrate --lake {tmp_path}"
    )
    for opening in (lambda: query(tmp_path, "SELECT 1"), lambda: open_lake(tmp_path),
                    lambda: LakeSink(tmp_path)):  # fmt: skip
        with pytest.raises(OldLayoutError) as info:
            opening()
        assert str(info.value) == message
        assert isinstance(info.value, MarketPulseError)


def test_files_without_a_newer_column_still_show_it(tmp_path: Path) -> None:
    start = pa.array([MIDNIGHT], pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
    older = pa.table({"symbol": ["AAPL"], "bar_start": start, "bar_end": start, "close": [1.5]})
    directory = tmp_path / "indicators" / "dataset=d" / "timeframe=1m" / "period=2023-11-14"
    directory.mkdir(parents=True)
    pq.write_table(older, directory / "old.parquet")
    got = query(tmp_path, "SELECT close, sma_20, dataset, timeframe, period FROM indicators")
    assert got.to_pylist() == [{"close": 1.5, "sma_20": None, "dataset": "d", "timeframe": "1m",
                                "period": date(2023, 11, 14)}]  # fmt: skip


def test_sql_error_keeps_duckdb_message(tmp_path: Path) -> None:
    with pytest.raises(SQLError, match="nope") as info:
        query(tmp_path, "SELECT nope FROM trades")
    assert isinstance(info.value, MarketPulseError)
    with pytest.raises(SQLError, match="(?i)syntax"):
        query(tmp_path, "SELEC 1")


def test_missing_lake_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AnalyticsError, match="no lake"):
        query(tmp_path / "missing", "SELECT 1")


def test_statements_without_result(tmp_path: Path) -> None:
    with Lake(tmp_path) as lake:
        lake.query("CREATE TABLE t AS SELECT 1 AS x")
        assert lake.query("SELECT x FROM t")["x"].to_pylist() == [1]


def test_read_while_the_sink_writes(make_rows, tmp_path: Path) -> None:
    batches, per_batch = 40, 500
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with LakeSink(tmp_path) as sink:
                for i in range(batches):
                    rows = make_rows("trades", per_batch, start=MIDNIGHT + i * per_batch)
                    sink.write(
                        "trades", rows, SourceRange(0, i * per_batch, (i + 1) * per_batch - 1)
                    )
                    sink.flush()
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    counts = []
    with Lake(tmp_path) as lake:
        thread.start()
        while thread.is_alive():
            counts.append(lake.query("SELECT count(*) AS n FROM trades")["n"][0].as_py())
        thread.join()
        counts.append(lake.query("SELECT count(*) AS n FROM trades")["n"][0].as_py())
    assert errors == []
    assert all(n % per_batch == 0 for n in counts)  # whole files only
    assert counts == sorted(counts)
    assert counts[-1] == batches * per_batch


def test_sql_error_is_one_line_with_duckdbs_hint(tmp_path: Path) -> None:
    with pytest.raises(SQLError) as info:
        query(tmp_path, "SELECT * FROM nosuch")
    message = str(info.value)
    assert "\n" not in message
    assert "nosuch" in message and "Did you mean" in message  # the hint is kept, on the line
