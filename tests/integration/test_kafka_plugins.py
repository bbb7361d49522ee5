"""Plugins on a real broker: the process service's custom rows are exactly once, across a kill."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from marketpulse.bus.topics import Topics, topic_specs
from marketpulse.models import Alert, CustomValue, Indicators

from .conftest import LEAN_TRADES
from .kafka_tools import (
    bus_for,
    committed_offsets,
    create_topics,
    load_file,
    process_command,
    read_committed,
    read_records,
    start,
    wait_for_output,
    wait_log,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ZSCORE = ("--plugin", "examples.zscore_plugin:zscore")


def start_in_repo(command):
    """Start a command where ``examples.zscore_plugin`` is importable (the repository)."""
    proc = start(["/usr/bin/env", f"--chdir={REPO}", *command])
    return proc


def decoded(topic_records, kind):
    decoder = msgspec.json.Decoder(kind)
    return [decoder.decode(v) for rows in topic_records.values() for _, v, _ in rows]


def key(row):
    return (row.dataset, row.symbol, row.timeframe, row.bar_start)


def expected_zscore(ind):
    if ind.bb_upper is None or ind.bb_middle is None or not ind.bb_upper - ind.bb_middle > 0:
        return None
    return (ind.close - ind.bb_middle) / ((ind.bb_upper - ind.bb_middle) / 2)


def test_process_with_a_plugin_writes_one_custom_row_per_bar_across_a_sigkill(
    kafka_bootstrap, topic_prefix
):
    create_topics(kafka_bootstrap, topic_prefix)
    sent = load_file(kafka_bootstrap, topic_prefix, LEAN_TRADES)
    group = f"{topic_prefix}process"
    proc = start_in_repo(process_command(kafka_bootstrap, topic_prefix, "plug", *ZSCORE))
    # killed once a third of the day's bars have their custom rows (committed or not)
    wait_for_output(kafka_bootstrap, f"{topic_prefix}custom", 15_000, proc, timeout=120)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    consumed = committed_offsets(kafka_bootstrap, group, f"{topic_prefix}ticks")
    assert alive and proc.returncode == -signal.SIGKILL and consumed < sent
    again = start_in_repo(
        process_command(kafka_bootstrap, topic_prefix, "plug", *ZSCORE, "--exit-when-idle", "4")
    )
    log = wait_log(again, 300)
    assert again.returncode == 0, log

    bars = decoded(read_committed(kafka_bootstrap, f"{topic_prefix}bars"), dict)
    indicators = decoded(read_committed(kafka_bootstrap, f"{topic_prefix}indicators"), Indicators)
    custom = decoded(read_committed(kafka_bootstrap, f"{topic_prefix}custom"), CustomValue)
    alerts = decoded(read_committed(kafka_bootstrap, f"{topic_prefix}alerts"), Alert)
    assert len(bars) > 40_000
    # exactly one custom row per (bar, name): none lost, none duplicated by the restart
    keys = [(*key(row), row.name) for row in custom]
    assert len(keys) == len(set(keys)) == len(bars)
    assert {k[:4] for k in keys} == {
        (b["dataset"], b["symbol"], b["timeframe"], b["bar_start"]) for b in bars
    }
    # each value is the z-score of its bar's indicators
    by_bar = {key(ind): expected_zscore(ind) for ind in indicators}
    wrong = [
        row for row in custom
        if (row.value is None) != (by_bar[key(row)] is None)
        or (row.value is not None and abs(row.value - by_bar[key(row)]) > 1e-9)
    ]  # fmt: skip
    assert wrong == []
    # the plugin's alerts went to the alerts topic, once each
    extreme = [a for a in alerts if a.rule == "zscore_extreme"]
    assert extreme and len({a.id for a in extreme}) == len(extreme)
    assert {key(a) for a in extreme} == {k for k, z in by_bar.items() if z and abs(z) > 2.5}
    # the killed transaction's custom records were there, and aborted
    uncommitted = read_records(kafka_bootstrap, f"{topic_prefix}custom", "read_uncommitted")
    assert sum(map(len, uncommitted.values())) >= len(custom)


def test_process_requires_the_custom_topic_only_with_plugins(kafka_bootstrap, topic_prefix):
    bus, topics = bus_for(kafka_bootstrap), Topics(topic_prefix)
    for spec in topic_specs(topics):  # every topic but custom
        if spec.name != topics.name("custom"):
            bus.create_topics([spec.name], 6, 1, {spec.name: spec.config})
    with_plugin = subprocess.run(
        process_command(kafka_bootstrap, topic_prefix, "p1", *ZSCORE, "--exit-when-idle", "1"),
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert with_plugin.returncode == 2
    last = with_plugin.stderr.strip().splitlines()[-1]  # after the start's log lines
    assert last.startswith(f"error: topic {topic_prefix}custom does not exist"), last
    assert "Traceback" not in with_plugin.stderr
    without = subprocess.run(
        process_command(kafka_bootstrap, topic_prefix, "p2", "--exit-when-idle", "1"),
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert without.returncode == 0, without.stderr


def test_run_on_kafka_with_a_plugin_stores_its_rows_in_the_lake(
    sql, tmp_path, kafka_bootstrap, topic_prefix
):
    lake = tmp_path / "lake"
    run = subprocess.run(
        [sys.executable, "-m", "marketpulse", "run", "--kafka", kafka_bootstrap,
         "--topic-prefix", topic_prefix, "--duration", "10", "--symbols", "4", "--rate", "1000",
         "--seed", "5", "--lake", str(lake), "--no-dashboard", *ZSCORE,
         "--alerts-file", str(tmp_path / "alerts.jsonl")],
        cwd=REPO, capture_output=True, text=True, timeout=180,
        env={k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    custom = read_committed(kafka_bootstrap, f"{topic_prefix}custom")
    bars = read_committed(kafka_bootstrap, f"{topic_prefix}bars")
    n_custom = sum(map(len, custom.values()))
    assert n_custom == sum(map(len, bars.values())) > 4 * 5
    counts = sql(
        lake,
        "SELECT (SELECT count(*) FROM custom) AS custom, (SELECT count(*) FROM bars) AS bars, "
        "(SELECT count(DISTINCT (symbol, timeframe, bar_start, name)) FROM custom) AS keys",
    )[0]
    assert counts["custom"] == counts["keys"] == counts["bars"] == n_custom
