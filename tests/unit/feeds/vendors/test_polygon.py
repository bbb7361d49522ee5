import json
from datetime import date

from marketpulse.config import Secret
from marketpulse.feeds.vendors import Symbols, VendorError, VendorOptions, open_vendor

# Polygon's documented stocks stream events (Unix ms) and aggregates REST answer.
CONNECTED = [{"ev": "status", "status": "connected", "message": "Connected Successfully"}]
AUTHED = [{"ev": "status", "status": "auth_success", "message": "authenticated"}]
TRADE = {
    "ev": "T",
    "sym": "MSFT",
    "x": 4,
    "i": "12345",
    "z": 3,
    "p": 114.125,
    "s": 100,
    "c": [0, 12],
    "t": 1536036818784,
    "q": 3681328,
}
MINUTE = {
    "ev": "AM",
    "sym": "MSFT",
    "v": 4110,
    "av": 9470157,
    "op": 114.0,
    "vw": 114.1,
    "o": 114.05,
    "c": 114.12,
    "h": 114.2,
    "l": 114.0,
    "a": 114.06,
    "z": 685,
    "s": 1536036780000,
    "e": 1536036840000,
}
PAGE_1 = {
    "ticker": "MSFT",
    "queryCount": 2,
    "resultsCount": 1,
    "adjusted": True,
    "results": [
        {
            "v": 1000,
            "vw": 113.9,
            "o": 113.8,
            "c": 114.0,
            "h": 114.1,
            "l": 113.7,
            "t": 1536036660000,
            "n": 12,
        }
    ],
    "status": "OK",
    "request_id": "a1",
    "next_url": "https://api.polygon.io/v2/aggs/"
    "ticker/MSFT/range/1/minute/1536036660000/2018-09-04?cursor=bGltaXQ9MQ",
}
PAGE_2 = {
    "ticker": "MSFT",
    "resultsCount": 1,
    "status": "OK",
    "request_id": "a2",
    "results": [
        {
            "v": 900,
            "vw": 114.0,
            "o": 114.0,
            "c": 114.05,
            "h": 114.1,
            "l": 113.9,
            "t": 1536036720000,
            "n": 9,
        }
    ],
}
NOW = 1536037000 * 10**9  # 2018-09-04


def polygon_feed(ws_url, clock, rest_url=None, history=None):
    return open_vendor(
        "polygon",
        VendorOptions(
            symbols=Symbols(("MSFT",)),
            key=Secret("pg-key"),
            url=ws_url,
            rest_url=rest_url,
            history=history,
            sleep=clock.sleep,
            now_ns=clock.now_ns,
            monotonic=clock.monotonic,
        ),
    )


async def session(ws, n, server):
    await ws.send(json.dumps(CONNECTED))
    await server.expect(ws)
    await ws.send(json.dumps(AUTHED))
    await server.expect(ws)
    await ws.send(json.dumps([TRADE, MINUTE, {"ev": "AM", "sym": "MSFT", "o": 1}]))
    await ws.wait_closed()


def test_history_then_stream(helpers, fake_clock):
    clock = fake_clock(NOW)

    def route(path, query, n):
        if n == 0:
            return 429, {}, {"status": "ERROR", "error": "too many requests"}
        return 200, {}, PAGE_1 if "cursor" not in query else PAGE_2

    with helpers.WsServer(session) as ws, helpers.HttpServer(route) as http:
        feed = polygon_feed(ws.url + "/stocks", clock, http.url, history=date(2018, 9, 4))
        got = helpers.collect(feed, lambda g: len(g.rows["bar"]) >= 3 and g.rows["trade"])
    assert got.error is None
    assert ws.received == [
        {"action": "auth", "params": "pg-key"},
        {"action": "subscribe", "params": "T.MSFT,AM.MSFT"},
    ]
    assert [p for p, _ in http.requests] == [
        "/v2/aggs/ticker/MSFT/range/1/minute/2018-09-04/2018-09-04"
    ] * 2 + ["/v2/aggs/ticker/MSFT/range/1/minute/1536036660000/2018-09-04"]
    assert http.requests[2][1] == {"cursor": "bGltaXQ9MQ"}
    assert {h["Authorization"] for h in http.headers} == {"Bearer pg-key"}
    # a 429 without Retry-After waits out the free plan's whole window (5 a minute)
    assert clock.waits == [60.0]
    bars = got.rows["bar"]
    assert [(b["bar_start"], b["trades"]) for b in bars] == [
        (1536036660000 * 10**6, 12),
        (1536036720000 * 10**6, 9),
        (1536036780000 * 10**6, 0),
    ]
    assert bars[2]["bar_end"] == 1536036840000 * 10**6 and bars[2]["vwap"] == 114.1
    [trade] = got.rows["trade"]
    assert (trade["ts"], trade["price"], trade["exchange"], trade["condition"]) == (
        1536036818784 * 10**6,
        114.125,
        "4",
        "0,12",
    )
    assert [d.reason for d in got.dead] == ["parse"]


def test_auth_failed_stops_the_feed(helpers, fake_clock):
    async def refuse(ws, n, server):
        await ws.send(json.dumps(CONNECTED))
        await server.expect(ws)
        await ws.send(
            json.dumps(
                [{"ev": "status", "status": "auth_failed", "message": "authentication failed"}]
            )
        )
        await ws.wait_closed()

    clock = fake_clock(NOW)
    with helpers.WsServer(refuse) as ws:
        got = helpers.collect(polygon_feed(ws.url, clock), lambda g: False)
    assert isinstance(got.error, VendorError) and "refused" in str(got.error)
    assert "pg-key" not in str(got.error)
    assert clock.waits == []


def test_max_connections_then_a_drop_reconnects(helpers, fake_clock):
    async def handler(ws, n, server):
        await ws.send(json.dumps(CONNECTED))
        await server.expect(ws)
        await ws.send(json.dumps(AUTHED))
        await server.expect(ws)
        if n == 0:
            await ws.send(
                json.dumps(
                    [
                        {
                            "ev": "status",
                            "status": "max_connections",
                            "message": "Maximum number of websocket connections "
                            "exceeded. You have 1 allowed connection(s).",
                        }
                    ]
                )
            )
            await ws.close()
            return
        await ws.send(json.dumps([TRADE]))
        await ws.wait_closed()

    clock = fake_clock(NOW)
    with helpers.WsServer(handler) as ws:
        feed = polygon_feed(ws.url, clock)
        got = helpers.collect(feed, lambda g: g.rows["trade"])
    assert ws.connections == 2
    assert len(clock.waits) == 1 and 0.1 <= clock.waits[0] <= 0.5  # first backoff: up to 0.5 s
    assert feed.status.reconnects == 1 and len(feed.status.gaps) == 1
    assert got.dead == []  # a status message is not a malformed one
