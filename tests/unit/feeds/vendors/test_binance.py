import json

from marketpulse.feeds.vendors.base import VendorError, VendorFeed
from marketpulse.feeds.vendors.binance import Binance
from marketpulse.feeds.vendors.pacing import Backoff
from marketpulse.feeds.vendors.symbols import Symbols
from marketpulse.feeds.vendors.websocket import Connection, stream

# Binance spot "Trade Streams" payloads, combined-stream envelope.
TRADE = {
    "e": "trade",
    "E": 1672515782136,
    "s": "BTCUSDT",
    "t": 12345,
    "p": "16500.10",
    "q": "0.002",
    "T": 1672515782134,
    "m": True,
    "M": True,
}


def envelope(**changes):
    return json.dumps({"stream": "btcusdt@trade", "data": {**TRADE, **changes}})


def binance_feed(url, schedule, rand, symbols=("BTCUSDT", "ETHUSDT"), watchlist=None):
    conn = Connection(
        url + "/stream", backoff=Backoff(base=1.0, cap=8.0, floor=0.0, rand=rand), sleep=schedule
    )
    syms = Symbols(symbols, watchlist)
    return VendorFeed("binance", lambda out: stream(Binance(), conn, syms, out))


def test_trades_reconnects_and_backoff(helpers, schedule):
    async def handler(ws, n, server):
        await ws.send(envelope(t=n, T=1672515782134 + n))
        if n < 3:
            await ws.close()  # Binance drops connections (24 h limit, maintenance)
            return
        await ws.send("{not json")
        await ws.send(envelope(p="oops"))
        await ws.send(envelope(t=99, s="ETHUSDT", p="1200.5", q="1"))
        await ws.wait_closed()

    with helpers.WsServer(handler) as server:
        feed = binance_feed(server.url, schedule, helpers.Rand(0.5, 0.25, 1.0))
        got = helpers.collect(feed, lambda g: len(g.rows["trade"]) >= 5)
    assert got.error is None
    trades = got.rows["trade"]
    assert [t["symbol"] for t in trades] == ["BTCUSDT"] * 4 + ["ETHUSDT"]
    assert trades[0]["ts"] == 1672515782134 * 1_000_000
    assert trades[4]["price"] == 1200.5 and trades[4]["size"] == 1.0
    assert json.loads(trades[4]["extra"]) == {
        "trade_id": 99,
        "buyer_is_maker": True,
        "event_ts": 1672515782136 * 1_000_000,
    }
    # three drops: waits of uniform * min(cap, base * 2**n) with the injected uniforms
    assert schedule.waits == [0.5 * 1.0, 0.25 * 2.0, 1.0 * 4.0]
    assert feed.status.reconnects == 3 and len(feed.status.gaps) == 3
    assert feed.status.malformed == 2
    assert [d.reason for d in got.dead] == ["parse", "parse"]
    assert all(d.error.startswith("binance: ") for d in got.dead)
    assert got.dead[1].value == json.dumps({**TRADE, "p": "oops"}, separators=(",", ":")).encode()
    assert server.paths[0] == "/stream?streams=btcusdt@trade/ethusdt@trade"


def test_watchlist_change_subscribes_on_the_live_connection(helpers, schedule, tmp_path):
    watchlist = tmp_path / "crypto.txt"
    watchlist.write_text("BTCUSDT  # bitcoin\n")

    async def handler(ws, n, server):
        await ws.send(envelope())
        request = await server.expect(ws)  # sent once the file changed
        await ws.send(json.dumps({"result": None, "id": request["id"]}))
        await ws.send(
            json.dumps({"stream": "ethusdt@trade", "data": {**TRADE, "s": "ETHUSDT", "p": "1200"}})
        )
        await ws.wait_closed()

    with helpers.WsServer(handler) as server:
        conn = Connection(server.url + "/stream", sleep=schedule, watch_every=0.02)
        syms = Symbols((), watchlist)
        feed = VendorFeed("binance", lambda out: stream(Binance(), conn, syms, out))

        def change(got):
            if got.rows["trade"] and not server.received:
                watchlist.write_text("ETHUSDT\nSOLUSDT\n")
            return len(got.rows["trade"]) >= 2

        got = helpers.collect(feed, change)
    assert server.connections == 1  # no reconnect for a subscription change
    assert server.paths[0] == "/stream?streams=btcusdt@trade"
    assert server.received[0]["method"] == "SUBSCRIBE"
    assert server.received[0]["params"] == ["ethusdt@trade", "solusdt@trade"]
    assert [t["symbol"] for t in got.rows["trade"]] == ["BTCUSDT", "ETHUSDT"]


def test_handshake_429_waits_its_retry_after(helpers, schedule):
    async def handler(ws, n, server):
        await ws.send(envelope())
        await ws.wait_closed()

    with helpers.WsServer(handler, refuse={0: (429, {"Retry-After": "7"})}) as server:
        feed = binance_feed(server.url, schedule, helpers.Rand(0.5))
        got = helpers.collect(feed, lambda g: g.rows["trade"])
    assert schedule.waits == [7.0]  # Retry-After beats the backoff's 0.5 s
    assert feed.status.rate_limited == 1
    assert len(got.rows["trade"]) == 1


def test_handshake_401_stops_the_feed_with_an_error(helpers, schedule):
    async def handler(ws, n, server):
        await ws.wait_closed()

    with helpers.WsServer(handler, refuse={0: (401, {})}) as server:
        feed = binance_feed(server.url, schedule, helpers.Rand(0.5))
        got = helpers.collect(feed, lambda g: False)
    assert isinstance(got.error, VendorError)
    assert "401" in str(got.error)
    assert schedule.waits == []
    assert server.connections == 0


def test_unreachable_server_is_retried_with_growing_waits(helpers, schedule):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    feed = binance_feed(f"ws://127.0.0.1:{port}", schedule, helpers.Rand(1.0))

    def enough(got):
        return len(schedule.waits) >= 5

    # the feed yields nothing while it cannot connect: stop it from outside
    import threading

    def stopper():
        while len(schedule.waits) < 5:
            threading.Event().wait(0.01)
        feed.close()

    threading.Thread(target=stopper, daemon=True).start()
    got = helpers.collect(feed, enough)
    assert got.error is None
    assert schedule.waits[:5] == [1.0, 2.0, 4.0, 8.0, 8.0]  # capped at 8
    assert feed.status.connects == 0


def test_a_silent_connection_is_dropped_and_made_again(helpers, schedule):
    async def handler(ws, n, server):
        if n == 1:
            await ws.send(envelope())
        await ws.wait_closed()  # the first connection says nothing at all

    with helpers.WsServer(handler) as server:
        conn = Connection(
            server.url + "/stream",
            sleep=schedule,
            idle_timeout=0.2,
            backoff=Backoff(base=1.0, floor=0.0, rand=helpers.Rand(0.5)),
        )
        syms = Symbols(("BTCUSDT",))
        feed = VendorFeed("binance", lambda out: stream(Binance(), conn, syms, out))
        got = helpers.collect(feed, lambda g: g.rows["trade"])
    assert server.connections == 2
    assert schedule.waits == [0.5]
    assert len(got.rows["trade"]) == 1 and feed.status.gaps[0].last_event is None
