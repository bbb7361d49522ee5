"""Decoding raw ticks records: every bad record a dead letter, the good ones kept."""

from marketpulse.bus import Batch, Message
from marketpulse.stream.decode import decode_messages

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
