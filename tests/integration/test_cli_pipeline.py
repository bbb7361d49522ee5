"""End to end: the marketpulse command on real data, checked through `marketpulse sql`."""

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from .conftest import KAGGLE, LEAN_TRADES

pytestmark = pytest.mark.integration

LEAN_DATASET = "lean-2013-10-07-trades"  # trades.csv.gz is a generic name: led by its folder's


def lake_datasets(lake: Path, tables=("trades", "bars", "indicators", "alerts", "dlq")):
    """Table → the datasets of its rows, read by DuckDB from the lake's Parquet files."""
    found = {}
    for table in tables:
        files = list((lake / table).rglob("*.parquet"))
        if files:
            rows = duckdb.sql(
                "SELECT DISTINCT dataset FROM read_parquet($files, hive_partitioning = true)",
                params={"files": [str(f) for f in files]},
            ).fetchall()
            found[table] = {dataset for (dataset,) in rows}
    return found


def test_run_simulated_market_for_a_duration(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    # 20 s of 1s bars: enough for RSI(14) to warm up
    result = cli("run", "--duration", "20", "--symbols", "12", "--rate", "3000", "--seed", "4",
                 "--lake", lake, "--alerts-file", tmp_path / "alerts.jsonl")  # fmt: skip
    lines = result.stdout.strip().splitlines()
    # not a terminal: periodic figure lines, then the final summary
    assert any(line.startswith("ticks ") for line in lines[:-1])
    assert lines[-1].startswith("done: ticks in ")
    counts = sql(
        lake,
        "SELECT (SELECT count(*) FROM trades) AS trades, "
        "(SELECT count(DISTINCT symbol) FROM trades) AS symbols, "
        "(SELECT count(*) FROM bars WHERE timeframe = '1s') AS bars_1s, "
        "(SELECT count(*) FROM indicators WHERE rsi_14 IS NOT NULL) AS rsi",
    )[0]
    # a simulated market's rows are the dataset `simulator`, in every table
    datasets = lake_datasets(lake)  # alerts too when news moved a price
    assert {"trades", "bars", "indicators"} <= set(datasets)
    assert all(names == {"simulator"} for names in datasets.values()), datasets
    # the simulator's intraday curve runs from 0.85x the mean rate at midday to
    # 2.6x at the open, and `run` stamps trades with the wall clock's time of day
    assert 3000 * 20 * 0.6 < counts["trades"] < 3000 * 20 * 3.0
    assert counts["symbols"] == 12
    assert counts["bars_1s"] > 12 * 4
    assert counts["rsi"] > 0
    summary = lines[-1]
    assert f"ticks in {counts['trades']:,}" in summary  # everything accepted was flushed


def test_replay_lean_trades_fills_the_lake(lean_lake, sql):
    lake, result = lean_lake.lake, lean_lake.replay  # replay LEAN_TRADES --lake --alerts-file
    assert "ticks in 388,417" in result.stdout
    rows = sql(
        lake, "SELECT symbol, count(*) AS n, sum(size) AS volume FROM trades GROUP BY 1 ORDER BY 1"
    )
    assert [r["symbol"] for r in rows] == ["AIG", "BAC", "IBM", "SPY"]
    assert sum(r["n"] for r in rows) == 388_417
    bars = sql(
        lake,
        "SELECT timeframe, count(*) AS n, sum(volume) AS volume FROM bars GROUP BY 1 ORDER BY 1",
    )
    volumes = {b["timeframe"]: b["volume"] for b in bars}
    # every trade lands in exactly one bar of each interval
    assert volumes["1s"] == volumes["1m"] == volumes["5m"] == sum(r["volume"] for r in rows)
    ind = sql(
        lake, "SELECT count(*) AS n, count(macd) AS macd FROM indicators WHERE timeframe = '1m'"
    )[0]
    assert ind["n"] == next(b["n"] for b in bars if b["timeframe"] == "1m")
    assert 0 < ind["macd"] < ind["n"]  # warm-up rows are null
    assert sql(lake, "SELECT count(*) AS n FROM dlq")[0]["n"] == 0
    alerts = [json.loads(line) for line in lean_lake.alerts_file.read_text().splitlines()]
    in_lake = sql(lake, "SELECT count(*) AS n FROM alerts")[0]["n"]
    assert len(alerts) == in_lake > 0
    # no --dataset: the Lean file's default name, on every row of every table
    tables = ("trades", "bars", "indicators", "alerts")
    assert lake_datasets(lake) == {table: {LEAN_DATASET} for table in tables}


def test_replay_kaggle_daily_bars(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    cli("replay", KAGGLE, "--lake", lake, timeout=900)
    rows = sql(
        lake,
        "SELECT count(*) AS n, count(DISTINCT symbol) AS symbols FROM bars WHERE timeframe = '1d'",
    )
    assert rows[0] == {"n": 104_224, "symbols": 13}
    # the file's name is the dataset
    assert lake_datasets(lake)["bars"] == {"indexProcessed"}
    hsi = sql(
        lake,
        "SELECT bar_start, close, sma_20 FROM indicators WHERE symbol = 'HSI' "
        "ORDER BY bar_start LIMIT 21",
    )
    assert hsi[18]["sma_20"] is None
    assert hsi[19]["sma_20"] == pytest.approx(sum(r["close"] for r in hsi[:20]) / 20, rel=1e-12)


def test_replay_equals_backfill(cli, sql, lean_lake, tmp_path):
    """Streaming equals batch: the same rows from a replay and from a backfill."""
    live, batch = lean_lake.lake, tmp_path / "batch"  # live: replay LEAN_TRADES --lake live
    cli("backfill", "--file", LEAN_TRADES, "--lake", batch)
    relake = shutil.copytree(live, tmp_path / "relake")
    cli("backfill", "--lake", relake)  # recompute from the lake's own trades, in place
    bar_key = "symbol, timeframe, bar_start"  # bars and indicators share their key
    for table, key in (("bars", bar_key), ("indicators", bar_key), ("alerts", "id")):
        query = f"SELECT * EXCLUDE (period) FROM {table} ORDER BY {key}"
        expected = sql(live, query)
        assert len(expected) > 0
        assert sql(batch, query) == expected, table
        assert sql(relake, query) == expected, table


def test_replay_dataset_option_files_rows_apart(cli, sql, tmp_path):
    """README: replay FILE --dataset NAME; two datasets in one lake never mix."""
    lake = tmp_path / "lake"
    cli("replay", LEAN_TRADES, "--lake", lake, "--dataset", "lean-a", "--intervals", "1m")
    cli("replay", LEAN_TRADES, "--lake", lake, "--dataset", "lean-b", "--intervals", "1m")
    found = lake_datasets(lake)
    for table in ("trades", "bars", "indicators", "alerts"):
        assert found[table] == {"lean-a", "lean-b"}, table
    # the same rows in each, not one heap: a dataset's bars are those of one replay
    counts = sql(lake, "SELECT dataset, count(*) AS n, sum(volume) AS volume FROM bars "
                       "GROUP BY 1 ORDER BY 1")  # fmt: skip
    assert [c["dataset"] for c in counts] == ["lean-a", "lean-b"]
    assert counts[0]["n"] == counts[1]["n"] > 0
    assert counts[0]["volume"] == counts[1]["volume"]


@pytest.mark.parametrize("command", ["replay", "run", "backfill"])
@pytest.mark.parametrize("name", ["two words", "../escape", "-lead", "x" * 65])
def test_bad_dataset_name_stops_before_anything_runs(cli, tmp_path, command, name):
    lake = tmp_path / "lake"
    args = {"replay": [LEAN_TRADES], "run": ["--duration", "5", "--no-dashboard"],
            "backfill": ["--file", LEAN_TRADES]}[command]  # fmt: skip
    result = cli(command, *args, "--dataset", name, "--lake", lake, ok=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --dataset: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not lake.exists()


def test_backfill_of_one_dataset_leaves_the_others(cli, sql, lean_lake, tmp_path):
    lake = shutil.copytree(lean_lake.lake, tmp_path / "lake")  # replay LEAN_TRADES --lake lake
    cli("replay", LEAN_TRADES, "--lake", lake, "--dataset", "other", "--intervals", "1m")
    query = "SELECT dataset, timeframe, count(*) AS n FROM {} GROUP BY ALL ORDER BY ALL"
    before = {table: sql(lake, query.format(table)) for table in ("bars", "indicators")}
    other_files = sorted((lake / "bars" / "dataset=other").rglob("*.parquet"))

    # two datasets and none named: one line naming both, nothing written
    result = cli("backfill", "--lake", lake, ok=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: lake {lake} holds the trades of 2 datasets; choose one with --dataset: "
        f"{LEAN_DATASET}, other"
    ]
    # a dataset the lake does not hold: one line too
    result = cli("backfill", "--lake", lake, "--dataset", "nothing", ok=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1

    # the Lean dataset recomputed with other intervals: its bars are replaced, other's kept
    result = cli("backfill", "--lake", lake, "--dataset", LEAN_DATASET, "--intervals", "5m")
    assert f"backfill of dataset {LEAN_DATASET} done" in result.stdout
    assert "Warning" not in result.stdout + result.stderr  # DuckDB's UserWarning among them
    after = sql(lake, query.format("bars"))
    assert [r for r in after if r["dataset"] == "other"] == [
        r for r in before["bars"] if r["dataset"] == "other"
    ]
    assert sorted((lake / "bars" / "dataset=other").rglob("*.parquet")) == other_files
    lean = {r["timeframe"]: r["n"] for r in after if r["dataset"] == LEAN_DATASET}
    lean_before = {r["timeframe"]: r["n"] for r in before["bars"] if r["dataset"] == LEAN_DATASET}
    assert set(lean_before) == {"1s", "1m", "5m"}
    assert lean == {"5m": lean_before["5m"]}  # the old 1s and 1m bars are gone


def _small_trades(path: Path) -> Path:
    rows = [f"2013-10-07T13:30:{s:02d}.000Z,SPY,{167 + s / 100},100,P,,0\n" for s in range(30)]
    path.write_text("timestamp,symbol,price,size,exchange,condition,suspicious\n" + "".join(rows))
    return path


@pytest.mark.parametrize(
    ("env", "config", "expected"),
    [
        ({"MARKETPULSE_DATASET": "from-env"}, None, "from-env"),
        ({}, 'dataset = "from-config"\n', "from-config"),
        ({"MARKETPULSE_DATASET": "from-env"}, 'dataset = "from-config"\n', "from-env"),
    ],
)
def test_dataset_from_the_environment_or_the_config_file(cli, tmp_path, env, config, expected):
    path = _small_trades(tmp_path / "day.csv")
    if config is not None:
        (tmp_path / "marketpulse.toml").write_text(config)
    cli("replay", path, "--lake", "lake", "--intervals", "1s", env=env)
    assert lake_datasets(tmp_path / "lake", ("trades", "bars")) == {
        "trades": {expected},
        "bars": {expected},
    }
    # the option wins over both
    cli("replay", path, "--lake", "other", "--intervals", "1s", "--dataset", "given", env=env)
    assert lake_datasets(tmp_path / "other", ("trades",)) == {"trades": {"given"}}


def test_bad_dataset_in_the_environment_is_one_line_naming_it(cli, tmp_path):
    path = _small_trades(tmp_path / "day.csv")
    result = cli("replay", path, "--lake", "lake", env={"MARKETPULSE_DATASET": "no good"},
                 ok=False)  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: dataset (MARKETPULSE_DATASET") and "'no good'" in line
    assert not (tmp_path / "lake").exists()
