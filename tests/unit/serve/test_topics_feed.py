"""The dashboard following output topics (here on the embedded bus, as on Kafka)."""

from __future__ import annotations

import time

import pyarrow.compute as pc
import pytest

from marketpulse.analytics import query
from marketpulse.bus import Batch, MemoryBus, Message
from marketpulse.bus.codec import encode_alerts, encode_rows
from marketpulse.bus.topics import OUTPUT_TOPICS, Topics
from marketpulse.models import ALERT_SCHEMA, BAR_SCHEMA, DLQ_SCHEMA, INDICATOR_SCHEMA, Alert
from marketpulse.runtime import Metrics
from marketpulse.serve import LiveMarket
from marketpulse.serve.topics_feed import TopicsFeed

from .conftest import DATASETS, SYMBOLS


def _lake_table(root, name, order, dataset=DATASETS[0]):
    """One dataset's rows of a table as a pipeline hands them over (times as int64 ns)."""
    schema = {"bars": BAR_SCHEMA, "indicators": INDICATOR_SCHEMA, "alerts": ALERT_SCHEMA,
              "dlq": DLQ_SCHEMA}[name]  # fmt: skip
    columns = ", ".join(
        f"epoch_ns({c}) AS {c}" if c in ("ts", "bar_start", "bar_end") else c for c in schema.names
    )
    table = query(
        root, f"SELECT {columns} FROM {name} WHERE dataset = '{dataset}' ORDER BY {order}"
    )
    return table.cast(schema) if table.num_rows else table


def _poll(check, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def test_the_output_topics_fill_the_watchlist_alerts_and_figures(filled_lake):
    root, _ = filled_lake
    topics = Topics("test.")
    bus = MemoryBus(retain=True)
    bus.create_topics([topics.name(t) for t in OUTPUT_TOPICS], 2)
    bars = _lake_table(root, "bars", "bar_start, symbol, timeframe")
    indicators = _lake_table(root, "indicators", "bar_start, symbol, timeframe")
    alerts = _lake_table(root, "alerts", "bar_end, id")
    dlq = _lake_table(root, "dlq", "ts")
    producer = bus.producer()
    for size in range(0, bars.num_rows, 500):  # as a pipeline would: many small batches
        producer.send_columns(topics.name("bars"), "bars", bars.slice(size, 500))
    producer.send_columns(topics.name("indicators"), "indicators", indicators)
    producer.send_columns(topics.name("alerts"), "alerts", alerts)
    market = LiveMarket("1s", Metrics())
    with TopicsFeed(bus, topics, market):
        _poll(lambda: market.metrics.snapshot().alerts == alerts.num_rows, "every alert")
        _poll(lambda: market.metrics.snapshot().bars == bars.num_rows, "every bar")
        _poll(
            lambda: market.metrics.snapshot().indicator_rows == indicators.num_rows,
            "every indicator row",
        )
        _poll(lambda: market.figures()["lag"], "the consumer's lag")
        figures = market.figures()
    assert dlq.num_rows == 0
    assert figures["source"] == "topics"  # the badge names the topics, not a run here
    assert set(figures["lag"]) == {f"test.{t}[{p}]" for t in OUTPUT_TOPICS for p in (0, 1)} and set(
        figures["lag"].values()
    ) == {0}
    one_second = bars.filter(pc.equal(bars.column("timeframe"), "1s"))
    assert figures["ticks_in"] == sum(one_second.column("trades").to_pylist())
    rows = {r["symbol"]: r for r in market.watchlist()}
    assert len(rows) == SYMBOLS
    for symbol, row in rows.items():
        own = [b for b in one_second.to_pylist() if b["symbol"] == symbol]
        assert row["last"] == own[-1]["close"]
        assert row["volume"] == pytest.approx(sum(b["volume"] for b in own))
    newest = indicators.filter(pc.equal(indicators.column("timeframe"), "1s"))
    last_rsi = {r["symbol"]: r["rsi_14"] for r in newest.to_pylist()}
    assert all(rows[s]["rsi"] == pytest.approx(v) for s, v in last_rsi.items())
    seq, pushed = market.alerts_after(0)
    assert seq == alerts.num_rows and sorted(a["id"] for a in pushed) == sorted(
        alerts.column("id").to_pylist()
    )
    assert all(isinstance(a["details"], dict) for a in pushed)
    assert {a["dataset"] for a in pushed} == {DATASETS[0]} and market.dataset == DATASETS[0]


def test_records_as_kafka_carries_them_are_decoded_and_bad_ones_counted(filled_lake):
    root, _ = filled_lake
    topics = Topics()
    market = LiveMarket("1s", Metrics())
    feed = TopicsFeed(MemoryBus(), topics, market)
    bars = _lake_table(root, "bars", "bar_start, symbol, timeframe").slice(0, 40)
    keys, values = encode_rows("bars", bars)
    values.insert(3, b'{"not": "a bar"}')
    messages = [Message(None, v, offset) for offset, v in enumerate(values)]
    feed.take(Batch(topics.name("bars"), 0, 0, len(messages) - 1, messages=messages))
    assert market.metrics.snapshot().bars == 40 and feed.undecodable == 1
    symbol = bars.column("symbol")[0].as_py()
    alert = Alert("a1", "jump", symbol, "1s", 5, 1_000_000_005, "critical", "m", {"x": 1.0}, "d")
    _, encoded = encode_alerts([alert])
    feed.take(Batch(topics.name("alerts"), 1, 7, 7, messages=[Message(None, encoded[0], 7)]))
    [pushed] = market.alerts_after(0)[1]
    assert pushed["details"] == {"x": 1.0} and pushed["dataset"] == "d"
    assert pushed["bar_end"] == "1970-01-01T00:00:01.000000005Z"
    dead = [Message(b"AAPL", b"{", 8, 0, (("reason", b"schema"),)), Message(None, b"", 9)]
    feed.take(Batch(topics.name("dlq"), 0, 8, 9, messages=dead))
    assert market.figures()["dlq"] == 2 and market.figures()["undecodable"] == 1
    rows = {r["symbol"]: r for r in market.watchlist()}
    first = bars.filter(pc.equal(bars.column("timeframe"), "1s")).to_pylist()
    assert (
        rows[first[-1]["symbol"]]["last"]
        == [b["close"] for b in first if b["symbol"] == first[-1]["symbol"]][-1]
    )
