"""The terminal's live view fits any terminal: width, height, columns, order, warm-up."""

import pyarrow as pa
import pytest
from rich.console import Console
from rich.text import Text

from marketpulse.cli.live_table import Warmup, figures, fitted_view
from marketpulse.indicators import DEFAULT
from marketpulse.models import Alert
from marketpulse.runtime import MarketView, Metrics

S = 10**9
T0 = 1_700_000_000 * S
LONG = "close up 2.69% over 10 bars " + "and a long explanation " * 8  # wraps over rows before


def _market(symbols=50, bars=20, alerting=("S7", "S31")):
    """A view of ``symbols`` symbols, S0 the busiest, after ``bars`` 1 s bars."""
    view = MarketView("1s")
    names = [f"S{i}" for i in range(symbols)]
    view.trades(
        pa.record_batch(
            {"symbol": names, "price": [10.0 + i for i in range(symbols)],
             "size": [1000.0 * (symbols - i) for i in range(symbols)]}
        )
    )  # fmt: skip
    for bar in range(bars):
        hist = [0.01 * i if bar >= 33 else None for i in range(symbols)]  # MACD's first at 34
        view.indicators(
            pa.table(
                {"symbol": names, "timeframe": ["1s"] * symbols,
                 "rsi_14": [55.0 if bar >= 14 else None] * symbols, "macd_hist": hist,
                 "vwap": [10.0 + i for i in range(symbols)]}
            )
        )  # fmt: skip
    view.alerts(
        [Alert(f"a{k}", "news_move", s, "1s", T0 + k * S, T0 + (k + 1) * S, "warning",
               f"{s} {LONG}") for k, s in enumerate(alerting)]
    )  # fmt: skip
    return view


def _lines(view, width, height, below=()):
    console = Console(width=width, height=height, force_terminal=True, color_system=None)
    warm = Warmup.of(DEFAULT)
    group = fitted_view(console, view, warm, list(below), len(view.recent_alerts))
    return [
        "".join(segment.text for segment in line).rstrip()
        for line in console.render_lines(group, console.options, pad=False)
    ]


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40), (60, 16), (40, 12)])
def test_the_view_fits_the_terminal_and_says_how_many_symbols_it_leaves_out(width, height):
    snap = Metrics().snapshot()
    lines = _lines(_market(), width, height, [figures(snap)])
    assert max(len(line) for line in lines) <= width
    assert len(lines) <= height - 1  # the cursor's line stays free
    rows = [line.split()[0] for line in lines if line.split() and line.split()[0].startswith("S")]
    more = next(line for line in lines if "more symbols" in line)
    assert f"+ {50 - len(rows)} more" in more and len(rows) >= (3 if height > 12 else 1)
    # the latest alert first, then the busiest (S0 the busiest)
    expected = ["S31", "S7", *(f"S{i}" for i in range(50) if i not in (7, 31))]
    assert rows == expected[: len(rows)]


def test_alerts_take_one_line_each_in_their_pane():
    lines = _lines(_market(), 80, 24)
    pane = [line for line in lines if "news_move:" in line]
    assert [line.split()[1] for line in pane] == ["S31", "S7"]  # the latest first
    assert all(line.endswith("…") and len(line) <= 80 for line in pane)  # cut, never wrapped


def test_narrow_terminals_drop_columns_and_keep_the_symbol_and_its_price():
    wide = next(line for line in _lines(_market(), 100, 30) if line.startswith("symbol"))
    narrow = next(line for line in _lines(_market(), 36, 30) if line.startswith("symbol"))
    assert "alert" in wide and "MACD hist" in wide
    assert narrow.split()[:2] == ["symbol", "last"] and "alert" not in narrow


def test_macd_histogram_shows_its_warm_up_then_its_value():
    needed = Warmup.of(DEFAULT).hist
    cold = _lines(_market(symbols=3, bars=20, alerting=()), 80, 24)
    row = next(line for line in cold if line.startswith("S1 "))
    assert row.split()[-2] == f"20/{needed}"  # MACD hist column: bars so far / needed
    note = next(line for line in cold if line.startswith("warm-up"))
    assert f"macd_hist {needed}" in note and "rsi_14" not in note  # RSI is warm by bar 15
    warm = _lines(_market(symbols=3, bars=needed, alerting=()), 80, 24)
    row = next(line for line in warm if line.startswith("S1 "))
    assert row.split()[-2] == "+0.0100"
    assert not any(line.startswith("warm-up") for line in warm)


def test_without_a_view_only_the_parts_below_are_drawn():
    console = Console(width=80, height=24, force_terminal=True)
    group = fitted_view(console, None, Warmup(), [Text("figures")], 0)
    assert [r.plain for r in group.renderables] == ["figures"]


def test_the_first_tick_s_table_is_drawn_at_once_not_at_the_next_refresh(monkeypatch):
    import io
    import threading
    import time

    import marketpulse.cli.live as live

    out = io.StringIO()
    screen = Console(file=out, width=100, height=30, force_terminal=True, color_system=None)
    monkeypatch.setattr(live, "console", screen)
    monkeypatch.setattr(live, "_REFRESH", 0.05)  # a refresh every 20 s: the test's deadline is 5
    view, metrics, done = MarketView("1s"), Metrics(), threading.Event()
    shower = threading.Thread(
        target=live._show_live, args=(lambda: None, done, view, DEFAULT, metrics, None)
    )
    shower.start()
    try:
        view.trades(pa.record_batch({"symbol": ["AAPL"], "price": [10.0], "size": [100.0]}))
        metrics.add(ticks=1)
        deadline = time.monotonic() + 5.0
        while "AAPL" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "AAPL" in out.getvalue()
    finally:
        done.set()
        shower.join()
