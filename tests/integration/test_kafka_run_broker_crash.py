"""`marketpulse run --kafka` across a broker crash: every trade it took in reaches the lake."""

import json
import sys
import time

import confluent_kafka as ck
import pytest

from .kafka_tools import end_offsets, read_committed, resolved, start, wait_log

pytestmark = pytest.mark.integration


def test_a_broker_killed_mid_run_loses_no_trade(private_broker, topic_prefix, tmp_path, sql):
    bootstrap, lake = private_broker.bootstrap, tmp_path / "lake"
    proc = start([sys.executable, "-m", "marketpulse", "run", "--kafka", bootstrap,
                  "--topic-prefix", topic_prefix, "--duration", "45", "--no-dashboard",
                  "--seed", "7", "--symbols", "20", "--rate", "2000",
                  "--lake", str(lake)])  # fmt: skip
    try:
        # the fault: the only broker dies (SIGKILL) under a pipeline that is storing
        # outputs, and is away for 15 s, while the feed goes on taking ticks in
        _wait_for_bars(bootstrap, f"{topic_prefix}bars", proc)
        time.sleep(3)
        assert proc.poll() is None
        assert private_broker.kill() is not None
        time.sleep(15)
        assert proc.poll() is None
        private_broker.start(timeout=120)
        log = wait_log(proc, 400)
    except BaseException:
        proc.kill()
        raise
    assert proc.returncode == 0, log
    summary = next((line for line in log.splitlines() if line.startswith("done: ")), None)
    assert summary is not None and summary.startswith("done: ticks in "), log
    # the outage made process abort or replace its producer, and it left no transaction of
    # its id open where a restarting broker skipped the markers
    assert "none of its id is left open on its output partitions" in log, log

    records = read_committed(bootstrap, f"{topic_prefix}ticks")
    trades = [json.loads(value) for rows in records.values() for _, value, _ in rows]
    trades = [t for t in trades if t["type"] == "trade"]
    assert f"ticks in {len(trades):,}" in summary
    keys = [(t["symbol"], t["ts"], t["price"], t["size"]) for t in trades]
    # the kept trades process passed on are each once in `trades`: after the outage the
    # broker aborted the transaction open at the kill without writing its markers where it
    # knew no leader yet, and a later commit of the same producer id made those records
    # visible (519 trades twice, before the producer settled its partitions)
    kept = resolved(bootstrap, read_committed(bootstrap, f"{topic_prefix}trades"))
    kept = [json.loads(value) for rows in kept.values() for _, value, _ in rows]
    assert sorted((t["symbol"], t["ts"], t["price"], t["size"]) for t in kept) == sorted(keys)
    # and each once in the lake (SQL shows times rounded to the microsecond)
    stored = sql(lake, "select count(*) as n, count(distinct (symbol, ts, price, size)) as k "
                       "from trades")  # fmt: skip
    distinct = {(symbol, (ts + 500) // 1000, price, size) for symbol, ts, price, size in keys}
    assert stored == [{"n": len(keys), "k": len(distinct)}], log


def _wait_for_bars(bootstrap, topic, proc, timeout=120):
    """Wait until ``topic`` holds bars (a topic created a moment ago may have no leader yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if sum(end_offsets(bootstrap, topic)) >= 100:
                return
        except ck.KafkaException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{topic} got no bars")
