"""Adding partitions under a running deployment is refused, never silently wrong.

Kafka sends a key to its hash modulo the partition count, so adding partitions to
``ticks`` moves some symbols to other partitions while their state stays in the
``state`` partition of the old one. ``process`` would then start their
indicators again from nothing. It refuses instead, with one line that names the
state partition and both partition counts (the count is written with the state).
"""

import gzip
import time

import pytest
from confluent_kafka.admin import NewPartitions

from marketpulse.bus.base import partition_for

from .conftest import LEAN_TRADES
from .kafka_tools import bus_for, committed_offsets, create_topics, load_file

pytestmark = pytest.mark.integration


def _tail(path):
    """The Lean day's last trades (AIG, BAC, IBM and SPY)."""
    with gzip.open(LEAN_TRADES, "rt") as source, open(path, "w") as out:
        out.write(next(source))
        out.writelines(line for line in source if line >= "2013-10-07T22:00")
    return path


def _process(cli, bootstrap, prefix):
    return cli(
        "process", "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
        "--group", f"{prefix}process", "--exit-when-idle", "4", ok=False,
    )  # fmt: skip


def test_more_partitions_under_existing_state_is_refused_in_one_line(
    cli, kafka_bootstrap, topic_prefix, tmp_path
):
    topics = create_topics(kafka_bootstrap, topic_prefix, partitions=2)
    sent = load_file(kafka_bootstrap, topic_prefix, _tail(tmp_path / "tail.csv"))
    first = _process(cli, kafka_bootstrap, topic_prefix)
    assert first.returncode == 0, first.stderr
    group = f"{topic_prefix}process"
    assert committed_offsets(kafka_bootstrap, group, topics.ticks) == sent

    # Every topic goes from 2 to 4 partitions: some symbol moves (Kafka's murmur2 hash).
    symbols = ("AIG", "BAC", "IBM", "SPY")
    assert any(partition_for(s, 4) != partition_for(s, 2) for s in symbols)
    admin = bus_for(kafka_bootstrap).admin()
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(topic_prefix)]
    for future in admin.create_partitions([NewPartitions(t, 4) for t in names]).values():
        future.result()
    # the broker's metadata shows the new partitions a moment after the request returns
    # (2 still, once, in a CI run)
    deadline = time.monotonic() + 30
    while bus_for(kafka_bootstrap).partitions(topics.ticks) != 4:
        assert time.monotonic() < deadline, "ticks never showed 4 partitions"
        time.sleep(0.2)

    second = _process(cli, kafka_bootstrap, topic_prefix)
    assert second.returncode == 2, second.stdout + second.stderr
    assert "Traceback" not in second.stderr
    error = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, second.stderr
    assert f"{topic_prefix}state[" in error[0]
    assert f"was written when {topic_prefix}ticks had 2 partitions; it has 4 now" in error[0]
    assert "Changing the partition count" in error[0] and "docs/operations.md" in error[0]
    # nothing was consumed past what the first run committed
    assert committed_offsets(kafka_bootstrap, group, topics.ticks) == sent


def test_the_same_partition_count_restores_and_goes_on(
    cli, kafka_bootstrap, topic_prefix, tmp_path
):
    create_topics(kafka_bootstrap, topic_prefix, partitions=2)
    load_file(kafka_bootstrap, topic_prefix, _tail(tmp_path / "tail.csv"))
    assert _process(cli, kafka_bootstrap, topic_prefix).returncode == 0
    again = _process(cli, kafka_bootstrap, topic_prefix)
    assert again.returncode == 0, again.stderr
    assert "Changing the partition count" not in again.stderr
