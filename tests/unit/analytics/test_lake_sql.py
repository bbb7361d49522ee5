from __future__ import annotations

import threading
from datetime import date
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
from marketpulse.exceptions import MarketPulseError
from marketpulse.sinks import TABLES, LakeSink, SourceRange
from marketpulse.sinks.lake import LAKE_SCHEMAS

MIDNIGHT = 1_699_920_000 * 1_000_000_000  # 2023-11-14 00:00:00 UTC
TABLE_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE",
    pa.binary(): "BLOB",
}


@pytest.mark.parametrize("table", list(TABLES))
def test_round_trip_through_the_sink_and_the_views(make_rows, tmp_path: Path, table: str) -> None:
    rows = make_rows(table, 6, start=MIDNIGHT - 3, step=1)
    with LakeSink(tmp_path) as sink:
        sink.write(table, rows.slice(0, 4))
        sink.write(table, rows.slice(4))
    got = query(tmp_path, f"SELECT * FROM {table}")  # noqa: S608 (table names are ours)
    assert got.column_names == LAKE_SCHEMAS[table].names + ["date"]
    expected = rows.cast(LAKE_SCHEMAS[table]).to_pylist()
    key = next(n for n in ("ts", "start") if n in rows.column_names)
    received = sorted(got.drop_columns(["date"]).to_pylist(), key=lambda r: r[key])
    assert received == expected
    dates = sorted(zip(got[key].to_pylist(), got["date"].to_pylist(), strict=True))
    assert [d for _, d in dates] == [date(2023, 11, 13)] * 3 + [date(2023, 11, 14)] * 3


def test_empty_lake_has_every_view_with_its_columns(tmp_path: Path) -> None:
    con = open_lake(tmp_path)
    for table, schema in LAKE_SCHEMAS.items():
        described = con.sql(f"DESCRIBE {table}").fetchall()
        columns = [(name, type_) for name, type_, *_ in described]
        assert columns == [(f.name, TABLE_TYPES[f.type]) for f in schema] + [("date", "DATE")]
        assert con.sql(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
    assert query(tmp_path, "SELECT * FROM trades").num_rows == 0


def test_views_pick_up_tables_written_after_opening(make_rows, tmp_path: Path) -> None:
    with Lake(tmp_path) as lake:
        assert lake.query("SELECT count(*) AS n FROM bars")["n"].to_pylist() == [0]
        with LakeSink(tmp_path) as sink:
            sink.write("bars", make_rows("bars", 5))
        assert lake.query("SELECT count(*) AS n FROM bars")["n"].to_pylist() == [5]
        with LakeSink(tmp_path) as sink:
            sink.write("bars", make_rows("bars", 5))
        assert lake.query("SELECT count(*) AS n FROM bars")["n"].to_pylist() == [10]


def test_date_filter_and_parameters(make_rows, tmp_path: Path) -> None:
    with LakeSink(tmp_path) as sink:
        sink.write("trades", make_rows("trades", 10, start=MIDNIGHT - 5, step=1))
    got = query(
        tmp_path,
        "SELECT count(*) AS n FROM trades WHERE date = $1 AND symbol = $2",
        [date(2023, 11, 14), "AAPL"],
    )
    assert got["n"].to_pylist() == [2]  # rows 5..9 are after midnight; 6 and 8 are AAPL
    explained = query(tmp_path, "EXPLAIN SELECT * FROM trades WHERE date = DATE '2023-11-14'")
    assert "Scanning Files: 1/2" in "".join(explained.column(1).to_pylist())


def test_files_without_a_newer_column_still_show_it(tmp_path: Path) -> None:
    old = pa.table({"symbol": ["AAPL"], "interval": ["1m"], "ts": [MIDNIGHT], "close": [1.5]})
    (tmp_path / "indicators" / "date=2023-11-14").mkdir(parents=True)
    pq.write_table(old, tmp_path / "indicators" / "date=2023-11-14" / "old.parquet")
    got = query(tmp_path, "SELECT close, sma_20, date FROM indicators")
    assert got.to_pylist() == [{"close": 1.5, "sma_20": None, "date": date(2023, 11, 14)}]


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
