"""The trades process forwards as their records came decode as the trades it kept."""

from __future__ import annotations

import msgspec
import pyarrow as pa
import pytest

from marketpulse.bus.base import Batch, Message
from marketpulse.bus.codec import decode_rows, encode_rows, stored_plain_trades
from marketpulse.bus.topics import Topics
from marketpulse.runtime.forward import encode_together, send_output, send_trades
from marketpulse.stream import Processor, ProcessorSettings
from marketpulse.stream.decode import from_plain

S = 10**9
T0 = 1_700_000_000 * S


class Recorder:
    """A producer that keeps what it was given: encoded records, or rows to encode."""

    def __init__(self):
        self.encoded, self.rows = [], []

    def send_encoded(self, topic, keys, values, partition):
        self.encoded.append((topic, list(keys), list(values), partition))

    def send_rows(self, topic, kind, rows, partition):
        self.rows.append((topic, kind, rows, partition))


def trade(symbol, ts, price, size, **more):
    return msgspec.json.encode({"type": "trade", "symbol": symbol, "ts": ts, "price": price,
                                "size": size, **more})  # fmt: skip


#: plain records as feeds write them, offsets with gaps (a transaction's markers)
RECORDS = [
    (10, trade("AAPL", T0, 189.25, 100, exchange="Q", condition="@")),
    (11, trade("MSFT", T0 + 1, 370.5, 3.5, exchange=None, ts_ingest=T0 + 5)),
    (13, b' {"symbol":"AAPL","type":"trade","ts":%d,"price":189.3,"size":7e2} \n' % (T0 + S)),
    (14, trade("AAPL", T0 + 3600 * S, 190.0, 1, extra=None)),  # an hour ahead: refused
    (17, trade("MSFT", T0 + 2 * S, 371.0, 10)),
]


def batch(records):
    messages = [Message(b"key", value, offset) for offset, value in records]
    return Batch("t.ticks", 3, records[0][0], records[-1][0], messages=messages)


def test_kept_trades_go_as_their_records_with_the_dataset_and_decode_as_encoded():
    processor = Processor(ProcessorSettings(dataset="nyse-day", max_time_jump=60))
    b = batch(RECORDS)
    out = processor.process(b)
    assert len(out.dead) == 1 and out.dead[0].reason == "future"  # the hour-ahead one
    [kept] = out.trades
    assert from_plain(kept) and kept.num_rows == 4
    recorder = Recorder()
    send_trades(recorder, "t.trades", kept, 3, b, "nyse-day")
    [(topic, keys, values, partition)] = recorder.encoded
    assert (topic, partition, keys) == ("t.trades", 3, ["AAPL", "MSFT", "AAPL", "MSFT"])
    wanted = [value for offset, value in RECORDS if offset != 14]
    # each its own record, the dataset appended after its last field
    assert [v.strip()[: len(w.strip()) - 1] for v, w in zip(values, wanted, strict=True)] == [
        w.strip()[:-1] for w in wanted
    ]
    forwarded, errors = decode_rows("trades", values)
    encoded, _ = decode_rows("trades", encode_rows("trades", kept)[1])
    assert not errors and forwarded.equals(encoded)
    assert forwarded.column("dataset").to_pylist() == ["nyse-day"] * 4
    assert forwarded.column("size").to_pylist() == [100.0, 3.5, 700.0, 10.0]


def test_trades_not_from_plain_records_are_encoded_from_their_columns():
    processor = Processor(ProcessorSettings(dataset="live"))
    escaped = trade("BRK.B", T0, 410.0, 5, exchange="N\\Y")  # an escape: not a plain record
    b = batch([(0, escaped)])
    [kept] = processor.process(b).trades
    assert not from_plain(kept)
    recorder = Recorder()
    send_trades(recorder, "t.trades", kept, 3, b, "live")
    assert not recorder.encoded and [r[1] for r in recorder.rows] == ["trades"]


def test_columns_of_the_in_memory_bus_are_encoded_from_their_columns():
    table = pa.table({"symbol": ["A"], "ts": [T0], "price": [1.0], "size": [1.0]})
    recorder = Recorder()
    send_trades(recorder, "t.trades", table, 0, Batch("t.ticks", 0, 0, 0, columns=table), "x")
    assert not recorder.encoded and len(recorder.rows) == 1


@pytest.mark.parametrize("dataset", [None, 'quote"d'])
def test_the_dataset_is_appended_as_json(dataset):
    [value] = stored_plain_trades([trade("A", T0, 1.5, 2) + b"\r\n"], dataset)
    assert msgspec.json.decode(value)["dataset" if dataset else "symbol"] == (dataset or "A")


def closing_poll(partitions=3):
    """The outputs of one poll of ``partitions`` partitions whose trades close 1-second bars."""
    processor = Processor(ProcessorSettings(intervals=("1s",), lateness=0, dataset="lean"))
    symbols = [("AAPL", "MSFT"), ("IBM",), ("SPY", "QQQ", "DIA")][:partitions]

    def poll(ts):
        return [
            Batch("t.ticks", p, 10 * ts, 10 * ts + len(names) - 1, messages=[
                Message(name.encode(), trade(name, T0 + ts * S + i, 100.0 + ts + i, 1), 10 * ts + i)
                for i, name in enumerate(names)
            ])
            for p, names in enumerate(symbols)
        ]  # fmt: skip

    processor.process_each(poll(0))
    return processor.process_each(poll(1))


def test_a_polls_outputs_encoded_together_are_the_records_each_encodes_alone():
    outputs = closing_poll()
    assert all(out.bars.num_rows and out.indicators.num_rows for out in outputs)
    together = encode_together(outputs)
    for out, records in zip(outputs, together, strict=True):
        assert set(records) == {"bars", "indicators"}
        for kind in ("bars", "indicators"):
            keys, values = encode_rows(kind, getattr(out, kind))
            assert (list(records[kind][0]), list(records[kind][1])) == (keys, values)


def test_outputs_of_other_columns_and_a_lone_output_are_left_to_send_output():
    outputs = closing_poll()
    quoted = outputs[1].bars
    outputs[1].bars = quoted.append_column("spread", pa.array([0.01] * quoted.num_rows))
    together = encode_together(outputs)
    assert "bars" not in together[1] and "indicators" in together[1]
    assert {kind for records in together for kind in records} == {"bars", "indicators"}
    assert encode_together(closing_poll(partitions=1)) == [{}]


def test_send_output_sends_what_was_encoded_and_encodes_the_rest():
    outputs = closing_poll(partitions=2)
    together = encode_together(outputs)
    recorder = Recorder()
    send_output(recorder, Topics("t."), outputs[0], 0, None, dataset="lean", store_trades=False,
                quotes=None, encoded={"bars": together[0]["bars"]})  # fmt: skip
    assert [(topic, keys) for topic, keys, _, _ in recorder.encoded] == [
        ("t.bars", outputs[0].bars.column("symbol").to_pylist())
    ]
    assert [(topic, kind) for topic, kind, _, _ in recorder.rows] == [
        ("t.indicators", "indicators")
    ]
