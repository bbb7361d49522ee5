"""The Spark operator's records are those the Kafka producer sends: same keys, values, headers."""

import pyarrow as pa

from marketpulse.bus.codec import dead_letter_headers, encode_alerts, encode_rows
from marketpulse.models import BAR_SCHEMA, Alert, DeadLetter
from marketpulse.spark.records import RECORD_COLUMNS, Recorder


def bars(n):
    columns = {f.name: pa.nulls(n, f.type) for f in BAR_SCHEMA}
    columns["symbol"] = pa.array(["AAA", "BBB"][:n])
    columns["timeframe"] = pa.array(["1m"] * n)
    columns["bar_start"] = pa.array(range(n), pa.int64())
    columns["bar_end"] = pa.array(range(60, 60 + n), pa.int64())
    columns["close"] = pa.array([1.5, 2.5][:n])
    columns["dataset"] = pa.array(["test"] * n)
    return pa.table(columns, schema=BAR_SCHEMA)


def test_the_recorder_keeps_what_a_producer_would_send_in_order():
    recorder = Recorder()
    rows = bars(2)
    alert = Alert(id="a1", rule="r", symbol="AAA", timeframe="1m", bar_start=0, bar_end=60,
                  severity="info",
                  message="m", dataset="test")  # fmt: skip
    letter = DeadLetter(reason="schema", error="bad", value=b"{", key="AAA", topic="t.ticks",
                        partition=3, offset=7)  # fmt: skip
    recorder.send_rows("t.bars", "bars", rows, 3)
    recorder.send_alerts("t.alerts", [alert], 3)
    recorder.send_dead("t.dlq", [letter], 3, "test")
    frame = recorder.frame(first_seq=10)

    assert list(frame.columns) == list(RECORD_COLUMNS)
    assert frame["topic"].tolist() == ["t.bars", "t.bars", "t.alerts", "t.dlq"]
    assert frame["partition"].tolist() == [3, 3, 3, 3]
    assert frame["seq"].tolist() == [10, 11, 12, 13]
    keys, values = encode_rows("bars", rows)
    alert_keys, alert_values = encode_alerts([alert])
    assert frame["key"].tolist() == [k.encode() for k in (*keys, *alert_keys)] + [b"AAA"]
    assert frame["value"].tolist() == [*values, *alert_values, b"{"]
    headers = frame["headers"].tolist()
    assert headers[:3] == [None, None, None]
    assert headers[3] == [{"key": k, "value": v} for k, v in dead_letter_headers(letter, "test")]


def test_an_empty_recorder_is_an_empty_frame_of_the_columns():
    frame = Recorder().frame()
    assert list(frame.columns) == list(RECORD_COLUMNS) and len(frame) == 0
