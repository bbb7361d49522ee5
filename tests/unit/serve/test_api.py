"""The REST API, health, metrics and docs, over a lake the real pipeline wrote."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from starlette.websockets import WebSocketDisconnect

from marketpulse.analytics import query
from marketpulse.config import Secret
from marketpulse.exceptions import InputError
from marketpulse.runtime import Metrics
from marketpulse.serve import Dashboard, LakeData, LakeMarket, ServeError, ServeSettings, create_app
from marketpulse.serve.app import DATASET_HEADER, plotly_js

from .conftest import BASE_URL, DATASETS, SYMBOLS, WS_URL

#: An ISO 8601 UTC time as the API writes it.
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$")


def _iso(ns: int) -> str:
    """The API's text of a whole-second time (the oracle: Python's own formatting)."""
    assert ns % 1_000_000_000 == 0
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _lake(root, sql: str) -> list[dict]:
    return query(root, sql).to_pylist()


@pytest.fixture(scope="module")
def client(filled_lake):
    root, _ = filled_lake
    lake = LakeData(root)
    with TestClient(
        create_app(ServeSettings(), lake, LakeMarket(lake)), base_url=BASE_URL
    ) as client:
        yield client
    lake.close()


def test_datasets_are_listed_and_the_most_recently_written_is_the_default(client, filled_lake):
    assert client.get("/api/watchlist").headers[DATASET_HEADER] == DATASETS[-1]  # live: the same
    answer = client.get("/api/datasets").json()
    counts = _lake(filled_lake[0], "SELECT dataset, count(*) AS n, min(epoch_ns(bar_start)) AS "
                   "first FROM bars GROUP BY dataset ORDER BY dataset")  # fmt: skip
    assert [d["dataset"] for d in answer["datasets"]] == list(DATASETS)
    assert [d["bars"] for d in answer["datasets"]] == [c["n"] for c in counts]
    assert [d["first"] for d in answer["datasets"]] == [_iso(c["first"]) for c in counts]
    assert all(d["symbols"] == SYMBOLS and d["timeframes"] == ["1s", "1m"]
               for d in answer["datasets"])  # fmt: skip
    assert all(ISO.match(d["written"]) for d in answer["datasets"])
    assert answer["default"] == DATASETS[-1] and answer["default_is"] == "latest"
    # the symbol page's default time zone: the exchange's (the sessions' time zone)
    assert answer["time_zone"] == "America/New_York"


def test_symbols_and_timeframes_of_one_dataset(client, filled_lake):
    for dataset in DATASETS:
        response = client.get("/api/symbols", params={"dataset": dataset})
        assert response.headers[DATASET_HEADER] == dataset
        symbols = response.json()
        expected = _lake(filled_lake[0], "SELECT symbol, count(*) AS n FROM bars WHERE dataset = "
                         f"'{dataset}' GROUP BY symbol ORDER BY symbol")  # fmt: skip
        assert [(s["symbol"], s["bars"]) for s in symbols] == [
            (e["symbol"], e["n"]) for e in expected
        ]
        assert all(s["timeframes"] == ["1s", "1m"] and s["dataset"] == dataset for s in symbols)
        assert all(ISO.match(s["first"]) and ISO.match(s["last"]) for s in symbols)
    # no dataset asked for: the default one, named in the header
    default = client.get("/api/symbols")
    assert default.headers[DATASET_HEADER] == DATASETS[-1]
    assert default.json() == client.get("/api/symbols", params={"dataset": DATASETS[-1]}).json()
    assert client.get("/api/timeframes", params={"dataset": DATASETS[0]}).json() == ["1s", "1m"]


def test_bars_are_one_datasets_latest_oldest_first_with_iso_times(client, filled_lake):
    symbol = client.get("/api/symbols").json()[0]["symbol"]
    closes = {}
    for dataset in DATASETS:
        params = {"symbol": symbol, "timeframe": "1s", "limit": 50, "dataset": dataset}
        bars = client.get("/api/bars", params=params).json()
        expected = _lake(
            filled_lake[0],
            "SELECT epoch_ns(bar_start) AS s, epoch_ns(bar_end) AS e, close FROM bars "
            f"WHERE dataset = '{dataset}' AND symbol = '{symbol}' AND timeframe = '1s' "
            "ORDER BY bar_start DESC LIMIT 50",
        )[::-1]
        assert [b["bar_start"] for b in bars] == [_iso(e["s"]) for e in expected]
        assert [b["bar_end"] for b in bars] == [_iso(e["e"]) for e in expected]
        assert [b["close"] for b in bars] == [e["close"] for e in expected]
        assert {b["dataset"] for b in bars} == {dataset}
        assert {b["symbol"] for b in bars} == {symbol} and {b["timeframe"] for b in bars} == {"1s"}
        assert all(b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"]
                   for b in bars)  # fmt: skip
        closes[dataset] = [b["close"] for b in bars]
    # the two datasets' prices differ, so a mix of them could not pass the checks above
    assert closes[DATASETS[0]] != closes[DATASETS[1]]


def test_bars_between_start_and_end_in_iso_or_nanoseconds(client):
    symbol = client.get("/api/symbols").json()[0]["symbol"]
    params = {"symbol": symbol, "timeframe": "1m", "dataset": DATASETS[0]}
    every = client.get("/api/bars", params=params).json()
    assert len(every) >= 5
    lo, hi = every[1]["bar_start"], every[4]["bar_start"]
    some = client.get("/api/bars", params={**params, "start": lo, "end": hi}).json()
    assert [b["bar_start"] for b in some] == [b["bar_start"] for b in every[1:4]]
    ns = int(datetime.fromisoformat(lo.replace("Z", "+00:00")).timestamp()) * 1_000_000_000
    assert client.get("/api/bars", params={**params, "start": ns, "end": hi}).json() == some


def test_indicators_share_the_bars_key_and_are_null_while_warming_up(client):
    symbol = client.get("/api/symbols").json()[1]["symbol"]
    params = {"symbol": symbol, "timeframe": "1s", "limit": 100_000, "dataset": DATASETS[0]}
    rows = client.get("/api/indicators", params=params).json()
    bars = client.get("/api/bars", params=params).json()
    assert len(rows) > 100
    assert rows[0]["rsi_14"] is None and rows[0]["macd"] is None
    assert all(0 <= r["rsi_14"] <= 100 for r in rows[-50:])
    assert all(r["macd_hist"] == pytest.approx(r["macd"] - r["macd_signal"]) for r in rows[-50:])
    # one key: each row's bar has the same start, end and close
    by_start = {b["bar_start"]: b for b in bars}
    assert all(
        by_start[r["bar_start"]]["bar_end"] == r["bar_end"]
        and by_start[r["bar_start"]]["close"] == r["close"]
        for r in rows
    )
    assert {r["dataset"] for r in rows} == {DATASETS[0]}


def test_alerts_of_one_dataset_filtered_by_symbol_rule_and_severity(client, filled_lake):
    for dataset in DATASETS:
        every = client.get("/api/alerts", params={"limit": 100_000, "dataset": dataset}).json()
        counted = _lake(
            filled_lake[0], f"SELECT count(*) AS n FROM alerts WHERE dataset = '{dataset}'"
        )[0]["n"]
        assert len(every) == counted > 0 and {a["dataset"] for a in every} == {dataset}
    ends = [datetime.fromisoformat(a["bar_end"].replace("Z", "+00:00")) for a in every]
    assert ends == sorted(ends, reverse=True)
    assert all(ISO.match(a["bar_start"]) and ISO.match(a["bar_end"]) for a in every)
    symbol = every[0]["symbol"]
    jumps = client.get(
        "/api/alerts", params={"symbol": symbol, "rule": "jump", "limit": 100_000}
    ).json()
    assert jumps == [a for a in every if a["symbol"] == symbol and a["rule"] == "jump"]
    critical = client.get("/api/alerts", params={"severity": "critical", "limit": 100_000}).json()
    assert critical and all(a["rule"] == "jump" for a in critical)
    # the values the rule looked at: an object, not JSON text
    assert isinstance(critical[0]["details"], dict) and critical[0]["details"]
    assert all(isinstance(v, float) or v is None for v in critical[0]["details"].values())


def test_alerts_are_counted_by_the_lake_and_read_a_page_at_a_time(client, filled_lake):
    dataset = DATASETS[0]
    stored = _lake(filled_lake[0], "SELECT rule, count(*) AS n FROM alerts "
                   f"WHERE dataset = '{dataset}' GROUP BY rule ORDER BY rule")  # fmt: skip
    counted = client.get("/api/alerts/count", params={"dataset": dataset})
    assert counted.headers[DATASET_HEADER] == dataset
    answer = counted.json()
    assert answer["count"] == sum(r["n"] for r in stored) > 10
    assert answer["by_rule"] == [{"rule": r["rule"], "count": r["n"]} for r in stored]
    # a rule filter counts that rule; by_rule still lists every rule to pick from
    jump = client.get("/api/alerts/count", params={"dataset": dataset, "rule": "jump"}).json()
    assert jump["count"] == next(r["n"] for r in stored if r["rule"] == "jump")
    assert jump["by_rule"] == answer["by_rule"]
    every = client.get("/api/alerts", params={"dataset": dataset, "limit": 100_000}).json()
    pages = [
        client.get("/api/alerts", params={"dataset": dataset, "limit": 7, "offset": o}).json()
        for o in range(0, len(every) + 7, 7)
    ]
    assert [a["id"] for page in pages for a in page] == [a["id"] for a in every]
    assert pages[-1] == []  # past the end: nothing
    symbol = every[0]["symbol"]
    of_symbol = client.get("/api/alerts/count", params={"dataset": dataset, "symbol": symbol})
    assert of_symbol.json()["count"] == sum(a["symbol"] == symbol for a in every)


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/api/bars?timeframe=1s", "symbol"),
        ("/api/bars?symbol=AAPL&timeframe=7x", "timeframe"),
        ("/api/bars?symbol=AAPL&timeframe=60m", "timeframe"),  # not canonical: 1h
        ("/api/bars?symbol=A%20B&timeframe=1s", "symbol"),
        ("/api/bars?symbol=AAPL&start=yesterday", "start"),
        ("/api/bars?symbol=AAPL&end=2024-13-45", "end"),
        ("/api/bars?symbol=AAPL&limit=0", "limit"),
        ("/api/bars?symbol=AAPL&dataset=../etc", "dataset"),
        ("/api/indicators?symbol=AAPL&limit=many", "limit"),
        ("/api/indicators?symbol=AAPL&timeframe=", "timeframe"),
        ("/api/alerts?start=soon", "start"),
        ("/api/alerts?symbol=;drop", "symbol"),
        ("/api/alerts?offset=-1", "offset"),
        ("/api/alerts/count?symbol=;drop", "symbol"),
        ("/api/alerts/count?end=later", "end"),
        ("/api/alerts?dataset=a%20b", "dataset"),
        ("/api/symbols?dataset=-x", "dataset"),
        ("/api/pipeline?dead_letters=-1", "dead_letters"),
    ],
)
def test_bad_parameters_get_a_4xx_naming_the_parameter(client, url, parameter):
    response = client.get(url)
    assert response.status_code == 422
    details = response.json()["detail"]
    assert details[0]["loc"][-1] == parameter
    assert details[0]["msg"].startswith(parameter + ":")


@pytest.mark.parametrize("url", ["/api/bars?symbol=AAPL", "/api/symbols", "/api/alerts",
                                 "/api/alerts/count",
                                 "/api/indicators?symbol=AAPL", "/api/timeframes"])  # fmt: skip
def test_an_unknown_dataset_is_a_404_naming_the_known_ones(client, url):
    response = client.get(url, params={"dataset": "sim-c"})
    assert response.status_code == 404
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["query", "dataset"]
    assert detail["msg"] == "dataset: no dataset 'sim-c' (datasets: sim-a, sim-b)"


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
    for path in ["/api/datasets", "/api/symbols", "/api/bars", "/api/indicators", "/api/alerts",
                 "/healthz", "/readyz", "/metrics"]:  # fmt: skip
        assert path in schema["paths"]
    plotly = client.get("/assets/plotly.min.js")
    assert plotly.status_code == 200 and plotly.content == plotly_js().read_bytes()
    for page in ["/", "/symbol", "/alerts", "/pipeline"]:
        html = client.get(page)
        assert html.status_code == 200 and "<html" in html.text
        assert "https://" not in html.text and "http://" not in html.text
    icon = client.get("/favicon.ico")  # browsers ask for it on every page
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file's header
    for asset in [
        "common.js",
        "watchlist.js",
        "symbol.js",
        "markers.js",
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
        assert client.get("/api/timeframes").status_code == 200
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json()["type"] == "snapshot"
    lake.close()


def test_the_exchanges_time_zone_is_a_setting_checked_when_made(filled_lake):
    with pytest.raises(ServeError, match="not a time zone: 'Mars/Olympus'"):
        ServeSettings(time_zone="Mars/Olympus")
    lake = LakeData(filled_lake[0])
    app = create_app(ServeSettings(time_zone="Europe/Zurich"), lake, LakeMarket(lake))
    with TestClient(app, base_url=BASE_URL) as client:
        assert client.get("/api/datasets").json()["time_zone"] == "Europe/Zurich"
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
        Dashboard.from_lake("nowhere", ServeSettings(), interval="7x")


def test_a_dashboard_of_one_dataset_shows_it_live_and_reads_it_by_default(filled_lake):
    root, _ = filled_lake
    with pytest.raises(InputError, match="--dataset"):
        Dashboard.from_lake(root, ServeSettings(), dataset="no/such")
    with pytest.raises(ServeError, match="no dataset 'sim-c'.*sim-a, sim-b"):
        Dashboard.from_lake(root, ServeSettings(), dataset="sim-c")
    board = Dashboard.from_lake(root, ServeSettings(), dataset=DATASETS[0])
    with TestClient(board.server.app, base_url=BASE_URL) as client:
        answer = client.get("/api/datasets").json()
        assert answer["default"] == DATASETS[0] and answer["default_is"] == "live"
        bars = client.get("/api/bars", params={"symbol": "AAPL", "timeframe": "1s"})
        assert bars.headers[DATASET_HEADER] == DATASETS[0]
        assert {b["dataset"] for b in bars.json()} == {DATASETS[0]}
        rows = {r["symbol"]: r["last"] for r in client.get("/api/watchlist").json()}
        newest = _lake(
            root,
            "SELECT symbol, arg_max(close, bar_start) AS c FROM bars "
            f"WHERE dataset = '{DATASETS[0]}' AND timeframe = '1s' GROUP BY symbol",
        )
        assert rows == {n["symbol"]: n["c"] for n in newest}
        with client.websocket_connect(WS_URL) as ws:
            assert ws.receive_json()["dataset"] == DATASETS[0]
    board.lake.close()


def test_every_data_route_takes_a_dataset_and_rows_are_as_documented(client):
    doc = client.get("/openapi.json").json()
    data_routes = ["/api/symbols", "/api/timeframes", "/api/bars", "/api/indicators",
                   "/api/alerts", "/api/pipeline"]  # fmt: skip
    for path in data_routes:
        operation = doc["paths"][path]["get"]
        assert "dataset" in [p["name"] for p in operation["parameters"]], path
        assert DATASET_HEADER in operation["responses"]["200"]["headers"], path
    params = {"symbol": "AAPL", "timeframe": "1s", "limit": 5, "dataset": DATASETS[0]}
    for path in ["/api/bars", "/api/indicators", "/api/alerts"]:
        response = doc["paths"][path]["get"]["responses"]["200"]
        row = response["content"]["application/json"]["schema"]["items"]
        got = client.get(path, params=params if path != "/api/alerts" else {"limit": 5}).json()
        assert got and all(list(r) == list(row["properties"]) for r in got), path
        assert row["properties"]["bar_start"]["format"] == "date-time"
        assert all(ISO.match(r["bar_start"]) and ISO.match(r["bar_end"]) for r in got)


def test_the_pipeline_page_of_a_lake_says_what_the_lake_holds(client, filled_lake):
    answer = client.get("/api/pipeline", params={"dataset": DATASETS[0]}).json()
    assert answer["figures"]["source"] == "lake"  # no live rates: the page hides them
    summary = answer["lake"]
    assert summary["dataset"] == DATASETS[0]
    stored = {
        r["t"]: r
        for r in _lake(
            filled_lake[0],
            f"SELECT 'bars' AS t, count(*) AS n, min(epoch_ns(bar_start)) AS first FROM bars "
            f"WHERE dataset = '{DATASETS[0]}' UNION ALL SELECT 'alerts', count(*), "
            f"min(epoch_ns(bar_end)) FROM alerts WHERE dataset = '{DATASETS[0]}'",
        )
    }
    tables = {t["table"]: t for t in summary["tables"]}
    for name in ("bars", "alerts"):
        assert tables[name]["rows"] == stored[name]["n"] > 0
        assert tables[name]["first"] == _iso(stored[name]["first"])
        files = list((filled_lake[0] / name / f"dataset={DATASETS[0]}").rglob("*.parquet"))
        assert tables[name]["files"] == len(files) > 0
        assert ISO.match(tables[name]["written"])
    assert tables["quotes"]["rows"] == tables["quotes"]["files"] == 0
    assert summary["dead_letter_reasons"] == []
