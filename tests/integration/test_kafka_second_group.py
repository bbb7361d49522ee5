"""A second process group on one topic prefix is told why its ticks are late."""

import pytest

from .kafka_tools import create_topics, load_file, process_command, read_committed, start, wait_log

pytestmark = pytest.mark.integration


def _trades(path, n=600):
    rows = [f"2024-01-02T15:{i // 60:02d}:{i % 60:02d}Z,{'AAA' if i % 2 else 'BBB'},"
            f"{10 + i % 7},{1 + i % 5}\n" for i in range(n)]  # fmt: skip
    path.write_text("timestamp,symbol,price,size\n" + "".join(rows))
    return path


def _process(bootstrap, prefix, group):
    command = process_command(bootstrap, prefix, group, "--exit-when-idle", "3")
    command[command.index("--group") + 1] = f"{prefix}{group}"
    proc = start(command)
    log = wait_log(proc, 300)
    assert proc.returncode == 0, log
    return log


def test_a_second_group_reading_from_the_start_behind_the_state_warns(
    kafka_bootstrap, topic_prefix, tmp_path
):
    create_topics(kafka_bootstrap, topic_prefix)
    assert load_file(kafka_bootstrap, topic_prefix, _trades(tmp_path / "t.csv")) == 600
    first = _process(kafka_bootstrap, topic_prefix, "first")
    assert "committed no offset" not in first  # its own state: nothing to warn of
    assert not any(read_committed(kafka_bootstrap, f"{topic_prefix}dlq").values())
    second = _process(kafka_bootstrap, topic_prefix, "second")
    dead = [r for rows in read_committed(kafka_bootstrap, f"{topic_prefix}dlq").values()
            for r in rows]  # fmt: skip
    assert dead  # the fault: the second group's ticks were late against the first's state
    warnings = [line for line in second.splitlines() if "committed no offset" in line]
    assert warnings, second
    assert f"group {topic_prefix}second" in warnings[0] and f"{topic_prefix}dlq" in warnings[0]
    assert "one process group per topic prefix" in warnings[0]
