"""The trades the processor kept: sent to ``trades`` in the transaction, unless turned off."""

from __future__ import annotations

import msgspec
import pyarrow as pa
import pytest

from marketpulse.bus.codec import decode_rows, encode_rows
from marketpulse.exceptions import BusError
from marketpulse.models import TRADE_SCHEMA
from marketpulse.stream.output import Output

from .conftest import TOPICS, FakeProcessor, bars, batch, tp


def kept(partition: int, first: int, last: int) -> pa.RecordBatch:
    """Trades as the processor keeps them: the input's columns (and offsets), dataset stamped."""
    n = last - first + 1
    return pa.record_batch(
        {
            "symbol": pa.array([f"S{partition}"] * n).dictionary_encode(),
            "ts": pa.array(range(first, last + 1), pa.int64()),
            "price": pa.array([10.0 + i for i in range(n)]),
            "size": pa.array([100.0] * n),
            "exchange": pa.array(["Q"] * n),
            "condition": pa.nulls(n, pa.string()),
            "offset": pa.array(range(first, last + 1), pa.int64()),
            "dataset": pa.array(["test"] * n),
        }
    )


class TradingProcessor(FakeProcessor):
    """Keeps every record of a batch as a trade (besides the fake's one bar per batch)."""

    def process_each(self, batches) -> list[Output]:
        super().process_each(batches)
        return [
            Output(bars=bars(b.last_offset), accepted=len(b.messages),
                   trades=[kept(b.partition, b.first_offset, b.last_offset)])
            for b in batches
        ]  # fmt: skip


@pytest.fixture
def trading_service(make_service, log):
    def make(**options):
        service = make_service(committed={tp(0): 10, tp(1): 20}, **options)
        service.processor = TradingProcessor(log)
        service._assigned([tp(0), tp(1)])
        return service

    return make


def test_the_kept_trades_go_to_trades_in_the_transaction_of_their_bars(trading_service):
    """From raw messages, as references to their offsets on ``ticks``: no copy of a trade."""
    service = trading_service()
    assert service._handle([batch(0, 10, 12), batch(1, 20, 21)])
    producer = service._producer
    assert not producer.committed
    service._commit()

    sent = [(p, v) for topic, p, v in producer.committed if topic == TOPICS.name("trades")]
    assert [p for p, _ in sent] == [0, 1]  # one reference a batch, to the input's partition
    refs = [msgspec.json.decode(v) for _, v in sent]
    assert refs == [
        {"kept_from": TOPICS.ticks, "partition": 0, "runs": [10, 12], "dataset": "test"},
        {"kept_from": TOPICS.ticks, "partition": 1, "runs": [20, 21], "dataset": "test"},
    ]
    assert producer.topics("committed").count(TOPICS.name("bars")) == 2
    assert producer.offsets == [{tp(0): 13, tp(1): 22}]


def test_store_trades_off_sends_none(trading_service):
    service = trading_service(store_trades=False)
    assert service._handle([batch(0, 10, 12)])
    service._commit()
    assert TOPICS.name("trades") not in service._producer.topics("committed")
    assert TOPICS.name("bars") in service._producer.topics("committed")


@pytest.mark.parametrize("store", [True, False])
def test_the_trades_topic_is_required_only_when_trades_are_stored(make_service, store):
    service = make_service(store_trades=store)

    def partitions(topic: str) -> int:
        if topic == TOPICS.name("trades"):
            raise BusError(f"topic {topic} does not exist")
        return 4

    service.bus.partitions = partitions
    if store:
        with pytest.raises(BusError, match="trades"):
            service._check_topics()
    else:
        assert service._check_topics() == 4


def test_trades_records_decode_to_the_stored_columns():
    keys, values = encode_rows("trades", kept(3, 5, 6))
    assert keys == ["S3", "S3"]
    table, errors = decode_rows("trades", [*values, b'{"symbol": 1}'])
    assert errors and errors[0][0] == 2
    assert table.schema == TRADE_SCHEMA
    assert table.to_pylist() == [
        {"symbol": "S3", "ts": 5, "price": 10.0, "size": 100.0, "exchange": "Q",
         "condition": None, "dataset": "test"},
        {"symbol": "S3", "ts": 6, "price": 11.0, "size": 100.0, "exchange": "Q",
         "condition": None, "dataset": "test"},
    ]  # fmt: skip


def test_store_trades_from_the_file_and_the_environment(tmp_path):
    from marketpulse.config import load_settings

    assert load_settings(None, environ={}).process.store_trades is True
    path = tmp_path / "marketpulse.toml"
    path.write_text("[process]\nstore_trades = false\n")
    assert load_settings(path, environ={}).process.store_trades is False
    env = {"MARKETPULSE_PROCESS_STORE_TRADES": "false"}
    assert load_settings(None, environ=env).process.store_trades is False
    env = {"MARKETPULSE_PROCESS_STORE_TRADES": "true"}
    assert load_settings(path, environ=env).process.store_trades is True


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"exchange": pa.array(['a "quoted" \\ one', None])},  # escaped: the struct path
        {"condition": pa.array(["@\n", "T"])},
        {"price": pa.array([1e-10, 1.5e21])},
        {"size": pa.array([0.1 + 0.2, 123_456.789012345])},
    ],
)
def test_trades_records_hold_every_value_exactly(change):
    rows = kept(1, 7, 8)
    for name, column in change.items():
        rows = rows.set_column(rows.schema.get_field_index(name), name, column)
    keys, values = encode_rows("trades", rows)
    assert keys == ["S1", "S1"]
    table, errors = decode_rows("trades", values)
    assert not errors
    expected = pa.Table.from_batches([rows]).drop_columns(["offset"])
    expected = expected.select(TRADE_SCHEMA.names).cast(TRADE_SCHEMA)
    assert table.to_pylist() == expected.to_pylist()
