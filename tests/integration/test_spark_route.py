"""``marketpulse spark``: the Spark route writes what ``process`` writes, to topics and lake.

The Lean day goes to two topic prefixes (the same records, so the same
partitions); ``process`` and ``sink lake`` run over one, ``marketpulse spark``
over the other, each as a user types it with the same processing settings
(bars close by input alone: ``--idle-timeout 0`` for ``process``, the Spark
route's only mode), and every output topic and lake table is compared.
"""

import os
import subprocess
import sys

import pyarrow.dataset as ds
import pytest

from .conftest import LEAN_TRADES, marketpulse
from .kafka_tools import create_topics, load_file, read_committed, start

pytestmark = pytest.mark.integration

TOPICS = ("bars", "indicators", "alerts", "trades", "dlq")
TABLES = ("bars", "indicators", "alerts", "trades")


def spark_command(bootstrap, prefix, checkpoint, *extra):
    return [
        sys.executable, "-m", "marketpulse", "spark", "--bootstrap-servers", bootstrap,
        "--topic-prefix", prefix, "--checkpoint", checkpoint, "--master", "local[2]", *extra,
    ]  # fmt: skip


def run_spark(bootstrap, prefix, checkpoint, *extra, timeout=600):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    return subprocess.run(
        spark_command(bootstrap, prefix, checkpoint, *extra),
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def sorted_records(bootstrap, prefix):
    """Each output topic's committed records (key, value) per partition, sorted."""
    return {
        topic: {p: sorted((k, v) for k, v, _ in rows)
                for p, rows in read_committed(bootstrap, f"{prefix}{topic}").items()}
        for topic in TOPICS
    }  # fmt: skip


def lake_rows(lake, table):
    rows = ds.dataset(lake / table, format="parquet", partitioning="hive").to_table()
    columns = sorted(c for c in rows.column_names if c not in ("date", "year"))
    return sorted(rows.select(columns).to_pylist(), key=repr)


@pytest.fixture(scope="module")
def process_run(kafka_bootstrap, tmp_path_factory):
    """The Lean day through `process` (bars close by input alone) and `sink lake`."""
    prefix = f"sp{os.getpid()}p."
    create_topics(kafka_bootstrap, prefix)
    sent = load_file(kafka_bootstrap, prefix, LEAN_TRADES)
    common = ("--bootstrap-servers", kafka_bootstrap, "--topic-prefix", prefix)
    proc = start([sys.executable, "-m", "marketpulse", "process", *common, "--group",
                  f"{prefix}process", "--idle-timeout", "0", "--exit-when-idle", "5"])  # fmt: skip
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log
    lake = tmp_path_factory.mktemp("process") / "lake"
    sink = marketpulse("sink", "lake", *common, "--group", f"{prefix}sink", "--lake", lake,
                       "--exit-when-idle", "5")  # fmt: skip
    assert sink.returncode == 0, sink.stderr
    return sent, sorted_records(kafka_bootstrap, prefix), lake


def test_the_spark_route_writes_what_process_writes_on_the_topics_and_in_the_lake(
    kafka_bootstrap, process_run, tmp_path
):
    sent, expected, expected_lake = process_run
    prefix = f"sp{os.getpid()}s."
    create_topics(kafka_bootstrap, prefix)
    assert load_file(kafka_bootstrap, prefix, LEAN_TRADES) == sent
    lake = tmp_path / "lake"
    result = run_spark(kafka_bootstrap, prefix, tmp_path / "checkpoint", "--available-now",
                       "--lake", lake)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr

    got = sorted_records(kafka_bootstrap, prefix)
    assert sum(len(v) for v in got["bars"].values()) > 1000  # the day's bars, not a few
    assert sum(len(v) for v in got["alerts"].values()) > 0
    for topic in TOPICS:
        assert got[topic] == expected[topic], topic
    for table in TABLES:
        assert lake_rows(lake, table) == lake_rows(expected_lake, table), table
    assert "spark: 1 micro-batches" in result.stdout


def test_a_second_run_from_the_checkpoint_writes_nothing_again(kafka_bootstrap, tmp_path):
    """Restarted with its checkpoint on a topic it has read, the query writes no record twice."""
    prefix = f"sp{os.getpid()}r."
    create_topics(kafka_bootstrap, prefix)
    load_file(kafka_bootstrap, prefix, LEAN_TRADES)
    checkpoint, lake = tmp_path / "checkpoint", tmp_path / "lake"
    first = run_spark(kafka_bootstrap, prefix, checkpoint, "--available-now", "--lake", lake,
                      "--max-offsets-per-trigger", "40000")  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    once = sorted_records(kafka_bootstrap, prefix)
    files = sorted(p.relative_to(lake) for p in lake.rglob("*.parquet"))
    # the last micro-batch undone, as if the driver died before Spark recorded it
    commits = checkpoint / "commits"
    last = max(int(p.name) for p in commits.iterdir() if p.name.isdigit())
    assert last >= 2  # several micro-batches of at most 40,000 ticks
    (commits / str(last)).unlink()
    (commits / f".{last}.crc").unlink(missing_ok=True)  # its checksum
    again = run_spark(kafka_bootstrap, prefix, checkpoint, "--available-now", "--lake", lake)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"batch {last} is already on the topics" in again.stderr  # the batch ran again
    assert sorted_records(kafka_bootstrap, prefix) == once
    assert sorted(p.relative_to(lake) for p in lake.rglob("*.parquet")) == files


def test_spark_without_its_ticks_topic_says_so_in_one_line(kafka_bootstrap, tmp_path):
    result = run_spark(kafka_bootstrap, "nosuchprefix.", tmp_path / "c", "--available-now",
                       timeout=120)  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and "nosuchprefix.ticks" in lines[-1]
    assert "Traceback" not in result.stderr


def test_spark_bad_uses_are_one_line_errors(tmp_path):
    missing = marketpulse("spark", "--available-now")
    assert missing.returncode == 2 and "--checkpoint" in missing.stderr
    nothing = marketpulse("spark", "--checkpoint", tmp_path / "c", "--no-topics")
    assert nothing.returncode == 2 and "--no-topics leaves nothing to write" in nothing.stderr
    offsets = marketpulse("spark", "--checkpoint", tmp_path / "c", "--starting-offsets", "x")
    assert offsets.returncode == 2 and "earliest or latest" in offsets.stderr
    for result in (missing, nothing, offsets):
        assert "Traceback" not in result.stderr
