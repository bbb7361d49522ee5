"""The numba trade scanner against msgspec, the authority, record by record and bit for bit."""

from __future__ import annotations

import json
import random
import string
from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from marketpulse.bus import Batch, Message
from marketpulse.bus.codec import encode_rows
from marketpulse.feeds import FileReplay
from marketpulse.models import TRADE_SCHEMA, Trade, decode_tick_json
from marketpulse.stream.decode import _columns, decode_messages
from marketpulse.stream.json_scan import scan_trades

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
LEAN_TRADES = DATA / "lean-2013-10-07" / "trades.csv.gz"
INT64_MAX = 2**63 - 1

GOOD = (
    b'{"type":"trade","symbol":"SPY","ts":1381132800464000000,"price":167.41,"size":100.0,'
    b'"exchange":"P","condition":"20002000"}'
)


def msgspec_columns(values: list[bytes]) -> pa.RecordBatch | None:
    """The columns of ``values`` as the msgspec route decodes them."""
    trades, _ = _columns(list(map(decode_tick_json, values)), list(range(len(values))))
    return None if trades is None else trades.drop_columns(["offset"])


def assert_same_columns(fast: pa.RecordBatch, slow: pa.RecordBatch) -> None:
    """Assert equal columns, floats compared bit for bit (``-0.0`` is not ``0.0``)."""
    assert fast.schema == slow.schema == TRADE_SCHEMA
    assert fast.num_rows == slow.num_rows
    for name in ("price", "size"):
        fast_bits = fast.column(name).to_numpy().view(np.int64)
        slow_bits = slow.column(name).to_numpy().view(np.int64)
        np.testing.assert_array_equal(fast_bits, slow_bits, err_msg=name)
    for name in ("ts", "exchange", "condition"):
        assert fast.column(name).to_pylist() == slow.column(name).to_pylist(), name
    for part in ("indices", "dictionary"):  # the same dictionary, in the same order
        assert (
            getattr(fast.column("symbol"), part).to_pylist()
            == getattr(slow.column("symbol"), part).to_pylist()
        )
    assert fast.equals(slow)


def check_against_msgspec(values: list[bytes]) -> np.ndarray:
    """Scan ``values``; assert the accepted ones decode as msgspec does. Return the flags."""
    fast, accepted = scan_trades(values)
    assert accepted.dtype == np.bool_ and accepted.shape == (len(values),)
    kept = [value for value, ok in zip(values, accepted, strict=True) if ok]
    if not kept:
        assert fast is None
        return accepted
    assert all(type(decode_tick_json(value)) is Trade for value in kept)
    assert_same_columns(fast, msgspec_columns(kept))
    return accepted


# Records made at random, each with whether the scanner must accept it.


def fast_path_number(text: str) -> bool:
    """Whether a JSON number is on Clinger's fast path (the rule the scanner documents)."""
    _, digits, exponent = Decimal(text).as_tuple()
    return int("".join(map(str, digits))) <= 2**53 and -22 <= exponent <= 22


#: Numbers worth trying by name: shortest reprs, long ones, the extremes, -0 and friends.
NUMBERS = (
    "0", "-0", "0.0", "-0.0", "-0e0", "0.1", "0.5", "1e-05", "1E5", "1e+5", "2.5E-3", "1e22",
    "1e23", "1e-22", "1e-23", "123456789.123456789", "5e-324", "2.2250738585072014e-308",
    "1.7976931348623157e308", "9007199254740992", "9007199254740993", "-9007199254740992",
    "18446744073709551615", "123456789012345678901234567890", "167.41", "167.410000",
    "0.30000000000000004", "100", "-100", "1e0000000000000000000001", "4.35", "-1.5",
)  # fmt: skip


def random_number(rng: random.Random) -> str:
    """A JSON number: a price or size, named, a random float's repr or rounded form, or an int."""
    kind = rng.randrange(8)
    if kind < 3:  # prices and sizes as markets print them
        return repr(round(rng.uniform(0.0, 10.0 ** rng.randint(0, 6)), rng.randint(0, 6)))
    if kind == 3:
        return rng.choice(NUMBERS)
    value = rng.random() * 10.0 ** rng.randint(-30, 30) * rng.choice((1, -1))
    if kind == 4:
        return repr(value)
    if kind == 5:
        return f"{value:.{rng.randint(1, 17)}g}"
    if kind == 6:
        return f"{value:.{rng.randint(0, 12)}f}"
    return str(rng.randint(-(10 ** rng.randint(0, 18)), 10 ** rng.randint(0, 18)))


def random_text(rng: random.Random, longest: int) -> tuple[str, bool]:
    """A JSON string (quoted) and whether the scanner takes it: ASCII without escapes."""
    plain = string.ascii_letters + string.digits + " .-_/:!#$%&'()*+,;<=>?@[]^`{|}~\x7f"
    text = "".join(rng.choice(plain) for _ in range(rng.randint(0, longest)))
    kind = rng.randrange(24)
    if kind == 0:
        return f'"{text}é"', False
    if kind == 1:
        return f'"{text}\\u00e9"', False
    if kind == 2:
        return f'"{text}\\""', False
    return f'"{text}"', True  # raw: no byte of ``plain`` needs an escape


def random_record(rng: random.Random) -> tuple[bytes, bool]:
    """A JSON trade record, often not canonical, and whether the scanner must accept it."""
    fields: list[tuple[str, str]] = []
    ok = True
    if rng.random() < 0.02:
        fields.append(("type", '"quote"'))
        ok = False
    else:
        fields.append(("type", '"trade"'))
    symbol, good = random_text(rng, rng.choice((5, 24)))
    fields.append(("symbol", symbol))
    ok &= good
    ts = rng.choice((rng.randint(-INT64_MAX, INT64_MAX), rng.randint(0, 2 * 10**18)))
    ts_text = rng.choice((str(ts),) * 15 + ("-0", f"{ts}.0", "1e3", str(2**63), str(-(2**63))))
    fields.append(("ts", ts_text))
    ok &= ts_text == "-0" or (ts_text.lstrip("-").isdigit() and abs(int(ts_text)) <= INT64_MAX)
    for name in ("price", "size"):
        number = random_number(rng)
        fields.append((name, number))
        ok &= fast_path_number(number)
    for name in ("exchange", "condition"):
        kind = rng.randrange(3)
        if kind == 1:
            fields.append((name, "null"))
        elif kind == 2:
            text, good = random_text(rng, 10)
            fields.append((name, text))
            ok &= good
    kind = rng.randrange(8)
    if kind == 1:
        fields.append(("ts_ingest", "null"))
    elif kind == 2:
        fields.append(("ts_ingest", str(rng.randint(0, INT64_MAX))))
    elif kind == 3:
        fields.append(("ts_ingest", "1.5"))
        ok = False
    kind = rng.randrange(12)
    if kind == 1:
        fields.append(("extra", "null"))
    elif kind == 2:
        fields.append(("extra", '{"venue":"X"}'))
        ok = False
    if rng.random() < 0.03:
        fields.append(("venue", '"X"'))  # msgspec ignores it; the scanner refuses it
        ok = False
    if rng.random() < 0.03:
        del fields[rng.randint(1, 4)]  # a required field
        ok = False
    if rng.random() < 0.03:
        fields.append(rng.choice(fields))  # msgspec keeps the last; the scanner refuses
        ok = False
    if rng.random() < 0.5:
        rng.shuffle(fields)

    def space() -> str:
        return "".join(rng.choice(" \t\r\n") for _ in range(rng.choice((0, 0, 0, 1, 3))))

    pairs = [f'{space()}"{key}"{space()}:{space()}{value}{space()}' for key, value in fields]
    return f"{space()}{{{','.join(pairs)}}}{space()}".encode(), ok


def test_random_records_are_accepted_as_expected_and_decoded_as_msgspec_does():
    rng = random.Random(20131007)
    records = [random_record(rng) for _ in range(6000)]
    values = [value for value, _ in records]
    expected = np.array([ok for _, ok in records])
    accepted = check_against_msgspec(values)
    wrong = [values[i] for i in np.flatnonzero(accepted != expected)[:5]]
    assert not wrong, wrong
    assert 0.2 < expected.mean() < 0.8  # both outcomes are well represented


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize("field", ["price", "size"])
def test_named_numbers_take_the_fast_path_exactly_when_they_should(number, field):
    record = json.loads(GOOD)
    text = GOOD.decode().replace(f'"{field}":{record[field]}', f'"{field}":{number}')
    assert f'"{field}":{number},' in text
    accepted = check_against_msgspec([text.encode()])
    assert accepted[0] == fast_path_number(number)


def test_minus_zero_keeps_its_sign_only_as_a_float_literal_as_msgspec_decides():
    values = [GOOD.replace(b"167.41", number) for number in (b"-0", b"-0.0", b"-0e0")]
    accepted = check_against_msgspec(values)
    assert accepted.all()
    signs = np.signbit(scan_trades(values)[0].column("price").to_numpy())
    assert signs.tolist() == [np.signbit(decode_tick_json(value).price) for value in values]


# Records that must be left to msgspec, alone and between good ones.

REFUSED = {
    "escape in a string": GOOD.replace(b'"SPY"', b'"S\\u0050Y"'),
    "escaped quote": GOOD.replace(b'"SPY"', b'"S\\"Y"'),
    "escape in a key": GOOD.replace(b'"symbol"', b'"symb\\u006fl"'),
    "non-ASCII": GOOD.replace(b'"SPY"', '"SPÝ"'.encode()),
    "invalid UTF-8": GOOD.replace(b'"SPY"', b'"SP\xff"'),
    "control character": GOOD.replace(b'"SPY"', b'"SP\x01"'),
    "duplicate key": GOOD.replace(b'"size"', b'"price":1.0,"size"'),
    "duplicate tag": GOOD.replace(b'"symbol"', b'"type":"trade","symbol"'),
    "tag quote": GOOD.replace(b'"trade"', b'"quote"'),
    "tag bar": GOOD.replace(b'"trade"', b'"bar"'),
    "tag escaped": GOOD.replace(b'"trade"', b'"tra\\u0064e"'),
    "tag missing": GOOD.replace(b'"type":"trade",', b""),
    "tag null": GOOD.replace(b'"trade"', b"null"),
    "extra object": GOOD.replace(b"}", b',"extra":{"venue":"X"}}'),
    "extra empty object": GOOD.replace(b"}", b',"extra":{}}'),
    "unknown key": GOOD.replace(b"}", b',"venue":"X"}'),
    "symbol missing": GOOD.replace(b'"symbol":"SPY",', b""),
    "ts missing": GOOD.replace(b'"ts":1381132800464000000,', b""),
    "price missing": GOOD.replace(b'"price":167.41,', b""),
    "size missing": GOOD.replace(b'"size":100.0,', b""),
    "symbol null": GOOD.replace(b'"SPY"', b"null"),
    "symbol number": GOOD.replace(b'"SPY"', b"1"),
    "exchange number": GOOD.replace(b'"P"', b"1"),
    "ts float": GOOD.replace(b"1381132800464000000", b"1381132800464000000.0"),
    "ts exponent": GOOD.replace(b"1381132800464000000", b"1e3"),
    "ts string": GOOD.replace(b"1381132800464000000", b'"1381132800464000000"'),
    "ts past int64": GOOD.replace(b"1381132800464000000", b"9223372036854775808"),
    "ts 20 digits": GOOD.replace(b"1381132800464000000", b"13811328004640000000"),
    "ts leading zero": GOOD.replace(b"1381132800464000000", b"01"),
    "ts_ingest float": GOOD.replace(b"}", b',"ts_ingest":1.5}'),
    "price null": GOOD.replace(b"167.41", b"null"),
    "price true": GOOD.replace(b"167.41", b"true"),
    "price string": GOOD.replace(b"167.41", b'"167.41"'),
    "price NaN": GOOD.replace(b"167.41", b"NaN"),
    "price Infinity": GOOD.replace(b"167.41", b"Infinity"),
    "price plus": GOOD.replace(b"167.41", b"+1"),
    "price leading dot": GOOD.replace(b"167.41", b".5"),
    "price trailing dot": GOOD.replace(b"167.41", b"1."),
    "price leading zero": GOOD.replace(b"167.41", b"01"),
    "price bare exponent": GOOD.replace(b"167.41", b"1e"),
    "price lone minus": GOOD.replace(b"167.41", b"-"),
    "price huge": GOOD.replace(b"167.41", b"1e400"),
    "price tiny": GOOD.replace(b"167.41", b"1e-400"),
    "price 17 digits": GOOD.replace(b"167.41", b"167.41000000000001"),
    "size past 2**53": GOOD.replace(b"100.0", b"9007199254740993"),
    "truncated": GOOD[:-1],
    "truncated in a number": GOOD[: GOOD.index(b"167.4") + 5],
    "truncated in a string": GOOD[: GOOD.index(b"SPY") + 2],
    "trailing garbage": GOOD + b"x",
    "trailing comma": GOOD.replace(b"}", b",}"),
    "two objects": GOOD + GOOD,
    "form feed": b"\x0c" + GOOD,
    "single quotes": GOOD.replace(b'"SPY"', b"'SPY'"),
    "array": b"[" + GOOD + b"]",
    "number": b"1",
    "empty object": b"{}",
    "empty": b"",
}


@pytest.mark.parametrize("value", REFUSED.values(), ids=REFUSED.keys())
def test_refused_records_are_left_to_msgspec(value):
    assert not scan_trades([value])[1][0]
    accepted = check_against_msgspec([GOOD, value, GOOD.replace(b"SPY", b"IBM")])
    assert accepted.tolist() == [True, False, True]


def test_tombstones_and_non_bytes_are_refused_and_their_neighbours_kept():
    accepted = check_against_msgspec([None, GOOD, None, GOOD])  # type: ignore[list-item]
    assert accepted.tolist() == [False, True, False, True]
    assert scan_trades(["not bytes", GOOD])[1].tolist() == [False, True]  # type: ignore[list-item]
    assert scan_trades([])[0] is None


def test_a_nul_byte_anywhere_in_the_batch_leaves_every_record_to_msgspec():
    bad = GOOD.replace(b"}", b"}\x00")
    with pytest.raises(msgspec.DecodeError):
        decode_tick_json(bad)
    fast, accepted = scan_trades([GOOD, bad, GOOD])
    assert fast is None and not accepted.any()


def test_symbols_longer_than_the_kernel_keys_are_dictionary_encoded_alike():
    names = ["A", "SPY", "BRK.B", "ABCDEFGH", "ABCDEFGHI", "ABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOPQ"]
    for chosen in (names[:6], names):  # all within 16 bytes; one longer
        rng = random.Random(len(chosen))
        values = [GOOD.replace(b"SPY", rng.choice(chosen).encode()) for _ in range(500)]
        assert check_against_msgspec(values).all()


# Through the decoder of the process service.


def messages_of(values: list[bytes | None], first: int = 100) -> Batch:
    messages = [Message(b"k", value, first + i) for i, value in enumerate(values)]
    return Batch("ticks", 3, first, first + len(values) - 1, messages=messages)


@pytest.fixture(scope="module")
def lean_values() -> list[bytes]:
    """The first batch of the real Lean trades of 2013-10-07, as our producer writes them."""
    if not LEAN_TRADES.exists():
        pytest.skip(f"{LEAN_TRADES} is not there")
    replay = FileReplay(LEAN_TRADES, include_suspicious=True)
    data = next(iter(replay.batches())).data.drop_columns(["line"])
    return encode_rows("trade", data)[1]


def test_decode_messages_takes_the_fast_path_for_a_lean_batch_with_msgspec_results(lean_values):
    assert scan_trades(lean_values)[1].all()  # else the comparison below is msgspec with itself
    batch = messages_of(lean_values)
    trades, bars, dead = decode_messages(batch)
    assert bars is None and dead == []
    assert trades.num_rows == len(lean_values) > 20_000
    assert len(set(trades.column("symbol").to_pylist())) == 4
    offsets = [message.offset for message in batch.messages]
    expected, _ = _columns(list(map(decode_tick_json, lean_values)), offsets)
    assert trades.column("offset").equals(expected.column("offset"))
    assert_same_columns(trades.drop_columns(["offset"]), expected.drop_columns(["offset"]))


def test_decode_messages_leaves_a_batch_with_one_refused_record_to_msgspec(lean_values):
    escaped = GOOD.replace(b'"SPY"', b'"S\\u0050Y"')
    values = [*lean_values[:50], escaped, *lean_values[50:100], b"not json", None]
    trades, bars, dead = decode_messages(messages_of(values))
    assert bars is None
    assert [d.offset for d in dead] == [100 + 101, 100 + 102]
    assert all(d.reason == "schema" for d in dead)
    assert trades.num_rows == 101
    assert trades.column("symbol").to_pylist()[50] == decode_tick_json(escaped).symbol
    assert trades.column("offset").to_pylist() == list(range(100, 201))


def test_decode_messages_of_no_messages_is_empty():
    assert decode_messages(messages_of([])) == (None, None, [])
