"""A lake sink whose consumer stops fetching rejoins the group and stores everything."""

import threading
import time

import confluent_kafka as ck
import pyarrow as pa
import pytest

from marketpulse.bus.base import TopicPartition
from marketpulse.bus.codec import encode_rows
from marketpulse.models import BAR_SCHEMA, DeadLetter
from marketpulse.runtime.sink import SinkOptions, SinkService
from marketpulse.sinks.lake import LakeSink

from .kafka_tools import bus_for, committed_offsets, create_topics

pytestmark = pytest.mark.integration


def bars(first, count):
    """``count`` one-minute bars of one symbol, from minute ``first`` on."""
    start = [(first + i) * 60_000_000_000 for i in range(count)]
    price = [100.0 + (first + i) % 7 for i in range(count)]
    return pa.table(
        {
            "symbol": ["ACME"] * count, "timeframe": ["1m"] * count, "bar_start": start,
            "bar_end": [s + 60_000_000_000 for s in start], "open": price, "high": price,
            "low": price, "close": price, "volume": [10.0] * count, "vwap": price,
            "trades": [1] * count, "dataset": ["stall"] * count,
        },
        schema=BAR_SCHEMA,
    )  # fmt: skip


def publish(bootstrap, topic, table, transactional_id):
    """Write ``table`` to partition 0 of ``topic`` in one committed transaction."""
    producer = ck.Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id})
    producer.init_transactions(30)
    producer.begin_transaction()
    for key, value in zip(*encode_rows("bars", table), strict=True):
        producer.produce(topic, value, key.encode(), partition=0)
    producer.commit_transaction(30)


def wait_until(predicate, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_stalled_consumer_rejoins_and_the_lake_gets_every_row(
    kafka_bootstrap, topic_prefix, tmp_path, sql
):
    topics = create_topics(kafka_bootstrap, topic_prefix, partitions=2)
    lake = tmp_path / "lake"
    service = SinkService(
        bus_for(kafka_bootstrap), topics, LakeSink(lake, max_age_s=0.2),
        SinkOptions(group=f"{topic_prefix}sink", tables=("bars",), stall_after=3.0),
    )  # fmt: skip
    runner = threading.Thread(target=service.run)
    runner.start()
    try:
        publish(kafka_bootstrap, topics.name("bars"), bars(0, 500), f"{topic_prefix}w1")
        assert wait_until(lambda: service.stats.rows.get("bars", 0) == 500)
        assert service.stats.rejoins == 0  # read to the end: quiet, yet nothing waits
        # three stall checks of this quiet spell done (two in a row with records waiting
        # would rejoin; the third begins after the second's decision): no rejoin
        assert wait_until(lambda: service._checks >= 3), service._checks
        assert service.stats.rejoins == 0
        # the member stops delivering records, as a client left stuck by a broker
        # restart does (patched on the object: its replacement is a new object)
        stuck = service._consumer
        polls = []
        stuck.poll = lambda *args, **kwargs: polls.append(1) or []
        # once the loop called the patched poll, no real poll is under way that could
        # still deliver the records published next
        assert wait_until(lambda: polls)
        publish(kafka_bootstrap, topics.name("bars"), bars(500, 700), f"{topic_prefix}w2")
        assert wait_until(lambda: service.stats.rows.get("bars", 0) == 1200), service.stats
        assert service.stats.rejoins == 1
        assert service._consumer is not stuck
    finally:
        service.stop.set()
        runner.join(60)
    assert not runner.is_alive()
    rows = sql(lake, "SELECT count(*) AS n, count(DISTINCT bar_start) AS d, min(bar_start) AS lo, "
                     "max(bar_start) AS hi, min(dataset) AS ds FROM bars")  # fmt: skip
    # minutes 0 to 1199 after the epoch: 1970-01-01 00:00 to 19:59
    assert rows == [{"n": 1200, "d": 1200, "lo": "1970-01-01T00:00:00Z",
                     "hi": "1970-01-01T19:59:00Z", "ds": "stall"}]  # fmt: skip


def dead_letters(count):
    """``count`` dead letters of a replayed file."""
    return [
        DeadLetter("parse", f"line {i}: not a number", b"ACME,x,1", file="ticks.csv", line=i)
        for i in range(count)
    ]


def test_a_sink_restarted_with_everything_stored_does_not_rejoin(
    kafka_bootstrap, topic_prefix, tmp_path, sql
):
    topics = create_topics(kafka_bootstrap, topic_prefix, partitions=2)
    bus = bus_for(kafka_bootstrap)
    # bars in a transaction, as process sends them; dead letters without one, as produce
    # sends them: no transaction marker after them for the client to step past
    publish(kafka_bootstrap, topics.name("bars"), bars(0, 30), f"{topic_prefix}w1")
    with bus.producer() as producer:
        producer.send_dead(topics.name("dlq"), dead_letters(20), partition=0, dataset="stall")
    lake = tmp_path / "lake"
    group = f"{topic_prefix}sink"

    def service(**options):
        return SinkService(
            bus, topics, LakeSink(lake, max_age_s=0.2),
            SinkOptions(group=group, tables=("bars", "dlq"), **options),
        )  # fmt: skip

    first = service(exit_when_idle=1.0).run()  # as `sink lake --exit-when-idle 1`
    assert first.rows == {"bars": 30, "dlq": 20}
    assert committed_offsets(kafka_bootstrap, group, topics.name("dlq")) == 20

    again = service(stall_after=1.0)  # the same group, nothing new to read
    # each stall check's positions and records found waiting, read on the service's
    # thread (calls on one client from two threads can deadlock)
    checks = []
    unread = again._unread
    again._unread = lambda: checks.append((again._consumer.position(), unread())) or checks[-1][1]
    runner = threading.Thread(target=again.run)
    runner.start()
    try:
        # three stall checks of this quiet spell: two in a row with records waiting rejoin
        assert wait_until(lambda: len(checks) >= 3 or again.stats.rejoins, timeout=45), checks
    finally:
        again.stop.set()
        runner.join(60)
    assert not runner.is_alive()
    # the fault's condition: the client knows no position of the dead letters' partition
    dlq = TopicPartition(topics.name("dlq"), 0)
    assert checks[0][0][dlq] == ck.OFFSET_INVALID
    assert [waiting for _, waiting in checks] == [0] * len(checks)
    assert again.stats.rejoins == 0
    assert again.stats.records == 0
    assert sql(lake, "SELECT count(*) AS n FROM dlq") == [{"n": 20}]
