"""The lake on an S3 API server (moto in server mode, on loopback)."""

import json
import re
import uuid

import pyarrow.fs as pafs
import pytest

from marketpulse.analytics.lake_admin import compact, list_lake
from marketpulse.config import S3Settings, Secret
from marketpulse.sinks.lake_location import s3_filesystem
from marketpulse.sinks.lake_store import S3Store

from .conftest import LEAN_TRADES

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_lake(s3_endpoint):
    """An empty bucket; its lake URI and the settings that reach it."""
    settings = S3Settings(endpoint=s3_endpoint, region="us-east-1", access_key_id="test",
                          secret_access_key=Secret("test-secret"))  # fmt: skip
    bucket = f"mp-{uuid.uuid4().hex[:12]}"
    pafs.S3FileSystem(endpoint_override=s3_endpoint.split("://")[1], scheme="http",
                      access_key="test", secret_key="test-secret", region="us-east-1",
                      allow_bucket_creation=True).create_dir(bucket)  # fmt: skip
    env = {"MARKETPULSE_S3_ENDPOINT": s3_endpoint, "MARKETPULSE_S3_REGION": "us-east-1",
           "MARKETPULSE_S3_ACCESS_KEY_ID": "test",
           "MARKETPULSE_S3_SECRET_ACCESS_KEY": "test-secret"}  # fmt: skip
    return f"s3://{bucket}/market/lake", settings, env


def _figure(summary, name):
    return int(re.search(rf"\b{name} ([\d,]+)", summary).group(1).replace(",", ""))


def test_replay_into_an_s3_lake_and_query_it(cli, sql, s3_lake, small_trades):
    uri, settings, env = s3_lake
    done = cli("replay", small_trades, "--lake", uri, env=env).stdout.strip().splitlines()[-1]
    counts = sql_s3(cli, uri, env, "SELECT (SELECT count(*) FROM trades) AS trades,"
                    " (SELECT count(*) FROM bars) AS bars, (SELECT count(*) FROM indicators)"
                    " AS indicators, (SELECT min(period) FROM bars) AS day")[0]  # fmt: skip
    assert counts["bars"] == _figure(done, "bars") > 1_000
    assert counts["indicators"] == _figure(done, "indicator rows")
    assert counts["trades"] == _figure(done, "ticks in") - _figure(done, "rejected input rows")
    assert counts["day"] == "2013-10-07"
    # the objects are where the layout says, and nothing temporary is left
    fs = s3_filesystem(settings)
    bucket_path = uri.removeprefix("s3://")
    names = [i.path.removeprefix(bucket_path + "/") for i in
             fs.get_file_info(pafs.FileSelector(bucket_path, recursive=True))
             if i.type == pafs.FileType.File]  # fmt: skip
    layout = r"\w+/dataset=[\w.-]+/(timeframe=\w+/)?period=\d{4}-\d\d-\d\d/part-[\w-]+\.parquet"
    assert names and all(re.fullmatch(layout, n) for n in names), names
    # reports read S3 too: a day's open and close are its first and last trade
    daily = cli("report", "daily", "--start", "2013-10-07", "--end", "2013-10-07", "--lake", uri,
                "--interval", "1s", "--format", "json", env=env).stdout  # fmt: skip
    first_last = sql_s3(
        cli,
        uri,
        env,
        "SELECT symbol, arg_min(price, ts) AS open,"
        " arg_max(price, ts) AS close FROM trades GROUP BY 1 ORDER BY 1",
    )
    assert [(r["symbol"], r["open"], r["close"]) for r in json.loads(daily)] == [
        (r["symbol"], r["open"], r["close"]) for r in first_last
    ]


def sql_s3(cli, uri, env, text):
    return json.loads(cli("sql", text, "--lake", uri, "--format", "json", env=env).stdout)


def test_s3_lake_listing_and_compaction(cli, s3_lake):
    uri, settings, env = s3_lake
    # paced, the replay ends a segment every 5 s: two segments (or more on a slow
    # machine), a file each in every partition
    cli("replay", LEAN_TRADES, "--lake", uri, "--intervals", "1m", "--speed", "8000", env=env)
    store = S3Store(uri, settings)
    before = {r["table"]: r for r in list_lake(store).to_pylist()}
    assert before["bars"]["files"] >= 2 and before["bars"]["partitions"] == 1
    assert before["trades"]["files"] >= 2 and before["trades"]["partitions"] == 1
    result = compact(store, ["bars", "trades"], min_files=2)
    after = {r["table"]: r for r in list_lake(store).to_pylist()}
    assert result.partitions == 2 and result.files_after == 2
    assert after["bars"]["files"] == after["trades"]["files"] == 1
    assert after["bars"]["rows"] == before["bars"]["rows"]
    assert after["trades"]["rows"] == before["trades"]["rows"]


def test_a_missing_bucket_is_a_clear_error(cli, s3_lake):
    _, _, env = s3_lake
    result = cli("replay", LEAN_TRADES, "--lake", "s3://no-such-bucket/lake", env=env, ok=False)
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: lake s3://no-such-bucket/lake: cannot write ")
    assert "test-secret" not in result.stderr


def test_s3_lake_migrate_datasets_and_drop(cli, s3_lake):
    import pyarrow as pa
    import pyarrow.parquet as pq

    uri, settings, env = s3_lake
    fs, base = s3_filesystem(settings), uri.removeprefix("s3://")
    start = 1_381_154_400 * 1_000_000_000  # 2013-10-07 14:00 UTC
    old = pa.table({"symbol": ["SPY"], "interval": ["1m"], "start": [start],
                    "end": [start + 60_000_000_000], "open": [1.0], "high": [2.0], "low": [0.5],
                    "close": [1.5], "volume": [10.0], "vwap": [1.2], "trades": [3]})  # fmt: skip
    pq.write_table(old, f"{base}/bars/date=2013-10-07/part-x.parquet", filesystem=fs)
    refused = cli("sql", "SELECT 1", "--lake", uri, env=env, ok=False)
    assert refused.returncode == 2 and "marketpulse lake migrate --lake " + uri in refused.stderr
    cli("lake", "migrate", "--lake", uri, env=env)
    assert sql_s3(cli, uri, env, "SELECT dataset, bar_start, close FROM bars") == [
        {"dataset": "legacy", "bar_start": "2013-10-07T14:00:00Z", "close": 1.5}
    ]
    listing = json.loads(cli("lake", "datasets", "--lake", uri, "--format", "json", env=env).stdout)
    assert [(r["dataset"], r["table"], r["rows"]) for r in listing] == [("legacy", "bars", 1)]
    cli("lake", "drop", "--dataset", "legacy", "--lake", uri, env=env)
    assert sql_s3(cli, uri, env, "SELECT count(*) AS n FROM bars") == [{"n": 0}]
    leftover = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    assert not [i.path for i in leftover if i.type == pafs.FileType.File]


@pytest.fixture
def small_trades(tmp_path):
    """The Lean day's first 3,000 trades, as a CSV file of their own (dataset small-trades)."""
    import gzip

    path = tmp_path / "small-trades.csv"
    with gzip.open(LEAN_TRADES, "rt") as source, open(path, "w") as out:
        for n, line in enumerate(source):
            if n > 3000:
                break
            out.write(line)
    return path


_BARS = "SELECT dataset, symbol, timeframe, bar_start, open, high, low, close, volume FROM bars"


def test_backfill_datasets_and_drop_on_an_s3_lake(cli, s3_lake, small_trades):
    uri, settings, env = s3_lake
    cli("replay", small_trades, "--lake", uri, "--intervals", "1s,1m", env=env)
    stored = sql_s3(cli, uri, env, f"{_BARS} ORDER BY ALL")
    assert len(stored) > 100 and {r["dataset"] for r in stored} == {"small-trades"}
    # the DDL's timeframes: the configured ones (5m), 1d and those of the lake (1s, 1m)
    ddl = cli("lake", "ddl", "--lake", uri, env={**env, "MARKETPULSE_INTERVALS": "5m"}).stdout
    assert "'projection.timeframe.values' = '1d,1m,1s,5m'" in ddl
    assert f"LOCATION '{uri}/bars/'" in ddl
    # from the lake's own trades: the same bars, replacing the earlier ones (not added to them)
    done = cli("backfill", "--lake", uri, "--intervals", "1s,1m", env=env).stdout
    assert f"backfill of dataset small-trades done: ticks 3,000, bars {len(stored):,}" in done
    assert sql_s3(cli, uri, env, f"{_BARS} ORDER BY ALL") == stored
    # from a file, into another dataset of the same lake
    cli("backfill", "--file", small_trades, "--dataset", "again", "--lake", uri,
        "--intervals", "1s,1m", env=env)  # fmt: skip
    again = sql_s3(cli, uri, env, f"{_BARS} WHERE dataset = 'again' ORDER BY ALL")
    assert [{**r, "dataset": "small-trades"} for r in again] == stored
    listing = json.loads(cli("lake", "datasets", "--lake", uri, "--format", "json", env=env).stdout)
    rows = {(r["dataset"], r["table"]): r["rows"] for r in listing}
    assert rows[("again", "bars")] == rows[("small-trades", "bars")] == len(stored)
    assert rows[("small-trades", "trades")] == 3000 and ("again", "trades") not in rows
    dropped = cli("lake", "drop", "--dataset", "again", "--lake", uri, env=env).stdout
    removed = re.match(r"dropped dataset again: ([\d,]+) rows", dropped)
    # its bars and as many indicator rows, and its alerts if any
    assert removed and int(removed.group(1).replace(",", "")) >= 2 * len(stored), dropped
    left = json.loads(cli("lake", "datasets", "--lake", uri, "--format", "json", env=env).stdout)
    assert {r["dataset"] for r in left} == {"small-trades"}
    assert sql_s3(cli, uri, env, f"{_BARS} ORDER BY ALL") == stored
    # nothing was written to a local directory named after the URI, or the default lake
    here = small_trades.parent
    assert not list(here.glob("s3*")) and not (here / "data" / "lake").exists()


def test_the_dashboard_reads_an_s3_lake(cli, s3_lake, small_trades):
    import os
    import subprocess
    import sys
    import time

    import httpx

    uri, _, env = s3_lake
    cli("replay", small_trades, "--lake", uri, "--intervals", "1m", env=env)
    bars = sql_s3(cli, uri, env, "SELECT bar_start, close FROM bars WHERE symbol = 'SPY'"
                  " ORDER BY bar_start")  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "marketpulse", "dashboard", "--lake", uri, "--port", "0",
         "--duration", "60"],
        cwd=small_trades.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**environ, **env},
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        match = re.match(r"dashboard: (http://\S+/) \(lake s3://", line)
        assert match, line + process.stderr.read() if process.poll() is not None else line
        url = match.group(1)
        assert httpx.get(url + "readyz").status_code == 200
        listed = httpx.get(url + "api/datasets").json()
        assert listed["default"] == "small-trades" and listed["default_is"] == "latest"
        n_bars = sql_s3(cli, uri, env, "SELECT count(*) AS n FROM bars")[0]["n"]
        assert [(d["dataset"], d["bars"]) for d in listed["datasets"]] == [("small-trades", n_bars)]
        assert listed["datasets"][0]["written"].startswith("20")  # the newest object's time
        served = httpx.get(url + "api/bars", params={"symbol": "SPY", "timeframe": "1m",
                                                      "limit": 10_000}).json()  # fmt: skip
        assert [(b["bar_start"], b["close"]) for b in served] == [
            (b["bar_start"], b["close"]) for b in bars
        ]
        watchlist = httpx.get(url + "api/watchlist")
        assert watchlist.headers["MarketPulse-Dataset"] == "small-trades"
        assert "SPY" in {row["symbol"] for row in watchlist.json()}
        pipeline = httpx.get(url + "api/pipeline").json()
        assert pipeline["sink"] == {"kind": "lake", "root": uri, "ready": True}
        # objects written while it serves are listed again: a new dataset's bars appear
        cli("replay", small_trades, "--dataset", "later", "--lake", uri, "--intervals", "1m",
            env=env)  # fmt: skip
        deadline, later = time.monotonic() + 20, []
        while time.monotonic() < deadline and later != [n_bars]:
            listed = httpx.get(url + "api/datasets").json()["datasets"]
            later = [d["bars"] for d in listed if d["dataset"] == "later"]
            time.sleep(0.5)
        assert later == [n_bars]
    finally:
        process.terminate()
        rest, errors = process.communicate(timeout=30)
    assert process.returncode == 143, errors
    assert "test-secret" not in rest + errors


def test_run_on_kafka_writes_an_s3_lake(cli, s3_lake, kafka_bootstrap, topic_prefix):
    from .kafka_tools import read_committed

    uri, _, env = s3_lake
    done = cli("run", "--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix,
               "--duration", "6", "--symbols", "3", "--rate", "500", "--seed", "3",
               "--intervals", "1s", "--no-dashboard", "--lake", uri, env=env).stdout  # fmt: skip
    committed = read_committed(kafka_bootstrap, f"{topic_prefix}bars")
    n_bars = sum(len(rows) for rows in committed.values())
    assert n_bars > 3 * 3
    query = ("SELECT count(*) AS bars, count(DISTINCT (symbol, bar_start)) AS distinct_bars, "
             "list(DISTINCT dataset) AS datasets FROM bars")  # fmt: skip
    counts = sql_s3(cli, uri, env, query)[0]
    assert counts == {"bars": n_bars, "distinct_bars": n_bars, "datasets": ["simulator"]}
    assert f"bars {n_bars:,}" in done.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("command", "lake", "says"),
    [
        (["sql", "SELECT 1"], "gs://market/lake", "expected a directory or s3://bucket/prefix"),
        (["lake", "datasets"], "s3://Market_Data/lake", "is not an S3 bucket name"),
        (["replay", LEAN_TRADES], "s3://AKID:hush-hush@market/lake", "not the URL"),
        (["backfill"], "s3://AKID:hush-hush@market/lake", "not the URL"),
        (["report", "daily", "--start", "2013-10-07", "--end", "2013-10-07"], "s3:/market",
         "expected a directory or s3://bucket/prefix"),
        (["dashboard", "--port", "0", "--duration", "1"], "s3://market/lake?x=1", "without ?"),
    ],
)  # fmt: skip
def test_a_bad_lake_location_is_one_line(cli, command, lake, says):
    result = cli(*command, "--lake", lake, ok=False)
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr and "hush-hush" not in result.stderr + result.stdout
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and message.startswith("error: lake "), message
    assert says in message, message


def test_declared_indicators_in_an_s3_lake_are_in_its_views(cli, s3_lake, small_trades):
    uri, _, env = s3_lake
    cli("replay", small_trades, "--lake", uri, "--intervals", "1m", env=env)  # the default set
    cli("replay", small_trades, "--lake", uri, "--intervals", "1m", "--dataset", "declared",
        "--indicators", "ema(5), bb=bbands(10, 2.5)", env=env)  # fmt: skip
    rows = sql_s3(cli, uri, env, "SELECT dataset, count(ema_5) AS ema, count(bb_upper) AS bb,"
                  " count(rsi_14) AS rsi FROM indicators GROUP BY 1 ORDER BY 1")  # fmt: skip
    by_dataset = {r["dataset"]: r for r in rows}
    declared = by_dataset.pop("declared")
    assert declared["ema"] > 0 and declared["bb"] > 0 and declared["rsi"] == 0
    (default,) = by_dataset.values()
    assert default["ema"] == 0 and default["rsi"] > 0
    joined = sql_s3(cli, uri, env, "SELECT count(*) AS n FROM bars_with_indicators"
                    " WHERE dataset = 'declared' AND ema_5 IS NOT NULL")  # fmt: skip
    assert joined[0]["n"] == declared["ema"]
