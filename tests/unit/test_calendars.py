from datetime import UTC, date, datetime

import numpy as np
import pytest

from marketpulse.calendars import MarketHours, market_hours
from marketpulse.exceptions import ConfigError
from marketpulse.stream.sessions import session_ids


def ns(*args):
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 10**9


def day(*args):
    return (date(*args) - date(1970, 1, 1)).days


def test_sessions_holidays_and_early_closes():
    nyse = market_hours("XNYS")
    assert nyse.session(date(2024, 11, 29)) == (ns(2024, 11, 29, 14, 30), ns(2024, 11, 29, 18))
    assert nyse.session(date(2024, 11, 27)) == (ns(2024, 11, 27, 14, 30), ns(2024, 11, 27, 21))
    assert nyse.session(date(2024, 11, 28)) is None  # Thanksgiving
    assert nyse.session(date(2024, 11, 30)) is None  # a Saturday
    assert nyse.wait(ns(2024, 11, 29, 17, 59)) == 0.0  # open
    assert (
        nyse.wait(ns(2024, 11, 29, 18, 0)) == (ns(2024, 12, 2, 14, 30) - ns(2024, 11, 29, 18)) / 1e9
    )


def test_a_24_7_market_is_always_open():
    crypto = MarketHours("24/7")
    assert crypto.wait(ns(2024, 12, 25, 3, 0)) == 0.0
    assert crypto.session(date(2024, 12, 25)) == (ns(2024, 12, 25), ns(2024, 12, 26))


def test_an_unknown_calendar_is_a_config_error():
    with pytest.raises(ConfigError, match="XNOPE"):
        MarketHours("XNOPE").wait(0)


def test_session_ids_follow_the_exchange_calendar():
    ts = np.array(
        [
            ns(2024, 1, 5, 14, 0),  # New York pre-market: that day
            ns(2024, 1, 5, 20, 59),  # in the session
            ns(2024, 1, 8, 23, 30),  # Monday 17:30 in Chicago: CME's Tuesday session has begun
        ]
    )
    assert session_ids(ts, "America/New_York").tolist() == [day(2024, 1, 5)] * 2 + [day(2024, 1, 8)]
    assert session_ids(ts, "America/New_York", "XNYS").tolist() == [
        day(2024, 1, 5),
        day(2024, 1, 5),
        day(2024, 1, 8),
    ]
    assert session_ids(ts, "America/Chicago", "CMES").tolist()[2] == day(2024, 1, 9)
    assert session_ids(ts, "America/New_York", "24/7").tolist() == [
        day(2024, 1, 5),
        day(2024, 1, 5),
        day(2024, 1, 8),
    ]


def test_open_after_counts_only_open_market():
    """Five minutes of open market after a time: across a weekend, Thanksgiving, an early close."""
    hours = MarketHours("XNYS")
    five = 300 * 10**9
    ts = np.array(
        [
            ns(2013, 10, 7, 15, 0),  # in the session: plain addition
            ns(2013, 10, 4, 19, 58),  # Friday, 2 minutes before the close: Monday 13:33
            ns(2013, 10, 5, 12, 0),  # Saturday: Monday's open + 5 minutes
            ns(2013, 11, 27, 20, 58),  # before Thanksgiving: Friday's half day, 14:33
            ns(2013, 11, 29, 17, 58),  # 2 minutes before that half day's 13:00 close: Monday
        ]
    )
    assert hours.open_after(ts, five).tolist() == [
        ns(2013, 10, 7, 15, 5),
        ns(2013, 10, 7, 13, 33),
        ns(2013, 10, 7, 13, 35),
        ns(2013, 11, 29, 14, 33),
        ns(2013, 12, 2, 14, 33),
    ]
    assert MarketHours("24/7").open_after(ts[:1], five).tolist() == [ns(2013, 10, 7, 15, 5)]
    assert hours.open_after(np.array([ns(2200, 1, 1, 0, 0)]), five).tolist() == [2**63 - 1]


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Europe/London", "Australia/Lord_Howe", "UTC"]
)
def test_local_days_match_the_zone_database_across_its_offset_changes(zone):
    from zoneinfo import ZoneInfo

    from marketpulse.calendars import local_days

    tz = ZoneInfo(zone)
    rng = np.random.default_rng(7)

    def expected(ts):
        return np.array(
            [(datetime.fromtimestamp(t / 1e9, tz).date() - date(1970, 1, 1)).days for t in ts]
        )

    # New York's and London's spring and autumn changes, Lord Howe's half hour
    changes = [ns(2013, 3, 10, 7), ns(2013, 11, 3, 6), ns(2013, 3, 31, 1), ns(2013, 10, 27, 1),
               ns(2013, 10, 6, 2), ns(2014, 4, 5, 15)]  # fmt: skip
    for change in changes:
        for span in (3_600, 86_400, 40 * 86_400):  # an hour, a day (one offset per call), weeks
            ts = np.sort(change + rng.integers(-span, span, 500) * 10**9)
            assert np.array_equal(local_days(ts, zone), expected(ts)), (zone, change, span)
            one_side = ts[ts < change]  # a batch that ends just before the change
            assert np.array_equal(local_days(one_side, zone), expected(one_side))
    # a winter-to-winter year: one offset at both ends, a summer between them
    year = np.sort(rng.integers(ns(2013, 1, 2), ns(2013, 12, 30), 2_000))
    assert np.array_equal(local_days(year, zone), expected(year))
    assert local_days(np.empty(0, np.int64), zone).shape == (0,)
