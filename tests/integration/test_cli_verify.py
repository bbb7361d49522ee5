"""`marketpulse verify` as users run it: over a replayed lake, over Kafka topics, on damage."""

from __future__ import annotations

import json
import shutil
import socket

import confluent_kafka as ck
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import LEAN_TRADES
from .kafka_tools import read_committed

pytestmark = pytest.mark.integration

DATASET = "lean-2013-10-07-trades"
TOTALS = "trades 388,417, bars 44,846, indicator rows 44,846, alerts 474, dlq 0"


@pytest.fixture
def lake_copy(lean_lake, tmp_path):
    """A copy of the lake of one clean replay of the Lean day, for a test to damage."""
    shutil.copytree(lean_lake.lake, tmp_path / "lake")
    return tmp_path / "lake"


def _one(lake, table, timeframe=None):
    """The one Parquet file of a table (of one timeframe) of the Lean lake."""
    tf = f"timeframe={timeframe}/" if timeframe else ""
    (path,) = lake.glob(f"{table}/dataset={DATASET}/{tf}period=*/*.parquet")
    return path


def _violations(result):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("verify: FAILED: ")
    return [line for line in result.stdout.splitlines() if line.startswith("violation: ")]


def _bad_usage(result, *words):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    for word in words:
        assert word in line, (word, line)


def test_a_clean_replay_verifies(cli, lean_lake):
    lake = lean_lake.lake
    # marketpulse verify --lake DIR
    result = cli("verify", "--lake", lake)
    lines = result.stdout.splitlines()
    assert lines[0] == f"lake {lake}: {TOTALS}"
    for tf in ("1s", "1m", "5m"):  # every kept trade in a bar of each timeframe, none open
        (row,) = [line.split() for line in lines if line.split()[:2] == [DATASET, tf]]
        assert row[2:] == ["388,417", "388,417", "0", "0", "0", "0", "0"]
    assert lines[-1].startswith("verify: OK")
    as_json = json.loads(
        cli("verify", "--lake", lake, "--dataset", DATASET, "--format", "json").stdout
    )
    assert as_json["ok"] is True and as_json["violations"] == []
    assert as_json["totals"] == {"trades": 388_417, "bars": 44_846, "indicators": 44_846,
                                 "alerts": 474, "dlq": 0}  # fmt: skip


def test_bars_rows_deleted_are_missing_trades(cli, lake_copy):
    path = _one(lake_copy, "bars", "1m")
    bars = pq.read_table(path)
    ibm = [i for i, s in enumerate(bars.column("symbol").to_pylist()) if s == "IBM"][:3]
    lost = sum(bars.column("trades").to_pylist()[i] for i in ibm)
    pq.write_table(bars.filter([i not in ibm for i in range(bars.num_rows)]), path)
    (line,) = _violations(cli("verify", "--lake", lake_copy, ok=False))
    assert line.startswith(f"violation: {DATASET} IBM 1m: {lost:,} trades missing")


def test_a_timeframe_deleted_is_found_when_its_interval_is_named(cli, lake_copy):
    _one(lake_copy, "bars", "5m").unlink()
    # nothing else tells that 5m bars were built: the intervals say so
    lines = _violations(cli("verify", "--lake", lake_copy, "--intervals", "1s,1m,5m", ok=False))
    assert sorted(line.split()[2:4] for line in lines) == [
        [s, "5m:"] for s in ("AIG", "BAC", "IBM", "SPY")
    ]


def test_a_file_copied_or_a_row_twice_is_a_key_stored_twice(cli, lake_copy):
    trades = _one(lake_copy, "trades")
    shutil.copy(trades, trades.with_name("copy.parquet"))
    alerts = _one(lake_copy, "alerts", "1m")
    shutil.copy(alerts, alerts.with_name("copy.parquet"))
    path = _one(lake_copy, "bars", "5m")
    bars = pq.read_table(path)
    pq.write_table(pa.concat_tables([bars, bars.slice(0, 1)]), path)
    lines = _violations(cli("verify", "--lake", lake_copy, ok=False))
    first = bars.slice(0, 1).to_pylist()[0]
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"violation: {DATASET} 5m: bars stored twice or more: "
                               f"{first['symbol']} ")  # fmt: skip
    assert lines[1].startswith(f"violation: {DATASET} 1m: alerts stored twice or more: ")
    assert lines[2].startswith(f"violation: {DATASET}: 388,417 trades stored twice: ")
    assert "copy.parquet holds the rows of" in lines[2]


def test_bad_usage_is_one_line_and_exit_2(cli, lean_lake, tmp_path):
    lake = lean_lake.lake
    _bad_usage(cli("verify", "--lake", tmp_path / "nowhere", ok=False), "no lake at", "nowhere")
    _bad_usage(cli("verify", "--lake", lake, "--dataset", "other", ok=False), "'other'")
    _bad_usage(cli("verify", "--lake", lake, "--topic-prefix", "p.", ok=False), "not both")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    _bad_usage(cli("verify", "--bootstrap-servers", closed, ok=False), "cannot reach Kafka")


def test_kafka_topics_after_produce_and_process_verify(cli, kafka_bootstrap, topic_prefix):
    kafka = ["--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix]
    cli("topics", "create", *kafka)
    cli("produce", "--file", LEAN_TRADES, *kafka)
    cli("process", *kafka, "--exit-when-idle", "5")
    # marketpulse verify --bootstrap-servers HOST:PORT --topic-prefix P.
    result = cli("verify", *kafka)
    assert f"topics {topic_prefix}*: {TOTALS}" in result.stdout.splitlines()[0]
    assert result.stdout.splitlines()[-1].startswith("verify: OK")
    # a bar record sent again outside any transaction: a read_committed reader sees it twice
    partition, rows = next((p, rows) for p, rows in read_committed(
        kafka_bootstrap, f"{topic_prefix}bars").items() if rows)  # fmt: skip
    key, value, _ = rows[0]
    producer = ck.Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(f"{topic_prefix}bars", value, key, partition=partition)
    assert producer.flush(30) == 0
    bar = json.loads(value)
    (line,) = _violations(cli("verify", *kafka, ok=False))
    assert line.startswith(f"violation: {bar['dataset']} {bar['timeframe']}: bars stored twice "
                           f"or more: {bar['symbol']} ")  # fmt: skip
