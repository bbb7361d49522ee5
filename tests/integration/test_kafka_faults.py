"""Faults: no broker at start is a clear error in bounded time; a broker restart loses nothing."""

import signal
import socket
import time

import pytest

from .conftest import LEAN_TRADES, marketpulse
from .kafka_tools import (
    OUTPUTS,
    committed_offsets,
    create_topics,
    load_file,
    outputs,
    process_command,
    records,
    start,
    wait_for_output,
    wait_log,
)

pytestmark = pytest.mark.integration


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [["process"], ["sink", "lake"], ["topics", "create"]])
def test_no_broker_at_start_is_a_clear_error_after_a_bounded_wait(command, tmp_path):
    bootstrap = f"127.0.0.1:{closed_port()}"
    # the bound: the command gives up by itself (a TimeoutExpired here fails the test)
    result = marketpulse(*command, "--bootstrap-servers", bootstrap, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert f"error: cannot reach Kafka at {bootstrap}" in result.stderr
    assert "Traceback" not in result.stderr


def test_broker_restarted_mid_run_services_reconnect_and_lose_nothing(
    private_broker, topic_prefix, lean_reference, tmp_path, sql
):
    sent, expected = lean_reference
    bootstrap = private_broker.bootstrap
    create_topics(bootstrap, topic_prefix)
    assert load_file(bootstrap, topic_prefix, LEAN_TRADES) == sent
    total_bars = sum(len(rows) for rows in expected["bars"].values())
    lake = tmp_path / "lake"
    process = start(process_command(bootstrap, topic_prefix, "p", "--exit-when-idle", "25"))
    # the sink sees no committed output while the broker is away and the processor
    # replaces a client the restart left stuck (up to 20 s, more on a loaded machine):
    # it must outwait that
    sink = start(
        [*process_command(bootstrap, topic_prefix, "s")[:3], "sink", "lake",
         "--bootstrap-servers", bootstrap, "--topic-prefix", topic_prefix,
         "--exit-when-idle", "90", "--lake", str(lake), "--max-age", "0.5",
         "--group", f"{topic_prefix}sink"]
    )  # fmt: skip
    wait_for_output(bootstrap, f"{topic_prefix}bars", total_bars // 3, process)
    # the fault hits the processor mid-work: input is left, and the broker is really gone
    assert committed_offsets(bootstrap, f"{topic_prefix}process", f"{topic_prefix}ticks") < sent
    private_broker.stop()
    assert not private_broker.running()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", private_broker.port), timeout=5).close()
    private_broker.start(timeout=120)
    assert process.poll() is None and sink.poll() is None  # both outlived the outage
    process_log = wait_log(process, 300)
    assert process.returncode == 0, process_log
    # the sink has stored every bar once the lake holds them all; it is then stopped as
    # an operator stops it (its --exit-when-idle only bounds a sink that never catches up)
    deadline = time.monotonic() + 240
    while sink.poll() is None and time.monotonic() < deadline:
        if (lake / "bars").is_dir() and sql(lake, "SELECT count(*) AS n FROM bars")[0][
            "n"
        ] >= total_bars:
            break
        time.sleep(1.0)
    assert sink.poll() is None, "the sink exited before storing every bar"
    sink.send_signal(signal.SIGTERM)
    sink_log = wait_log(sink, 120)
    assert sink.returncode == 128 + signal.SIGTERM, sink_log

    got = outputs(bootstrap, topic_prefix)
    for topic in OUTPUTS:
        assert records(got[topic]) == records(expected[topic]), topic
    # the lake holds every committed bar exactly once
    counts = sql(lake, "SELECT count(*) AS n, count(DISTINCT (symbol, timeframe, bar_start)) AS d "
                       "FROM bars")  # fmt: skip
    assert counts == [{"n": total_bars, "d": total_bars}]
