"""At least once on a real broker: a crash loses nothing and repeats only identical outputs."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import confluent_kafka as ck
import psycopg
import pytest

from .conftest import LEAN_TRADES
from .kafka_tools import (
    OUTPUTS,
    committed_offsets,
    create_topics,
    end_offsets,
    load_file,
    outputs,
    process_command,
    read_records,
    records,
    start,
    wait_for_output,
    wait_log,
)

pytestmark = pytest.mark.integration

#: The [process] quiet_commit_interval of the test: at least once, state and
#: offsets commit at least every twice this (right after outputs, else at twice it).
INTERVAL = 0.5
#: Ticks a second the test's feed sends: slower than the service reads even on a
#: busy machine, so that outputs and commits keep coming until the kill.
FEED_RATE = 20_000
#: What a commit and the poll it follows may add to that on a loaded machine.
SLACK = 1.0


class EndOffsets(threading.Thread):
    """Samples the sum of a topic's end offsets every 20 ms: (monotonic time, records)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "watch"})
        self.topic = topic
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def now(self) -> int:
        parts = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        return sum(
            self.consumer.get_watermark_offsets(ck.TopicPartition(self.topic, p), timeout=10)[1]
            for p in parts
        )

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), self.now()))
            time.sleep(0.02)

    def at(self, moment: float) -> int:
        """Records the topic held at ``moment`` (the last sample before it)."""
        return max((n for t, n in self.samples if t <= moment), default=0)


def _run(command, env):
    """Run a command to its end with ``env`` (and no other MARKETPULSE_ variable)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**environ, **env})  # fmt: skip


def _alo(bootstrap, prefix, config, *extra):
    return process_command(bootstrap, prefix, "alo", "--guarantee", "at-least-once",
                           "--config", str(config), *extra)  # fmt: skip


def _common(a, b, reverse=False):
    """Length of the common prefix (``reverse``: suffix) of two lists."""
    if reverse:
        a, b = a[::-1], b[::-1]
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class _Commits:
    """Reads what a group has committed on its input, and a topic's records (one client)."""

    def __init__(self, bootstrap: str, group: str, topic: str, outputs: str) -> None:
        self.consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                     "enable.auto.commit": False})  # fmt: skip
        self.partitions = self._partitions(topic)
        self.outputs = self._partitions(outputs)

    def _partitions(self, topic: str) -> list[ck.TopicPartition]:
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return [ck.TopicPartition(topic, p) for p in sorted(parts)]

    def offsets(self) -> int:
        """The group's committed offsets, summed over the partitions."""
        done = self.consumer.committed(self.partitions, timeout=10)
        return sum(max(tp.offset, 0) for tp in done)

    def records(self) -> int:
        """The output topic's records on the broker (end offsets, summed).

        One request for every partition (a watermark query each took six round trips,
        which on a busy machine outlasted the window `_outputs_past_a_commit` looks in).
        """
        asked = [ck.TopicPartition(tp.topic, tp.partition, ck.OFFSET_END) for tp in self.outputs]
        ends = self.consumer.offsets_for_times(asked, timeout=10)
        assert all(tp.error is None for tp in ends), ends
        return sum(tp.offset for tp in ends)

    def __enter__(self) -> "_Commits":
        return self

    def __exit__(self, *exc) -> None:
        self.consumer.close()


#: Bars that must reach the broker after a commit before the kill.
PAST_A_COMMIT = 20


def _outputs_past_a_commit(commits: _Commits, proc, timeout=60.0):
    """Wait for a commit, then for bars sent after it, before the next is due.

    A commit flushes every output sent before it, so the bars end offset read
    after a commit is seen counts at least all the bars of the committed input;
    more bars than that came from input a restart reads again. The kill must
    come before the next commit: at least ``INTERVAL`` after this one (``2 *
    INTERVAL`` while outputs keep coming), so it is taken within ``INTERVAL / 2``.

    Returns:
        (committed offsets, bars on the broker) at the last check before the kill.
    """
    deadline = time.monotonic() + timeout
    last = commits.offsets()
    seen_at, base = None, 0
    while time.monotonic() < deadline:
        assert proc.poll() is None, "process ended before the kill"
        now_committed = commits.offsets()
        if now_committed != last:  # a commit just happened
            last, seen_at, base = now_committed, time.monotonic(), commits.records()
            continue
        if seen_at is None:
            continue
        bars = commits.records()
        if time.monotonic() - seen_at > INTERVAL / 2:
            seen_at = None  # too close to the next commit: wait for another
        elif bars >= base + PAST_A_COMMIT and commits.offsets() == last:
            return last, bars
    raise AssertionError(f"no {PAST_A_COMMIT} bars went out within {INTERVAL / 2} s of a commit")


def test_sigkill_at_least_once_loses_nothing_and_repeats_identical_outputs(
    kafka_bootstrap, topic_prefix, lean_reference, postgres_url, tmp_path
):
    sent, expected = lean_reference
    create_topics(kafka_bootstrap, topic_prefix)
    # the ticks arrive as from a live feed while the service runs: loaded at once, they were
    # all read within seconds on a quiet machine, and on a busy one the last commit could
    # come before a moment to kill was found (seen in CI: "no 20 bars ... of a commit")
    fed: list[int] = []
    feed = threading.Thread(target=lambda: fed.append(load_file(
        kafka_bootstrap, topic_prefix, LEAN_TRADES, rate=FEED_RATE, batch_size=2_000)))  # fmt: skip
    feed.start()
    config = tmp_path / "marketpulse.toml"
    config.write_text(f"[process]\nquiet_commit_interval = {INTERVAL}\n")
    total_bars = sum(len(rows) for rows in expected["bars"].values())
    bars_topic = f"{topic_prefix}bars"
    watch = EndOffsets(kafka_bootstrap, bars_topic)
    watch.start()
    # no --exit-when-idle: the kill ends it, or the finally below if the test fails first
    # (left running, it idled on for the rest of a CI run, and joined the group again on
    # the next broker started at the same port)
    proc = start(_alo(kafka_bootstrap, topic_prefix, config))
    group, ticks = f"{topic_prefix}process", f"{topic_prefix}ticks"
    try:
        wait_for_output(kafka_bootstrap, bars_topic, total_bars // 4, proc)
        with _Commits(kafka_bootstrap, group, ticks, bars_topic) as commits:
            # kill once bars went out past a commit, well before the next one is due: the
            # bars of the input since that commit are then both on the broker and redone
            committed, past = _outputs_past_a_commit(commits, proc)
            alive = proc.poll() is None
            killed_at = time.monotonic()
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert commits.offsets() == committed  # no commit came between check and kill
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        feed.join()
    assert fed == [sent]
    watch.stop.set()
    watch.join()
    at_kill = watch.now()  # what reached the broker before the process died
    before = watch.at(killed_at - (2 * INTERVAL + SLACK))
    watch.consumer.close()
    # the kill landed mid-work: running, died of SIGKILL, not every tick's offset committed,
    # and bars sent after the last commit had reached the broker
    consumed = committed_offsets(kafka_bootstrap, group, ticks)
    assert alive and proc.returncode == -signal.SIGKILL and 0 < consumed < sent
    assert consumed == committed and at_kill >= past
    assert total_bars // 4 <= at_kill < total_bars

    again = start(_alo(kafka_bootstrap, topic_prefix, config, "--exit-when-idle", "4"))
    log = wait_log(again, 300)
    assert again.returncode == 0, log

    got = outputs(kafka_bootstrap, topic_prefix)
    repeated = dict.fromkeys(OUTPUTS, 0)
    for topic in OUTPUTS:
        want_all, have_all = records(expected[topic]), records(got[topic])
        assert set(have_all) == set(want_all), topic
        for partition, want in want_all.items():
            have = have_all[partition]
            # have == want[:k] + want[j:] for some j <= k: everything arrived, and what
            # arrived twice is the run from the last commit, record for record the same
            extra = len(have) - len(want)
            assert extra >= 0, (topic, partition)
            head, tail = _common(have, want), _common(have, want, reverse=True)
            assert head + tail >= len(have), (topic, partition, head, tail, len(have))
            repeated[topic] += extra
    assert repeated["bars"] > 0  # the crash did repeat outputs: the check above had work
    # the documented bound: only what was sent since the last commit, at most twice the
    # commit interval (plus a commit and a poll) before the kill
    assert repeated["bars"] <= at_kill - before, (repeated, at_kill, before)

    # the PostgreSQL sink upserts on natural keys: it stores what an exactly-once run stores
    sink = start([sys.executable, "-m", "marketpulse", "sink", "postgres", "--bootstrap-servers",
                  kafka_bootstrap, "--topic-prefix", topic_prefix, "--group", f"{topic_prefix}pg",
                  "--exit-when-idle", "5", "--postgres-url", postgres_url])  # fmt: skip
    log = wait_log(sink, 300)
    assert sink.returncode == 0, log
    bars = sorted(
        (b["symbol"], b["timeframe"], b["bar_start"], b["close"], b["volume"], b["trades"])
        for rows in expected["bars"].values()
        for _, value, _ in rows
        for b in [json.loads(value)]
    )
    with psycopg.connect(postgres_url) as conn:
        stored = conn.execute(
            "SELECT symbol, timeframe, (extract(epoch FROM bar_start) * 1e9)::bigint, close,"
            " volume, trades FROM bars ORDER BY symbol, timeframe, bar_start"
        ).fetchall()
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM indicators), (SELECT count(*) FROM alerts)"
        ).fetchone()
    assert sorted(tuple(row) for row in stored) == bars
    assert counts == (
        sum(map(len, expected["indicators"].values())),
        sum(map(len, expected["alerts"].values())),
    )


@pytest.mark.parametrize(
    ("command", "env", "where"),
    [
        (("process",), {}, "--guarantee"),
        (("run", "--kafka", "127.0.0.1:1"), {}, "--guarantee"),
        (("process",), {"MARKETPULSE_GUARANTEE": "maybe"}, "MARKETPULSE_GUARANTEE"),
        (("process",), {"MARKETPULSE_PROCESS_GUARANTEE": "maybe"}, "guarantee"),
    ],
)
def test_a_guarantee_neither_offered_is_refused_in_one_line(cli, command, env, where):
    args = (*command, "--guarantee", "maybe") if not env else command
    result = cli(*args, ok=False, env=env)
    assert result.returncode == 2
    message = result.stderr.strip()
    assert "Traceback" not in result.stderr + result.stdout
    assert len(message.splitlines()) == 1 and message.startswith("error:"), message
    assert where in message and "exactly-once, at-least-once" in message, message


@pytest.mark.parametrize("guarantee", ["exactly-once", "at-least-once"])
def test_the_latency_trace_notes_each_stage_in_order(
    kafka_bootstrap, topic_prefix, tmp_path, guarantee
):
    create_topics(kafka_bootstrap, topic_prefix)
    load_file(kafka_bootstrap, topic_prefix, LEAN_TRADES)
    trace = tmp_path / "trace.jsonl"
    command = process_command(kafka_bootstrap, topic_prefix, "traced", "--guarantee", guarantee,
                              "--exit-when-idle", "2")  # fmt: skip
    result = _run(command, {"MARKETPULSE_PROCESS_TRACE": str(trace)})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    sends = [line["o"] for line in lines if "o" in line]
    commits = [line["c"] for line in lines if "c" in line]
    assert len(sends) > 5 and commits  # a catch-up: few, large polls
    for _partition, bar_end, poll, record_ms, sent in sends:
        assert bar_end > 0 and record_ms > 0 and 0 < poll <= sent
    for begun, offsets, done, held in commits:
        assert begun <= done and (not offsets or begun <= offsets <= done)
        assert not held or guarantee == "exactly-once"  # at least once, none holds outputs
    assert any(held for *_, held in commits) == (guarantee == "exactly-once")


def test_a_trace_file_that_cannot_be_written_is_one_line(kafka_bootstrap, topic_prefix, tmp_path):
    create_topics(kafka_bootstrap, topic_prefix)
    command = process_command(kafka_bootstrap, topic_prefix, "traced", "--exit-when-idle", "1")
    result = _run(command, {"MARKETPULSE_PROCESS_TRACE": str(tmp_path / "no" / "x")})
    assert result.returncode == 2
    message = result.stderr.strip()
    assert "Traceback" not in result.stdout + result.stderr
    # one line (after the kernels' start-up log lines): the variable, the file, why
    last = message.splitlines()[-1]
    assert last.startswith("error: MARKETPULSE_PROCESS_TRACE: cannot write"), message
    assert "No such file or directory" in last


def test_run_on_kafka_at_least_once_sends_outputs_outside_transactions(
    sql, tmp_path, kafka_bootstrap, topic_prefix
):
    lake = tmp_path / "lake"
    command = [sys.executable, "-m", "marketpulse", "run", "--kafka", kafka_bootstrap,
               "--topic-prefix", topic_prefix, "--guarantee", "at-least-once", "--duration", "8",
               "--symbols", "4", "--rate", "1000", "--seed", "3", "--lake", str(lake),
               "--no-dashboard", "--alerts-file", str(tmp_path / "alerts.jsonl")]  # fmt: skip
    result = _run(command, {})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # bars reached the topic and the lake; no transaction carried them: a reader that
    # sees aborted and open transactions' records too sees no more than a read_committed one
    committed_bars = read_records(kafka_bootstrap, f"{topic_prefix}bars", "read_committed")
    every_bar = read_records(kafka_bootstrap, f"{topic_prefix}bars", "read_uncommitted")
    n_bars = sum(map(len, committed_bars.values()))
    assert n_bars > 4 * 3 and sum(map(len, every_bar.values())) == n_bars
    # no transaction markers among the bars' offsets either: one record per offset
    assert sum(end_offsets(kafka_bootstrap, f"{topic_prefix}bars")) == n_bars
    stored = sql(lake, "SELECT count(*) AS n FROM bars")[0]["n"]
    assert stored == n_bars  # no crash, so no repeat
