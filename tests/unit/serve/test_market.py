"""The live sources: the lake's latest state, and a pipeline's market view."""

from __future__ import annotations

import math

from marketpulse.analytics import query
from marketpulse.models import Alert
from marketpulse.pipeline import Metrics
from marketpulse.serve import LakeData, LakeMarket, LiveMarket

from .conftest import SYMBOLS


def test_lake_market_rows_are_the_newest_bars_and_indicators(filled_lake):
    """Last price, and volume of the lake's newest date, per symbol."""
    root, _ = filled_lake
    lake = LakeData(root)
    market = LakeMarket(lake)
    rows = {r["symbol"]: r for r in market.watchlist()}
    assert len(rows) == SYMBOLS
    newest = query(
        root,
        "SELECT symbol, arg_max(close, start) AS last, sum(volume) AS volume FROM bars "
        "WHERE interval = '1s' AND date = (SELECT max(date) FROM bars) GROUP BY symbol",
    ).to_pylist()
    for expected in newest:
        row = rows[expected["symbol"]]
        assert row["last"] == expected["last"]
        assert row["volume"] == expected["volume"]
        assert 0 <= row["rsi"] <= 100 and row["macd_hist"] is not None
    seq, alerts = market.alerts_after(0)
    assert len(alerts) == 200 and seq == 200  # the newest ones, oldest first
    assert [a["ts"] for a in alerts] == sorted(a["ts"] for a in alerts)
    assert market.alerts_after(seq) == (seq, [])
    assert market.figures() == {"source": "lake", "dlq": 0}
    lake.close()


def test_live_market_logs_alerts_in_order_and_reports_figures():
    metrics = Metrics()
    market = LiveMarket("1s", metrics)
    assert market.alerts_after(0) == (0, [])
    first = [
        Alert(f"a{i}", "jump", "AAPL", "1s", i, "warning", "m", {"x": math.nan}) for i in (1, 2)
    ]
    market.alerts(first)
    seq, alerts = market.alerts_after(0)
    assert seq == 2 and [a["id"] for a in alerts] == ["a1", "a2"]
    assert alerts[0]["values"] == {"x": None}  # JSON has no NaN
    market.alerts([Alert("a3", "rsi", "MSFT", "1m", 3, "info", "m")])
    assert [a["id"] for a in market.alerts_after(seq)[1]] == ["a3"]
    assert market.watchlist()[0]["alert"] == "jump: m"
    metrics.add(ticks=10, bars=2)
    figures = market.figures()
    assert figures["ticks_in"] == 10 and figures["bars"] == 2 and figures["source"] == "pipeline"
