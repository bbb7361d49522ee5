"""Datasets of a lake: listed with their rows and times, and dropped one at a time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from marketpulse.analytics import Lake, sql
from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.analytics.lake_datasets import drop_dataset, list_datasets
from marketpulse.sinks import LakeSink
from marketpulse.sinks.lake_store import LocalStore

from ..conftest import MIDNIGHT, NS_PER_S, build_rows


def _named(rows: pa.Table, dataset: str) -> pa.Table:
    index = rows.schema.get_field_index("dataset")
    return rows.set_column(index, "dataset", pa.array([dataset] * rows.num_rows))


def two_datasets(root) -> None:
    """``sim``: trades and bars over two days; ``lean``: bars and alerts."""
    with LakeSink(root) as sink:
        sink.write("trades", _named(build_rows("trades", 30, step=3600 * NS_PER_S), "sim"))
        sink.write("bars", _named(build_rows("bars", 5), "sim"))
        sink.write("bars", _named(build_rows("bars", 7, start=MIDNIGHT), "lean"))
        sink.write("alerts", _named(build_rows("alerts", 2, start=MIDNIGHT), "lean"))


def test_datasets_are_listed_with_rows_and_time_range(tmp_path) -> None:
    two_datasets(tmp_path)
    listing = list_datasets(LocalStore(tmp_path)).to_pylist()
    found = {(r["dataset"], r["table"]): (r["rows"], r["first"], r["last"]) for r in listing}
    one = datetime(2023, 11, 14, 1, tzinfo=UTC)
    assert found == {
        ("lean", "bars"): (7, datetime(2023, 11, 14, tzinfo=UTC),
                           datetime(2023, 11, 14, 0, 0, 6, tzinfo=UTC)),
        ("lean", "alerts"): (2, datetime(2023, 11, 14, tzinfo=UTC),
                             datetime(2023, 11, 14, 0, 0, 1, tzinfo=UTC)),
        ("sim", "trades"): (30, one, datetime(2023, 11, 15, 6, tzinfo=UTC)),
        ("sim", "bars"): (5, one, datetime(2023, 11, 14, 1, 0, 4, tzinfo=UTC)),
    }  # fmt: skip
    assert [(r["dataset"], r["table"]) for r in listing] == [
        ("lean", "bars"), ("lean", "alerts"), ("sim", "trades"), ("sim", "bars")
    ]  # fmt: skip


def test_drop_removes_one_dataset_from_every_table(tmp_path) -> None:
    two_datasets(tmp_path)
    result = drop_dataset(LocalStore(tmp_path), "sim")
    assert (result.tables, result.rows) == (2, 35)
    with Lake(tmp_path) as lake:
        left = lake.query("SELECT dataset, count(*) AS n FROM bars GROUP BY 1").to_pylist()
        trades = lake.query("SELECT count(*) AS n FROM trades")["n"].to_pylist()
    assert left == [{"dataset": "lean", "n": 7}] and trades == [0]
    assert {r["dataset"] for r in list_datasets(LocalStore(tmp_path)).to_pylist()} == {"lean"}
    assert not (tmp_path / ".drop").exists()


def test_dropping_an_unknown_dataset_names_the_known_ones(tmp_path) -> None:
    two_datasets(tmp_path)
    with pytest.raises(AnalyticsError, match=r"no dataset 'nope' \(its datasets: lean, sim\)"):
        drop_dataset(LocalStore(tmp_path), "nope")
    with Lake(tmp_path) as lake:
        assert lake.query("SELECT count(*) AS n FROM bars")["n"].to_pylist() == [12]


def test_readers_see_all_of_a_table_dataset_or_none_while_it_is_dropped(tmp_path) -> None:
    with LakeSink(tmp_path, max_rows=100) as sink:  # many files over many days
        for day in range(40):
            rows = build_rows("trades", 100, start=MIDNIGHT + day * 86_400 * NS_PER_S)
            sink.write("trades", _named(rows, "sim"))
    seen, errors, stop = [], [], threading.Event()

    def read() -> None:
        with Lake(tmp_path) as lake:
            while not stop.is_set():
                try:
                    seen.append(lake.query("SELECT count(*) AS n FROM trades")["n"][0].as_py())
                except Exception as exc:  # reported below
                    errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        drop_dataset(LocalStore(tmp_path), "sim")
    finally:
        stop.set()
        reader.join()
    assert not errors
    assert seen and set(seen) <= {4000, 0}


def test_a_reader_open_before_a_table_loses_its_last_files_sees_it_empty(tmp_path) -> None:
    with LakeSink(tmp_path) as sink:
        sink.write("trades", _named(build_rows("trades", 10, start=MIDNIGHT), "sim"))
    with Lake(tmp_path) as lake:
        assert lake.query("SELECT count(*) AS n FROM trades")["n"].to_pylist() == [10]
        drop_dataset(LocalStore(tmp_path), "sim")  # the table has no file left
        assert lake.query("SELECT count(*) AS n FROM trades")["n"].to_pylist() == [0]
        with LakeSink(tmp_path) as sink:  # and files that come back are seen again
            sink.write("trades", _named(build_rows("trades", 3, start=MIDNIGHT), "sim"))
        assert lake.query("SELECT count(*) AS n FROM trades")["n"].to_pylist() == [3]


def test_a_view_made_as_the_last_files_go_is_empty(tmp_path, monkeypatch) -> None:
    with LakeSink(tmp_path) as sink:
        sink.write("trades", _named(build_rows("trades", 10, start=MIDNIGHT), "sim"))
    drop_dataset(LocalStore(tmp_path), "sim")
    # the listing still saw files: they went before DuckDB bound the view's glob
    monkeypatch.setattr(sql, "_has_files", lambda store, table: table == "trades")
    with Lake(tmp_path) as lake:
        assert lake.query("SELECT count(*) AS n FROM trades")["n"].to_pylist() == [0]


def test_a_directory_that_goes_while_the_views_are_listed_is_listed_again(tmp_path, monkeypatch):
    with LakeSink(tmp_path) as sink:
        sink.write("trades", _named(build_rows("trades", 10, start=MIDNIGHT), "sim"))
    original, failed = Path.glob, []

    def glob(self, pattern):
        # the first listing of the trades table meets a partition directory that went
        if self.name == "trades" and not failed:
            failed.append(self)
            raise FileNotFoundError(2, "No such file or directory")
        return original(self, pattern)

    monkeypatch.setattr(Path, "glob", glob)
    with Lake(tmp_path) as lake:
        assert lake.query("SELECT count(*) AS n FROM trades")["n"].to_pylist() == [10]
    assert failed  # the fault happened


def test_a_file_that_goes_while_a_view_reads_its_schema_is_listed_again(tmp_path, monkeypatch):
    with LakeSink(tmp_path) as sink:
        sink.write("trades", _named(build_rows("trades", 10, start=MIDNIGHT), "sim"))
    (written,) = (tmp_path / "trades").rglob("*.parquet")
    connect, failed = sql._utc_connection, []

    class Connection:
        """DuckDB's connection, but the first view of trades meets a compaction."""

        def __init__(self) -> None:
            self.con = connect()

        def __getattr__(self, name):
            return getattr(self.con, name)

        def execute(self, query, *args):
            if 'VIEW "trades"' in query and "read_parquet" in query and not failed:
                # the glob listed the file; it was replaced before its footer was read
                failed.append(written.rename(written.with_name("compacted.parquet")))
                raise duckdb.IOException(
                    f'IO Error: Cannot open file "{written}": No such file or directory'
                )
            return self.con.execute(query, *args)

    monkeypatch.setattr(sql, "_utc_connection", Connection)
    with Lake(tmp_path) as lake:
        assert lake.query("SELECT count(*) AS n FROM trades")["n"].to_pylist() == [10]
    assert failed and not written.exists()  # the fault happened
