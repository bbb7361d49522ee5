"""Decoding raw ticks records: every bad record a dead letter, the good ones kept."""

from marketpulse.bus import Batch, Message
from marketpulse.stream.decode import decode_batch, decode_messages, from_plain

GOOD = b'{"type":"trade","symbol":"SPY","ts":1381152600000000000,"price":167.41,"size":100.0}'


def batch_of(values):
    messages = [Message(b"SPY", v, 10 + i) for i, v in enumerate(values)]
    return Batch("ticks", 2, 10, 9 + len(values), messages=messages)


def test_invalid_utf8_in_a_string_is_a_dead_letter_not_a_crash():
    bad = b'{"type":"trade","symbol":"S\xffY","ts":1,"price":1.0,"size":1.0}'
    trades, bars, dead = decode_messages(batch_of([GOOD, bad, GOOD]))
    assert trades.column("offset").to_pylist() == [10, 12]
    assert [(d.reason, d.offset, d.partition, d.value) for d in dead] == [("schema", 11, 2, bad)]
    assert bars is None


def test_a_timestamp_beyond_64_bits_is_a_dead_letter_not_a_crash():
    bad = b'{"type":"trade","symbol":"SPY","ts":99999999999999999999,"price":1.0,"size":1.0}'
    trades, _, dead = decode_messages(batch_of([bad, GOOD]))
    assert trades.column("ts").to_pylist() == [1381152600000000000]
    assert [(d.offset, d.reason) for d in dead] == [(10, "schema")]
    assert "64 bits" in dead[0].error and "ticks[2]@10" in dead[0].error


def test_offsets_of_a_batch_with_gaps_are_read_from_its_records():
    messages = [Message(b"SPY", GOOD, 10), Message(b"SPY", GOOD, 12), Message(b"SPY", GOOD, 15)]
    trades, _, _ = decode_messages(Batch("ticks", 0, 10, 15, messages=messages))
    assert trades.column("offset").to_pylist() == [10, 12, 15]
    contiguous = decode_messages(batch_of([GOOD, GOOD, GOOD]))[0]
    assert contiguous.column("offset").to_pylist() == [10, 11, 12]


QUOTE = (
    b'{"type":"quote","symbol":"SPY","ts":1381152600000000001,'
    b'"bid":167.4,"bid_size":1.0,"ask":167.42,"ask_size":2.0}'
)
ESCAPED = (
    b'{"type":"trade","symbol":"SPY","ts":1381152600000000002,"price":167.5,"size":2.0,'
    b'"exchange":"\\u0050"}'
)


def _decoded(values, gaps=False):
    messages = [Message(b"SPY", v, 10 + (3 if gaps else 1) * i) for i, v in enumerate(values)]
    return decode_batch(Batch("ticks", 0, 10, messages[-1].offset, messages=messages))


def test_quotes_among_plain_trades_leave_the_trades_plain_and_alike():
    values = [GOOD, QUOTE, GOOD.replace(b"100.0", b"7"), QUOTE]
    parts, dead = _decoded(values, gaps=True)
    kinds = dict(parts)
    assert not dead and from_plain(kinds["trade"]) and kinds["bar"] is None
    assert kinds["trade"].column("offset").to_pylist() == [10, 16]
    assert kinds["trade"].column("size").to_pylist() == [100.0, 7.0]
    assert kinds["quote"].column("bid").to_pylist() == [167.4, 167.4]
    # what msgspec makes of the same records (the path of a batch that is not plain)
    careful, _ = _decoded([*values, ESCAPED], gaps=True)
    trades = dict(careful)["trade"]
    assert not from_plain(trades)
    assert (
        trades.slice(0, 2).drop_columns(["offset"]).equals(kinds["trade"].drop_columns(["offset"]))
    )
    assert dict(careful)["quote"].equals(kinds["quote"])


def test_a_trade_that_is_not_plain_among_plain_ones_decodes_them_all_alike():
    parts, dead = _decoded([GOOD, ESCAPED, GOOD])
    trades = dict(parts)["trade"]
    assert not dead and not from_plain(trades)
    assert trades.column("offset").to_pylist() == [10, 11, 12]
    assert trades.column("exchange").to_pylist() == [None, "P", None]
