"""Rows as Kafka records and back: the issue 19 fields on the wire."""

from __future__ import annotations

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from marketpulse.bus.codec import (
    dead_letter_headers,
    decode_dead_letters,
    decode_rows,
    encode_alerts,
    encode_rows,
)
from marketpulse.models import Alert, DeadLetter
from marketpulse.stream.output import Constant, bars_table, indicators_table

S = 10**9
T0 = 1_381_152_600 * S


def _bars(n: int, dataset: Constant) -> pa.Table:
    start = T0 + np.arange(n, dtype=np.int64) * 60 * S
    prices = tuple(np.full(n, 100.0 + k) for k in range(4))
    symbols = np.array([f"S{i % 7}" for i in range(n)], object)
    frames = np.array(["1m"] * n, object)
    return bars_table(symbols, frames, start, start + 60 * S, prices, np.full(n, 5.0),
                      np.full(n, np.nan), np.ones(n, np.int64), dataset)  # fmt: skip


@pytest.mark.parametrize("n", [3, 300, 5000])  # below and above the one-value shortcut
def test_bars_go_out_with_their_dataset_and_come_back_alike(n):
    table = _bars(n, Constant("lean-2013-10-07"))
    keys, values = encode_rows("bars", table)
    first = msgspec.json.decode(values[0])
    assert first["dataset"] == "lean-2013-10-07"
    assert (first["timeframe"], first["bar_start"], first["bar_end"]) == ("1m", T0, T0 + 60 * S)
    back, errors = decode_rows("bars", values)
    assert errors == [] and back.equals(table)
    assert keys == table.column("symbol").to_pylist()


def test_a_dataset_column_of_several_values_keeps_each_row_s():
    table = _bars(400, Constant("a"))
    mixed = pa.array(["a"] * 399 + ["b"])  # the same length, one row differs
    table = table.set_column(table.schema.get_field_index("dataset"), "dataset", mixed)
    _, values = encode_rows("bars", table)
    got = [msgspec.json.decode(v)["dataset"] for v in values]
    assert got == mixed.to_pylist()


def test_bars_of_a_feed_without_a_dataset_column_have_a_null_one():
    table = _bars(2, Constant("x")).drop_columns(["dataset"])
    _, values = encode_rows("bars", table)
    assert [msgspec.json.decode(v)["dataset"] for v in values] == [None, None]


def test_indicators_carry_the_bar_s_key_and_dataset():
    n = 300
    start = T0 + np.arange(n, dtype=np.int64) * S
    values = np.full((n, 13), np.nan)
    table = indicators_table(np.array(["SPY"] * n, object), np.array(["1s"] * n, object), start,
                             start + S, np.full(n, 10.0), values, Constant("sim"))  # fmt: skip
    _, records = encode_rows("indicators", table)
    first = msgspec.json.decode(records[0])
    assert (first["bar_start"], first["bar_end"], first["dataset"]) == (T0, T0 + S, "sim")
    back, errors = decode_rows("indicators", records)
    assert errors == [] and back.equals(table)


def test_alert_details_are_an_object_on_the_wire_and_a_map_in_the_table():
    alert = Alert("0123456789abcdef", "p100", "SPY", "1m", T0, T0 + 60 * S, "warning",
                  "SPY 1m close 101.00 crossed above 100",
                  {"close": 101.0, "prev_close": None, "level": 100.0}, "simulator")  # fmt: skip
    _, (value,) = encode_alerts([alert])
    message = msgspec.json.decode(value)
    assert message["details"] == {"close": 101.0, "prev_close": None, "level": 100.0}
    assert message["dataset"] == "simulator"
    table, errors = decode_rows("alerts", [value])
    assert errors == []
    assert table.schema.field("details").type == pa.map_(pa.string(), pa.float64())
    assert table.column("details").to_pylist() == [
        [("close", 101.0), ("prev_close", None), ("level", 100.0)]
    ]
    assert table.column("bar_start").to_pylist() == [T0]


def test_texts_with_newlines_stay_inside_their_own_record():
    """Records are encoded in one call and cut at newlines: a newline in a text is escaped."""
    alerts = [
        Alert(f"{i:016x}", "p100", "SPY", "1m", T0, T0 + 60 * S, "warning",
              "line one\nline two\r\n" * i, {"close": 101.0}, "sim\nline")
        for i in range(3)
    ]  # fmt: skip
    keys, values = encode_alerts(alerts)
    assert keys == ["SPY"] * 3 and len(values) == 3
    assert values == [msgspec.json.encode(a) for a in alerts]  # the bytes of a call a row
    assert [msgspec.json.decode(v)["message"] for v in values] == [a.message for a in alerts]
    assert encode_alerts([]) == ([], [])
    trades = pa.table({"symbol": ["A", "B"], "ts": [T0, T0 + 1], "price": [1.5, 2.5],
                       "size": [1.0, 2.0], "exchange": ["Q\nX", None],
                       "condition": [None, "@\n"]})  # fmt: skip
    _, records = encode_rows("trade", trades)
    assert [msgspec.json.decode(r).get("exchange") for r in records] == ["Q\nX", None]


def test_dead_letters_keep_where_they_came_from_and_their_dataset():
    from_topic = DeadLetter("price", "field price: ...", b'{"type":"trade"}', key="SPY",
                            topic="t.ticks", partition=2, offset=41)  # fmt: skip
    from_file = DeadLetter("parse", "line 3: not a number", b"SPY,x", file="a.csv", line=3)
    headers = [dead_letter_headers(from_topic, "live"), dead_letter_headers(from_file)]
    assert ("dataset", b"live") in headers[0]
    assert all(name != "dataset" for name, _ in headers[1])  # none given: no header
    own = b'{"type":"trade","dataset":"from-record"}'  # a record naming its own dataset
    table = decode_dead_letters([b"SPY", None, None], [from_topic.value, from_file.value, own],
                                [headers[0], headers[1], None], [5, 6, 7])  # fmt: skip
    rows = table.to_pylist()
    assert [(r["source_topic"], r["source_partition"], r["source_offset"]) for r in rows] == [
        ("t.ticks", 2, 41), (None, None, None), (None, None, None)
    ]  # fmt: skip
    assert [(r["source_file"], r["source_line"]) for r in rows[:2]] == [(None, None), ("a.csv", 3)]
    assert [r["dataset"] for r in rows] == ["live", None, "from-record"]
    assert [r["reason"] for r in rows] == ["price", "parse", "unknown"]
