import json
import logging
from datetime import UTC, datetime

from marketpulse.config import Secret
from marketpulse.feeds.vendors import Symbols, VendorOptions, open_vendor

# Finnhub's documented messages: trades in batches (ms times), pings, errors.
TRADES = {
    "type": "trade",
    "data": [
        {"s": "AAPL", "p": 185.5, "t": 1704470400123, "v": 100, "c": ["1", "12"]},
        {"s": "MSFT", "p": "bad", "t": 1704470400124, "v": 5},
        {"s": "MSFT", "p": 370.25, "t": 1704470400125, "v": 5, "c": None},
    ],
}
BIDASK = {"a": 185.52, "av": 3, "b": 185.49, "bv": 7, "t": 1704470400456}
FRIDAY_10AM = int(datetime(2024, 1, 5, 15, 0, tzinfo=UTC).timestamp()) * 10**9
SATURDAY_NOON = int(datetime(2024, 1, 6, 12, 0, tzinfo=UTC).timestamp()) * 10**9


def finnhub_feed(ws_url, rest_url, clock, **options):
    return open_vendor(
        "finnhub",
        VendorOptions(
            symbols=Symbols(("AAPL", "MSFT")),
            key=Secret("fh-key"),
            url=ws_url,
            rest_url=rest_url,
            quotes=True,
            quote_every=5.0,
            sleep=clock.sleep,
            now_ns=clock.now_ns,
            monotonic=clock.monotonic,
            **options,
        ),
    )


async def trades_handler(ws, n, server):
    for _ in range(2):
        await server.expect(ws)
    await ws.send(json.dumps({"type": "ping"}))
    await ws.send(json.dumps(TRADES))
    await ws.send(json.dumps({"type": "error", "msg": "Subscribing to too many symbols"}))
    await ws.wait_closed()


def test_trades_and_quotes_within_the_rate_limit_and_429(helpers, fake_clock):
    clock = fake_clock(FRIDAY_10AM)

    def route(path, query, n):
        if n == 0:
            return 429, {"Retry-After": "3"}, {"error": "API limit reached"}
        return 200, {}, {**BIDASK, "b": 185.49 + n}

    with helpers.WsServer(trades_handler) as ws, helpers.HttpServer(route) as http:
        feed = finnhub_feed(ws.url, http.url + "/api/v1", clock, rate_limit=(2, 60.0))
        got = helpers.collect(
            feed, lambda g: len(g.rows["quote"]) >= 3 and len(g.rows["trade"]) >= 2
        )
    assert got.error is None
    assert ws.received == [
        {"type": "subscribe", "symbol": "AAPL"},
        {"type": "subscribe", "symbol": "MSFT"},
    ]
    assert ws.paths == ["/?token=fh-key"]
    trades = got.rows["trade"]
    assert [(t["symbol"], t["ts"], t["price"], t["condition"]) for t in trades] == [
        ("AAPL", 1704470400123_000_000, 185.5, "1,12"),
        ("MSFT", 1704470400125_000_000, 370.25, None),
    ]
    assert len(got.dead) == 1 and got.dead[0].key == "MSFT"
    # 429 with Retry-After 3; then at most 2 requests a minute; then the 5 s round
    assert clock.waits[:3] == [3.0, 57.0, 5.0]
    assert [p for p, _ in http.requests][:3] == ["/api/v1/stock/bidask"] * 3
    assert [q["symbol"] for _, q in http.requests[:4]] == ["AAPL", "AAPL", "MSFT", "AAPL"]
    assert all(h["X-Finnhub-Token"] == "fh-key" for h in http.headers)
    assert all("token" not in q for _, q in http.requests)
    quotes = got.rows["quote"]
    assert [q["symbol"] for q in quotes[:2]] == ["AAPL", "MSFT"]
    assert quotes[0]["ts"] == 1704470400456_000_000
    assert (quotes[0]["bid"], quotes[0]["bid_size"], quotes[0]["ask"]) == (186.49, 7.0, 185.52)
    assert feed.status.rate_limited == 1


def test_quotes_idle_until_the_market_opens(helpers, fake_clock, caplog):
    caplog.set_level(logging.DEBUG)
    clock = fake_clock(SATURDAY_NOON)
    with (
        helpers.WsServer(trades_handler) as ws,
        helpers.HttpServer(lambda path, query, n: (200, {}, BIDASK)) as http,
    ):
        feed = finnhub_feed(ws.url, http.url + "/api/v1", clock)
        got = helpers.collect(feed, lambda g: len(g.rows["quote"]) >= 1)
    # Saturday noon UTC to Monday 9:30 New York (14:30 UTC): 50.5 hours, not one request
    assert clock.waits[0] == 50.5 * 3600
    assert got.rows["quote"][0]["symbol"] == "AAPL"
    # the key is in the stream's URL and the REST header: neither reaches the feed's logs
    # (the test server's own log shows what it received)
    ours = [r for r in caplog.records if not r.name.startswith("websockets.server")]
    assert ours and not any("fh-key" in r.getMessage() for r in ours)
