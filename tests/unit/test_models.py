from pathlib import Path

import msgspec
import pytest

import marketpulse
from marketpulse.models import (
    INDICATOR_COLUMNS,
    INDICATOR_SCHEMA,
    Bar,
    Indicators,
    Quote,
    Trade,
    decode_tick,
    encode,
)


def test_root_exports_stay_as_documented():
    assert sorted(marketpulse.__all__) == sorted(
        ["Alert", "Bar", "Indicators", "MarketPulseError", "Pipeline", "PipelineResult",
         "Quote", "Settings", "Trade", "__version__"]
    )  # fmt: skip
    for name in marketpulse.__all__:
        assert hasattr(marketpulse, name)
        if name != "__version__":
            assert getattr(marketpulse, name).__doc__, name
            assert f":class:`{name}`" in (marketpulse.__doc__ or ""), name


def test_the_package_says_it_is_typed():
    # PEP 561: the wheel ships the marker beside the modules (hatch takes every file)
    assert (Path(marketpulse.__file__).parent / "py.typed").is_file()


@pytest.mark.parametrize(
    "tick",
    [
        Trade("SPY", 1_381_132_800_464_000_000, 167.41, 100.0, exchange="P", condition="1"),
        Quote("SPY", 1_381_132_800_464_000_001, 167.40, 300.0, 167.42, 100.0),
        Bar("HSI", "1d", 0, 86_400_000_000_000, 1.0, 2.0, 0.5, 1.5, 10.0),
    ],
)
def test_ticks_round_trip_with_their_tag(tick):
    assert decode_tick(encode(tick)) == tick


def test_json_carries_the_type_tag_and_integer_nanoseconds():
    data = encode(Trade("IBM", 1_381_132_800_000_000_123, 181.52, 100.0))
    as_dict = msgspec.json.decode(data)
    assert as_dict["type"] == "trade"
    assert as_dict["ts"] == 1_381_132_800_000_000_123


def test_wrong_fields_are_rejected():
    with pytest.raises(msgspec.ValidationError):
        decode_tick(b'{"type": "trade", "symbol": "IBM", "ts": 1, "price": "high", "size": 1}')
    with pytest.raises(msgspec.ValidationError):
        decode_tick(b'{"type": "order", "symbol": "IBM"}')


def test_indicator_columns_are_the_same_everywhere():
    key = ("symbol", "timeframe", "bar_start", "bar_end", "close")
    fields = [f for f in Indicators.__struct_fields__ if f not in (*key, "dataset")]
    assert tuple(fields) == INDICATOR_COLUMNS
    assert INDICATOR_SCHEMA.names == [*key, *INDICATOR_COLUMNS, "dataset"]
    assert list(Indicators.__struct_fields__) == INDICATOR_SCHEMA.names
