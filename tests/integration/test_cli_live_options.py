"""README's live-feed and config options end to end: their documented use and a bad use.

Local servers stand in for Alpha Vantage and Finnhub (``--url``, ``--rest-url``);
``--calendar 24/7`` lets them be polled at any hour.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from .test_live_feeds import BinanceServer

pytestmark = pytest.mark.integration

NEW_YORK = ZoneInfo("America/New_York")


class RestServer:
    """Alpha Vantage's TIME_SERIES_INTRADAY (three closed 5-minute bars per symbol) and
    Finnhub's last bid/ask, on 127.0.0.1; records each request's query, path and token."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        now = datetime.now(NEW_YORK).replace(second=0, microsecond=0)
        last = now - timedelta(minutes=now.minute % 5 + 15)  # well closed, 5-minute aligned
        self.starts = [last - timedelta(minutes=5 * i) for i in (2, 1, 0)]
        self.closes = {"IBM": 160.75, "MSFT": 410.25}

    def answer(self, path: str, query: dict[str, str]) -> dict:
        """The answer to one request: Finnhub's last bid/ask, or Alpha Vantage's bars."""
        symbol = query.get("symbol", "")
        if path.endswith("/stock/bidask"):
            close = self.closes[symbol]
            now_ms = time.time_ns() // 10**6
            return {"a": close + 0.02, "av": 3, "b": close - 0.02, "bv": 7, "t": now_ms}
        if symbol not in self.closes:
            return {"Error Message": "Invalid API call."}
        series = {
            s.strftime("%Y-%m-%d %H:%M:%S"): {
                "1. open": str(self.closes[symbol] - 0.5), "2. high": str(self.closes[symbol] + 1),
                "3. low": str(self.closes[symbol] - 1), "4. close": str(self.closes[symbol]),
                "5. volume": "1200",
            }
            for s in self.starts
        }  # fmt: skip
        meta = {"2. Symbol": symbol, "4. Interval": "5min", "6. Time Zone": "US/Eastern"}
        return {"Meta Data": meta, "Time Series (5min)": series}

    def __enter__(self) -> RestServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                server.queries.append({**query, "path": parts.path,
                                       "token": self.headers.get("X-Finnhub-Token")})  # fmt: skip
                data = json.dumps(server.answer(parts.path, query)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/query"


def test_alphavantage_bars_with_watchlist_env_file_and_calendar(cli, sql, tmp_path):
    # marketpulse run --feed alphavantage --tickers IBM --bar-interval 5m --intervals 5m,
    # the symbols from --watchlist, the key from --env-file, polled at any hour (--calendar 24/7)
    (tmp_path / "watch.txt").write_text("# my list\nIBM MSFT\n")
    (tmp_path / "keys.env").write_text("MARKETPULSE_ALPHAVANTAGE_KEY=key-from-file\n")
    with RestServer() as server:
        result = cli("run", "--feed", "alphavantage", "--watchlist", "watch.txt",
                     "--env-file", "keys.env", "--bar-interval", "5m", "--intervals", "5m",
                     "--calendar", "24/7", "--rate-limit", "600/min", "--url", server.url,
                     "--duration", "6", "--no-dashboard", "--lake", "lake",
                     "--alerts-file", "alerts.jsonl")  # fmt: skip
    assert result.stdout.strip().splitlines()[-1].startswith("done: ticks in ")
    assert {q["symbol"] for q in server.queries} == {"IBM", "MSFT"}
    assert {(q["interval"], q["apikey"]) for q in server.queries} == {("5min", "key-from-file")}
    assert "key-from-file" not in result.stdout + result.stderr
    rows = sql(tmp_path / "lake", "SELECT dataset, symbol, bar_start, close FROM bars "
                                  "WHERE timeframe = '5m' ORDER BY symbol, bar_start")  # fmt: skip
    expected = [
        {"dataset": "alphavantage", "symbol": symbol, "bar_start": s, "close": close}
        for symbol, close in sorted(server.closes.items())
        for s in server.starts
    ]
    assert [{**r, "bar_start": datetime.fromisoformat(r["bar_start"])} for r in rows] == expected


def test_config_file_given_with_config(cli, tmp_path):
    # marketpulse config show --config FILE: that file, not ./marketpulse.toml
    (tmp_path / "marketpulse.toml").write_text('lake = "default-file"\n')
    (tmp_path / "other.toml").write_text('lake = "other-file"\n[simulator]\nsymbols = 7\n')
    shown = json.loads(cli("config", "show", "--config", "other.toml").stdout)
    assert (shown["lake"], shown["simulator"]["symbols"]) == ("other-file", 7)


def _one_line(result, *words):
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: "), line
    for word in words:
        assert word in line, (word, line)


def test_missing_config_file_is_one_line(cli):
    _one_line(cli("config", "show", "--config", "nope.toml", ok=False), "nope.toml", "not found")


KEYS = {
    "MARKETPULSE_ALPHAVANTAGE_KEY": "k", "MARKETPULSE_ALPACA_KEY": "k",
    "MARKETPULSE_ALPACA_SECRET": "s", "MARKETPULSE_POLYGON_KEY": "k",
}  # fmt: skip


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--feed", "binance", "--tickers", "BTCUSDT", "--quotes"],
         ["--quotes: only for --feed finnhub, not binance"]),
        (["--feed", "binance", "--tickers", "BTCUSDT", "--rest-url", "http://127.0.0.1:9/"],
         ["--rest-url: only for --feed finnhub or polygon"]),
        (["--feed", "alpaca", "--tickers", "AAPL", "--history", "2024-06-03"],
         ["--history: only for --feed polygon"]),
        (["--feed", "alphavantage", "--tickers", "IBM", "--bar-interval", "7m"],
         ["--bar-interval", "'7m'", "1m, 5m, 15m, 1h, 1d"]),
        (["--feed", "alpaca", "--tickers", "AAPL", "--data-feed", "nasdaq"],
         ["--data-feed", "'nasdaq'", "iex, sip"]),
        (["--feed", "alphavantage", "--tickers", "IBM", "--calendar", "NOPE"],
         ["--calendar", "'NOPE'"]),
        (["--feed", "binance", "--watchlist", "missing.txt"], ["watchlist", "missing.txt"]),
        (["--feed", "polygon", "--tickers", "AAPL", "--env-file", "missing.env"],
         ["MARKETPULSE_POLYGON_KEY", "missing.env"]),
    ],
)  # fmt: skip
def test_live_feed_option_misused_stops_before_anything_runs(cli, tmp_path, args, words):
    env = {k: v for k, v in KEYS.items() if "--env-file" not in args}
    result = cli("run", *args, "--no-dashboard", "--lake", "lake", ok=False, env=env)
    _one_line(result, *words)
    assert not (tmp_path / "lake").exists()
    result = cli("produce", *args, "--bootstrap-servers", "127.0.0.1:9", ok=False, env=env)
    _one_line(result, *words)


def test_finnhub_trades_with_quotes_from_rest_url(cli, sql, tmp_path):
    # marketpulse run --feed finnhub --tickers AAPL,MSFT --quotes, REST side at --rest-url
    sent, paths = [], []

    async def trades(ws) -> None:
        paths.append(ws.request.path)
        subscribed = [json.loads(await ws.recv()) for _ in range(2)]
        assert {m["symbol"] for m in subscribed} == {"IBM", "MSFT"}
        now_ms = time.time_ns() // 10**6
        batch = [{"s": "IBM", "p": 160.5, "t": now_ms, "v": 100, "c": ["1"]},
                 {"s": "MSFT", "p": 410.0, "t": now_ms + 1, "v": 5, "c": None}]  # fmt: skip
        sent.extend(batch)
        await ws.send(json.dumps({"type": "trade", "data": batch}))
        await ws.wait_closed()

    websocket = BinanceServer()
    websocket._serve = trades  # a Finnhub trade stream
    with websocket, RestServer() as rest:
        result = cli("run", "--feed", "finnhub", "--tickers", "IBM,MSFT", "--quotes",
                     "--calendar", "24/7", "--url", f"ws://127.0.0.1:{websocket.port}/",
                     "--rest-url", rest.url.removesuffix("/query") + "/api/v1",
                     "--duration", "6", "--no-dashboard", "--lake", "lake",
                     "--alerts-file", "alerts.jsonl",
                     env={"MARKETPULSE_FINNHUB_KEY": "fh-key"})  # fmt: skip
    assert result.stdout.strip().splitlines()[-1].startswith("done: ticks in "), result.stderr
    assert paths == ["/?token=fh-key"]
    polled = {(q["path"], q["symbol"], q["token"]) for q in rest.queries}
    assert polled == {("/api/v1/stock/bidask", s, "fh-key") for s in ("IBM", "MSFT")}
    rows = sql(tmp_path / "lake", "SELECT dataset, symbol, ts, price, size FROM trades ORDER BY ts")
    stored = [(r["symbol"], datetime.fromisoformat(r["ts"]), r["price"], r["size"]) for r in rows]
    assert stored == [(t["s"], _utc_ms(t["t"]), t["p"], t["v"]) for t in sent]
    assert {r["dataset"] for r in rows} == {"finnhub"}  # the vendor's name


def _utc_ms(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms // 1000, UTC) + timedelta(milliseconds=epoch_ms % 1000)
