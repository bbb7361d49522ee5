"""What the pipeline page shows of a dataset when only the lake is read."""

from __future__ import annotations

from pathlib import Path

import duckdb

from marketpulse.feeds.replay import FileReplay
from marketpulse.runtime.embedded import EmbeddedPipeline, RunnerOptions
from marketpulse.serve import LakeData
from marketpulse.stream.processor import ProcessorSettings

HEADER = "timestamp,symbol,price,size,exchange,condition,suspicious\n"


def _day_with_bad_lines(path: Path) -> Path:
    """Two symbols over 30 s, an unreadable price and a negative one (two dead letters)."""
    lines = [
        f"2013-10-07T13:30:{s:02d}.000Z,{'SPY' if s % 2 else 'AIG'},{100.0 + s / 10},100,P,,0\n"
        for s in range(30)
    ]
    lines.insert(5, "2013-10-07T13:30:05.500Z,SPY,not a price,100,P,,0\n")
    lines.insert(9, "2013-10-07T13:30:08.500Z,SPY,-5,100,P,,0\n")
    path.write_text(HEADER + "".join(lines))
    return path


def _stored(lake: Path, table: str) -> tuple[int, int]:
    """Rows and files of one table's dataset, read by DuckDB and the file system (the oracle)."""
    files = sorted((lake / table).rglob("*.parquet"))
    if not files:
        return 0, 0
    pattern = str(lake / table / "**" / "*.parquet")
    [(rows,)] = duckdb.sql(f"SELECT count(*) FROM read_parquet('{pattern}')").fetchall()
    return rows, len(files)


def test_the_summary_counts_each_tables_rows_files_and_dead_letter_reasons(tmp_path):
    lake_root = tmp_path / "lake"
    options = RunnerOptions(
        lake=str(lake_root), processor=ProcessorSettings(intervals=("1s",)), dataset="day"
    )
    feed = FileReplay(_day_with_bad_lines(tmp_path / "day.csv"), batch_size=8)
    EmbeddedPipeline(feed, options).run()
    lake = LakeData(lake_root)
    try:
        summary = lake.summary("day")
        reasons = duckdb.sql(
            f"SELECT reason, count(*) FROM read_parquet('{lake_root}/dlq/**/*.parquet') "
            "GROUP BY reason"
        ).fetchall()
    finally:
        lake.close()
    assert summary["dataset"] == "day"
    tables = {t["table"]: t for t in summary["tables"]}
    assert list(tables) == ["bars", "indicators", "alerts", "trades", "quotes", "dlq"]
    for name, table in tables.items():
        assert (table["rows"], table["files"]) == _stored(lake_root, name), name
    assert tables["trades"]["rows"] == 30 and tables["dlq"]["rows"] == 2
    assert tables["trades"]["first"] == "2013-10-07T13:30:00Z"
    assert tables["trades"]["last"] == "2013-10-07T13:30:29Z"
    assert tables["quotes"] == {"table": "quotes", "rows": 0, "first": None, "last": None,
                                "files": 0, "written": None}  # fmt: skip
    assert tables["bars"]["written"].startswith("20") and tables["bars"]["written"].endswith("Z")
    assert {(r["reason"], r["count"]) for r in summary["dead_letter_reasons"]} == set(reasons)
    assert len(reasons) == 2
