"""Exactly once on a real broker: crashes and rebalances neither lose nor duplicate outputs."""

import random
import signal
import time

import pytest

from .conftest import LEAN_TRADES
from .kafka_tools import (
    OUTPUTS,
    OpenTransactions,
    bus_for,
    committed_offsets,
    create_topics,
    load_file,
    outputs,
    process_command,
    read_records,
    records,
    run_to_end,
    start,
    wait_for_output,
    wait_log,
)

pytestmark = pytest.mark.integration


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    kafka_bootstrap, topic_prefix, lean_reference
):
    sent, expected = lean_reference
    create_topics(kafka_bootstrap, topic_prefix)
    assert load_file(kafka_bootstrap, topic_prefix, LEAN_TRADES) == sent
    total_bars = sum(len(rows) for rows in expected["bars"].values())
    rng = random.Random(20131007)
    marks = sorted(rng.uniform(0.1, 0.8) for _ in range(3))
    landed = stranded = 0
    # each kill comes once the bars topic (committed or not) has grown past a random mark,
    # at a moment a transaction holds bars (seen past the last stable offset); the commit
    # may still win the race to the kill, so kills go on (at most five more) until one
    # has stranded an open transaction's records
    open_bars = OpenTransactions(kafka_bootstrap, f"{topic_prefix}bars")
    while marks and landed < 8:
        mark = marks.pop(0)
        proc = start(process_command(kafka_bootstrap, topic_prefix, "crashy"))
        wait_for_output(kafka_bootstrap, f"{topic_prefix}bars", int(mark * total_bars), proc)
        deadline = time.monotonic() + 10
        while open_bars.records() == 0 and time.monotonic() < deadline and proc.poll() is None:
            pass
        alive = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the kill landed mid-work: the process was running, died of SIGKILL, and had not
        # yet committed (in a transaction) the offsets of all the ticks
        consumed = committed_offsets(kafka_bootstrap, f"{topic_prefix}process",
                                     f"{topic_prefix}ticks")  # fmt: skip
        assert alive and proc.returncode == -signal.SIGKILL and consumed < sent, mark
        landed += 1
        # records of the open transaction: past the last stable offset, where a
        # read_committed reader stops, a read_uncommitted one reads on
        stranded += bar_count(kafka_bootstrap, topic_prefix, "read_uncommitted") > bar_count(
            kafka_bootstrap, topic_prefix, "read_committed"
        )
        if not marks and not stranded:
            marks.append(mark + (0.95 - mark) / 4)
    open_bars.close()
    assert landed >= 3 and stranded >= 1
    run_to_end(kafka_bootstrap, topic_prefix, "crashy")

    got = outputs(kafka_bootstrap, topic_prefix)
    assert total_bars > 40_000 and sum(map(len, expected["alerts"].values())) > 100
    for topic in OUTPUTS:
        assert records(got[topic]) == records(expected[topic]), topic
    # the killed transactions were really there, and aborted: a read_uncommitted reader
    # sees their records besides the committed ones (transaction markers alone would not
    # make it see more)
    uncommitted = read_records(kafka_bootstrap, f"{topic_prefix}bars", "read_uncommitted")
    assert sum(map(len, uncommitted.values())) > sum(map(len, got["bars"].values()))


def bar_count(bootstrap, prefix, isolation):
    return sum(map(len, read_records(bootstrap, f"{prefix}bars", isolation).values()))


def group_members(bootstrap, group):
    """Member id -> assigned partitions of a consumer group."""
    admin = bus_for(bootstrap).admin()
    description = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return {
        m.group_instance_id or m.member_id: sorted(
            tp.partition for tp in m.assignment.topic_partitions
        )
        for m in description.members
    }


def test_two_instances_share_partitions_and_survive_losing_one(
    kafka_bootstrap, topic_prefix, lean_reference
):
    sent, expected = lean_reference
    create_topics(kafka_bootstrap, topic_prefix)
    group = f"{topic_prefix}process"
    # idle long enough for the lost member's session and transaction to time out
    first = start(process_command(kafka_bootstrap, topic_prefix, "one", "--exit-when-idle", "30"))
    second = start(process_command(kafka_bootstrap, topic_prefix, "two", "--exit-when-idle", "30"))
    deadline = time.monotonic() + 60
    members = {}
    while time.monotonic() < deadline:
        members = group_members(kafka_bootstrap, group)
        if len(members) == 2 and all(members.values()):
            break
        time.sleep(0.2)
    assert sorted(p for parts in members.values() for p in parts) == list(range(6)), members
    assert all(members.values()), members  # both instances own partitions

    load_file(kafka_bootstrap, topic_prefix, LEAN_TRADES)
    total_bars = sum(len(rows) for rows in expected["bars"].values())
    wait_for_output(kafka_bootstrap, f"{topic_prefix}bars", total_bars // 3, second)
    second.send_signal(signal.SIGKILL)
    second.wait()
    log = wait_log(first, 240)
    assert first.returncode == 0, log

    got = outputs(kafka_bootstrap, topic_prefix)
    assert log.count("process: assigned") >= 2, log  # the lost member's partitions came over
    for topic in OUTPUTS:
        assert records(got[topic]) == records(expected[topic]), topic
