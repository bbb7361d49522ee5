"""A three-broker KRaft cluster: losing a broker mid-run changes no output.

The cluster is the project's own launcher (``scripts/kafka_broker.py``, :class:`Cluster`):
three nodes, each broker and controller. Topics are made as a user makes them,
``marketpulse topics create --replication-factor 3 --min-insync-replicas 2``; trades of
the Lean day go in through ``marketpulse produce`` in two parts, and ``marketpulse
process`` runs throughout. Mid-run, the leader of the busiest partition is SIGKILLed (or
stopped and started again); the outputs, read with read_committed, must equal those of an
uninterrupted run over the same input on the same cluster.
"""

from __future__ import annotations

import gzip
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException

from .conftest import LEAN_TRADES, ROOT, marketpulse
from .kafka_fixtures import kafka_cluster
from .kafka_tools import (
    OUTPUTS,
    committed_offsets,
    end_offsets,
    outputs,
    process_command,
    records,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

#: Trades replayed: the first of the Lean day (08:00 to about 14:24 UTC, SPY the busiest),
#: sent in two parts so that input is still arriving while a broker is lost.
TRADES = 100_000
FIRST_PART = 60_000
#: Records per poll of `process`: many small transactions, so a run lasts long enough to
#: lose a broker in the middle of it.
MAX_BATCH = "1000"


@pytest.fixture(scope="module")
def workdir():
    """A directory of this module's own under /tmp, removed after it.

    Not under pytest's basetemp: pytest runs started meanwhile (other sessions on this
    machine) prune old basetemps, which would pull the data from under the brokers.
    """
    path = Path(tempfile.mkdtemp(prefix="marketpulse-cluster-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def broker_script(*args):
    """Run scripts/kafka_broker.py as the README shows (plain python3, no virtualenv)."""
    return subprocess.run(
        ["python3", str(ROOT / "scripts" / "kafka_broker.py"), *map(str, args)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def cluster(workdir):
    """Three nodes started by ``kafka_broker.py up --brokers 3 --port 0``, stopped by ``down``.

    The tests drive the nodes through :class:`Cluster`, read back from the home.
    """
    home = workdir / "kafka"
    try:
        started = broker_script("up", "--brokers", 3, "--port", 0, "--home", home,
                                "--timeout", 180)  # fmt: skip
        assert started.returncode == 0, started.stderr + started.stdout
        cluster = kafka_cluster.Cluster.from_home(home)
        assert started.stdout.splitlines()[-1] == f"kafka: bootstrap servers {cluster.bootstrap}"
        yield cluster
        stopped = broker_script("down", "--home", home)
        assert stopped.returncode == 0 and "cluster stopped" in stopped.stdout, stopped.stdout
        assert cluster.running_nodes() == []
    finally:
        leftover = kafka_cluster.Cluster.from_home(home)
        if leftover is not None:
            leftover.stop()


@pytest.fixture(scope="module")
def parts(workdir):
    """The first TRADES trades of the Lean day as two gzipped CSV files (header in each)."""
    directory = workdir / "trades"
    directory.mkdir()
    with gzip.open(LEAN_TRADES, "rt", encoding="utf-8") as source:
        header = next(source)
        lines = list(itertools.islice(source, TRADES))
    files = []
    for number, chunk in enumerate((lines[:FIRST_PART], lines[FIRST_PART:]), 1):
        path = directory / f"part{number}.csv.gz"
        with gzip.open(path, "wt", encoding="utf-8") as out:
            out.write(header)
            out.writelines(chunk)
        files.append(path)
    return files


def create_topics(cluster, prefix):
    result = marketpulse(
        "topics", "create", "--bootstrap-servers", cluster.bootstrap, "--topic-prefix", prefix,
        "--replication-factor", 3, "--min-insync-replicas", 2,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout


def produce(cluster, prefix, path):
    result = marketpulse(
        "produce", "--file", path, "--bootstrap-servers", cluster.bootstrap,
        "--topic-prefix", prefix,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def start_process(cluster, prefix, group, instance="p1"):
    """Start `process` (as kafka_tools.process_command) in the consumer group ``group``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    env["MARKETPULSE_PROCESS_MAX_BATCH"] = MAX_BATCH
    command = process_command(cluster.bootstrap, prefix, instance)
    command[command.index("--group") + 1] = group
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def consumed(cluster, prefix, group, timeout=30):
    """Ticks ``group`` has committed; asked again while its coordinator moves."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return committed_offsets(cluster.bootstrap, group, f"{prefix}ticks")
        except KafkaException:  # NOT_COORDINATOR, coordinator not available, ...
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class ProcessDied(AssertionError):
    """`process` exited by itself before its work was done (its log is the message)."""


def check_alive(proc):
    if proc.poll() is not None:
        raise ProcessDied(f"process exited ({proc.returncode}):\n{proc.stdout.read()}")


def exited(pid):
    """Whether ``pid`` has exited: gone, or a zombie its parent has not reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def finish(cluster, prefix, group, proc, timeout=120):
    """Wait until `process` has committed every trade, stop it cleanly, return its log."""
    deadline = time.monotonic() + timeout
    while (done := consumed(cluster, prefix, group)) < TRADES:
        check_alive(proc)
        assert time.monotonic() < deadline, f"{done} of {TRADES} consumed"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    log, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, log  # a clean stop, committed
    return log


def wait_for_bars(cluster, prefix, at_least, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while sum(end_offsets(cluster.bootstrap, f"{prefix}bars")) < at_least:
        check_alive(proc)
        assert time.monotonic() < deadline, f"{prefix}bars did not reach {at_least} records"
        time.sleep(0.05)


def busiest(cluster, prefix):
    """The partition of ticks holding most records, and its leader.

    Outputs go to the partition of their input, so partition ``p`` of ticks, bars,
    indicators, trades and state carries the same symbols (their leaders may differ).
    """
    ends = end_offsets(cluster.bootstrap, f"{prefix}ticks")
    part = max(range(len(ends)), key=ends.__getitem__)
    topics = [f"{prefix}{t}" for t in ("ticks", "bars", "indicators", "trades", "state")]
    return part, cluster.leaders(topics[0])[part], topics


def java_hash(text):
    """Java's ``String.hashCode`` (of ASCII text), which Kafka maps coordinators by."""
    value = 0
    for char in text:
        value = (31 * value + ord(char)) & 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def coordinator(cluster, internal_topic, key):
    """The node coordinating ``key``: the leader of its partition of ``internal_topic``.

    Kafka's group and transaction coordinators place a group id or transactional id
    on partition ``Utils.abs(key.hashCode()) % partitions`` of ``__consumer_offsets``
    or ``__transaction_state``, whose leader is the coordinator.
    """
    leaders = cluster.leaders(internal_topic)
    code = java_hash(key)
    return leaders[0 if code == -(2**31) else abs(code) % len(leaders)]


def coordinated_by(cluster, prefix, node):
    """A group and instance id whose group and transaction coordinators are ``node``.

    So that losing ``node`` costs `process` its partitions' leader, its group
    coordinator and its transaction coordinator at once, whichever node leads what.
    """
    group = next(
        group
        for group in (f"{prefix}process{i}" for i in range(1000))
        if coordinator(cluster, "__consumer_offsets", group) == node
    )
    instance = next(
        instance
        for instance in (f"p{i}" for i in range(1000))
        if coordinator(cluster, "__transaction_state", f"{prefix}process.{group}.{instance}")
        == node
    )
    return group, instance


def group_coordinator(cluster, group):
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    return admin.describe_consumer_groups([group])[group].result(timeout=30).coordinator.id


def wait_leadership_moved(cluster, topics, part, lost, timeout=60):
    """Wait until no partition ``part`` of ``topics`` is led by ``lost`` or leaderless."""
    deadline = time.monotonic() + timeout
    while True:
        states = {topic: cluster.partitions(topic)[part] for topic in topics}
        if all(s.leader not in (lost, -1) and lost not in s.isr for s in states.values()):
            return states
        assert time.monotonic() < deadline, states
        time.sleep(0.2)


@pytest.fixture(scope="module")
def reference(cluster, parts):
    """Outputs of an uninterrupted run over the same input, on the same cluster."""
    prefix = f"ref{uuid.uuid4().hex[:6]}."
    create_topics(cluster, prefix)
    proc = start_process(cluster, prefix, f"{prefix}process")
    for path in parts:
        produce(cluster, prefix, path)
    finish(cluster, prefix, f"{prefix}process", proc)
    expected = outputs(cluster.bootstrap, prefix)
    assert sum(map(len, expected["bars"].values())) > 5_000
    assert sum(map(len, expected["alerts"].values())) > 50
    return expected


def test_status_lists_every_node_of_the_cluster(cluster):
    result = broker_script("status", "--home", cluster.home)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for broker, line in zip(cluster.brokers, lines, strict=False):
        node, pid = broker.node_id, broker.pid()
        assert line == f"kafka: node {node} running at {broker.bootstrap} (pid {pid}, ready)"
    assert lines[-1].startswith("kafka: 3 of 3 nodes running (bootstrap "), lines


def test_topics_create_sets_replication_and_min_insync_replicas(cluster, topic_prefix):
    create_topics(cluster, topic_prefix)
    result = marketpulse(
        "topics", "describe", "--bootstrap-servers", cluster.bootstrap,
        "--topic-prefix", topic_prefix,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    described = [line for line in result.stdout.splitlines() if line.startswith(topic_prefix)]
    assert len(described) == 11, result.stdout
    for line in described:
        assert "6 partitions, replication factor 3" in line, line
        assert "min.insync.replicas=2" in line, line
    replicas = {s.replicas for s in cluster.partitions(f"{topic_prefix}ticks").values()}
    assert all(sorted(r) == [1, 2, 3] for r in replicas), replicas


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (("--replication-factor", "2", "--min-insync-replicas", "3"), ("exceeds", "factor 2")),
        (("--min-insync-replicas", "2"), ("exceeds", "factor 1")),  # replication defaults to 1
        (("--min-insync-replicas", "0"), ("--min-insync-replicas",)),
        (("--min-insync-replicas", "two"), ("--min-insync-replicas",)),
    ],
)
def test_min_insync_replicas_beyond_the_replicas_is_refused(cluster, topic_prefix, options, words):
    result = marketpulse(
        "topics", "create", "--bootstrap-servers", cluster.bootstrap,
        "--topic-prefix", topic_prefix, *options,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert not [t for t in cluster_topics(cluster) if t.startswith(topic_prefix)]


def cluster_topics(cluster):
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    return list(admin.list_topics(timeout=10).topics)


def start_mid_run(cluster, parts, reference, topic_prefix):
    """Three nodes, the first part produced, `process` a fifth of the way through it.

    Returns the busiest partition, the node that leads it (also the group's and the
    transactions' coordinator), the topics, the group and the running `process`.
    """
    assert cluster.running_nodes() == [1, 2, 3]
    cluster.elect_preferred_leaders()  # a node restarted before leads its share again
    create_topics(cluster, topic_prefix)
    produce(cluster, topic_prefix, parts[0])
    part, node, topics = busiest(cluster, topic_prefix)
    group, instance = coordinated_by(cluster, topic_prefix, node)
    proc = start_process(cluster, topic_prefix, group, instance)
    total_bars = sum(map(len, reference["bars"].values()))
    wait_for_bars(cluster, topic_prefix, total_bars // 5, proc)
    assert group_coordinator(cluster, group) == node
    return part, node, topics, group, proc


def second_part_to_the_end(cluster, topic_prefix, parts, group, proc):
    """Produce the second part, let `process` read to the end and exit; return the outputs."""
    produce(cluster, topic_prefix, parts[1])  # acks=all: at least 2 replicas in sync
    finish(cluster, topic_prefix, group, proc)
    return outputs(cluster.bootstrap, topic_prefix)


def stop_and_restore(cluster, proc, node):
    """`process` does not outlive the test; the node runs again (the next test needs three)."""
    if proc.poll() is None:
        proc.kill()
    if node not in cluster.running_nodes():
        cluster.restart(node)


def test_sigkill_of_the_busiest_partitions_leader_mid_run_changes_no_output(
    cluster, parts, reference, topic_prefix
):
    part, node, topics, group, proc = start_mid_run(cluster, parts, reference, topic_prefix)
    try:
        pid = cluster.kill(node)
        # the kill landed mid-run: the node's process is gone, `process` still runs with
        # trades left to consume, and the partitions the node led have other leaders
        assert exited(pid) and node not in cluster.running_nodes()
        assert proc.poll() is None and consumed(cluster, topic_prefix, group) < FIRST_PART
        wait_leadership_moved(cluster, topics, part, node)
        got = second_part_to_the_end(cluster, topic_prefix, parts, group, proc)
    finally:
        stop_and_restore(cluster, proc, node)
    for topic in OUTPUTS:
        assert records(got[topic]) == records(reference[topic]), topic
    cluster.wait_in_sync(topics, timeout=60)


def test_broker_stopped_and_restarted_mid_run_changes_no_output(
    cluster, parts, reference, topic_prefix
):
    part, node, topics, group, proc = start_mid_run(cluster, parts, reference, topic_prefix)
    for internal in ("__consumer_offsets", "__transaction_state"):  # replicated as topics are
        assert all(len(s.replicas) == 3 for s in cluster.partitions(internal).values())
    broker = cluster.node(node)
    pid = broker.pid()
    try:
        # mid-run: `process` is busy with the first part (a controlled shutdown takes a
        # few seconds, in which it may finish it), the second is sent after the restart
        assert consumed(cluster, topic_prefix, group) < FIRST_PART
        broker.stop()
        assert exited(pid) and node not in cluster.running_nodes()
        check_alive(proc)
        wait_leadership_moved(cluster, topics, part, node)
        cluster.restart(node)
        assert node in cluster.running_nodes()
        check_alive(proc)
        got = second_part_to_the_end(cluster, topic_prefix, parts, group, proc)
    finally:
        stop_and_restore(cluster, proc, node)
    for topic in OUTPUTS:
        assert records(got[topic]) == records(reference[topic]), topic
    cluster.wait_in_sync(topics, timeout=60)  # the restarted node caught up again
    assert node in set().union(*(s.isr for s in cluster.partitions(topics[0]).values()))
