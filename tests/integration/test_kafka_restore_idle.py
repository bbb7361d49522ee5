"""A processor restarted after a crash, with no new input, closes the windows it restored.

The last hours of the Lean day (every symbol's last trades) are consumed and
committed with their state; the instance is killed while the last bars are
still open windows in that state. A new instance, with the default idle
timeout and ``--exit-when-idle 5``, must close them by the idle rule and
commit them before it exits, exactly as an uninterrupted run does.
"""

import datetime as dt
import gzip
import signal
import sys
import time

import pytest

from marketpulse.bus.codec import decode_rows

from .conftest import LEAN_TRADES
from .kafka_tools import (
    OUTPUTS,
    committed_offsets,
    create_topics,
    load_file,
    outputs,
    read_committed,
    records,
    start,
    wait_log,
)

pytestmark = pytest.mark.integration

#: Trades from here on: 615 of them, the last ones of AIG, BAC, IBM and SPY.
TAIL_FROM = "2013-10-07T22:00"
MIDNIGHT = int(dt.datetime(2013, 10, 8, tzinfo=dt.UTC).timestamp()) * 10**9


def process(bootstrap, prefix, instance, *extra):
    """``marketpulse process`` with the default idle timeout (2 s)."""
    return [
        sys.executable, "-m", "marketpulse", "process", "--bootstrap-servers", bootstrap,
        "--topic-prefix", prefix, "--group", f"{prefix}process", "--instance-id", instance,
        *extra,
    ]  # fmt: skip


def lean_tail(path):
    """Write the Lean day's trades from :data:`TAIL_FROM` on to ``path``."""
    with gzip.open(LEAN_TRADES, "rt") as source, open(path, "w") as out:
        out.write(next(source))
        out.writelines(line for line in source if line >= TAIL_FROM)
    return path


def bars_of(bootstrap, prefix):
    """The committed bars: (symbol, timeframe) -> its bars as dicts, in end order."""
    values = [v for rows in read_committed(bootstrap, f"{prefix}bars").values() for _, v, _ in rows]
    table, errors = decode_rows("bars", values)
    assert not errors
    out = {}
    for row in sorted(table.to_pylist(), key=lambda r: r["bar_end"]):
        out.setdefault((row["symbol"], row["timeframe"]), []).append(row)
    return out


def finish(proc, timeout=120):
    log = wait_log(proc, timeout)
    assert proc.returncode == 0, log
    return log


def test_restart_without_new_input_closes_and_commits_the_restored_windows(
    kafka_bootstrap, topic_prefix, tmp_path
):
    tail = lean_tail(tmp_path / "tail.csv")
    reference, crashed = f"{topic_prefix}ref.", f"{topic_prefix}crash."
    for prefix in (reference, crashed):
        create_topics(kafka_bootstrap, prefix)
    sent = load_file(kafka_bootstrap, reference, tail)
    assert load_file(kafka_bootstrap, crashed, tail) == sent
    uninterrupted = start(process(kafka_bootstrap, reference, "ref", "--exit-when-idle", "5"))

    # the first instance consumes and commits everything, with the windows still open:
    # its idle timeout is long enough that no window closes by the clock before the kill
    first = start(process(kafka_bootstrap, crashed, "crashy", "--idle-timeout", "600"))
    deadline = time.monotonic() + 60
    while committed_offsets(kafka_bootstrap, f"{crashed}process", f"{crashed}ticks") < sent:
        assert first.poll() is None, first.stdout.read()
        assert time.monotonic() < deadline, "the first instance did not commit its input"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    # what the restart starts from: every tick consumed, the state committed, the last
    # bars of the day not emitted (open windows in that state)
    assert committed_offsets(kafka_bootstrap, f"{crashed}process", f"{crashed}ticks") == sent
    assert sum(map(len, read_committed(kafka_bootstrap, f"{crashed}state").values())) > 0
    before = bars_of(kafka_bootstrap, crashed)
    assert before and all(rows[-1]["bar_end"] < MIDNIGHT for rows in before.values())

    finish(uninterrupted)
    expected = bars_of(kafka_bootstrap, reference)
    last = {key: rows[-1] for key, rows in expected.items()}
    # the uninterrupted run closed the day's last windows by the idle rule
    for symbol in ("AIG", "BAC", "SPY"):
        for interval in ("1m", "5m"):
            assert last[symbol, interval]["bar_end"] == MIDNIGHT, (symbol, interval)
    assert last["SPY", "1s"]["bar_end"] == MIDNIGHT

    finish(start(process(kafka_bootstrap, crashed, "crashy", "--exit-when-idle", "5")))
    got = bars_of(kafka_bootstrap, crashed)
    assert {key: rows[-1] for key, rows in got.items()} == last
    want, have = outputs(kafka_bootstrap, reference), outputs(kafka_bootstrap, crashed)
    for topic in OUTPUTS:
        assert records(have[topic]) == records(want[topic]), topic
