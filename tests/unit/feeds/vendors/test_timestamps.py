import pytest

from marketpulse.feeds.vendors.timestamps import epoch_ns

NS = 1_704_470_400_123_456_789  # 2024-01-05T16:00:00.123456789Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_704_470_400, 1_704_470_400 * 10**9),  # seconds (Finnhub quote "t")
        (1_704_470_400_123, 1_704_470_400_123 * 10**6),  # milliseconds (Binance, Polygon)
        (1_704_470_400_123_456, 1_704_470_400_123_456 * 10**3),  # microseconds
        (NS, NS),  # nanoseconds (Polygon SIP times)
        (1_704_470_400.5, 1_704_470_400_500_000_000),  # float seconds
        ("1704470400123", 1_704_470_400_123 * 10**6),  # digits as text
        ("1704470400.123456789", NS),  # decimal seconds, exact
        ("2024-01-05T16:00:00.123456789Z", NS),  # RFC 3339 with nanoseconds (Alpaca)
        ("2024-01-05T16:00:00Z", 1_704_470_400 * 10**9),
        ("2024-01-05T11:00:00.5-05:00", 1_704_470_400_500_000_000),  # an offset
        ("2024-01-05", 1_704_412_800 * 10**9),  # a date: its midnight
    ],
)
def test_every_vendor_form_reads_as_utc_nanoseconds(value, expected):
    assert epoch_ns(value) == expected


def test_wall_times_without_a_zone_read_in_the_given_zone():
    # Alpha Vantage: "2024-01-05 11:00:00" in US/Eastern (EST, UTC-5); in July EDT (UTC-4)
    assert epoch_ns("2024-01-05 11:00:00", "US/Eastern") == 1_704_470_400 * 10**9
    assert epoch_ns("2024-07-05 11:00:00", "US/Eastern") == 1_720_191_600 * 10**9


@pytest.mark.parametrize("value", ["", "soon", None, True, float("nan"), [1], "2024-13-01"])
def test_what_is_not_a_timestamp_raises(value):
    with pytest.raises(ValueError):
        epoch_ns(value)
