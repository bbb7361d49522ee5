"""A replay run again, or again after a SIGKILL, converges to the lake of one uninterrupted run."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from .conftest import LEAN_TRADES

pytestmark = pytest.mark.integration

TABLES = ("trades", "bars", "indicators", "alerts", "dlq")
# a dead letter without an event time is stamped with the time it was rejected
COLUMNS = {"dlq": "* EXCLUDE (ts)"}


def _rows(lake: Path, table: str) -> pa.Table | list[tuple]:
    """Every row of a lake table, sorted (a multiset: duplicates stay): an Arrow table
    sorted by every column (the day's 388,417 trades in 0.3 s of CPU, where sorting them
    as Python tuples took 10 s, six times in this file), or, with a nested column,
    Python tuples."""
    files = list((lake / table).rglob("*.parquet"))
    if not files:
        return []
    paths = ", ".join(f"'{f}'" for f in files)
    query = f"SELECT {COLUMNS.get(table, '*')} FROM read_parquet([{paths}], hive_partitioning=true)"
    rows = duckdb.connect().sql(query).to_arrow_table()
    if any(pa.types.is_nested(field.type) for field in rows.schema):
        return sorted((tuple(row.values()) for row in rows.to_pylist()), key=repr)
    return rows.sort_by([(column, "ascending") for column in rows.column_names]).combine_chunks()


def _alerts(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(lean_lake):
    """The rows and alert ids of one uninterrupted replay of the Lean day."""
    rows = {table: _rows(lean_lake.lake, table) for table in TABLES}
    assert len(rows["trades"]) == 388_417 and rows["bars"] and rows["alerts"]
    return rows, _alerts(lean_lake.alerts_file)


def _assert_like(reference, lake: Path, alerts: Path) -> None:
    rows, alert_ids = reference
    for table in TABLES:
        assert _rows(lake, table) == rows[table], table
    assert sorted(_alerts(alerts)) == sorted(alert_ids)


def test_replay_twice_leaves_the_lake_of_one_replay(cli, reference, lean_lake, tmp_path):
    # the first replay: lean_lake's (replay LEAN_TRADES --lake --alerts-file), copied
    lake = shutil.copytree(lean_lake.lake, tmp_path / "lake")
    alerts = shutil.copy(lean_lake.alerts_file, tmp_path / "alerts.jsonl")
    cli("replay", LEAN_TRADES, "--lake", lake, "--alerts-file", alerts)
    _assert_like(reference, lake, alerts)


def _has_rows(lake: Path) -> bool:
    # the trades' files: those of other tables may come first (under load, the only ones
    # before the kill), and the test needs trades in the lake when it lands
    return any((lake / "trades").rglob("*.parquet"))


def test_rerun_after_sigkill_converges(cli, reference, tmp_path):
    lake, alerts = tmp_path / "lake", tmp_path / "alerts.jsonl"
    # paced (16 h of trades in about 30 s), so that the kill lands mid-replay
    command = [sys.executable, "-m", "marketpulse", "replay", str(LEAN_TRADES), "--speed", "2000",
               "--lake", str(lake), "--alerts-file", str(alerts)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    victim = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _has_rows(lake) and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.kill()
        victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL  # it died by the signal, mid-replay
    killed = _rows(lake, "trades")
    assert 0 < len(killed) < len(reference[0]["trades"])  # some rows were in the lake

    cli("replay", LEAN_TRADES, "--lake", lake, "--alerts-file", alerts)
    _assert_like(reference, lake, alerts)
    assert not list(lake.rglob(".*.tmp"))


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("writer", ["replay", "lake compact"])
def test_hidden_files_of_killed_writers_are_removed(cli, tmp_path, writer):
    lake = tmp_path / "lake"
    partition = (
        lake / "bars" / "dataset=lean-2013-10-07-trades" / "timeframe=1m" / "period=2013-10-07"
    )
    partition.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        stale = [partition / f".part-{_dead_pid()}-0.tmp",
                 partition / f".part-x.parquet.{_dead_pid()}.tmp"]  # fmt: skip
        live = partition / f".part-{sleeper.pid}-0.tmp"  # a writer still at work
        for path in [*stale, live]:
            path.write_bytes(b"PAR1")
        if writer == "replay":
            cli("replay", LEAN_TRADES, "--lake", lake, "--alerts-file", tmp_path / "a.jsonl")
        else:
            cli("lake", "compact", "--lake", lake)
        assert not any(path.exists() for path in stale)
        assert live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def _lake_ls(cli, cwd: Path) -> list[dict]:
    return json.loads(cli("lake", "ls", "--format", "json", cwd=cwd).stdout)


def test_lake_compact_as_documented(cli, tmp_path):
    # README: `marketpulse lake compact`, on the lake at its default place
    # paced, the replay ends a segment every 5 s: two segments, two files a table on 2013-10-07
    cli("replay", LEAN_TRADES, "--speed", "8000")
    before = _lake_ls(cli, tmp_path)
    rows = {table: _rows(tmp_path / "data" / "lake", table) for table in TABLES}
    assert sum(t["files"] for t in before) > sum(t["partitions"] for t in before)

    result = cli("lake", "compact")
    assert result.stdout.startswith("compacted ")
    after = _lake_ls(cli, tmp_path)
    assert [t["rows"] for t in after] == [t["rows"] for t in before]
    assert [t["files"] for t in after] == [t["partitions"] for t in before]
    assert {table: _rows(tmp_path / "data" / "lake", table) for table in TABLES} == rows
    # the compacted files still belong to the replay: a rerun replaces, not adds
    cli("replay", LEAN_TRADES)
    assert [t["rows"] for t in _lake_ls(cli, tmp_path)] == [t["rows"] for t in before]


def _refused(result, *words) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and message.startswith("error:"), message
    for word in words:
        assert word in message, (word, message)


def test_lake_compact_bad_use(cli, tmp_path):
    (tmp_path / "lake").mkdir()
    _refused(cli("lake", "compact", "--lake", tmp_path / "lake", "--table", "ticks", ok=False),
             "ticks")  # fmt: skip
    _refused(cli("lake", "compact", "--lake", tmp_path / "nowhere", ok=False), "nowhere")
    _refused(cli("lake", "compact", "--lake", tmp_path / "lake", "--before", "May", ok=False),
             "--before")  # fmt: skip


def test_lake_ddl_as_documented(cli):
    out = cli("lake", "ddl", "--location", "s3://bucket/lake").stdout
    statements = [s for s in out.split(";") if s.strip()]
    tables = (
        "trades",
        "quotes",
        "bars",
        "indicators",
        "alerts",
        "dlq",
        "custom",
        "predictions",
        "news",
    )
    assert len(statements) == len(tables) + 1  # and the view bars_with_indicators
    for table, statement in zip(tables, statements, strict=False):
        assert f"CREATE EXTERNAL TABLE IF NOT EXISTS marketpulse.{table} (" in statement
        assert f"LOCATION 's3://bucket/lake/{table}/'" in statement
    assert "CREATE OR REPLACE VIEW marketpulse.bars_with_indicators" in statements[-1]


def test_lake_ddl_bad_location(cli):
    _refused(cli("lake", "ddl", "--location", "https://bucket/lake", ok=False), "--location")
    _refused(cli("lake", "ddl", "--location", "s3://", ok=False), "--location")
