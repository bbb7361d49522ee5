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
