"""Changing the declared indicators under a running Kafka deployment is refused, never wrong.

The ``state`` topic holds each symbol's indicator state for the declared set it
was written with; another set's state would not fit. ``process`` refuses it in
one line naming what changed, and consumes nothing.
"""

import gzip
import json

import pytest

from .conftest import LEAN_TRADES
from .kafka_tools import committed_offsets, create_topics, load_file, read_committed

pytestmark = pytest.mark.integration


def _tail(path):
    """The Lean day's last trades (AIG, BAC, IBM and SPY)."""
    with gzip.open(LEAN_TRADES, "rt") as source, open(path, "w") as out:
        out.write(next(source))
        out.writelines(line for line in source if line >= "2013-10-07T22:00")
    return path


def _process(cli, bootstrap, prefix, indicators):
    return cli(
        "process", "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
        "--group", f"{prefix}process", "--exit-when-idle", "4", "--intervals", "1m",
        "--indicators", indicators, ok=False,
    )  # fmt: skip


def test_another_declared_set_is_refused_in_one_line_and_the_same_one_goes_on(
    cli, kafka_bootstrap, topic_prefix, tmp_path
):
    topics = create_topics(kafka_bootstrap, topic_prefix, partitions=2)
    sent = load_file(kafka_bootstrap, topic_prefix, _tail(tmp_path / "tail.csv"))
    first = _process(cli, kafka_bootstrap, topic_prefix, "ema(50), rsi(7)")
    assert first.returncode == 0, first.stderr
    group = f"{topic_prefix}process"
    assert committed_offsets(kafka_bootstrap, group, topics.ticks) == sent
    written = [value for part in read_committed(kafka_bootstrap, topics.name("indicators")).values()
               for _, value, _ in part]  # fmt: skip
    assert written and all(
        set(json.loads(v)) - {"symbol", "timeframe", "bar_start", "bar_end", "close", "dataset"}
        == {"ema_50", "rsi_7"}
        for v in written
    )

    second = _process(cli, kafka_bootstrap, topic_prefix, "ema(50), rsi(8)")
    assert second.returncode == 2, second.stdout + second.stderr
    assert "Traceback" not in second.stderr
    error = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, second.stderr
    assert "other declared indicators (not declared now: rsi_7; new: rsi_8)" in error[0]
    assert committed_offsets(kafka_bootstrap, group, topics.ticks) == sent

    again = _process(cli, kafka_bootstrap, topic_prefix, "ema(50), rsi(7)")
    assert again.returncode == 0, again.stderr
