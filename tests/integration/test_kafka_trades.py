"""Trades on the Kafka path: process + sink lake store the trades the embedded replay stores."""

from datetime import UTC, datetime

import confluent_kafka as ck
import duckdb
import pyarrow as pa
import pytest

from marketpulse.bus.topics import Topics, topic_specs
from marketpulse.stream.trade_refs import is_ref

from .conftest import LEAN_TRADES
from .kafka_tools import (
    bus_for,
    create_topics,
    end_offsets,
    load_file,
    process_command,
    read_committed,
    start,
    wait_log,
)

pytestmark = pytest.mark.integration

COLUMNS = "symbol, ts, price, size, exchange, condition, dataset"
#: Trades the processor refuses (dead letters, never stored): a negative price,
#: a negative size, a time far ahead of the clock.
FUTURE = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()) * 10**9
REFUSED = pa.table(
    {
        "symbol": ["SPY", "SPY", "AAPL"],
        "ts": pa.array([1381152600_000_000_000, 1381152601_000_000_000, FUTURE], pa.int64()),
        "price": [-1.0, 12_345.678, 23_456.789],
        "size": [100.0, -5.0, 100.0],
    }
)


def lake_trades(lake):
    """The lake's trades, every column, sorted (a multiset comparison)."""
    path = f"{lake}/trades/**/*.parquet"
    query = f"SELECT {COLUMNS} FROM read_parquet('{path}', hive_partitioning = true) ORDER BY ALL"
    with duckdb.connect() as con:
        return con.sql(query).to_arrow_table()


def test_process_and_sink_lake_store_the_trades_the_embedded_replay_stores(
    cli, kafka_bootstrap, topic_prefix, tmp_path
):
    cli("replay", LEAN_TRADES, "--lake", tmp_path / "embedded", "--dataset", "lean")

    create_topics(kafka_bootstrap, topic_prefix)
    sent = load_file(kafka_bootstrap, topic_prefix, LEAN_TRADES)
    with bus_for(kafka_bootstrap).producer() as producer:
        producer.send_columns(Topics(topic_prefix).ticks, "trade", REFUSED)
    assert producer.failed == 0
    process = start(process_command(kafka_bootstrap, topic_prefix, "trades", "--dataset", "lean",
                                    "--exit-when-idle", "4"))  # fmt: skip
    log = wait_log(process, 300)
    assert process.returncode == 0, log
    # the topic names the kept trades on `ticks`: a trade crosses the broker once
    kept = [v for rows in read_committed(kafka_bootstrap, f"{topic_prefix}trades").values()
            for _, v, _ in rows]  # fmt: skip
    ticks = read_committed(kafka_bootstrap, f"{topic_prefix}ticks")
    assert kept and all(map(is_ref, kept))
    assert sum(map(len, kept)) * 1000 < sum(len(v) for rows in ticks.values() for _, v, _ in rows)
    lake = tmp_path / "kafka"
    cli("sink", "lake", "--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix,
        "--group", f"{topic_prefix}sink", "--exit-when-idle", "4", "--lake", lake)  # fmt: skip

    expected, got = lake_trades(tmp_path / "embedded"), lake_trades(lake)
    assert expected.num_rows > 380_000 and sent == 388_417
    assert got.schema == expected.schema
    assert got.equals(expected)  # the same rows: symbol, ts, price, size, exchange, condition
    assert got.column("dataset").unique().to_pylist() == ["lean"]
    # the refused trades are dead letters, not trades
    prices = set(got.column("price").to_pylist())
    assert not prices & set(REFUSED.column("price").to_pylist())
    with duckdb.connect() as con:
        dlq = con.execute(
            f"SELECT reason, count(*) FROM read_parquet('{lake}/dlq/**/*.parquet', "
            "hive_partitioning = true) GROUP BY reason ORDER BY reason"
        ).fetchall()
    assert {reason for reason, _ in dlq} >= {"price", "size", "future"}, dlq


def test_store_trades_off_needs_no_trades_topic_and_stores_none(
    cli, kafka_bootstrap, topic_prefix, tmp_path
):
    config = tmp_path / "off.toml"
    config.write_text("[process]\nstore_trades = false\n")
    # embedded: the lake gets bars but no trades
    cli("replay", LEAN_TRADES, "--lake", tmp_path / "embedded", "--config", config)
    assert (tmp_path / "embedded" / "bars").is_dir()
    assert not (tmp_path / "embedded" / "trades").exists()
    # Kafka: process runs on topics without trades
    bus, topics = bus_for(kafka_bootstrap), Topics(topic_prefix)
    for spec in topic_specs(topics):
        if spec.name != topics.name("trades"):
            bus.create_topics([spec.name], 6, 1, {spec.name: spec.config})
    load_file(kafka_bootstrap, topic_prefix, LEAN_TRADES)
    process = start(process_command(kafka_bootstrap, topic_prefix, "off", "--config", config,
                                    "--exit-when-idle", "4"))  # fmt: skip
    log = wait_log(process, 300)
    assert process.returncode == 0, log
    assert sum(end_offsets(kafka_bootstrap, topics.name("bars"))) > 40_000
    assert topics.name("trades") not in bus.admin().list_topics(timeout=10).topics


def _morning(first: int, n: int) -> pa.Table:
    """``n`` SPY trades a millisecond apart, from the ``first``-th millisecond after 9:30."""
    start = 1381152600_000_000_000 + first * 1_000_000
    return pa.table({
        "symbol": ["SPY"] * n,
        "ts": pa.array([start + i * 1_000_000 for i in range(n)], pa.int64()),
        "price": [170.0 + (first + i) % 7 / 100 for i in range(n)],
        "size": [100.0] * n,
    })  # fmt: skip


def test_kept_trades_no_longer_on_ticks_are_dead_letters_and_the_others_stored(
    cli, kafka_bootstrap, topic_prefix, tmp_path
):
    topics = create_topics(kafka_bootstrap, topic_prefix)
    bus = bus_for(kafka_bootstrap)
    for first in (0, 1_000):  # two runs of process: two references, one of each half
        with bus.producer() as producer:
            producer.send_columns(topics.ticks, "trade", _morning(first, 1_000))
        process = start(process_command(kafka_bootstrap, topic_prefix, "gone",
                                        "--exit-when-idle", "3"))  # fmt: skip
        log = wait_log(process, 300)
        assert process.returncode == 0, log
    (partition,) = [p for p, end in enumerate(end_offsets(kafka_bootstrap, topics.ticks)) if end]
    refs = read_committed(kafka_bootstrap, topics.name("trades"))[partition]
    assert len(refs) == 2 and all(is_ref(v) for _, v, _ in refs)

    # the fault: the broker no longer holds the first half of `ticks` (as retention would)
    tp = ck.TopicPartition(topics.ticks, partition, 1_000)
    (done,) = bus.admin().delete_records([tp]).values()
    assert done.result().low_watermark == 1_000  # the partition starts at the second half

    lake = tmp_path / "lake"
    result = cli("sink", "lake", "--bootstrap-servers", kafka_bootstrap, "--topic-prefix",
                 topic_prefix, "--group", f"{topic_prefix}sink", "--exit-when-idle", "4",
                 "--lake", lake)  # fmt: skip
    gone = f"{topics.ticks}[{partition}] no longer holds offset 0"
    assert gone in result.stderr  # logged, naming the partition and the offset
    with duckdb.connect() as con:
        stored = con.execute(f"SELECT epoch_ns(min(ts)), count(*) FROM read_parquet("
                             f"'{lake}/trades/**/*.parquet', hive_partitioning = true)"
                             ).fetchone()  # fmt: skip
        letters = con.execute(f"SELECT reason, error FROM read_parquet('{lake}/dlq/**/"
                              "*.parquet', hive_partitioning = true)").fetchall()  # fmt: skip
    assert stored[1] == 1_000  # the second half, each once
    assert stored[0] == 1381152601_000_000_000  # from the first trade of the second half
    assert len(letters) == 1 and gone in letters[0][1]
