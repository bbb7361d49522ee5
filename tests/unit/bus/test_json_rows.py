"""The column-by-column JSON writer writes the bytes msgspec writes, row for row.

msgspec is the authority: every record :func:`encode_table` writes is compared
with ``msgspec.json.encode`` of the struct built from the same row's Python
values, on doubles drawn from all of their bit patterns, on the output tables
of the pipeline, and on the cases where a field is left out or a text would
need escaping.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from marketpulse.bus import codec
from marketpulse.bus.codec import encode_rows
from marketpulse.bus.json_rows import encode_table
from marketpulse.models import (
    BAR_QUOTE_COLUMNS,
    Bar,
    Indicators,
    Quote,
    QuotedBar,
    Trade,
    indicator_schema,
    indicators_struct,
)

_encoder = msgspec.json.Encoder()


class _One(msgspec.Struct):
    x: float | None = None


class _Left(msgspec.Struct, omit_defaults=True, tag="t", tag_field="kind"):
    name: str
    count: int | None = None
    value: float | None = None


def _struct_records(struct, data, names):
    """What msgspec writes for ``struct(**row)`` of each row (the authority)."""
    columns = {name: data.column(name).to_pylist() for name in names}
    return [
        _encoder.encode(struct(**{name: columns[name][i] for name in names}))
        for i in range(data.num_rows)
    ]


def _doubles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Doubles of every kind: random bit patterns, edges, powers, prices and indicator values."""
    bits = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    edges = [
        0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
        1.7976931348623157e308, 1e15, 1e16, 1e21, 1e22, 1e23, 9007199254740992.0,
        9007199254740994.0, 1e-5, 1e-6, 1e-7, 0.1, 0.2, 0.3, 100.0, 123.456, 1 / 3,
        math.nan, math.inf, -math.inf,
    ]  # fmt: skip
    powers = [2.0**e for e in range(-1074, 1024)] + [10.0**e for e in range(-323, 309)]
    neighbours = [math.nextafter(p, math.inf) for p in powers] + [
        math.nextafter(p, 0.0) for p in powers
    ]
    return np.concatenate([
        np.array(edges + powers + neighbours + [float(i) for i in range(-1000, 1001)]),
        bits.view(np.float64),
        np.round(rng.normal(100, 20, 20_000), 2),  # prices
        rng.normal(0, 1e-3, 20_000),  # returns, MACD values
        rng.lognormal(10, 5, 20_000),
    ])  # fmt: skip


def test_every_double_is_written_as_msgspec_writes_it():
    values = _doubles(np.random.default_rng(7), 300_000)
    data = pa.table({"x": pa.array(values)})
    got = encode_table(_One, data, ["x"])
    want = [_encoder.encode(_One(float(v))) for v in values]
    assert got is not None and len(got) == len(want)
    wrong = [(float(v), g, w) for v, g, w in zip(values, got, want, strict=True) if g != w]
    assert wrong == []
    # and they read back as the same doubles, bit for bit (NaN and infinities: null)
    back = [msgspec.json.decode(g, type=_One).x for g in got]
    for value, read in zip(values.tolist(), back, strict=True):
        if math.isfinite(value):
            assert read == value and math.copysign(1, read) == math.copysign(1, value)
        else:
            assert read is None


def test_integers_of_every_size_and_nulls_are_written_as_msgspec_writes_them():
    class Ints(msgspec.Struct):
        n: int | None
        x: float | None

    n = [0, 1, -1, 9, 10, 99, 100, 2**53, -(2**63), 2**63 - 1, None, 12345678901234567]
    x = [1.5, None, math.nan, 2.0, None, 0.0, -0.0, 1e300, None, 3.25, 1.0, 7e-9]
    data = pa.table({"n": pa.array(n, pa.int64()), "x": pa.array(x, pa.float64())})
    assert encode_table(Ints, data, ["n", "x"]) == _struct_records(Ints, data, ["n", "x"])


def test_a_tag_comes_first_and_a_null_field_with_a_none_default_is_left_out():
    data = pa.table({
        "name": ["a", "b", "ç€"], "count": pa.array([1, None, 3]), "value": [None, 2.5, None],
    })  # fmt: skip
    got = encode_table(_Left, data, ["name", "count", "value"])
    assert got == [b'{"kind":"t","name":"a","count":1}', b'{"kind":"t","name":"b","value":2.5}',
                   '{"kind":"t","name":"ç€","count":3}'.encode()]  # fmt: skip
    assert got == _struct_records(_Left, data, ["name", "count", "value"])


@pytest.mark.parametrize("text", ['say "hi"', "back\\slash", "new\nline", "tab\there", "\x00"])
def test_a_text_json_escapes_is_left_to_msgspec(text):
    data = pa.table({"name": ["plain", text]})
    assert encode_table(_Left, data, ["name"]) is None


def test_columns_it_does_not_write_are_left_to_msgspec():
    class Flags(msgspec.Struct):
        name: str
        flag: bool

    data = pa.table({"name": ["a"], "flag": [True]})
    assert encode_table(Flags, data, ["name", "flag"]) is None
    assert encode_table(_Left, pa.table({"other": ["a"]}), ["other"]) is None


def test_sliced_chunked_and_dictionary_columns_are_read_at_their_offsets():
    symbols = pa.chunked_array([pa.array(["AAA", "BB", "C"]), pa.array(["DDDD", None])])
    counts = pa.chunked_array([pa.array([1, 2]), pa.array([3, 4, 5])])
    data = pa.table({"name": symbols, "count": counts, "value": [0.5, 1.5, 2.5, 3.5, 4.5]})
    data = data.set_column(0, "name", data.column("name").dictionary_encode())
    sliced = data.slice(1, 3)
    want = _struct_records(_Left, sliced.cast(pa.schema([
        ("name", pa.string()), ("count", pa.int64()), ("value", pa.float64()),
    ])), ["name", "count", "value"])  # fmt: skip
    assert encode_table(_Left, sliced, ["name", "count", "value"]) == want


def _random_indicators(rng: np.random.Generator, n: int, declared: tuple[str, ...]) -> pa.Table:
    schema = indicator_schema(declared)
    columns = {}
    for field in schema:
        if field.name == "symbol":
            columns[field.name] = pa.array([f"S{i % 37}" for i in range(n)])
        elif field.name == "timeframe":
            columns[field.name] = pa.array(rng.choice(["1s", "1m", "5m"], n))
        elif field.name == "dataset":
            columns[field.name] = pa.array(["lean"] * n)
        elif pa.types.is_integer(field.type):
            columns[field.name] = pa.array(rng.integers(0, 2**62, n))
        else:
            x = rng.normal(100, 30, n)
            x[rng.random(n) < 0.2] = np.nan  # not warmed up
            columns[field.name] = pa.array(x, mask=rng.random(n) < 0.05)
    return pa.table(columns, schema=schema)


def _struct_path(kind, data, monkeypatch):
    """``encode_rows`` as it writes a row at a time (the fast writer turned off)."""
    with monkeypatch.context() as patch:
        patch.setattr(codec, "_written_at_once", lambda *args: None)
        return encode_rows(kind, data)


@pytest.mark.parametrize("declared", [None, ("rsi_14", "atr_14")])
def test_indicator_rows_are_the_records_of_the_struct_path(declared, monkeypatch):
    rng = np.random.default_rng(3)
    columns = declared or tuple(f for f in Indicators.__struct_fields__ if f not in (
        "symbol", "timeframe", "bar_start", "bar_end", "close", "dataset"))  # fmt: skip
    data = _random_indicators(rng, 5_000, columns)
    assert (indicators_struct(columns) is Indicators) == (declared is None)
    assert encode_rows("indicators", data) == _struct_path("indicators", data, monkeypatch)


def test_bars_with_and_without_quotes_and_without_a_dataset_are_the_struct_paths(monkeypatch):
    rng = np.random.default_rng(4)
    n = 3_000
    plain = {
        "symbol": pa.array([f"S{i % 11}" for i in range(n)]).dictionary_encode(),
        "timeframe": ["1m"] * n,
        "bar_start": rng.integers(0, 2**62, n), "bar_end": rng.integers(0, 2**62, n),
        **{name: np.round(rng.normal(50, 5, n), 2) for name in ("open", "high", "low", "close")},
        "volume": rng.integers(0, 10**6, n).astype(float), "vwap": rng.normal(50, 5, n),
        "trades": rng.integers(0, 1000, n),
    }  # fmt: skip
    quoted = dict(plain, dataset=["sim"] * n) | {
        name: pa.array(rng.normal(1, 1, n), mask=rng.random(n) < 0.3) for name in BAR_QUOTE_COLUMNS
    }
    for columns in (plain, quoted):
        data = pa.table(columns)
        got = encode_rows("bars", data)
        assert got == _struct_path("bars", data, monkeypatch)
    assert msgspec.json.decode(got[1][0], type=QuotedBar).dataset == "sim"
    assert b'"type":"bar"' in encode_rows("bars", pa.table(plain))[1][0]
    assert Bar.__struct_config__.tag == "bar"


def test_ticks_stored_trades_and_quotes_are_the_struct_paths(monkeypatch):
    rng = np.random.default_rng(5)
    n = 2_000
    exchange = pa.array(rng.choice(["Q", "N"], n).tolist(), mask=rng.random(n) < 0.5)
    trades = pa.table({
        "symbol": [f"S{i % 7}" for i in range(n)], "ts": rng.integers(0, 2**62, n),
        "price": np.round(rng.normal(10, 1, n), 4), "size": rng.integers(1, 500, n) * 1.0,
        "exchange": exchange, "condition": pa.nulls(n, pa.string()),
        "extra": pa.nulls(n, pa.string()),
    })  # fmt: skip
    quotes = pa.table({
        "symbol": [f"S{i % 7}" for i in range(n)], "ts": rng.integers(0, 2**62, n),
        "bid": rng.normal(10, 1, n), "bid_size": rng.integers(1, 9, n) * 100.0,
        "ask": rng.normal(10, 1, n),
        "ask_size": pa.array(rng.normal(5, 1, n), mask=rng.random(n) < 0.5),
        "dataset": ["sim"] * n,
    })  # fmt: skip
    stored = trades.drop_columns(["extra"]).append_column("dataset", pa.array(["sim"] * n))
    for kind, data in (("trade", trades), ("quote", quotes.drop_columns(["dataset"])),
                       ("trades", stored), ("quotes", quotes)):  # fmt: skip
        assert encode_rows(kind, data) == _struct_path(kind, data, monkeypatch), kind
    # a trade without an exchange leaves the field out, as the tick's own struct does
    first = encode_rows("trade", trades.filter(pa.compute.is_null(trades["exchange"])))[1][0]
    assert b"exchange" not in first and msgspec.json.decode(first, type=Trade).exchange is None
    assert Quote.__struct_config__.omit_defaults


def test_vendor_extra_fields_go_through_the_struct_path(monkeypatch):
    trades = pa.table({
        "symbol": ["A", "B"], "ts": [1, 2], "price": [1.0, 2.0], "size": [3.0, 4.0],
        "extra": [None, '{"venue": "X"}'],
    })  # fmt: skip
    keys, values = encode_rows("trade", trades)
    assert msgspec.json.decode(values[1], type=Trade).extra == {"venue": "X"}
    assert (keys, values) == _struct_path("trade", trades, monkeypatch)
