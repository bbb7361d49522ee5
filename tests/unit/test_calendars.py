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
