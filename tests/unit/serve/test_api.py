"""The REST API, health, metrics and docs, over a lake the real pipeline wrote."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from starlette.websockets import WebSocketDisconnect

from marketpulse.analytics import query
from marketpulse.config import Secret
from marketpulse.pipeline import Metrics
from marketpulse.serve import Dashboard, LakeData, LakeMarket, ServeError, ServeSettings, create_app
from marketpulse.serve.app import plotly_js

from .conftest import BASE_URL, SYMBOLS


@pytest.fixture(scope="module")
def client(filled_lake):
    root, _ = filled_lake
    lake = LakeData(root)
    with TestClient(
        create_app(ServeSettings(), lake, LakeMarket(lake)), base_url=BASE_URL
    ) as client:
        yield client
    lake.close()


def test_symbols_lists_every_simulated_symbol_with_its_intervals(client, filled_lake):
    symbols = client.get("/api/symbols").json()
    expected = query(filled_lake[0], "SELECT DISTINCT symbol FROM bars ORDER BY 1")
    assert [s["symbol"] for s in symbols] == expected.column("symbol").to_pylist()
    assert len(symbols) == SYMBOLS
    assert all(s["intervals"] == ["1m", "1s"] and s["bars"] > 0 for s in symbols)
    assert client.get("/api/intervals").json() == ["1s", "1m"]


def test_bars_are_the_latest_of_one_series_oldest_first(client, filled_lake):
    symbol = client.get("/api/symbols").json()[0]["symbol"]
    bars = client.get("/api/bars", params={"symbol": symbol, "interval": "1s", "limit": 50}).json()
    assert len(bars) == 50
    starts = [b["start"] for b in bars]
    assert starts == sorted(starts) and len(set(starts)) == 50
    assert {b["symbol"] for b in bars} == {symbol} and {b["interval"] for b in bars} == {"1s"}
    assert all(b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"]
               for b in bars)  # fmt: skip
    newest = (
        query(
            filled_lake[0],
            f"SELECT max(start) AS s FROM bars WHERE symbol = '{symbol}' AND interval = '1s'",
        )
        .column("s")[0]
        .as_py()
    )
    assert starts[-1] == newest


def test_bars_between_start_and_end_in_nanoseconds_or_iso(client):
    symbol = client.get("/api/symbols").json()[0]["symbol"]
    every = client.get("/api/bars", params={"symbol": symbol, "interval": "1m"}).json()
    assert len(every) >= 5
    lo, hi = every[1]["start"], every[4]["start"]
    some = client.get(
        "/api/bars", params={"symbol": symbol, "interval": "1m", "start": lo, "end": hi}
    ).json()
    assert [b["start"] for b in some] == [b["start"] for b in every[1:4]]
    from datetime import UTC, datetime

    iso = datetime.fromtimestamp(lo / 1e9, UTC).isoformat()
    same = client.get(
        "/api/bars", params={"symbol": symbol, "interval": "1m", "start": iso, "end": hi}
    ).json()
    assert same == some


def test_indicators_are_null_while_warming_up_then_filled(client):
    symbol = client.get("/api/symbols").json()[1]["symbol"]
    rows = client.get(
        "/api/indicators", params={"symbol": symbol, "interval": "1s", "limit": 100_000}
    ).json()
    assert len(rows) > 100
    assert rows[0]["rsi_14"] is None and rows[0]["macd"] is None
    assert all(0 <= r["rsi_14"] <= 100 for r in rows[-50:])
    assert all(r["macd_hist"] == pytest.approx(r["macd"] - r["macd_signal"]) for r in rows[-50:])


def test_alerts_filtered_by_symbol_rule_and_severity(client, filled_lake):
    every = client.get("/api/alerts", params={"limit": 100_000}).json()
    counted = query(filled_lake[0], "SELECT count(*) AS n FROM alerts").column("n")[0].as_py()
    assert len(every) == counted > 0
    assert [a["ts"] for a in every] == sorted((a["ts"] for a in every), reverse=True)
    symbol = every[0]["symbol"]
    jumps = client.get(
        "/api/alerts", params={"symbol": symbol, "rule": "jump", "limit": 100_000}
    ).json()
    assert jumps == [a for a in every if a["symbol"] == symbol and a["rule"] == "jump"]
    critical = client.get("/api/alerts", params={"severity": "critical", "limit": 100_000}).json()
    assert critical and all(a["rule"] == "jump" for a in critical)
    assert isinstance(critical[0]["values"], dict)


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/api/bars?interval=1s", "symbol"),
        ("/api/bars?symbol=AAPL&interval=7s", "interval"),
        ("/api/bars?symbol=A%20B&interval=1s", "symbol"),
        ("/api/bars?symbol=AAPL&start=yesterday", "start"),
        ("/api/bars?symbol=AAPL&end=2024-13-45", "end"),
        ("/api/bars?symbol=AAPL&limit=0", "limit"),
        ("/api/indicators?symbol=AAPL&limit=many", "limit"),
        ("/api/indicators?symbol=AAPL&interval=", "interval"),
        ("/api/alerts?start=soon", "start"),
        ("/api/alerts?symbol=;drop", "symbol"),
        ("/api/pipeline?dead_letters=-1", "dead_letters"),
    ],
)
def test_bad_parameters_get_a_4xx_naming_the_parameter(client, url, parameter):
    response = client.get(url)
    assert response.status_code == 422
    details = response.json()["detail"]
    assert details[0]["loc"][-1] == parameter
    assert details[0]["msg"].startswith(parameter + ":")


def test_health_and_readiness(client, tmp_path):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    missing = LakeData(tmp_path / "nowhere")
    app = create_app(ServeSettings(), missing, LakeMarket(missing))
    with TestClient(app, base_url=BASE_URL) as other:
        assert other.get("/healthz").status_code == 200
        response = other.get("/readyz")
        assert response.status_code == 503 and response.json()["checks"] == {"lake": False}
        assert "nowhere" not in response.text and str(tmp_path) not in response.text


def test_metrics_are_prometheus_text_with_counters_and_a_latency_histogram(filled_lake):
    root, _ = filled_lake
    metrics = Metrics()
    metrics.add(ticks=1234, bars=56, dlq=3)
    for seconds in (0.0005, 0.003, 0.003, 0.2, 30.0):
        metrics.latency(seconds)
    lake = LakeData(root)
    with TestClient(
        create_app(ServeSettings(), lake, LakeMarket(lake), metrics), base_url=BASE_URL
    ) as client:
        response = client.get("/metrics")
    lake.close()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["marketpulse_ticks"].samples[0].value == 1234
    assert families["marketpulse_bars"].samples[0].value == 56
    assert families["marketpulse_dlq"].samples[0].value == 3
    histogram = families["marketpulse_tick_to_indicator_seconds"]
    buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
    assert buckets["0.001"] == 1 and buckets["0.005"] == 3 and buckets["0.25"] == 4
    assert buckets["10.0"] == 4 and buckets["+Inf"] == 5
    count = next(s.value for s in histogram.samples if s.name.endswith("_count"))
    assert count == 5


def test_docs_and_every_asset_are_served_without_a_cdn(client):
    docs = client.get("/docs")
    assert docs.status_code == 200 and "https://" not in docs.text
    for url in ["/assets/swagger/swagger-ui-bundle.js", "/assets/swagger/swagger-ui.css"]:
        assert client.get(url).status_code == 200
    schema = client.get("/openapi.json").json()
    for path in ["/api/symbols", "/api/bars", "/api/indicators", "/api/alerts", "/healthz",
                 "/readyz", "/metrics"]:  # fmt: skip
        assert path in schema["paths"]
    plotly = client.get("/assets/plotly.min.js")
    assert plotly.status_code == 200 and plotly.content == plotly_js().read_bytes()
    for page in ["/", "/symbol", "/alerts", "/pipeline"]:
        html = client.get(page)
        assert html.status_code == 200 and "<html" in html.text
        assert "https://" not in html.text and "http://" not in html.text
    for asset in [
        "common.js",
        "watchlist.js",
        "symbol.js",
        "alerts.js",
        "pipeline.js",
        "style.css",
    ]:
        assert client.get("/static/" + asset).status_code == 200


def test_a_token_is_required_on_http_and_websocket(filled_lake):
    root, _ = filled_lake
    lake = LakeData(root)
    settings = ServeSettings(host="0.0.0.0", token=Secret("s3cret"))
    with TestClient(create_app(settings, lake, LakeMarket(lake))) as client:
        assert client.get("/api/symbols").status_code == 401
        assert client.get("/api/symbols", params={"token": "wrong"}).status_code == 401
        assert client.get("/", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/healthz").status_code == 200
        bearer = client.get("/api/symbols", headers={"Authorization": "Bearer s3cret"})
        assert bearer.status_code == 200 and len(bearer.json()) == SYMBOLS
        with pytest.raises(WebSocketDisconnect) as refused:
            with client.websocket_connect("/ws") as ws:
                ws.receive_json()
        assert refused.value.code == 1008
        # a page opened with ?token= sets a cookie that later requests carry
        page = client.get("/?token=s3cret")
        assert page.status_code == 200 and "marketpulse_token" in page.headers["set-cookie"]
        assert client.get("/api/intervals").status_code == 200
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json()["type"] == "snapshot"
    lake.close()


def test_serving_beyond_loopback_without_a_token_is_refused():
    with pytest.raises(ServeError, match="token"):
        ServeSettings(host="0.0.0.0")
    with pytest.raises(ServeError, match="--port"):
        ServeSettings(port=70000)
    with pytest.raises(ServeError, match="--updates-per-s"):
        ServeSettings(updates_per_s=0)
    assert ServeSettings(host="::1").token is None
    with pytest.raises(ServeError, match="--interval"):
        Dashboard.from_lake("nowhere", ServeSettings(), interval="7s")
