"""Live vendor feeds end to end: a local Binance-protocol server into Kafka and the pipeline."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from websockets.asyncio.server import serve

from marketpulse.models import Trade, decode_tick

from .kafka_tools import create_topics, read_committed
from .test_kafka_topics_produce import run

pytestmark = pytest.mark.integration

PAIRS = {"BTCUSDT": 43000.0, "ETHUSDT": 2300.0}


class BinanceServer:
    """Binance's combined trade streams on 127.0.0.1: trades stamped now, one bad message,
    and a dropped first connection (the feed must reconnect)."""

    def __init__(self) -> None:
        self.connections = 0
        self.paths: list[str] = []

    async def _serve(self, ws) -> None:
        n = self.connections
        self.connections += 1
        self.paths.append(ws.request.path)
        trade_id = n * 100_000
        if n == 0:
            await ws.send("{this is not json")
        for i in range(10**6):
            for symbol, price in PAIRS.items():
                trade_id += 1
                now_ms = time.time_ns() // 1_000_000
                await ws.send(json.dumps({"stream": f"{symbol.lower()}@trade", "data": {
                    "e": "trade", "E": now_ms, "s": symbol, "t": trade_id,
                    "p": f"{price + (i % 7) * 0.5:.2f}", "q": "0.010", "T": now_ms,
                    "m": i % 2 == 0, "M": True}}))  # fmt: skip
            if n == 0 and i == 20:
                await ws.close()  # Binance drops connections: the feed reconnects
                return
            await asyncio.sleep(0.02)

    def __enter__(self) -> BinanceServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def main() -> None:
            async with serve(self._serve, "127.0.0.1", 0) as server:
                self.port = server.sockets[0].getsockname()[1]
                self._stop = asyncio.Event()
                ready.set()
                await self._stop.wait()

        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(main(),), daemon=True
        )
        self._thread.start()
        assert ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"


def test_produce_binance_trades_into_kafka(kafka_bootstrap, topic_prefix):
    topics = create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    with BinanceServer() as server:
        result = run(kafka_bootstrap, topic_prefix, "produce", "--feed", "binance", "--tickers",
                     "BTCUSDT,ETHUSDT", "--url", server.url, "--duration", "6")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert server.connections >= 2  # the dropped connection was made again
    assert server.paths[0] == "/stream?streams=btcusdt@trade/ethusdt@trade"
    trades = []
    for rows in read_committed(kafka_bootstrap, topics.ticks).values():
        for key, value, _ in rows:
            tick = decode_tick(value)
            assert isinstance(tick, Trade) and key == tick.symbol.encode()
            trades.append(tick)
    assert {t.symbol for t in trades} == set(PAIRS)
    assert len(trades) >= 2 * 21  # at least the first connection's trades
    assert all(t.exchange == "BINANCE" and t.extra["trade_id"] > 0 for t in trades)
    assert len({t.extra["trade_id"] for t in trades}) == len(trades)
    dead = [r for rows in read_committed(kafka_bootstrap, topics.name("dlq")).values()
            for r in rows]  # fmt: skip
    assert len(dead) == 1
    _, value, headers = dead[0]
    assert value == b"{this is not json"
    assert dict(headers)["vendor"] == b"binance" and dict(headers)["reason"] == b"parse"


def test_run_binance_feed_for_a_duration(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    with BinanceServer() as server:
        result = cli("run", "--feed", "binance", "--tickers", "BTCUSDT,ETHUSDT",
                     "--url", server.url, "--duration", "8", "--no-dashboard",
                     "--intervals", "1s,1m", "--lake", lake,
                     "--alerts-file", tmp_path / "alerts.jsonl")  # fmt: skip
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("done: ticks in "), result.stdout + result.stderr
    counts = sql(
        lake,
        "SELECT (SELECT count(*) FROM trades) AS trades, "
        "(SELECT count(DISTINCT symbol) FROM trades) AS symbols, "
        "(SELECT count(*) FROM bars WHERE timeframe = '1s') AS bars_1s, "
        "(SELECT count(*) FROM dlq) AS dead, "
        "(SELECT string_agg(DISTINCT dataset, ',') FROM trades) AS trades_dataset, "
        "(SELECT string_agg(DISTINCT dataset, ',') FROM bars) AS bars_dataset, "
        "(SELECT string_agg(DISTINCT dataset, ',') FROM dlq) AS dlq_dataset",
    )[0]
    # how many trades arrive in the duration depends on the machine's load: not asserted
    assert counts["symbols"] == 2, (counts, result.stderr)
    assert f"ticks in {counts['trades']:,}," in summary  # every trade taken reached the lake
    assert counts["bars_1s"] >= 1
    assert counts["dead"] == 1  # the message that was not JSON
    # a vendor's rows are its dataset, the feed's own dead letters too
    datasets = (counts["trades_dataset"], counts["bars_dataset"], counts["dlq_dataset"])
    assert datasets == ("binance", "binance", "binance")


def _refused(result, *words):
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error:"), message
    for word in words:
        assert word in message, (word, message)


def test_missing_keys_and_misplaced_options_are_one_clear_line(cli, tmp_path):
    _refused(cli("run", "--feed", "finnhub", "--tickers", "AAPL", "--no-dashboard", ok=False),
             "MARKETPULSE_FINNHUB_KEY")  # fmt: skip
    (tmp_path / ".env").write_text("MARKETPULSE_ALPACA_KEY=abc\n")
    _refused(cli("run", "--feed", "alpaca", "--tickers", "AAPL", "--no-dashboard", ok=False),
             "MARKETPULSE_ALPACA_SECRET")  # fmt: skip
    _refused(cli("run", "--url", "ws://127.0.0.1:9/", "--no-dashboard", ok=False), "--url")
    _refused(cli("run", "--feed", "binance", "--no-dashboard", ok=False), "--tickers")


def test_a_refused_key_stops_the_feed_with_a_clear_error(cli, tmp_path):
    async def refuse(ws) -> None:
        await ws.send(json.dumps([{"T": "success", "msg": "connected"}]))
        await ws.recv()
        await ws.send(json.dumps([{"T": "error", "code": 402, "msg": "auth failed"}]))
        await ws.wait_closed()

    server = BinanceServer()
    server._serve = refuse  # an Alpaca server that refuses the key
    env = {"MARKETPULSE_ALPACA_KEY": "my-key-id", "MARKETPULSE_ALPACA_SECRET": "my-secret"}
    with server:
        result = cli("run", "--feed", "alpaca", "--tickers", "AAPL", "--no-dashboard",
                     "--url", f"ws://127.0.0.1:{server.port}/v2", "--duration", "20",
                     "--lake", tmp_path / "lake", ok=False, env=env)  # fmt: skip
    _refused(result, "402", "refused")
    assert "my-secret" not in result.stderr + result.stdout
