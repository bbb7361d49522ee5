"""A lake sink whose consumer stops fetching rejoins the group and stores everything."""

import threading
import time

import confluent_kafka as ck
import pyarrow as pa
import pytest

from marketpulse.bus.codec import encode_rows
from marketpulse.models import BAR_SCHEMA
from marketpulse.services.sink import SinkOptions, SinkService
from marketpulse.sinks.lake import LakeSink

from .kafka_tools import bus_for, create_topics

pytestmark = pytest.mark.integration


def bars(first, count):
    """``count`` one-minute bars of one symbol, from minute ``first`` on."""
    start = [(first + i) * 60_000_000_000 for i in range(count)]
    price = [100.0 + (first + i) % 7 for i in range(count)]
    return pa.table(
        {
            "symbol": ["ACME"] * count, "interval": ["1m"] * count, "start": start,
            "end": [s + 60_000_000_000 for s in start], "open": price, "high": price,
            "low": price, "close": price, "volume": [10.0] * count, "vwap": price,
            "trades": [1] * count,
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
    rows = sql(lake, "SELECT count(*) AS n, count(DISTINCT start) AS d, min(start) AS lo, "
                     "max(start) AS hi FROM bars")  # fmt: skip
    assert rows == [{"n": 1200, "d": 1200, "lo": 0, "hi": 1199 * 60_000_000_000}]
