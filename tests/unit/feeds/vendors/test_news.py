import json
import logging
from datetime import UTC, date, datetime

import pytest

from marketpulse.config import Secret
from marketpulse.feeds.vendors import NEWS_VENDORS, Symbols, VendorError, VendorOptions, open_news
from marketpulse.feeds.vendors.alpaca import AlpacaNews
from marketpulse.feeds.vendors.base import VendorFeed, to_batches
from marketpulse.feeds.vendors.news import SeenArticles
from marketpulse.feeds.vendors.pacing import Backoff
from marketpulse.feeds.vendors.websocket import Connection, stream
from marketpulse.models import NEWS_SCHEMA, NewsItem

S = 10**9
DAY = 86400 * S
FRIDAY_3PM = int(datetime(2024, 1, 5, 15, 0, tzinfo=UTC).timestamp()) * S


def _ours(caplog):
    """Log records of the feed (the test servers' own logs show what they received)."""
    return [r for r in caplog.records if not r.name.startswith("websockets.server")]


def _keys(rows):
    return [(r["id"], r["symbol"]) for r in rows]


# Finnhub's company news, as its documentation shows it: times in Unix seconds.
def finnhub_article(n, when, **fields):
    return {
        "category": "company",
        "datetime": when,
        "headline": f"Headline {n}",
        "id": n,
        "image": "",
        "related": "AAPL",
        "source": "Reuters",
        "summary": "...",
        "url": f"https://example.com/{n}",
        **fields,
    }


def finnhub_news(http, clock, symbols=("AAPL",), **kwargs):
    options = VendorOptions(
        symbols=Symbols(symbols),
        key=Secret("fh-key"),
        rest_url=http.url + "/api/v1",
        sleep=clock.sleep,
        now_ns=clock.now_ns,
        monotonic=clock.monotonic,
    )
    return open_news("finnhub", options, **kwargs)


def test_finnhub_news_after_a_429_with_bad_articles_dead_lettered(helpers, fake_clock, caplog):
    caplog.set_level(logging.DEBUG)
    clock = fake_clock(FRIDAY_3PM)
    answer = [
        finnhub_article(25286, 1704466800),
        finnhub_article(25287, 1704466801, headline=""),
        finnhub_article(25288, "yesterday"),
        finnhub_article(25289, 1704466860, source=None, url=""),
    ]

    def route(path, query, n):
        if n == 0:
            return 429, {"Retry-After": "3"}, {"error": "API limit reached"}
        # the next poll returns the same answer and one article more
        return 200, {}, answer if n == 1 else [finnhub_article(25290, 1704466900), *answer]

    with helpers.HttpServer(route) as http:
        feed = finnhub_news(http, clock)
        got = helpers.collect(feed, lambda g: ("finnhub:25290", "AAPL") in _keys(g.rows["news"]))
    assert got.error is None
    assert _keys(got.rows["news"][2:]) == [("finnhub:25290", "AAPL")]  # the rest once
    assert got.rows["news"][:2] == [
        {
            "id": "finnhub:25286",
            "symbol": "AAPL",
            "ts": 1704466800 * S,
            "headline": "Headline 25286",
            "source": "Reuters",
            "url": "https://example.com/25286",
            "sentiment": None,
            "dataset": None,
        },
        {
            "id": "finnhub:25289",
            "symbol": "AAPL",
            "ts": 1704466860 * S,
            "headline": "Headline 25289",
            "source": None,
            "url": None,
            "sentiment": None,
            "dataset": None,
        },
    ]
    # the bad articles are dead letters naming the vendor and the field, once however often
    # polls return them; the others were kept
    assert [(d.reason, d.vendor, d.key) for d in got.dead] == [("parse", "finnhub", "AAPL")] * 2
    assert got.dead[0].error.startswith("finnhub: ") and "'headline'" in got.dead[0].error
    assert "'datetime'" in got.dead[1].error
    assert json.loads(got.dead[1].value)["id"] == 25288
    # the 429 was waited out by its Retry-After, and the same request sent again
    assert feed.status.rate_limited == 1
    assert clock.waits[0] == 3.0
    wanted = ("/api/v1/company-news", {"symbol": "AAPL", "from": "2024-01-05", "to": "2024-01-05"})
    assert http.requests[:2] == [wanted, wanted]
    assert all(h["X-Finnhub-Token"] == "fh-key" for h in http.headers)
    assert _ours(caplog) and not any("fh-key" in r.getMessage() for r in _ours(caplog))


def test_finnhub_overlapping_polls_emit_each_article_once(helpers, fake_clock):
    clock = fake_clock(FRIDAY_3PM)
    a1, a2, a3 = (finnhub_article(n, 1704466800 + n) for n in (1, 2, 3))
    m1 = finnhub_article(4, 1704466800, related="MSFT")
    polls = {"AAPL": 0, "MSFT": 0}

    def route(path, query, n):
        symbol = query["symbol"]
        polls[symbol] += 1
        if symbol == "MSFT":
            return 200, {}, [m1]
        # the second poll overlaps the first (newest first, as Finnhub answers)
        return 200, {}, [a2, a1] if polls[symbol] == 1 else [a3, a2, a1]

    with helpers.HttpServer(route) as http:
        feed = finnhub_news(http, clock, ("AAPL", "MSFT"), since=date(2024, 1, 4), every=30.0)
        got = helpers.collect(feed, lambda g: ("finnhub:3", "AAPL") in _keys(g.rows["news"]))
    assert got.error is None
    assert _keys(got.rows["news"]) == [
        ("finnhub:2", "AAPL"),
        ("finnhub:1", "AAPL"),
        ("finnhub:4", "MSFT"),
        ("finnhub:3", "AAPL"),
    ]
    # the first poll from `since`; the next from an hour before the first (same day)
    assert [q["from"] for _, q in http.requests[:3]] == ["2024-01-04", "2024-01-04", "2024-01-05"]
    assert {q["to"] for _, q in http.requests} == {"2024-01-05"}
    assert clock.waits[0] == 30.0


def test_seen_articles_are_forgotten_after_a_while_and_not_emitted_again():
    seen = SeenArticles(keep_ns=DAY)
    old = NewsItem("finnhub:1", "AAPL", FRIDAY_3PM, "Old news")
    assert seen.first(old) and not seen.first(old)
    assert seen.first(NewsItem("finnhub:1", "MSFT", FRIDAY_3PM, "Old news"))  # another symbol
    assert len(seen) == 2
    seen.forget(FRIDAY_3PM + 2 * DAY)
    assert len(seen) == 0
    assert not seen.first(old)  # older than what later polls ask for
    assert seen.first(NewsItem("finnhub:2", "AAPL", FRIDAY_3PM + 2 * DAY, "New"))


# Polygon's reference news, as its documentation shows it.
POLYGON_NOW = int(datetime(2024, 6, 24, 20, 0, tzinfo=UTC).timestamp()) * S
ARTICLE_ID = "8ec638777ca03b553ae516761c2a22ba2fdd2f37befae3ab6fdab74e9e5193eb"


def polygon_article(article_id, published, tickers, **fields):
    return {
        "id": article_id,
        "publisher": {"name": "Investing.com", "homepage_url": "https://www.investing.com/"},
        "title": f"Title {article_id[:4]}",
        "author": "Investing.com",
        "published_utc": published,
        "article_url": f"https://example.com/{article_id[:4]}",
        "tickers": tickers,
        "description": "...",
        **fields,
    }


ART1 = polygon_article(ARTICLE_ID, "2024-06-24T18:33:53Z", ["AAPL", "MSFT", "GOOG"])
ART2 = polygon_article("a2a2", "2024-06-24T18:40:00Z", ["AAPL"])
ART3 = polygon_article("a3a3", "2024-06-24T18:50:00Z", ["MSFT"])
ART4 = polygon_article("a4a4", "2024-06-24T20:00:01Z", ["AAPL"])
NO_TITLE = polygon_article("b0b0", "2024-06-24T18:35:00Z", ["AAPL"], title=None)
NEXT_URL = "https://api.polygon.io/v2/reference/news?cursor=YXA9MiZhcz0xMjM"


def test_polygon_news_pages_followed_tickers_and_overlaps(helpers, fake_clock):
    clock = fake_clock(POLYGON_NOW)
    asked = {"AAPL": 0}

    def route(path, query, n):
        if "cursor" in query:
            return 200, {}, {"status": "OK", "results": [ART2]}
        if query["ticker"] == "MSFT":
            return 200, {}, {"status": "OK", "results": [ART1, ART3]}
        asked["AAPL"] += 1
        if asked["AAPL"] == 1:
            return 200, {}, {"status": "OK", "results": [ART1, NO_TITLE], "next_url": NEXT_URL}
        return 200, {}, {"status": "OK", "results": [ART2, ART4]}

    options = VendorOptions(
        symbols=Symbols(("AAPL", "MSFT")),
        key=Secret("pg-key"),
        rest_url=None,
        sleep=clock.sleep,
        now_ns=clock.now_ns,
        monotonic=clock.monotonic,
    )
    with helpers.HttpServer(route) as http:
        options.rest_url = http.url
        feed = open_news("polygon", options)
        got = helpers.collect(feed, lambda g: ("polygon:a4a4", "AAPL") in _keys(g.rows["news"]))
    assert got.error is None
    # an article about followed and other tickers: one item per followed one, once
    assert _keys(got.rows["news"]) == [
        (f"polygon:{ARTICLE_ID}", "AAPL"),
        (f"polygon:{ARTICLE_ID}", "MSFT"),
        ("polygon:a2a2", "AAPL"),
        ("polygon:a3a3", "MSFT"),
        ("polygon:a4a4", "AAPL"),
    ]
    first = got.rows["news"][0]
    assert first["ts"] == int(datetime(2024, 6, 24, 18, 33, 53, tzinfo=UTC).timestamp()) * S
    assert (first["headline"], first["source"]) == ("Title 8ec6", "Investing.com")
    assert first["url"] == "https://example.com/8ec6"
    query = {"ticker": "AAPL", "published_utc.gte": "2024-06-24T00:00:00Z", "order": "asc",
             "sort": "published_utc", "limit": "1000"}  # fmt: skip
    assert http.requests[:3] == [
        ("/v2/reference/news", query),
        ("/v2/reference/news", {"cursor": "YXA9MiZhcz0xMjM"}),  # next_url, nothing added
        ("/v2/reference/news", {**query, "ticker": "MSFT"}),
    ]
    # the second round: from an hour before the first began (after the 60 s wait)
    assert clock.waits[0] == 60.0
    assert http.requests[3][1]["published_utc.gte"] == "2024-06-24T19:00:00Z"
    assert {h["Authorization"] for h in http.headers} == {"Bearer pg-key"}
    [dead] = got.dead
    assert (dead.vendor, dead.key) == ("polygon", "AAPL")
    assert dead.error.startswith("polygon: ") and "'title'" in dead.error


# Alpaca's news stream, as its documentation shows it.
CONNECTED = [{"T": "success", "msg": "connected"}]
AUTHENTICATED = [{"T": "success", "msg": "authenticated"}]


def alpaca_article(n, symbols, **fields):
    return {
        "T": "n",
        "id": n,
        "headline": f"Headline {n}",
        "summary": "...",
        "author": "Benzinga Newsdesk",
        "created_at": "2022-01-05T22:00:37Z",
        "updated_at": "2022-01-05T22:00:38Z",
        "url": f"https://www.benzinga.com/{n}",
        "content": "...",
        "symbols": symbols,
        "source": "benzinga",
        **fields,
    }


async def greet(ws, server):
    await ws.send(json.dumps(CONNECTED))
    await server.expect(ws)  # auth
    await ws.send(json.dumps(AUTHENTICATED))
    subscription = await server.expect(ws)
    await ws.send(json.dumps([{"T": "subscription", **{"news": subscription["news"]}}]))


def alpaca_news(url, schedule, rand):
    options = VendorOptions(
        symbols=Symbols(("AAPL", "TSLA")),
        key=Secret("key-id"),
        secret=Secret("secret-key"),
        url=url,
        backoff=Backoff(base=1.0, cap=30.0, floor=0.0, rand=rand),
        sleep=schedule,
    )
    return open_news("alpaca", options)


def test_alpaca_news_reconnects_and_subscribes_again(helpers, schedule):
    async def handler(ws, n, server):
        await greet(ws, server)
        if n == 0:
            articles = [
                alpaca_article(24918784, ["AAPL", "TSLA"]),
                alpaca_article(24918785, ["GOOG", "AAPL"]),  # GOOG is not followed
                alpaca_article(24918786, ["AAPL"], headline=None),
            ]
            await ws.send(json.dumps(articles))
            await ws.close()  # dropped: the feed connects again
            return
        await ws.send(json.dumps([alpaca_article(24918790, ["TSLA"])]))
        await ws.wait_closed()

    with helpers.WsServer(handler) as server:
        feed = alpaca_news(server.url + "/v1beta1/news", schedule, helpers.Rand(0.5))
        got = helpers.collect(feed, lambda g: ("alpaca:24918790", "TSLA") in _keys(g.rows["news"]))
    assert got.error is None
    assert feed.status.connects == 2
    assert server.paths == ["/v1beta1/news"] * 2
    auth = {"action": "auth", "key": "key-id", "secret": "secret-key"}
    subscribe = {"action": "subscribe", "news": ["AAPL", "TSLA"]}
    assert server.received == [auth, subscribe, auth, subscribe]
    assert _keys(got.rows["news"]) == [
        ("alpaca:24918784", "AAPL"),
        ("alpaca:24918784", "TSLA"),
        ("alpaca:24918785", "AAPL"),
        ("alpaca:24918790", "TSLA"),
    ]
    first = got.rows["news"][0]
    assert first["ts"] == int(datetime(2022, 1, 5, 22, 0, 37, tzinfo=UTC).timestamp()) * S
    assert (first["headline"], first["source"]) == ("Headline 24918784", "benzinga")
    assert first["url"] == "https://www.benzinga.com/24918784"
    [dead] = got.dead
    assert dead.vendor == "alpaca" and "'headline'" in dead.error
    assert schedule.waits == [0.5]  # one reconnect, after the first backoff


def test_alpaca_news_refused_key_is_one_line_without_the_key(helpers, schedule, caplog):
    caplog.set_level(logging.DEBUG)

    async def handler(ws, n, server):
        await ws.send(json.dumps(CONNECTED))
        await server.expect(ws)
        await ws.send(json.dumps([{"T": "error", "code": 402, "msg": "auth failed"}]))
        await ws.wait_closed()

    with helpers.WsServer(handler) as server:
        feed = alpaca_news(server.url + "/v1beta1/news", schedule, helpers.Rand(0.5))
        got = helpers.collect(feed, lambda g: False)
    assert isinstance(got.error, VendorError)
    message = str(got.error)
    assert "402" in message and "refused" in message and "\n" not in message
    assert "key-id" not in message and "secret-key" not in message
    assert schedule.waits == []  # not retried
    ours = _ours(caplog)
    assert ours and not any(
        "key-id" in r.getMessage() or "secret-key" in r.getMessage() for r in ours
    )


def test_alpaca_news_follows_watchlist_changes(helpers, schedule, tmp_path):
    watchlist = tmp_path / "watch.txt"
    watchlist.write_text("AAPL\nTSLA\n")

    async def handler(ws, n, server):
        await greet(ws, server)
        watchlist.write_text("AAPL, NVDA  # TSLA is out\n")
        await server.expect(ws)  # subscribe NVDA
        await server.expect(ws)  # unsubscribe TSLA
        await ws.send(json.dumps([alpaca_article(7, ["TSLA", "NVDA", "AAPL"])]))
        await ws.wait_closed()

    vendor = AlpacaNews(Secret("key-id"), Secret("secret-key"))
    symbols = Symbols((), watchlist)
    with helpers.WsServer(handler) as server:
        conn = Connection(server.url, backoff=Backoff(rand=helpers.Rand(0.5)), watch_every=0.02,
                          sleep=schedule)  # fmt: skip
        feed = VendorFeed("alpaca", lambda out: stream(vendor, conn, symbols, out))
        got = helpers.collect(feed, lambda g: g.rows["news"])
    assert got.error is None
    assert server.received[1:] == [
        {"action": "subscribe", "news": ["AAPL", "TSLA"]},
        {"action": "subscribe", "news": ["NVDA"]},
        {"action": "unsubscribe", "news": ["TSLA"]},
    ]
    assert _keys(got.rows["news"]) == [("alpaca:7", "NVDA"), ("alpaca:7", "AAPL")]
    assert server.connections == 1


def test_open_news_checks_the_vendor_and_its_keys():
    symbols = Symbols(("AAPL",))
    with pytest.raises(VendorError, match="finnhub, polygon, alpaca"):
        open_news("binance", VendorOptions(symbols=symbols, key=Secret("k")))
    with pytest.raises(VendorError, match="no API key"):
        open_news("polygon", VendorOptions(symbols=symbols))
    with pytest.raises(VendorError, match="no secret"):
        open_news("alpaca", VendorOptions(symbols=symbols, key=Secret("k")))
    assert set(NEWS_VENDORS) == {"finnhub", "polygon", "alpaca"}
    assert NEWS_VENDORS["alpaca"].needs_secret and not NEWS_VENDORS["finnhub"].needs_secret


def test_news_items_make_a_news_batch():
    items = [
        NewsItem("alpaca:7", "AAPL", 10, "Up", "benzinga"),
        NewsItem("alpaca:7", "MSFT", 10, "Up"),
    ]
    [batch] = to_batches(items, 2)
    assert batch.kind == "news" and batch.data.schema == NEWS_SCHEMA
    assert batch.data.column("symbol").to_pylist() == ["AAPL", "MSFT"]
    assert batch.data.column("source").to_pylist() == ["benzinga", None]
