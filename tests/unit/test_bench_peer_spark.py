"""The Spark route's peers in bench/bench_peers.py, without a JVM.

The ``applyInPandasWithState`` variant (bench/peers/marketpulse_spark) writes
what the route's ``transformWithStateInPandas`` operator writes, run in
pyspark's in-memory harness; its state, restored in a worker that did not keep
the processor, carries a bucket on; Spark's progress reports are read from a
driver's log.
"""

import datetime
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql.streaming.tws_tester import TwsTester

from marketpulse.models import Trade, encode
from marketpulse.spark.bucket_operator import BucketOperator
from marketpulse.stream import ProcessorSettings

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "bench" / "peers" / "marketpulse_spark"))

import apply_operator  # noqa: E402
from peer_spark import SPARK_PEERS, progress_reports, spark_command, spark_timing  # noqa: E402

T0 = 1_381_150_800 * 10**9  # 2013-10-07 13:00:00 UTC
SECOND = 10**9
SETTINGS = ProcessorSettings(intervals=("1s", "1m"), lateness=0.0, idle_timeout=None)


class GroupState:
    """A stand-in for Spark's ``GroupState``."""

    def __init__(self):
        self.value = None

    @property
    def exists(self):
        return self.value is not None

    @property
    def get(self):
        return self.value

    def update(self, value):
        self.value = tuple(value)


def ticks(trades, first_offset=0):
    return pd.DataFrame({
        "key": [t.symbol.encode() for t in trades],
        "value": [encode(t) for t in trades],
        "partition": [0] * len(trades),
        "offset": range(first_offset, first_offset + len(trades)),
        "timestamp": [t.ts // 1_000_000 for t in trades],
    })  # fmt: skip


TRADES = [
    Trade(symbol, T0 + i * 7 * SECOND // 3 + k * 1000, 30.0 + (i * 7 + k) % 11 / 4, 10.0 + i)
    for i in range(90)
    for k, symbol in enumerate(("AIG", "IBM", "SPY"))
]


def records(frame):
    return list(zip(frame["topic"], frame["partition"], frame["key"], frame["value"], strict=True))


def test_the_apply_operator_writes_what_the_routes_operator_writes():
    first, second = ticks(TRADES[:150]), ticks(TRADES[150:], first_offset=150)
    route = TwsTester(BucketOperator(SETTINGS, [], "t.", True, None, run="tws"))
    expected = records(route.testInPandas(0, first)) + records(route.testInPandas(0, second))
    operator = apply_operator.ApplyOperator(SETTINGS, [], "t.", True, None, run="apply")
    state = GroupState()
    got = []
    for part in (first, second):
        apply_operator._KEPT.clear()  # another worker's turn: restored from the state
        for out in operator((0,), iter([part]), state):
            got += records(out)
    assert len(got) == len(expected) > 0
    assert any(topic == "t.bars" for topic, *_ in got)
    assert got == expected
    data, following = state.get
    assert following == len(TRADES)
    assert len(apply_operator.decode_records(data)) >= 3  # every symbol's, and the bucket's own


def test_records_encode_and_decode():
    records = {b"AIG": b"\x00" * 300, b"": b"clock", b"IBM": b""}
    assert apply_operator.decode_records(apply_operator.encode_records(records)) == records


def test_merge_state_replaces_adds_and_removes():
    merged = apply_operator.merge_state({b"a": b"1", b"b": b"2"}, [(b"a", b"3"), (b"b", None),
                                                                    (b"c", b"4")])  # fmt: skip
    assert merged == {b"a": b"3", b"c": b"4"}


def progress(batch, stamp, duration_ms, rows, state_rows=4):
    return json.dumps({
        "id": "q", "batchId": batch, "timestamp": stamp, "numInputRows": rows,
        "batchDuration": duration_ms,
        "durationMs": {"addBatch": duration_ms - 10, "walCommit": 5, "commitOffsets": 5},
        "stateOperators": [{"numRowsTotal": state_rows, "memoryUsedBytes": 1000,
                            "commitTimeMs": 12, "customMetrics": {"rocksdbSstFileSize": 5}}],
    }, indent=2)  # fmt: skip


def test_progress_reports_give_the_first_batchs_start_and_the_last_ones_end():
    log = "\n".join([
        "26/11/28 12:00:00 WARN spark.NativeCodeLoader: nothing",
        f"2026-11-28 12:00:05,000 INFO spark.MicroBatchExecution: Streaming query made progress: "
        f"{progress(0, '2026-11-28T12:00:04.500Z', 2500, 600)}",
        "2026-11-28 12:00:08,000 INFO marketpulse.spark: spark: 1 micro-batches",
        f"2026-11-28 12:00:09,000 INFO spark.MicroBatchExecution: Streaming query made progress: "
        f"{progress(1, '2026-11-28T12:00:07.000Z', 1000, 400, state_rows=5)}",
    ])  # fmt: skip
    reports = progress_reports(log)
    assert [r["batchId"] for r in reports] == [0, 1]
    timing = spark_timing(log)
    assert timing["ready"] == pytest.approx(1_795_867_204.5)
    assert timing["done"] - timing["ready"] == pytest.approx(3.5)
    assert timing["micro_batches"] == 2
    assert timing["ticks_read"] == 1000
    assert timing["state_commit_seconds"] == pytest.approx(0.024)
    assert timing["state_rows"] == 5
    assert timing["steps_seconds"]["addBatch"] == pytest.approx(3.48)


def test_without_progress_reports_the_querys_own_lines_time_it():
    log = "\n".join([
        "2026-11-29 01:15:05,599 INFO spark.MicroBatchExecution: Committed offsets for batch 0. "
        "Metadata OffsetSeqMetadata(0,1795914905407,HashMap(spark.sql.shuffle.partitions -> 6))",
        "2026-11-29 01:15:52,437 INFO spark.MicroBatchExecution: Committed offsets for batch 1. "
        "Metadata OffsetSeqMetadata(0,1795914952345,HashMap(spark.sql.shuffle.partitions -> 6))",
        "2026-11-29 01:15:52,959 INFO marketpulse.spark: spark: 1 micro-batches, 200,000 ticks "
        "(3,897/s); batch 0 took 49.34 s",
        "2026-11-29 01:16:01,345 INFO spark.MicroBatchExecution: Finished processing all "
        "available data for the trigger, terminating this Trigger.AvailableNow query",
        "2026-11-29 01:16:01,636 INFO marketpulse.spark: spark: 1 micro-batches, 100,000 ticks "
        "(11,524/s); batch 1 took 8.97 s",
    ])  # fmt: skip
    timing = spark_timing(log)
    assert timing["ready"] == pytest.approx(1_795_914_905.407)
    assert timing["micro_batches"] == 2
    assert timing["ticks_read"] == 300_000
    local = datetime.datetime(2026, 11, 29, 1, 16, 1, 345_000).timestamp()  # the log's local time
    assert timing["done"] == pytest.approx(local)


def test_no_micro_batch_in_the_log_is_an_error():
    with pytest.raises(ValueError, match="no micro-batch"):
        spark_timing("Streaming query made progress: {not json")


def test_each_spark_peer_has_its_own_query_name_and_master(tmp_path):
    commands = [spark_command(name, "127.0.0.1:9092", "p.", tmp_path / name, ("--lateness", "0"))
                for name in SPARK_PEERS]  # fmt: skip
    names = [c[c.index("--name") + 1] for c in commands]
    assert len(set(names)) == len(SPARK_PEERS)
    assert [c[c.index("--master") + 1] for c in commands] == [
        p.master for p in SPARK_PEERS.values()
    ]
    assert all("--available-now" in c for c in commands)


def test_the_section_sets_the_two_operators_side_by_side():
    from peers_section import render_peers

    def peer(seconds, **more):
        return {"seconds": seconds, "ticks_per_s": 1_000_000 / seconds, "start_up_seconds": 9.0,
                "cpu_seconds": seconds * 1.5, "max_rss_mb": 900.0, "load_1min_at_start": 0.2,
                **more}  # fmt: skip

    spark = {"micro_batches": 1, "state_commit_seconds": 0.1, "checkpoint_state_bytes": 2e6,
             "steps_seconds": {"walCommit": 0.1, "commitOffsets": 0.05}}  # fmt: skip
    result = {
        "broker": "a broker", "trades": 1_000_000, "copies": 1, "cores": 2, "memory_gib": 8,
        "symbols": 4, "partitions": 6, "ticks_per_partition": {"0": 100_000, "5": 900_000},
        "spark_route_options": ["--lateness", "0", "--available-now"],
        "peers": {
            "raw": peer(1.0), "marketpulse": peer(4.0),
            "marketpulse-spark-local1": peer(20.0, **spark),
            "marketpulse-spark-local2": peer(16.0, **spark),
            "marketpulse-spark-apply-local1": peer(25.0, **spark),
        },
        "bars_compared": {"marketpulse-spark-local1": 10},
        "versions": {"confluent-kafka": "2", "librdkafka": "2",
                     "marketpulse-spark": {"pyspark": "4.2.0", "java": "java 17",
                                           "connector": "kafka:4.2.0"}},
    }  # fmt: skip
    run = {"measured_at": "now", "commit": "abc", "machine": "m", "load_average": {},
           "runs": {"bench_peers": {"command": [], "output": result}}}  # fmt: skip
    text = render_peers(run, [run])
    prose = " ".join(text.split())
    assert "| `transformWithStateInPandas` | local[2] | 16.0 | 62,500 | 31,250 | 0.25 |" in text
    assert "`transformWithStateInPandas` ran 1.25x as fast on two cores as on one" in prose
    assert "at local[1] `applyInPandasWithState` took 25.0 s against 20.0 s (+25%)" in prose
    assert "With one micro-batch per run" in prose
    assert "4 symbols in 2 of its 6 partitions, 90% of the trades in one" in prose
