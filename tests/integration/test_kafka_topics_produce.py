"""`marketpulse topics` and `marketpulse produce` against a real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest
from confluent_kafka.admin import ConfigResource, ResourceType

from marketpulse.feeds import FileReplay
from marketpulse.models import Trade, decode_tick

from .conftest import LEAN_TRADES
from .kafka_tools import bus_for, create_topics, end_offsets, read_committed

pytestmark = pytest.mark.integration

SHORT_NAMES = (
    "ticks",
    "bars",
    "indicators",
    "alerts",
    "dlq",
    "state",
    "custom",
    "trades",
    "quotes",
    "predictions",
    "news",
)
LEAN_ROWS = 388_417


def _command(bootstrap, prefix, *args):
    return [
        sys.executable, "-m", "marketpulse", *map(str, args),
        "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
    ]  # fmt: skip


def _env():
    return {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}


def run(bootstrap, prefix, *args, timeout=300):
    """Run a marketpulse command with no terminal (stdin closed) and return the result."""
    return subprocess.run(
        _command(bootstrap, prefix, *args), capture_output=True, text=True, timeout=timeout,
        env=_env(), stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def _refused(result, *words):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error:"), result.stderr
    for word in words:
        assert word in message, (word, message)


def _existing(bootstrap, prefix):
    """The topics under ``prefix`` and their partition metadata."""
    topics = bus_for(bootstrap).admin().list_topics(timeout=10).topics
    return {name: t for name, t in topics.items() if name.startswith(prefix)}


def _wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def _ticks_by_symbol(bootstrap, topic):
    """{symbol: (partitions it was found on, decoded ticks in order)} of a ticks topic."""
    partitions, ticks = defaultdict(set), defaultdict(list)
    for partition, rows in read_committed(bootstrap, topic).items():
        for key, value, _ in rows:
            tick = decode_tick(value)
            assert key == tick.symbol.encode()
            partitions[tick.symbol].add(partition)
            ticks[tick.symbol].append(tick)
    return partitions, ticks


def test_topics_create_describe_delete(kafka_bootstrap, topic_prefix):
    names = [topic_prefix + short for short in SHORT_NAMES]
    args = ("--partitions", 3, "--retention-hours", 24)
    first = _ok(run(kafka_bootstrap, topic_prefix, "topics", "create", *args))
    assert first.stdout.count("created ") == 11 and "11 created, 0 already existed" in first.stdout

    existing = _existing(kafka_bootstrap, topic_prefix)
    assert sorted(existing) == sorted(names)
    for topic in existing.values():
        assert len(topic.partitions) == 3
        assert all(len(p.replicas) == 1 for p in topic.partitions.values())
    admin = bus_for(kafka_bootstrap).admin()
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    configs = {r.name: f.result() for r, f in admin.describe_configs(resources).items()}
    assert configs[topic_prefix + "state"]["cleanup.policy"].value == "compact"
    for short in ("ticks", "bars", "indicators", "alerts", "dlq", "custom", "trades"):
        assert configs[topic_prefix + short]["cleanup.policy"].value == "delete"
        assert configs[topic_prefix + short]["retention.ms"].value == str(24 * 3_600_000)

    # again: nothing to do, not an error, and the topics keep their settings
    again = _ok(run(kafka_bootstrap, topic_prefix, "topics", "create", "--partitions", 5))
    assert again.stdout.count("exists ") == 11 and "0 created, 11 already existed" in again.stdout
    assert all(len(t.partitions) == 3 for t in _existing(kafka_bootstrap, topic_prefix).values())

    described = _ok(run(kafka_bootstrap, topic_prefix, "topics", "describe")).stdout
    lines = {line.split(":")[0]: line for line in described.splitlines() if line[:1] != " "}
    assert sorted(lines) == sorted(names)
    for name, line in lines.items():
        assert "3 partitions, replication factor 1" in line, line
        policy = "compact" if name.endswith(".state") else "delete"
        assert f"cleanup.policy={policy}" in line, line
    assert "retention.ms=86400000 (1 d)" in lines[topic_prefix + "ticks"]
    assert described.count("end offsets (0 in all): 0:0 1:0 2:0") == 11

    refused = run(kafka_bootstrap, topic_prefix, "topics", "delete")
    _refused(refused, "--yes")
    assert len(_existing(kafka_bootstrap, topic_prefix)) == 11

    deleted = _ok(run(kafka_bootstrap, topic_prefix, "topics", "delete", "--yes"))
    assert deleted.stdout.count("deleted ") == 11
    _wait_until(lambda: not _existing(kafka_bootstrap, topic_prefix))
    _refused(run(kafka_bootstrap, topic_prefix, "topics", "describe"), "11 of 11", "topics create")


def test_topics_create_with_more_replicas_than_brokers_is_refused(kafka_bootstrap, topic_prefix):
    result = run(kafka_bootstrap, topic_prefix, "topics", "create", "--replication-factor", 3)
    _refused(result, "cannot create topic", "replication")
    assert not _existing(kafka_bootstrap, topic_prefix)


def test_produce_lean_file_lands_every_trade_keyed_by_symbol(kafka_bootstrap, topic_prefix):
    topics = create_topics(kafka_bootstrap, topic_prefix)
    result = _ok(run(kafka_bootstrap, topic_prefix, "produce", "--file", LEAN_TRADES))
    assert f"produced {LEAN_ROWS:,} ticks" in result.stdout and "failed 0," in result.stdout

    assert sum(end_offsets(kafka_bootstrap, topics.ticks)) == LEAN_ROWS
    partitions, got = _ticks_by_symbol(kafka_bootstrap, topics.ticks)
    assert all(len(found) == 1 for found in partitions.values()), partitions
    assert len({p for found in partitions.values() for p in found}) > 1  # spread by key

    expected = defaultdict(list)
    for batch in FileReplay(LEAN_TRADES).batches():
        for row in batch.data.drop_columns(["line", "dataset"]).to_pylist():
            expected[row["symbol"]].append(Trade(**row))
    assert sum(map(len, expected.values())) == LEAN_ROWS
    assert got == expected  # same trades, in file order per symbol
    assert sum(end_offsets(kafka_bootstrap, topics.name("dlq"))) == 0


def test_produce_malformed_rows_go_to_dlq_with_file_and_line(
    kafka_bootstrap, topic_prefix, tmp_path
):
    topics = create_topics(kafka_bootstrap, topic_prefix)
    data = tmp_path / "trades.csv"
    data.write_text(
        "timestamp,symbol,price,size\n"
        "2024-01-02T14:30:00.000Z,AAPL,185.10,100\n"
        "2024-01-02T14:30:00.500Z,AAPL,abc,100\n"  # line 3: not a number
        "2024-01-02T14:30:01.000Z,AAPL,185.20\n"  # line 4: a field short
        "2024-01-02T14:30:02.000Z,MSFT,385.30,200\n"
    )
    result = _ok(run(kafka_bootstrap, topic_prefix, "produce", "--file", data))
    assert "produced 2 ticks" in result.stdout and "2 malformed rows to dlq" in result.stdout

    dead = [row for rows in read_committed(kafka_bootstrap, topics.name("dlq")).values()
            for row in rows]  # fmt: skip
    by_line = {int(dict(h)["line"]): (value, dict(h)) for _, value, h in dead}
    assert sorted(by_line) == [3, 4]
    for _, headers in by_line.values():
        assert headers["file"] == str(data).encode()
        assert headers["reason"] == b"parse"
        assert headers["dataset"] == f"{tmp_path.name}-trades".encode()  # the file's dataset
    assert by_line[3][0] == b"2024-01-02T14:30:00.500Z,AAPL,abc,100"
    assert b"abc" in by_line[3][1]["error"]
    assert b"fields" in by_line[4][1]["error"]
    _, ticks = _ticks_by_symbol(kafka_bootstrap, topics.ticks)
    assert {s: [t.price for t in ts] for s, ts in ticks.items()} == {
        "AAPL": [185.10], "MSFT": [385.30]
    }  # fmt: skip


def test_produce_simulator_for_a_duration(kafka_bootstrap, topic_prefix):
    topics = create_topics(kafka_bootstrap, topic_prefix)
    # the simulator is endless: only --duration ends the command (else the timeout fails it)
    result = _ok(
        run(kafka_bootstrap, topic_prefix, "produce", "--feed", "simulator", "--duration", 3,
            "--rate", 2000, "--compression", "zstd", timeout=120)
    )  # fmt: skip
    written = sum(end_offsets(kafka_bootstrap, topics.ticks))
    assert written > 0
    assert f"produced {written:,} ticks" in result.stdout  # everything sent was flushed
    partitions, _ = _ticks_by_symbol(kafka_bootstrap, topics.ticks)
    assert all(len(found) == 1 for found in partitions.values())


def test_sigterm_stops_produce_cleanly_and_flushed(kafka_bootstrap, topic_prefix):
    topics = create_topics(kafka_bootstrap, topic_prefix)
    proc = subprocess.Popen(
        _command(kafka_bootstrap, topic_prefix, "produce", "--feed", "simulator"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        _wait_until(lambda: sum(end_offsets(kafka_bootstrap, topics.ticks)) > 0, timeout=60)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err  # 128 + SIGTERM, after a clean stop
    written = sum(end_offsets(kafka_bootstrap, topics.ticks))
    assert f"produced {written:,} ticks" in out, (out, written)


def test_produce_without_topics_names_topics_create(kafka_bootstrap, topic_prefix):
    result = run(kafka_bootstrap, topic_prefix, "produce", "--file", LEAN_TRADES)
    _refused(result, f"{topic_prefix}ticks", "marketpulse topics create")
    assert not _existing(kafka_bootstrap, topic_prefix)  # nothing auto-created either


def test_produce_needs_exactly_one_source(kafka_bootstrap, topic_prefix):
    _refused(run(kafka_bootstrap, topic_prefix, "produce"), "--feed simulator", "--file")
    _refused(
        run(kafka_bootstrap, topic_prefix, "produce", "--file", LEAN_TRADES, "--rate", 10),
        "--rate",
    )
