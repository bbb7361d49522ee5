"""The produce service without a broker: a recording bus stands in for Kafka."""

from __future__ import annotations

import threading
import time

import pytest

from marketpulse.bus.codec import encode_rows
from marketpulse.bus.topics import Topics
from marketpulse.config import KafkaSettings
from marketpulse.exceptions import BusError, ConfigError
from marketpulse.feeds import FileReplay, Simulator
from marketpulse.models import Bar, Trade, decode_tick
from marketpulse.runtime.produce import ProduceOptions, ProduceService, ProduceStats

TOPICS = Topics("t.")

BAD_TRADES = (
    "timestamp,symbol,price,size\n"
    "2024-01-02T14:30:00.000Z,AAPL,185.10,100\n"
    "2024-01-02T14:30:00.500Z,AAPL,abc,100\n"  # line 3: not a number
    "2024-01-02T14:30:01.000Z,AAPL,185.20\n"  # line 4: a field short
    "2024-01-02T14:30:02.000Z,MSFT,385.30,200\n"
)
YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2021-06-01,422.570007,422.720001,418.119995,419.670013,411.5,54216600
2021-06-02,420.369995,421.230011,419.290009,420.329987,412.1,49097100
"""


class RecordingProducer:
    """Encodes like KafkaProducer and keeps the records instead of sending them."""

    def __init__(self, flush_error: bool = False) -> None:
        self.records: dict[str, list[tuple[str | None, bytes, list]]] = {}
        self.sent = self.failed = 0
        self.datasets: list[str | None] = []  # of each send_dead call
        self.errors: list[str] = []
        self.flushed = False
        self._flush_error = flush_error

    @property
    def in_flight(self) -> int:
        return self.sent if self._flush_error else 0

    def send_columns(self, topic, kind, data):
        assert "line" not in data.schema.names  # not part of the message
        keys, values = encode_rows("bars" if kind == "bar" else kind, data)  # as KafkaProducer
        self.records.setdefault(topic, []).extend(
            (k, v, []) for k, v in zip(keys, values, strict=True)
        )
        self.sent += len(values)

    def send_dead(self, topic, letters, partition=-1, dataset=None):
        self.datasets.append(dataset)
        for letter in letters:
            self.records.setdefault(topic, []).append((letter.key, letter.value, letter))
            self.sent += 1

    def flush(self, timeout=None):
        if self._flush_error:
            raise BusError(f"{self.sent} records not acknowledged within {timeout} s")
        self.flushed = True


class RecordingBus:
    """Has the topics it is given; hands out one recording producer."""

    def __init__(self, topics=("t.ticks", "t.dlq"), flush_error=False) -> None:
        self.settings = KafkaSettings(bootstrap="nowhere:9092")
        self.topics = set(topics)
        self.made: list[RecordingProducer] = []
        self.asked: dict = {}
        self._flush_error = flush_error

    def partitions(self, topic):
        if topic not in self.topics:
            raise BusError(
                f"topic {topic} does not exist (create it with `marketpulse topics create`)"
            )
        return 6

    def producer(self, **kwargs):
        self.asked = kwargs
        self.made.append(RecordingProducer(self._flush_error))
        return self.made[-1]


def test_options_refuse_values_out_of_range():
    with pytest.raises(ConfigError, match="brotli"):
        ProduceOptions(compression="brotli")
    with pytest.raises(ConfigError, match="speed"):
        ProduceOptions(speed=0)
    with pytest.raises(ConfigError, match="duration"):
        ProduceOptions(duration=-1.0)
    assert ProduceOptions(compression="zstd", speed=2.0, duration=1.0).speed == 2.0


def test_file_rows_go_to_ticks_keyed_by_symbol_and_bad_rows_to_dlq(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_text(BAD_TRADES)
    bus = RecordingBus()
    stats = ProduceService(bus, TOPICS, FileReplay(path), ProduceOptions(compression="zstd")).run()

    producer = bus.made[0]
    assert bus.asked["compression"] == "zstd"
    assert producer.flushed
    ticks = producer.records["t.ticks"]
    assert [k for k, _, _ in ticks] == ["AAPL", "MSFT"]
    assert [decode_tick(v) for _, v, _ in ticks] == [
        Trade("AAPL", 1704205800 * 10**9, 185.10, 100.0),
        Trade("MSFT", 1704205802 * 10**9, 385.30, 200.0),
    ]
    dead = [letter for _, _, letter in producer.records["t.dlq"]]
    assert [(d.file, d.line, d.reason) for d in dead] == [
        (str(path), 3, "parse"),
        (str(path), 4, "parse"),
    ]
    assert dead[0].value == b"2024-01-02T14:30:00.500Z,AAPL,abc,100"
    # the dead letters' dataset header: the file's (a generic name: led by its folder's)
    assert set(producer.datasets) == {f"{tmp_path.name}-trades"}
    again = RecordingBus()
    ProduceService(again, TOPICS, FileReplay(path), ProduceOptions(dataset="day-1")).run()
    assert set(again.made[0].datasets) == {"day-1"}  # as run --kafka --dataset names it
    assert (stats.ticks, stats.dead, stats.failed, stats.exhausted, stats.ok) == (
        2,
        2,
        0,
        True,
        True,
    )
    assert (
        stats.line().startswith("produced 2 ticks (")
        and "failed 0, 2 malformed rows" in stats.line()
    )


def test_bar_files_go_out_as_bars_of_the_tick_union(tmp_path):
    path = tmp_path / "SPY.csv"
    path.write_text(YAHOO)
    bus = RecordingBus()
    stats = ProduceService(bus, TOPICS, FileReplay(path, symbol="SPY")).run()
    bars = [decode_tick(v) for _, v, _ in bus.made[0].records["t.ticks"]]
    assert stats.ticks == 2 and all(isinstance(b, Bar) for b in bars)
    assert [(b.symbol, b.timeframe, b.close) for b in bars] == [
        ("SPY", "1d", 419.670013), ("SPY", "1d", 420.329987)
    ]  # fmt: skip


def test_missing_topic_fails_before_a_producer_is_made(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_text(BAD_TRADES)
    for present in (("t.dlq",), ("t.ticks",)):
        bus = RecordingBus(present)
        with pytest.raises(BusError, match="topics create"):
            ProduceService(bus, TOPICS, FileReplay(path)).run()
        assert bus.made == []


def test_stop_ends_an_endless_feed_and_flushes():
    stop = threading.Event()
    seen: list[int] = []

    def progress(stats: ProduceStats) -> None:
        seen.append(stats.ticks)
        if len(seen) == 3:
            stop.set()

    feed = Simulator(symbols=5, rate=1e6, realtime=False, batch_size=1000)
    bus = RecordingBus()
    stats = ProduceService(bus, TOPICS, feed, stop=stop, on_progress=progress).run()
    assert seen == [1000, 2000, 3000]
    assert stats.ticks == 3000 and len(bus.made[0].records["t.ticks"]) == 3000
    assert not stats.exhausted and bus.made[0].flushed


@pytest.mark.timeout(60)  # an endless feed: only the duration ends the run
def test_duration_stops_the_simulator():
    feed = Simulator(symbols=5, rate=2000, realtime=True)
    started = time.monotonic()
    stats = ProduceService(RecordingBus(), TOPICS, feed, ProduceOptions(duration=0.5)).run()
    assert time.monotonic() - started >= 0.5  # not before the duration (no upper bound)
    assert stats.ticks > 0 and not stats.exhausted


def test_records_left_unacknowledged_are_counted(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_text(BAD_TRADES)
    stats = ProduceService(RecordingBus(flush_error=True), TOPICS, FileReplay(path)).run()
    assert stats.unacknowledged == 4  # two ticks, two dead letters
    assert not stats.ok and "4 unacknowledged" in stats.line()
