"""A lake of the earlier layout (date=YYYY-MM-DD, int64 times, old column names), converted."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketpulse.analytics import Lake
from marketpulse.analytics import lake_migrate as migration
from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.analytics.lake_migrate import migrate
from marketpulse.sinks.lake_store import LocalStore, OldLayoutError, open_store

NS = 1_000_000_000
MINUTE = 60 * NS
DAY = 86_400 * NS
OCT7 = 1_381_104_000 * NS  # 2013-10-07 00:00 UTC
OFFSETS = "part-p000-000000000000-000000000099.parquet"


def _write(root: Path, table: str, day: str, name: str, columns: dict) -> None:
    directory = root / table / f"date={day}"
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), directory / name)


def old_lake(root: Path) -> dict[str, int]:
    """Write every table as the earlier MarketPulse did; return the rows of each."""
    _write(root, "trades", "2013-10-07", OFFSETS, {
        "symbol": pa.array(["SPY", "AAPL", "SPY"]).dictionary_encode(),
        "ts": pa.array([OCT7 + 5 * NS, OCT7 + 6 * NS, OCT7 + 7 * NS], pa.int64()),
        "price": [167.1, 480.2, 167.2], "size": [100.0, 5.0, 200.0],
        "exchange": ["P", "Q", None], "condition": [None, "@", None],
    })  # fmt: skip
    _write(root, "trades", "2013-10-08", OFFSETS.replace("99", "98"), {
        "symbol": ["SPY"], "ts": pa.array([OCT7 + DAY + NS], pa.int64()), "price": [168.0],
        "size": [1.0], "exchange": ["P"], "condition": [None],
    })  # fmt: skip
    bars = {"open": [1.0], "high": [2.0], "low": [0.5], "close": [1.5], "volume": [10.0],
            "vwap": [1.25], "trades": pa.array([3], pa.int64())}  # fmt: skip
    _write(root, "bars", "2013-10-07", OFFSETS, {
        "symbol": ["SPY"], "interval": ["1m"], "start": pa.array([OCT7 + DAY - MINUTE]),
        "end": pa.array([OCT7 + DAY]), **bars,
    })  # fmt: skip
    # daily bars of 1999 to 2001, one file name on each day: one replay's segment
    for day in ["1999-12-31", "2000-01-03", "2001-01-02"]:
        start = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * NS
        _write(root, "bars", day, "part-f0123456789abcdef-000000000001-000000009999.parquet", {
            "symbol": ["^GSPC"], "interval": ["1d"], "start": pa.array([start]),
            "end": pa.array([start + DAY]), **bars,
        })  # fmt: skip
    # an indicator and an alert of the 1m bar that ends at midnight: dated by their end before
    end = OCT7 + DAY
    _write(root, "indicators", "2013-10-08", OFFSETS, {
        "symbol": ["SPY"], "interval": ["1m"], "ts": pa.array([end]), "close": [1.5],
        "sma_20": [1.4], "rsi_14": [None],
    })  # fmt: skip
    _write(root, "alerts", "2013-10-08", OFFSETS, {
        "id": ["a1"], "rule": ["spike"], "symbol": ["SPY"], "interval": ["1m"],
        "ts": pa.array([end]), "severity": ["warning"], "message": ["SPY up"],
        "values": [json.dumps({"change": 0.05, "bars": 5, "note": "x"})],
    })  # fmt: skip
    _write(root, "dlq", "2013-10-07", "part-20131007T000000Z-1-0-000001.parquet", {
        "ts": pa.array([None, OCT7], pa.int64()), "reason": ["parse", "price"],
        "error": ["bad line", "negative"], "key": [None, "SPY"],
        "value": pa.array([b"x,y", b"{}"]), "topic": [None, "ticks"],
        "partition": pa.array([None, 2], pa.int32()), "offset": pa.array([None, 17]),
        "file": ["trades.csv", None], "line": pa.array([12, None]),
    })  # fmt: skip
    return {"trades": 4, "bars": 4, "indicators": 1, "alerts": 1, "dlq": 2}


def _counts(root: Path) -> dict[str, int]:
    with Lake(root) as lake:
        return {t: lake.query(f"SELECT count(*) AS n FROM {t}")["n"][0].as_py()  # noqa: S608
                for t in ("trades", "bars", "indicators", "alerts", "dlq")}  # fmt: skip


def test_migrate_converts_every_table_in_place(tmp_path: Path) -> None:
    rows = old_lake(tmp_path)
    with pytest.raises(OldLayoutError):
        open_store(tmp_path)
    result = migrate(open_store(tmp_path, old_layout=True))
    assert (result.tables, result.files_before, result.rows) == (5, 9, sum(rows.values()))
    assert not list(tmp_path.rglob("date=*")) and not (tmp_path / ".migrate").exists()
    assert _counts(tmp_path) == rows
    with Lake(tmp_path) as lake:
        bars = lake.query("SELECT * FROM bars ORDER BY bar_start").to_pylist()
        joined = lake.query("SELECT * FROM bars_with_indicators").to_pylist()
        alert = lake.query("SELECT * FROM alerts").to_pylist()[0]
        dlq = lake.query("SELECT * FROM dlq ORDER BY source_line").to_pylist()
        trades = lake.query("SELECT DISTINCT dataset, period FROM trades ORDER BY 2").to_pylist()
    assert {b["dataset"] for b in bars} == {"legacy"}
    assert [(b["timeframe"], b["bar_start"].year, b["period"]) for b in bars] == [
        ("1d", 1999, date(1990, 1, 1)), ("1d", 2000, date(2000, 1, 1)),
        ("1d", 2001, date(2000, 1, 1)), ("1m", 2013, date(2013, 10, 7)),
    ]  # fmt: skip
    # the indicator's bar_start comes from its end and timeframe: it joins its bar exactly
    [row] = joined
    assert row["bar_start"] == datetime(2013, 10, 7, 23, 59, tzinfo=UTC)
    assert (row["sma_20"], row["period"]) == (1.4, date(2013, 10, 7))
    assert alert["bar_end"] == datetime(2013, 10, 8, tzinfo=UTC)
    assert dict(alert["details"]) == {"change": 0.05, "bars": 5.0, "note": None}
    assert [(d["source_line"], d["source_topic"], d["source_partition"], d["source_offset"])
            for d in dlq] == [(12, None, None, None), (None, "ticks", 2, 17)]  # fmt: skip
    assert trades == [{"dataset": "legacy", "period": date(2013, 10, 7)},
                      {"dataset": "legacy", "period": date(2013, 10, 8)}]  # fmt: skip
    # names kept; the daily bars of one name in one decade are one file
    decade = tmp_path / "bars" / "dataset=legacy" / "timeframe=1d" / "period=2000-01-01"
    assert [p.name for p in decade.iterdir()] == [
        "part-f0123456789abcdef-000000000001-000000009999.parquet"
    ]
    assert pq.read_metadata(next(decade.iterdir())).num_rows == 2


def test_migrate_under_another_dataset_and_nothing_left_to_migrate(tmp_path: Path) -> None:
    old_lake(tmp_path)
    migrate(open_store(tmp_path, old_layout=True), "lean-2013")
    with Lake(tmp_path) as lake:
        found = lake.query("SELECT DISTINCT dataset FROM trades")["dataset"].to_pylist()
    assert found == ["lean-2013"]
    with pytest.raises(AnalyticsError, match="nothing to migrate"):
        migrate(open_store(tmp_path, old_layout=True))


class Stop(Exception):
    """The crash injected into a migration."""


def test_a_migration_stopped_while_writing_starts_again_from_the_old_files(tmp_path, monkeypatch):
    rows = old_lake(tmp_path)
    real_write, written = migration._write, []

    def crash_on_fifth(*args, **kwargs):
        if len(written) == 4:  # trades (2 files) are converted, bars have 2 files staged
            raise Stop
        written.append(real_write(*args, **kwargs))
        return written[-1]

    monkeypatch.setattr(migration, "_write", crash_on_fifth)
    with pytest.raises(Stop):
        migrate(open_store(tmp_path, old_layout=True))
    staged = list((tmp_path / ".migrate" / "bars").rglob("*.parquet"))
    assert len(staged) == 2 and not list((tmp_path / ".migrate").glob("*.done"))
    assert len(list((tmp_path / "bars").glob("date=*"))) == 4  # the old files are untouched
    monkeypatch.undo()
    migrate(open_store(tmp_path, old_layout=True))
    assert _counts(tmp_path) == rows


class MovingFails:
    """The lake's filesystem, whose second move crashes the process (as a kill would)."""

    def __init__(self, real):
        self.real, self.moves = real, 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def move(self, src, dst):
        self.moves += 1
        if self.moves == 2:
            raise Stop
        self.real.move(src, dst)


def test_a_migration_stopped_while_moving_files_in_resumes(tmp_path: Path) -> None:
    rows = old_lake(tmp_path)
    store = open_store(tmp_path, old_layout=True)
    assert isinstance(store, LocalStore)
    store.filesystem = MovingFails(store.filesystem)
    with pytest.raises(Stop):
        migrate(store)
    assert store.filesystem.moves == 2  # one file moved in, then the crash
    assert list((tmp_path / ".migrate").glob("*.done"))
    with pytest.raises(OldLayoutError):  # half converted: still refused to readers
        Lake(tmp_path)
    migrate(open_store(tmp_path, old_layout=True))
    assert _counts(tmp_path) == rows  # no row lost, none twice
    assert not list(tmp_path.rglob("date=*"))
