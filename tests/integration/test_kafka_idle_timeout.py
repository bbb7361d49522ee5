"""`process --idle-timeout 0`: bars close by input alone, never by the clock.

The last trades of the Lean day are processed; with the default idle timeout
(2 s) the day's last bars close by the clock before ``--exit-when-idle``
(test_kafka_restore_idle.py); with ``--idle-timeout 0`` they stay open however
long the input pauses, and the outputs are the bars the trades alone close.
A negative value, from the option or the environment, stops the command with
one line.
"""

import datetime as dt
import gzip

import pytest

from marketpulse.bus.codec import decode_rows

from .conftest import LEAN_TRADES
from .kafka_tools import committed_offsets, create_topics, load_file, read_committed

pytestmark = pytest.mark.integration

#: Trades from here on: the last ones of AIG, BAC, IBM and SPY.
TAIL_FROM = "2013-10-07T22:00"
MIDNIGHT = int(dt.datetime(2013, 10, 8, tzinfo=dt.UTC).timestamp()) * 10**9


def _tail(path):
    with gzip.open(LEAN_TRADES, "rt") as source, open(path, "w") as out:
        out.write(next(source))
        out.writelines(line for line in source if line >= TAIL_FROM)
    return path


def _bars(bootstrap, prefix):
    values = [v for rows in read_committed(bootstrap, f"{prefix}bars").values() for _, v, _ in rows]
    table, errors = decode_rows("bars", values)
    assert not errors
    return table.to_pylist()


def test_idle_timeout_zero_never_closes_bars_by_the_clock(cli, kafka_bootstrap, topic_prefix,
                                                          tmp_path):  # fmt: skip
    create_topics(kafka_bootstrap, topic_prefix)
    sent = load_file(kafka_bootstrap, topic_prefix, _tail(tmp_path / "tail.csv"))
    result = cli(
        "process", "--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix,
        "--group", f"{topic_prefix}process", "--idle-timeout", "0", "--exit-when-idle", "5",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert result.stdout.startswith("process: ")
    assert committed_offsets(kafka_bootstrap, f"{topic_prefix}process", f"{topic_prefix}ticks") == (
        sent
    )
    bars = _bars(kafka_bootstrap, topic_prefix)
    # the trades closed bars (a later trade of the partition moved the watermark) ...
    assert len(bars) > 100
    # ... but 5 s of no input closed none: the day's last bars are still open
    assert max(row["bar_end"] for row in bars) < MIDNIGHT


def test_idle_timeout_documented_in_help(cli):
    text = " ".join(cli("process", "--help").stdout.split())
    assert "--idle-timeout" in text and "0: never" in text


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--idle-timeout", "-1"], {}, ("Invalid value for '--idle-timeout'", "at least 0")),
        ([], {"MARKETPULSE_IDLE_TIMEOUT": "-1"}, ("environment", "idle_timeout", "at least 0")),
        ([], {"MARKETPULSE_PROCESS_COMMIT_INTERVAL": "0"}, ("environment", "commit_interval")),
    ],
    ids=["option", "environment", "commit-interval"],
)
def test_a_bad_value_is_one_line_and_nothing_starts(cli, args, env, words):
    # the bootstrap names no broker: the command must stop before it looks for one
    result = cli("process", "--bootstrap-servers", "127.0.0.1:1", *args, ok=False, env=env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    for word in words:
        assert word in line, (word, line)
