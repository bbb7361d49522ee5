"""The README's `lake migrate`, `lake datasets` and `lake drop`, and their misuse, end to end."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import LEAN_BARS, marketpulse

pytestmark = pytest.mark.integration


NS = 1_000_000_000
OCT7 = 1_381_104_000 * NS  # 2013-10-07 00:00 UTC


def _refused(result, *words) -> str:
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and message.startswith("error:"), message
    for word in words:
        assert word in message, (word, message)
    return message


def _old_lake(root: Path) -> None:
    """Bars and trades as an earlier MarketPulse wrote them (date=..., int64 times)."""
    for day in range(2):
        directory = root / "bars" / f"date=2013-10-0{7 + day}"
        directory.mkdir(parents=True)
        start = OCT7 + day * 86_400 * NS + 14 * 3600 * NS
        pq.write_table(pa.table({
            "symbol": ["SPY", "AAPL"], "interval": ["1m", "1m"],
            "start": pa.array([start, start]), "end": pa.array([start + 60 * NS] * 2),
            "open": [167.0, 480.0], "high": [167.5, 481.0], "low": [166.5, 479.0],
            "close": [167.2, 480.5], "volume": [1e4, 2e3], "vwap": [167.1, 480.2],
            "trades": pa.array([40, 12], pa.int64()),
        }), directory / "part-p000-000000000000-000000000001.parquet")  # fmt: skip
    directory = root / "trades" / "date=2013-10-07"
    directory.mkdir(parents=True)
    pq.write_table(pa.table({
        "symbol": ["SPY"], "ts": pa.array([OCT7 + 14 * 3600 * NS]), "price": [167.1],
        "size": [100.0], "exchange": ["P"], "condition": [None],
    }), directory / "part-20131007T140000Z-1-0-000001.parquet")  # fmt: skip


def test_every_reader_of_an_old_lake_says_how_to_convert_it(cli, tmp_path):
    lake = tmp_path / "old"
    _old_lake(lake)
    expected = (f"error: lake {lake} uses the layout of an earlier MarketPulse; convert it with: "
                f"marketpulse lake migrate --lake {lake}")  # fmt: skip
    for command in (["sql", "SELECT count(*) FROM bars"], ["lake", "ls"], ["lake", "datasets"],
                    ["report", "daily", "--start", "2013-10-07", "--end", "2013-10-08"],
                    ["backfill"], ["replay", LEAN_BARS], ["lake", "compact"],
                    ["lake", "drop", "--dataset", "legacy"]):  # fmt: skip
        result = cli(*command, "--lake", lake, ok=False)
        assert _refused(result) == expected, command
    # the dashboard too, before it serves (a regression would serve until the timeout: a
    # subprocess, which the timeout ends)
    result = marketpulse("dashboard", "--lake", lake, "--port", "0", cwd=tmp_path, timeout=120)
    assert _refused(result) == expected
    assert len(list(lake.rglob("*.parquet"))) == 3  # nothing written


def test_lake_migrate_as_documented(cli, sql, tmp_path):
    # README: `marketpulse lake migrate`, on the lake at its default place
    lake = tmp_path / "data" / "lake"
    _old_lake(lake)
    done = cli("lake", "migrate").stdout
    assert done.startswith("migrated 2 tables to dataset legacy: 3 files -> ")
    got = sql(lake, "SELECT dataset, timeframe, symbol, bar_start, close, period FROM bars"
                    " ORDER BY bar_start, symbol")  # fmt: skip
    assert got == [
        {"dataset": "legacy", "timeframe": "1m", "symbol": "AAPL",
         "bar_start": "2013-10-07T14:00:00Z", "close": 480.5, "period": "2013-10-07"},
        {"dataset": "legacy", "timeframe": "1m", "symbol": "SPY",
         "bar_start": "2013-10-07T14:00:00Z", "close": 167.2, "period": "2013-10-07"},
        {"dataset": "legacy", "timeframe": "1m", "symbol": "AAPL",
         "bar_start": "2013-10-08T14:00:00Z", "close": 480.5, "period": "2013-10-08"},
        {"dataset": "legacy", "timeframe": "1m", "symbol": "SPY",
         "bar_start": "2013-10-08T14:00:00Z", "close": 167.2, "period": "2013-10-08"},
    ]  # fmt: skip
    assert sql(lake, "SELECT dataset, ts FROM trades") == [
        {"dataset": "legacy", "ts": "2013-10-07T14:00:00Z"}
    ]
    # another lake, under another dataset name
    _old_lake(tmp_path / "old")
    cli("lake", "migrate", "--lake", tmp_path / "old", "--dataset", "lean-2013")
    assert sql(tmp_path / "old", "SELECT DISTINCT dataset FROM trades") == [
        {"dataset": "lean-2013"}
    ]


def test_lake_migrate_bad_use(cli, tmp_path):
    lake = tmp_path / "old"
    _old_lake(lake)
    _refused(cli("lake", "migrate", "--lake", lake, "--dataset", "two words", ok=False),
             "--dataset", "two words")  # fmt: skip
    assert len(list(lake.rglob("date=*"))) == 3  # untouched
    cli("lake", "migrate", "--lake", lake)
    _refused(cli("lake", "migrate", "--lake", lake, ok=False), "nothing to migrate")
    _refused(cli("lake", "migrate", "--lake", tmp_path / "nowhere", ok=False), "nowhere")


def _datasets(cli, lake) -> list[dict]:
    return json.loads(cli("lake", "datasets", "--lake", lake, "--format", "json").stdout)


def _two_replays(cli, lake) -> None:
    cli("replay", LEAN_BARS, "--lake", lake)  # dataset from the file's name
    cli("replay", LEAN_BARS, "--lake", lake, "--dataset", "copy")


def test_lake_datasets_as_documented(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    _two_replays(cli, lake)
    listing = _datasets(cli, lake)
    counts = sql(lake, "SELECT dataset, 'bars' AS t, count(*) AS n, min(bar_start) AS first,"
                       " max(bar_start) AS last FROM bars GROUP BY ALL ORDER BY 1")  # fmt: skip
    assert [r["dataset"] for r in counts] == ["copy", "lean-2013-10-07-minute_bars"]
    bars = [r for r in listing if r["table"] == "bars"]
    assert [(r["dataset"], r["rows"], r["first"], r["last"]) for r in bars] == [
        (r["dataset"], r["n"], r["first"], r["last"]) for r in counts
    ]
    assert {r["table"] for r in listing} >= {"bars", "indicators", "alerts"}
    table = cli("lake", "datasets", "--lake", lake).stdout.splitlines()
    assert table[0].split() == ["dataset", "table", "partitions", "files", "rows", "first", "last"]
    assert json.loads(cli("lake", "list", "--lake", lake, "--format", "json").stdout) == listing


def test_lake_datasets_bad_use(cli, tmp_path):
    _refused(cli("lake", "datasets", "--lake", tmp_path / "nowhere", ok=False), "nowhere")
    _refused(cli("lake", "datasets", "--format", "xml", ok=False), "xml")


def test_lake_drop_as_documented(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    _two_replays(cli, lake)
    kept = sql(lake, "SELECT * FROM bars WHERE dataset <> 'copy' ORDER BY ALL")
    out = cli("lake", "drop", "--dataset", "copy", "--lake", lake).stdout
    assert out.startswith("dropped dataset copy: ")
    assert {r["dataset"] for r in _datasets(cli, lake)} == {"lean-2013-10-07-minute_bars"}
    assert sql(lake, "SELECT * FROM bars ORDER BY ALL") == kept
    assert not list(lake.rglob("dataset=copy"))


def test_lake_drop_bad_use(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    cli("replay", LEAN_BARS, "--lake", lake)
    before = sql(lake, "SELECT count(*) AS n FROM bars")
    _refused(cli("lake", "drop", "--dataset", "nope", "--lake", lake, ok=False),
             "no dataset 'nope'", "lean-2013-10-07-minute_bars")  # fmt: skip
    _refused(cli("lake", "drop", "--lake", lake, ok=False), "--dataset")
    _refused(cli("lake", "drop", "--dataset", "../bars", "--lake", lake, ok=False), "--dataset")
    assert sql(lake, "SELECT count(*) AS n FROM bars") == before
