import struct

import pyarrow as pa
import pytest

from marketpulse.models import STORED_TIME
from marketpulse.sinks.pgcopy import encode

_HEADER = 19  # signature, flags, header extension length
_PG_EPOCH_US = 946_684_800_000_000


def _fields(payload):
    """Decode a one-column binary COPY stream into the raw bytes of each field."""
    body, out = payload[_HEADER:-2], []
    while body:
        (count,) = struct.unpack(">h", body[:2])
        assert count == 1
        (n,) = struct.unpack(">i", body[2:6])
        out.append(None if n < 0 else body[6 : 6 + n])
        body = body[6 + max(n, 0) :]
    return out


def test_timestamps_are_microseconds_since_2000_floored():
    ns = pa.array([1_381_152_660_123_456_789, -1_500, None], pa.int64())
    fields = _fields(encode(pa.table({"t": ns}), ["timestamptz"]))
    assert [None if f is None else struct.unpack(">q", f)[0] + _PG_EPOCH_US for f in fields] == [
        1_381_152_660_123_456, -2, None]  # fmt: skip


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_arrow_timestamps_encode_as_the_same_instant(unit):
    ns = pa.array([1_381_152_660_123_000_000, 0], pa.int64())
    stored = ns.cast(STORED_TIME).cast(pa.timestamp(unit, tz="UTC"))
    as_stored = encode(pa.table({"t": stored}), ["timestamptz"])
    assert as_stored == encode(pa.table({"t": ns}), ["timestamptz"])


def test_jsonb_is_the_version_byte_then_the_text():
    texts = pa.array(['{"rsi_14": 81.5}', None, "{}"])
    assert _fields(encode(pa.table({"d": texts}), ["jsonb"])) == [
        b'\x01{"rsi_14": 81.5}', None, b"\x01{}"]  # fmt: skip


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown column kind 'json'"):
        encode(pa.table({"d": ["{}"]}), ["json"])


def test_warm_up_compiles_what_a_sink_table_then_uses():
    from marketpulse.sinks.pgcopy import _put_fixed, _put_text, warm_up

    kernels = (_put_fixed, _put_text)  # the ones called from Python (_put_null is inlined)
    warm_up()
    warmed = [list(k.signatures) for k in kernels]
    assert all(warmed)
    table = pa.table({
        "symbol": pa.array(["SPY", "IBM"]).dictionary_encode(),
        "bar_start": pa.array([1, 2], pa.timestamp("ns", tz="UTC")),
        "close": pa.array([1.5, None]), "volume": pa.array([3, 4], pa.int64()),
        "n": pa.array([5, None], pa.int32()), "details": pa.array(['{"a": 1}', "{}"]),
    })  # fmt: skip
    encode(table, ["text", "timestamptz", "float8", "int8", "int4", "jsonb"])
    assert [list(k.signatures) for k in kernels] == warmed  # nothing new to compile
