"""The indicators API over a lake written with declared indicators: the rows' own columns."""

from __future__ import annotations

import jsonschema
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from marketpulse.analytics import query
from marketpulse.feeds import Simulator
from marketpulse.indicators.declare import parse_set
from marketpulse.models import INDICATOR_COLUMNS, INDICATOR_KEY_COLUMNS, indicator_schema
from marketpulse.runtime import Metrics
from marketpulse.runtime.embedded import EmbeddedPipeline, RunnerOptions
from marketpulse.serve import LakeData, LakeMarket, ServeSettings, create_app
from marketpulse.stream import ProcessorSettings

from .conftest import BASE_URL, START_NS

DECLARED = "ema(50), rsi(7), bb=bbands(20, 2.5), willr(14)"
DECLARED_COLUMNS = ("ema_50", "rsi_7", "bb_upper", "bb_middle", "bb_lower", "willr_14")


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory):
    """Dataset ``classic`` with the default set, then ``declared`` with DECLARED."""
    root = tmp_path_factory.mktemp("lake")
    for seed, (dataset, declared) in enumerate(
        [("classic", None), ("declared", parse_set(DECLARED))], start=3
    ):
        feed = Simulator(symbols=3, rate=60.0, seed=seed, start_ts=START_NS, realtime=False,
                         max_events=9_000)  # fmt: skip
        settings = ProcessorSettings(intervals=("1s", "1m"))
        if declared is not None:
            settings = ProcessorSettings(intervals=("1s", "1m"), indicators=declared)
        options = RunnerOptions(lake=str(root), processor=settings, dataset=dataset)
        EmbeddedPipeline(feed, options, Metrics()).run()
    return root


@pytest.fixture(scope="module")
def client(lake_root):
    lake = LakeData(lake_root)
    with TestClient(create_app(ServeSettings(), lake, LakeMarket(lake)), base_url=BASE_URL) as c:
        yield c
    lake.close()


def _symbol(client, dataset):
    return client.get("/api/symbols", params={"dataset": dataset}).json()[0]["symbol"]


def test_rows_of_a_declared_series_have_its_columns_and_the_lakes_values(client, lake_root):
    symbol = _symbol(client, "declared")
    params = {"dataset": "declared", "symbol": symbol, "timeframe": "1s", "limit": 100_000}
    rows = client.get("/api/indicators", params=params).json()
    assert len(rows) > 100
    assert all(list(r) == [*INDICATOR_KEY_COLUMNS, *DECLARED_COLUMNS, "dataset"] for r in rows), (
        list(rows[0])
    )
    assert rows[0]["ema_50"] is None  # warming up
    assert all(r["ema_50"] is not None and -100 <= r["willr_14"] <= 0 for r in rows[-20:])
    expected = query(
        lake_root,
        "SELECT ema_50, rsi_7 FROM indicators WHERE dataset = 'declared' AND timeframe = '1s'"
        f" AND symbol = '{symbol}' ORDER BY bar_start",
    ).to_pylist()
    assert [(r["ema_50"], r["rsi_7"]) for r in rows] == [
        (e["ema_50"], e["rsi_7"]) for e in expected
    ]


def test_rows_of_a_classic_series_keep_the_thirteen_columns(client):
    params = {"dataset": "classic", "symbol": _symbol(client, "classic"), "timeframe": "1m"}
    rows = client.get("/api/indicators", params=params).json()
    assert rows and all(
        list(r) == [*INDICATOR_KEY_COLUMNS, *INDICATOR_COLUMNS, "dataset"] for r in rows
    )
    assert all("ema_50" not in r for r in rows)  # another dataset's columns stay out


def test_the_documented_row_holds_declared_columns_and_the_document_is_valid(client):
    doc = client.get("/openapi.json").json()
    validate(doc)
    validate(client.get("/openapi-3.0.json").json())
    schema = doc["paths"]["/api/indicators"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    row = schema["items"]
    assert row["required"] == [*INDICATOR_KEY_COLUMNS, "dataset"]
    for dataset in ("declared", "classic"):
        params = {"dataset": dataset, "symbol": _symbol(client, dataset), "timeframe": "1s"}
        jsonschema.validate(client.get("/api/indicators", params=params).json(), schema)
    with pytest.raises(jsonschema.ValidationError):  # the schema can fail: a text indicator
        jsonschema.validate([{**dict.fromkeys(row["required"], None), "ema_50": "x"}], schema)


def test_the_lakes_watchlist_shows_the_declared_rsi(lake_root):
    newest = query(lake_root, "SELECT symbol, arg_max(rsi_7, bar_start) AS rsi FROM indicators"
                              " WHERE dataset = 'declared' AND timeframe = '1s' GROUP BY symbol"
                              " ORDER BY symbol").to_pylist()  # fmt: skip
    assert len(newest) == 3 and all(row["rsi"] is not None for row in newest)
    lake = LakeData(lake_root)
    try:
        market = LakeMarket(lake, dataset="declared", interval="1s")
        rows = market.watchlist()
    finally:
        lake.close()
    assert [(r["symbol"], r["rsi"]) for r in rows] == [(n["symbol"], n["rsi"]) for n in newest]
    assert all(r["macd_hist"] is None for r in rows)  # no MACD declared


def test_a_bad_timeframe_is_refused_naming_it(client):
    params = {"dataset": "declared", "symbol": _symbol(client, "declared"), "timeframe": "../x"}
    response = client.get("/api/indicators", params=params)
    assert response.status_code == 422 and "timeframe" in response.text


def test_a_live_view_takes_rows_of_any_declared_set():
    from marketpulse.serve.market import LiveMarket

    market = LiveMarket("1m", Metrics(), dataset="live")
    schema = indicator_schema(("ema_50", "rsi_7"))
    table = pa.table(
        {"symbol": ["A", "B"], "timeframe": ["1m", "1m"], "bar_start": [0, 0],
         "bar_end": [60 * 10**9] * 2, "close": [10.0, 20.0], "ema_50": [9.5, None],
         "rsi_7": [55.0, 45.0], "dataset": ["live", "live"]},
        schema=schema,
    )  # fmt: skip
    market.indicators(table)  # rsi_7 is the watchlist's RSI; no MACD or VWAP: unknown
    rows = {r["symbol"]: r for r in market.watchlist()}
    assert set(rows) == {"A", "B"} and rows["A"]["macd_hist"] is None
    assert (rows["A"]["rsi"], rows["B"]["rsi"]) == (55.0, 45.0)
    _, _, pushed = market.series_after("A", 0)  # the chart's rows: their own columns
    assert pushed == [{"symbol": "A", "timeframe": "1m", "bar_start": "1970-01-01T00:00:00Z",
                       "bar_end": "1970-01-01T00:01:00Z", "close": 10.0, "ema_50": 9.5,
                       "rsi_7": 55.0, "dataset": "live"}]  # fmt: skip
