from datetime import UTC, datetime

from marketpulse.config import Secret
from marketpulse.feeds.vendors import Symbols, VendorError, VendorOptions, open_vendor

NOTE = {
    "Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls "
    "per minute and 500 calls per day. Please visit https://www.alphavantage.co/premium/ "
    "if you would like to target a higher API call frequency."
}
INVALID = {
    "Error Message": "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for TIME_SERIES_INTRADAY."
}


def ohlcv(open_, close, volume):
    return {
        "1. open": open_,
        "2. high": "161.00",
        "3. low": "160.00",
        "4. close": close,
        "5. volume": volume,
    }


def intraday(*stamps):
    return {
        "Meta Data": {
            "1. Information": "Intraday (5min) open, high, low, close prices and volume",
            "2. Symbol": "IBM",
            "3. Last Refreshed": stamps[-1],
            "4. Interval": "5min",
            "5. Output Size": "Compact",
            "6. Time Zone": "US/Eastern",
        },
        "Time Series (5min)": {s: ohlcv("160.50", "160.75", "1200") for s in stamps},
    }


def utc_ns(*args):
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 10**9


def av_feed(url, clock, symbols, interval):
    return open_vendor(
        "alphavantage",
        VendorOptions(
            symbols=Symbols(symbols),
            key=Secret("av-key"),
            url=url,
            interval=interval,
            sleep=clock.sleep,
            now_ns=clock.now_ns,
            monotonic=clock.monotonic,
        ),
    )


def test_intraday_bars_rate_limit_note_and_no_repeats(helpers, fake_clock):
    clock = fake_clock(utc_ns(2024, 1, 5, 16, 0))  # Friday 11:00 in New York
    round_1 = intraday("2024-01-05 10:50:00", "2024-01-05 10:55:00", "2024-01-05 11:00:00")
    round_1["Time Series (5min)"]["2024-01-05 10:45:00"] = ohlcv("n/a", "160.1", "10")
    answers = [NOTE, round_1, intraday("2024-01-05 10:55:00", "2024-01-05 11:00:00")]
    asked = []

    def route(path, query, n):
        if query["symbol"] == "XXXX":
            return 200, {}, INVALID
        asked.append(n)
        return 200, {}, answers[min(len(asked) - 1, len(answers) - 1)]

    with helpers.HttpServer(route) as http:
        feed = av_feed(http.url, clock, ("IBM", "XXXX"), "5m")
        got = helpers.collect(feed, lambda g: len(g.rows["bar"]) >= 3 and len(g.dead) >= 3)
    assert got.error is None
    path, query = http.requests[1]
    assert path == "/query"
    assert query == {
        "function": "TIME_SERIES_INTRADAY",
        "symbol": "IBM",
        "interval": "5min",
        "outputsize": "compact",
        "apikey": "av-key",
    }
    # the Note waits out the 5-a-minute window; the next round comes 5 minutes after the first
    assert clock.waits[:2] == [60.0, 240.0]
    bars = got.rows["bar"]
    # New York times (EST, UTC-5) to UTC; 11:00 is sent once it closed, each bar once
    assert [b["bar_start"] for b in bars] == [
        utc_ns(2024, 1, 5, 15, 50),
        utc_ns(2024, 1, 5, 15, 55),
        utc_ns(2024, 1, 5, 16, 0),
    ]
    assert {(b["timeframe"], b["bar_end"] - b["bar_start"]) for b in bars} == {("5m", 300 * 10**9)}
    assert (bars[0]["open"], bars[0]["close"], bars[0]["volume"]) == (160.5, 160.75, 1200.0)
    assert [(d.reason, d.key) for d in got.dead[:3]] == [
        ("parse", "IBM"),
        ("vendor", "XXXX"),
        ("vendor", "XXXX"),
    ]
    assert [q["symbol"] for _, q in http.requests[:5]] == ["IBM", "IBM", "XXXX", "IBM", "XXXX"]
    assert feed.status.rate_limited == 1


def test_daily_bars_span_the_exchange_session(helpers, fake_clock):
    clock = fake_clock(utc_ns(2024, 12, 2, 15, 0))  # Monday, market open
    daily = {
        "Meta Data": {"2. Symbol": "IBM", "5. Time Zone": "US/Eastern"},
        "Time Series (Daily)": {
            "2024-11-27": ohlcv("220.0", "222.0", "3000000"),
            "2024-11-28": ohlcv("222.0", "223.0", "10"),  # Thanksgiving: no session
            "2024-11-29": ohlcv("222.0", "227.4", "1500000"),  # early close, 13:00
            "2024-12-02": ohlcv("227.5", "228.0", "100000"),  # today: not closed yet
        },
    }
    with helpers.HttpServer(lambda path, query, n: (200, {}, daily)) as http:
        feed = av_feed(http.url, clock, ("IBM",), "1d")
        got = helpers.collect(feed, lambda g: len(g.rows["bar"]) >= 3)
    assert http.requests[0][1]["function"] == "TIME_SERIES_DAILY"
    bars = got.rows["bar"]
    assert [(b["bar_start"], b["bar_end"]) for b in bars] == [
        (utc_ns(2024, 11, 27, 14, 30), utc_ns(2024, 11, 27, 21, 0)),
        (utc_ns(2024, 11, 29, 14, 30), utc_ns(2024, 11, 29, 18, 0)),
        (utc_ns(2024, 12, 2, 14, 30), utc_ns(2024, 12, 2, 21, 0)),
    ]
    # today's bar came after its close: six hourly rounds from 15:00
    assert clock.waits[:6] == [3600.0] * 6 and len(http.requests) >= 7
    assert [d.reason for d in got.dead] == ["parse"]  # once, not on every round
    assert "2024-11-28" in got.dead[0].error


def test_polling_idles_outside_market_hours(helpers, fake_clock):
    clock = fake_clock(utc_ns(2024, 12, 24, 18, 30))  # Christmas Eve, closed at 13:00 New York
    answer = intraday("2024-12-26 09:30:00")
    with helpers.HttpServer(lambda path, query, n: (200, {}, answer)) as http:
        feed = av_feed(http.url, clock, ("IBM",), "5m")
        got = helpers.collect(feed, lambda g: g.rows["bar"])
    # closed from 13:00 on the 24th through Christmas Day: next open 26 Dec 9:30 (14:30 UTC)
    assert clock.waits[0] == (utc_ns(2024, 12, 26, 14, 30) - utc_ns(2024, 12, 24, 18, 30)) / 1e9
    assert len(http.requests) >= 1
    assert got.rows["bar"][0]["bar_start"] == utc_ns(2024, 12, 26, 14, 30)


def test_refused_key_stops_the_feed(helpers, fake_clock):
    clock = fake_clock(utc_ns(2024, 1, 5, 16, 0))
    refused = {
        "Error Message": "the parameter apikey is invalid or missing. Please claim your "
        "free API key on (https://www.alphavantage.co/support/#api-key)."
    }
    with helpers.HttpServer(lambda path, query, n: (200, {}, refused)) as http:
        got = helpers.collect(av_feed(http.url, clock, ("IBM",), "5m"), lambda g: False)
    assert isinstance(got.error, VendorError)
    assert "av-key" not in str(got.error)
