"""One processor output in: the figures, the notifier's lines and the view's rows out."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from marketpulse.alerts import JsonLinesNotifier
from marketpulse.models import INDICATOR_COLUMNS, Alert, DeadLetter
from marketpulse.runtime import MarketView, Metrics, OutputObserver
from marketpulse.stream import Output
from marketpulse.stream.output import bars_table, indicators_table
from marketpulse.testing import ManualClock

MINUTE = 60_000_000_000
START = 1_699_920_000 * 1_000_000_000


def _output() -> Output:
    symbols = np.array(["AAPL", "MSFT"], dtype=object)
    timeframes = np.array(["1m", "1m"], dtype=object)
    starts = np.array([START, START], dtype=np.int64)
    ends = starts + MINUTE
    close = np.array([190.0, 410.0])
    bars = bars_table(
        symbols, timeframes, starts, ends, (close, close, close, close),
        np.array([100.0, 200.0]), close, np.array([3, 4], dtype=np.int64),
    )  # fmt: skip
    values = np.full((2, len(INDICATOR_COLUMNS)), np.nan)
    values[:, INDICATOR_COLUMNS.index("rsi_14")] = [75.0, 40.0]
    values[:, INDICATOR_COLUMNS.index("macd_hist")] = [0.5, -0.25]
    values[:, INDICATOR_COLUMNS.index("vwap")] = [189.0, 412.0]
    indicators = indicators_table(symbols, timeframes, starts, ends, close, values)
    alert = Alert(
        id="rsi|AAPL|1m|1", rule="rsi", symbol="AAPL", timeframe="1m", bar_start=START,
        bar_end=START + MINUTE, severity="warning", message="RSI 75.0 above 70",
    )  # fmt: skip
    dead = [
        DeadLetter(reason="late", error="window closed", value=b"{}"),
        DeadLetter(reason="price", error="price <= 0", value=b"{}"),
    ]
    return Output(bars=bars, indicators=indicators, alerts=[alert], dead=dead)


def test_one_output_counts_notifies_and_shows(tmp_path):
    metrics, view = Metrics(), MarketView("1m")
    notifier = JsonLinesNotifier(tmp_path / "alerts.jsonl")
    observer = OutputObserver(metrics, view, notifier, clock=ManualClock(10.25))

    observer.output(_output(), since=10.0)
    observer.close()

    snap = metrics.snapshot()
    assert (snap.bars, snap.indicator_rows, snap.alerts) == (2, 2, 1)
    assert (snap.dlq, snap.rejected) == (2, 1)  # a late trade is no rejected input row
    assert snap.latency_p50_ms == 250.0  # the clock's now minus since
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["rsi|AAPL|1m|1"]
    rows = {row.symbol: row for row in view.rows()}
    assert rows["AAPL"].rsi == 75.0 and rows["AAPL"].vwap == 189.0
    assert rows["MSFT"].macd_hist == -0.25
    assert rows["AAPL"].alert == "rsi: RSI 75.0 above 70" and rows["MSFT"].alert == ""
    assert [a.id for a in view.recent_alerts] == ["rsi|AAPL|1m|1"]


def test_no_latency_sample_without_a_start_or_without_indicators():
    metrics = Metrics()
    observer = OutputObserver(metrics, clock=ManualClock(5.0))
    observer.output(_output(), since=None)
    observer.output(Output(), since=1.0)
    assert metrics.snapshot().latency_p50_ms is None
    assert metrics.snapshot().bars == 2


def test_a_start_after_now_counts_as_no_delay():
    # clocks of two machines (a record's timestamp, this host's time) may disagree
    metrics = Metrics()
    OutputObserver(metrics, clock=ManualClock(5.0)).output(_output(), since=5.5)
    assert metrics.snapshot().latency_p50_ms == 0.0


def test_the_feed_side_counts_ticks_and_dead_rows_and_shows_trades():
    metrics, view = Metrics(), MarketView("1m")
    observer = OutputObserver(metrics, view)
    trades = pa.record_batch(
        {"symbol": ["AAPL", "AAPL"], "price": [190.0, 191.0], "size": [5.0, 7.0]}
    )
    observer.taken(2)
    observer.taken(0, dead=3)
    observer.trades(trades)
    snap = metrics.snapshot()
    assert (snap.ticks_in, snap.dlq, snap.rejected) == (2, 3, 3)
    [row] = view.rows()
    assert (row.symbol, row.last, row.first, row.volume) == ("AAPL", 191.0, 190.0, 12.0)


def test_without_view_or_notifier_only_the_figures_change():
    metrics = Metrics()
    observer = OutputObserver(metrics)
    observer.output(_output(), since=None)
    observer.trades(pa.record_batch({"symbol": ["AAPL"], "price": [1.0], "size": [1.0]}))
    observer.close()
    assert metrics.snapshot().alerts == 1
