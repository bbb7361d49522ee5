import asyncio
import json

from marketpulse.feeds.vendors.base import Events, VendorFeed
from marketpulse.feeds.vendors.binance import Binance
from marketpulse.feeds.vendors.pacing import Backoff
from marketpulse.feeds.vendors.symbols import Symbols
from marketpulse.feeds.vendors.websocket import Connection, stream

# Binance spot "Trade Streams" payloads, combined-stream envelope.
TRADE = {"e": "trade", "E": 1672515782136, "s": "BTCUSDT", "t": 12345, "p": "16500.10",
         "q": "0.002", "T": 1672515782134, "m": True, "M": True}


def envelope(**changes):
    return json.dumps({"stream": "btcusdt@trade", "data": {**TRADE, **changes}})


def binance_feed(url, schedule, rand, symbols=("BTCUSDT", "ETHUSDT"), watchlist=None):
    conn = Connection(url + "/stream", backoff=Backoff(base=1.0, cap=8.0, floor=0.0, rand=rand),
                      sleep=schedule)
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
    assert json.loads(trades[4]["extra"]) == {"trade_id": 99, "buyer_is_maker": True,
                                              "event_ts": 1672515782136 * 1_000_000}
    # three drops: waits of uniform * min(cap, base * 2**n) with the injected uniforms
    assert schedule.waits == [0.5 * 1.0, 0.25 * 2.0, 1.0 * 4.0]
    assert feed.status.reconnects == 3 and len(feed.status.gaps) == 3
    assert feed.status.malformed == 2
    assert [d.reason for d in got.dead] == ["parse", "parse"]
    assert all(d.error.startswith("binance: ") for d in got.dead)
    assert got.dead[1].value == json.dumps({**TRADE, "p": "oops"}, separators=(",", ":")).encode()
    assert server.paths[0] == "/stream?streams=btcusdt@trade/ethusdt@trade"
