"""The live sources: the lake's latest state, and a pipeline's market view."""

from __future__ import annotations

import math

import pytest

from marketpulse.analytics import query
from marketpulse.models import Alert
from marketpulse.runtime import Metrics
from marketpulse.serve import LakeData, LakeMarket, LiveMarket

from .conftest import DATASETS, SYMBOLS


@pytest.mark.parametrize("dataset", [None, *DATASETS])
def test_lake_market_rows_are_one_datasets_newest_bars_and_indicators(filled_lake, dataset):
    """Last price, and volume of the newest day, per symbol of one dataset (default: the latest)."""
    root, _ = filled_lake
    lake = LakeData(root)
    market = LakeMarket(lake, dataset=dataset)
    shown = dataset or DATASETS[-1]
    rows = {r["symbol"]: r for r in market.watchlist()}
    assert market.dataset == shown
    assert len(rows) == SYMBOLS
    newest = query(
        root,
        "SELECT symbol, arg_max(close, bar_start) AS last, sum(volume) AS volume FROM bars "
        f"WHERE dataset = '{shown}' AND timeframe = '1s' GROUP BY symbol",
    ).to_pylist()  # the ten minutes are within one day
    for expected in newest:
        row = rows[expected["symbol"]]
        assert row["last"] == expected["last"]
        assert row["volume"] == expected["volume"]
        assert 0 <= row["rsi"] <= 100 and row["macd_hist"] is not None
    seq, alerts = market.alerts_after(0)
    assert len(alerts) == 200 and seq == 200  # the newest ones, oldest first
    assert {a["dataset"] for a in alerts} == {shown}
    ends = [a["bar_end"] for a in alerts]
    assert ends == sorted(ends)  # whole seconds: the texts sort as the times
    assert market.alerts_after(seq) == (seq, [])
    assert market.figures() == {"source": "lake", "dlq": 0, "dataset": shown}
    lake.close()


def test_live_market_logs_alerts_in_order_and_reports_figures():
    metrics = Metrics()
    market = LiveMarket("1s", metrics)
    assert market.alerts_after(0) == (0, [])
    second = 1_000_000_000
    first = [
        Alert(
            f"a{i}",
            "jump",
            "AAPL",
            "1s",
            i * second,
            (i + 1) * second,
            "warning",
            "m",
            {"x": math.nan},
            "sim",
        )  # fmt: skip
        for i in (1, 2)
    ]
    market.alerts(first)
    seq, alerts = market.alerts_after(0)
    assert seq == 2 and [a["id"] for a in alerts] == ["a1", "a2"]
    assert alerts[0]["details"] == {"x": None}  # JSON has no NaN
    assert alerts[0]["bar_start"] == "1970-01-01T00:00:01Z"
    assert alerts[0]["bar_end"] == "1970-01-01T00:00:02Z" and alerts[0]["dataset"] == "sim"
    assert market.dataset == "sim"  # learnt from the output
    market.alerts([Alert("a3", "rsi", "MSFT", "1m", 3, 60_000_000_003, "info", "m")])
    assert market.alerts_after(seq)[1][0]["bar_end"] == "1970-01-01T00:01:00.000000003Z"
    assert [a["id"] for a in market.alerts_after(seq)[1]] == ["a3"]
    assert market.alerts_after(seq)[1][0]["bar_start"] == "1970-01-01T00:00:00.000000003Z"
    assert market.watchlist()[0]["alert"] == "jump: m"
    metrics.add(ticks=10, bars=2)
    figures = market.figures()
    assert figures["ticks_in"] == 10 and figures["bars"] == 2 and figures["source"] == "pipeline"
    assert figures["dataset"] == "sim"
