import json

import pytest

from marketpulse.config import Secret
from marketpulse.feeds.vendors.alpaca import Alpaca
from marketpulse.feeds.vendors.base import VendorError, VendorFeed
from marketpulse.feeds.vendors.pacing import Backoff
from marketpulse.feeds.vendors.symbols import Symbols
from marketpulse.feeds.vendors.websocket import Connection, stream

# Messages as Alpaca's market data v2 stream documentation shows them.
CONNECTED = [{"T": "success", "msg": "connected"}]
AUTHENTICATED = [{"T": "success", "msg": "authenticated"}]
TRADE = {
    "T": "t",
    "S": "AAPL",
    "i": 52983525029461,
    "x": "V",
    "p": 189.5,
    "s": 100,
    "t": "2024-01-05T15:51:44.208123456Z",
    "c": ["@"],
    "z": "C",
}
QUOTE = {
    "T": "q",
    "S": "AAPL",
    "bx": "V",
    "bp": 189.49,
    "bs": 3,
    "ax": "V",
    "ap": 189.51,
    "as": 2,
    "t": "2024-01-05T15:51:45.335689322Z",
    "c": ["R"],
    "z": "C",
}
BAR = {
    "T": "b",
    "S": "AAPL",
    "o": 189.4,
    "h": 189.6,
    "l": 189.3,
    "c": 189.5,
    "v": 5231,
    "t": "2024-01-05T15:51:00Z",
    "n": 61,
    "vw": 189.47,
}
SUBSCRIBED = [{"T": "subscription", "trades": ["AAPL"], "quotes": ["AAPL"], "bars": ["AAPL"]}]
T0 = 1704469904 * 10**9  # 2024-01-05T15:51:44Z


def alpaca_feed(url, schedule, rand, feed="iex"):
    vendor = Alpaca(Secret("key-id"), Secret("secret-key"), feed)
    conn = Connection(
        url, backoff=Backoff(base=1.0, cap=30.0, floor=0.0, rand=rand), sleep=schedule
    )
    return VendorFeed("alpaca", lambda out: stream(vendor, conn, Symbols(("AAPL",)), out))


async def greet(ws, server):
    await ws.send(json.dumps(CONNECTED))
    auth = await server.expect(ws)
    assert auth == {"action": "auth", "key": "key-id", "secret": "secret-key"}
    await ws.send(json.dumps(AUTHENTICATED))
    await server.expect(ws)  # the subscription
    await ws.send(json.dumps(SUBSCRIBED))


def test_trades_quotes_bars_with_nanosecond_times(helpers, schedule):
    async def handler(ws, n, server):
        await greet(ws, server)
        if n == 0:
            await ws.send(json.dumps([TRADE, QUOTE]))
            # connection limit exceeded: Alpaca closes; the feed reconnects
            await ws.send(
                json.dumps([{"T": "error", "code": 406, "msg": "connection limit exceeded"}])
            )
            await ws.wait_closed()
            return
        await ws.send(json.dumps([BAR, {**TRADE, "p": None}, {"T": "x", "S": "AAPL"}]))
        await ws.wait_closed()

    with helpers.WsServer(handler) as server:
        feed = alpaca_feed(server.url + "/v2", schedule, helpers.Rand(0.5))
        got = helpers.collect(feed, lambda g: g.rows["bar"] and len(g.dead) >= 2)
    assert got.error is None
    assert server.paths == ["/v2/iex", "/v2/iex"]
    assert server.received[1] == {
        "action": "subscribe",
        "trades": ["AAPL"],
        "quotes": ["AAPL"],
        "bars": ["AAPL"],
    }
    [trade] = got.rows["trade"]
    assert trade["ts"] == T0 + 208_123_456
    assert (trade["price"], trade["size"], trade["exchange"], trade["condition"]) == (
        189.5,
        100.0,
        "V",
        "@",
    )
    assert json.loads(trade["extra"]) == {"id": 52983525029461, "tape": "C"}
    [quote] = got.rows["quote"]
    assert quote["ts"] == T0 + 1_335_689_322
    assert (quote["bid"], quote["bid_size"], quote["ask"], quote["ask_size"]) == (
        189.49,
        3.0,
        189.51,
        2.0,
    )
    [bar] = got.rows["bar"]
    start, end = T0 - 44 * 10**9, T0 + 16 * 10**9
    assert (bar["timeframe"], bar["bar_start"], bar["bar_end"]) == ("1m", start, end)
    assert (bar["vwap"], bar["trades"], bar["volume"]) == (189.47, 61, 5231.0)
    assert schedule.waits == [0.5]
    assert feed.status.reconnects == 1
    assert [d.reason for d in got.dead] == ["parse", "parse"]
    assert {d.vendor for d in got.dead} == {"alpaca"}
    assert json.loads(got.dead[0].value)["p"] is None


@pytest.mark.parametrize(("code", "words"), [(402, "refused"), (409, "feed")])
def test_refused_key_or_plan_stops_with_a_clear_error(helpers, schedule, code, words):
    async def handler(ws, n, server):
        await ws.send(json.dumps(CONNECTED))
        await server.expect(ws)
        await ws.send(json.dumps([{"T": "error", "code": code, "msg": "no"}]))
        await ws.wait_closed()

    with helpers.WsServer(handler) as server:
        feed = alpaca_feed(server.url + "/v2", schedule, helpers.Rand(0.5), feed="sip")
        got = helpers.collect(feed, lambda g: False)
    assert isinstance(got.error, VendorError)
    assert str(code) in str(got.error) and words in str(got.error)
    assert "secret-key" not in str(got.error)
    assert server.paths == ["/v2/sip"]
    assert schedule.waits == []


def test_unknown_data_feed_is_refused():
    with pytest.raises(VendorError, match="iex, sip"):
        Alpaca(Secret("k"), Secret("s"), "otc")
