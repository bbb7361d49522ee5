"""Heavy history requests: turns, refusals with Retry-After, answers streamed in slices."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marketpulse.exceptions import MarketPulseError
from marketpulse.serve import LakeData, LakeMarket, ServeSettings, create_app
from marketpulse.serve.heavy import HeavyGate, HeavyLimits, rows_response
from marketpulse.serve.records import to_records

from .conftest import BASE_URL, DATASETS


def test_a_full_gate_refuses_with_retry_after_until_a_turn_is_given_back():
    gate = HeavyGate(HeavyLimits(running=1, waiting=0))
    gate.enter()
    with pytest.raises(HTTPException) as refused:
        gate.enter()
    assert refused.value.status_code == 503
    assert int(refused.value.headers["Retry-After"]) >= 1
    gate.leave()
    gate.enter()  # the turn given back is taken again
    assert gate.admitted == 1


@pytest.mark.parametrize("limits", [{"running": 0}, {"waiting": -1}])
def test_limits_out_of_range_are_refused(limits):
    with pytest.raises(ValueError):
        HeavyLimits(**limits)


def test_an_answer_streamed_in_slices_is_the_whole_array_of_rows():
    # more rows than one slice holds, times and NaN as the API writes them
    n = 4_567
    table = pa.table({
        "bar_start": pa.array([i * 1_000_000_000 for i in range(n)], pa.timestamp("ns")),
        "close": [math.nan if i % 7 == 0 else i / 3 for i in range(n)],
        "symbol": ["SPY"] * n,
    })  # fmt: skip
    gate = HeavyGate(HeavyLimits(running=1, waiting=0))

    def answer(request: Request) -> Response:
        gate.enter()  # as the routes do; the response gives the turn back
        return rows_response(table.slice(0, int(request.query_params["rows"])), gate, {})

    client = TestClient(Starlette(routes=[Route("/", answer)]))
    whole = client.get("/", params={"rows": n})
    assert whole.headers["content-type"] == "application/json"
    assert whole.json() == to_records(table)
    assert client.get("/", params={"rows": 0}).content == b"[]"
    assert gate.admitted == 0


def test_each_request_gives_its_turn_back_when_answered_or_failed(filled_lake, monkeypatch):
    root, _ = filled_lake
    lake = LakeData(root)
    settings = ServeSettings(heavy=HeavyLimits(running=1, waiting=0))  # one turn in all
    params = {"symbol": "AAPL", "timeframe": "1s", "dataset": DATASETS[0]}
    with TestClient(create_app(settings, lake, LakeMarket(lake)), base_url=BASE_URL) as client:
        for _ in range(3):  # each would be refused had an earlier one kept the turn
            answer = client.get("/api/bars", params=params)
            assert answer.status_code == 200 and answer.json()
            assert answer.headers["MarketPulse-Dataset"] == DATASETS[0]

        def unreadable(*args):
            raise MarketPulseError("lake unreadable")

        monkeypatch.setattr(lake, "bars_table", unreadable)
        assert client.get("/api/bars", params=params).status_code == 503
        monkeypatch.undo()
        assert client.get("/api/bars", params=params).status_code == 200
        assert client.get("/api/alerts", params={"dataset": DATASETS[0]}).status_code == 200
    lake.close()
