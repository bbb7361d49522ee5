"""The dashboard in a real headless Chromium, served by `marketpulse run`.

The lake first gets the Lean day of real trades (`marketpulse replay`, its own
dataset) and ten minutes of simulated history (the real pipeline over a
simulated market, as fast as it goes, dataset `simulator`); then `marketpulse
run` streams a live market into the simulator's dataset and serves the
dashboard, which the browser opens page by page. Screenshots go to test-output/.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from .conftest import DATA, ROOT

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SHOTS = ROOT / "test-output"
SYMBOLS = 20
LEAN = DATA / "lean-2013-10-07"
REPLAY = "lean-2013-10-07-trades"

RULES = """
rules:
  - name: jump
    type: pct_change
    window: 1
    threshold: 0.01
    severity: critical
    intervals: [1s]
    cooldown: 5
  - name: macd_turn
    type: macd_cross
    intervals: [1s]
    cooldown: 1
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fill_history(lake: Path, rules: Path) -> None:
    """Write ten minutes of bars, indicators and alerts that end about now.

    The symbols and seed are those of the live run, so prices start at the same levels.
    """
    from marketpulse.alerts import load_rules
    from marketpulse.feeds import Simulator
    from marketpulse.runtime.embedded import EmbeddedPipeline, RunnerOptions
    from marketpulse.stream import ProcessorSettings

    start = (time.time_ns() - 11 * 60 * 1_000_000_000) // 1_000_000_000 * 1_000_000_000
    feed = Simulator(
        symbols=SYMBOLS, rate=200.0, seed=0, start_ts=start, realtime=False,
        max_events=120_000,
    )  # fmt: skip
    options = RunnerOptions(
        lake=str(lake),
        rules=load_rules(rules),
        processor=ProcessorSettings(intervals=("1s", "1m")),
        dataset="simulator",
    )
    EmbeddedPipeline(feed, options).run()


def _replay_lean(work: Path) -> None:
    """Replay the Lean day of real trades into the lake: another dataset, SPY near 167."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    result = subprocess.run(
        [sys.executable, "-m", "marketpulse", "replay", str(LEAN / "trades.csv.gz"),
         "--intervals", "1s,1m", "--lake", str(work / "lake"), "--alerts-file",
         str(work / "lean-alerts.jsonl")],
        cwd=work, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@contextlib.contextmanager
def _serve(work: Path, *args: str):
    """Run `marketpulse ARGS` (which prints the dashboard's URL first); yield the URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "marketpulse", *args, "--port", str(_free_port())],
        cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        first = process.stdout.readline()
        match = re.match(r"dashboard: (http://\S+/)", first)
        assert match, first + process.stderr.read() if process.poll() is not None else first
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=60)
        finally:
            process.kill()
    assert process.returncode == 130, err  # stopped by Ctrl-C, cleanly
    assert "Traceback" not in err


@contextlib.contextmanager
def _run(work: Path, *args: str):
    """Run `marketpulse run ARGS` serving the dashboard on a free port; yield its URL."""
    with _serve(
        work, "run", *args, "--lake", str(work / "lake"), "--alerts-file",
        str(work / "alerts.jsonl"), "--duration", "600",
    ) as url:  # fmt: skip
        yield url


@pytest.fixture(scope="class")
def dashboard(tmp_path_factory):
    """`marketpulse run` serving the dashboard over a lake with history; yields its URL."""
    work = tmp_path_factory.mktemp("dashboard")
    rules = work / "rules.yaml"
    rules.write_text(RULES)
    _replay_lean(work)
    _fill_history(work / "lake", rules)
    with _run(
        work, "--symbols", str(SYMBOLS), "--rate", "2000", "--intervals", "1s,1m",
        "--rules", str(rules), "--updates-per-s", "10",
    ) as url:  # fmt: skip
        yield url


@pytest.fixture(scope="module")
def lean_dashboard(lean_lake):
    """`marketpulse dashboard` over the session's replay of the Lean day; yields its URL."""
    with _serve(lean_lake.lake.parent, "dashboard", "--lake", str(lean_lake.lake)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium (.ci/run does it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # anything the Content-Security-Policy blocks (a script, a style, the WebSocket) is an error
    page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    yield page
    blocked = page.evaluate("window.cspViolations || []") if page.url.startswith("http") else []
    page.close()
    assert errors == [], errors
    assert blocked == [], blocked


def _poll(check, what: str, timeout: float = 60.0):
    """Return check()'s first truthy result, polling until ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"dashboard-{name}.png"), full_page=False)


def _prices(page) -> dict[str, str]:
    return page.eval_on_selector_all(
        "#watchlist tbody tr",
        "rows => Object.fromEntries(rows.map("
        "r => [r.dataset.symbol, r.querySelector('td.last').textContent]))",
    )


class TestALiveRun:
    """The tests that watch `marketpulse run` (the ``dashboard`` fixture), together: the run
    serves them, then stops, instead of simulating a market through the whole module."""

    def test_watchlist_shows_prices_that_change_while_we_watch(self, dashboard, page):
        page.goto(dashboard)
        first = _poll(
            lambda: (
                (p := _prices(page))
                and len(p) == SYMBOLS
                and all(v != "—" for v in p.values())
                and p
            ),
            "every live symbol with a price",
        )
        changed = _poll(
            lambda: [s for s, v in _prices(page).items() if v != first[s]], "a price to change"
        )
        assert set(changed) <= set(first)
        for price in _prices(page).values():
            assert float(price.replace(",", "")) > 0
        # the filter box narrows the table; sorting by a column reorders it
        symbol = sorted(first)[0]
        page.fill("#filter", symbol)
        _poll(lambda: symbol in _prices(page) and len(_prices(page)) < SYMBOLS, "the filter")
        page.fill("#filter", "")
        page.click("th[data-key=symbol]")  # again: descending
        _poll(
            lambda: list(_prices(page)) == sorted(first, reverse=True), "symbols sorted descending"
        )
        assert page.get_attribute("#state", "data-state") == "" and not page.is_visible("#state")
        page.fill("#filter", "NO SUCH SYMBOL")
        _poll(lambda: page.get_attribute("#state", "data-state") == "no-match", "no match said")
        assert page.is_visible("#state") and "NO SUCH SYMBOL" in page.text_content("#state")
        page.fill("#filter", "")
        _shot(page, "watchlist")

    def test_symbol_page_draws_candles_rsi_and_macd(self, dashboard, page):
        symbols = page.request.get(dashboard + "api/symbols").json()
        # the one with the most history (the simulator's volume follows the time of day)
        symbol = max(symbols, key=lambda s: s["bars"])["symbol"]
        page.goto(f"{dashboard}symbol?symbol={symbol}&timeframe=1s")
        chart = page.locator("#chart")
        _poll(lambda: int(chart.get_attribute("data-bars") or 0) > 100, "candles")
        assert int(chart.get_attribute("data-rsi")) > 50
        assert int(chart.get_attribute("data-macd")) > 50
        traces = page.evaluate(
            """() => document.getElementById('chart').data.map(t => ({
                type: t.type, name: t.name, axis: t.yaxis || 'y',
                points: (t.close || t.y || [])
                    .filter(v => v !== null && v !== undefined).length}))"""
        )
        by_name = {t["name"]: t for t in traces}
        assert by_name["price"]["type"] == "candlestick" and by_name["price"]["points"] > 100
        assert by_name["RSI 14"]["axis"] == "y3" and by_name["RSI 14"]["points"] > 50
        assert by_name["MACD"]["axis"] == "y4" and by_name["MACD"]["points"] > 50
        assert by_name["MACD hist"]["points"] > 50 and by_name["volume"]["points"] > 100
        # drawn, not only given: SVG paths of the candles and lines in each pane
        assert page.locator("#chart g.trace.boxes path").count() > 100
        assert page.locator("#chart .yaxislayer-above .y3tick").count() > 0
        assert page.locator("#chart .yaxislayer-above .y4tick").count() > 0
        # then extended live: bars pushed by the WebSocket as they close
        newest = int(chart.get_attribute("data-newest"))
        _poll(lambda: int(chart.get_attribute("data-live") or 0) >= 2, "bars pushed live")
        _poll(lambda: int(chart.get_attribute("data-newest")) > newest, "a newer candle")
        # the interval switch reloads the chart with minute bars
        page.click("#intervals button[data-interval='1m']")
        _poll(lambda: 0 < int(chart.get_attribute("data-bars") or 0) <= 20, "minute bars")
        page.click("#intervals button[data-interval='1s']")
        _poll(lambda: int(chart.get_attribute("data-bars") or 0) > 100, "second bars again")
        _shot(page, "symbol")

    def test_switching_dataset_redraws_the_chart_with_the_other_datasets_prices(
        self, dashboard, page
    ):
        page.goto(f"{dashboard}symbol?symbol=SPY&timeframe=1s")
        chart = page.locator("#chart")
        # the default: the dataset the live view shows, the run's
        _poll(lambda: int(chart.get_attribute("data-bars") or 0) > 100, "simulated candles")
        assert chart.get_attribute("data-dataset") == "simulator"
        assert page.locator("#dataset").input_value() == "simulator"
        simulated = _closes(page)
        lean = page.request.get(
            dashboard + "api/bars",
            params={
                "symbol": "SPY",
                "timeframe": "1s",
                "limit": 600,
                "dataset": REPLAY,
            },  # fmt: skip
        ).json()
        low, high = min(b["low"] for b in lean), max(b["high"] for b in lean)
        assert min(simulated) > high  # far apart: a chart mixing the two could not hide it
        _poll(lambda: page.text_content("#last"), "the live price of the simulated SPY")
        page.select_option("#dataset", REPLAY)
        _poll(lambda: chart.get_attribute("data-dataset") == REPLAY, "the chart of the replay")
        _poll(
            lambda: int(chart.get_attribute("data-bars") or 0) == len(lean), "the replay's candles"
        )
        assert _closes(page) == [b["close"] for b in lean]
        assert page.url.endswith(f"dataset={REPLAY}&symbol=SPY&timeframe=1s")
        # the run goes on pushing simulated bars; none of them enters the replay's chart
        seen = int(page.evaluate("document.body.dataset.messages"))
        _poll(lambda: int(page.evaluate("document.body.dataset.messages")) > seen + 10,
              "live updates while the replay is shown")  # fmt: skip
        page.evaluate("() => new Promise(requestAnimationFrame)")
        assert chart.get_attribute("data-live") == "0"
        assert all(low <= c <= high for c in _closes(page))
        assert page.text_content("#last") == ""  # the run's live price is not the replay's
        # its times are drawn in the exchange's time zone, UTC a click away
        assert _first_x(page) == _wall_time(lean[0]["bar_start"], "America/New_York")
        page.click("#zones button[data-zone='UTC']")
        _poll(lambda: chart.get_attribute("data-zone") == "UTC", "UTC times")
        assert _first_x(page) == _wall_time(lean[0]["bar_start"], "UTC")
        assert page.url.endswith("&tz=UTC")
        _shot(page, "symbol-replay")
        page.select_option("#dataset", "simulator")
        _poll(lambda: chart.get_attribute("data-dataset") == "simulator", "the simulator's chart")
        _poll(lambda: min(_closes(page) or [0]) > high, "simulated prices again")

    def test_alerts_page_shows_an_alert_raised_during_the_test(self, dashboard, page):
        started = time.time_ns() // 1_000_000  # the rows hold milliseconds since the epoch
        page.goto(dashboard + "alerts")
        fresh = _poll(
            lambda: [
                ts
                for ts in page.eval_on_selector_all(
                    "#alerts tbody tr", "rows => rows.map(r => Number(r.dataset.ts))"
                )
                if ts >= started
            ],
            "an alert raised after the test started",
        )
        assert fresh

        def shown(column: int) -> list[str]:
            return page.eval_on_selector_all(
                "#alerts tbody tr", f"rows => rows.map(r => r.cells[{column}].textContent)"
            )

        # the filters are the server's: the rows change once its answer is in
        page.select_option("#rule", "jump")
        _poll(lambda: set(shown(3)) == {"jump"}, "the jump alerts")
        page.select_option("#rule", "")
        page.select_option("#severity", "info")
        _poll(lambda: set(shown(4)) == {"info"}, "the info alerts")  # macd_turn alerts are info
        page.select_option("#severity", "")
        _poll(lambda: len(set(shown(3))) == 2, "every rule's alerts again")
        symbol = shown(1)[0]
        page.fill("#symbol", symbol.lower())  # typed as the user likes
        _poll(lambda: set(shown(1)) == {symbol}, "the symbol's alerts")
        page.fill("#symbol", "")
        _shot(page, "alerts")

    def test_pipeline_page_shows_a_tick_rate(self, dashboard, page):
        page.goto(dashboard + "pipeline")
        rate = _poll(
            lambda: (
                (text := page.text_content("#ticks_per_s")) != "—"
                and float(text.replace(",", "")) > 0
                and text
            ),
            "a non-zero tick rate",
        )
        assert float(rate.replace(",", "")) > 0
        assert page.text_content("#latency_p50_ms").endswith("ms")
        assert page.is_visible("#rate")
        badge = _badge(page)
        assert badge["text"] == "live pipeline: simulator" and badge["color"] == GREEN
        _poll(lambda: page.eval_on_selector_all("#tables tbody tr", "r => r.length"), "the lake")
        _shot(page, "pipeline")


def _closes(page) -> list[float]:
    """The close prices the chart's candlestick trace draws."""
    return page.evaluate(
        "() => document.getElementById('chart').data.find(t => t.name === 'price').close"
    )


def _first_x(page) -> str:
    """The time the chart draws its first candle at."""
    return page.evaluate(
        "() => document.getElementById('chart').data.find(t => t.name === 'price').x[0]"
    )


def _wall_time(iso: str, zone: str) -> str:
    """The wall time in ``zone`` of an API time, as the chart's axis text (the oracle)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    at = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return at.strftime("%Y-%m-%d %H:%M:%S") + (f".{at.microsecond:06d}" if at.microsecond else "")


def _series(page) -> dict:
    return page.evaluate(
        """() => { const c = document.getElementById('chart'), x = (c.layout || {}).xaxis || {};
            return {bars: Number(c.dataset.bars || 0), first: Number(c.dataset.first || 0),
                    complete: c.dataset.complete, range: c.dataset.range, zone: c.dataset.zone,
                    title: (x.title || {}).text, view: x.range}; }"""
    )


def test_a_symbol_page_goes_back_in_time_in_the_exchanges_time_zone(
    page, lean_dashboard, lean_lake
):
    """The latest 600 bars first; the wheel zooms out into earlier ones, read as needed; a
    range button shows a day or the whole series; times in New York's, then UTC. IBM: the
    day's 6,326 one-second bars (SPY's 18,012: the test took 26 s against 10 here, and 61 to
    137 s on busy CI machines, mostly Chromium drawing them)."""
    from marketpulse.analytics import query

    [stored] = query(
        lean_lake.lake, "SELECT count(*) AS n, min(bar_start) AS first FROM bars "
        "WHERE symbol = 'IBM' AND timeframe = '1s'",
    ).to_pylist()  # fmt: skip
    assert stored["n"] > 5000
    latest = page.request.get(
        lean_dashboard + "api/bars", params={"symbol": "IBM", "timeframe": "1s", "limit": 600}
    ).json()
    page.goto(lean_dashboard + "symbol?symbol=IBM&timeframe=1s")
    _poll(lambda: _series(page)["bars"] == 600, "the latest 600 bars")
    shown = _series(page)
    assert shown["zone"] == "America/New_York" and "America/New_York" in shown["title"]
    assert _first_x(page) == _wall_time(latest[0]["bar_start"], "America/New_York")
    # UTC a click away (while 600 bars are drawn: a click on the whole day's 23,000 waited
    # out its 30 s on a busy CI machine)
    page.click("#zones button[data-zone='UTC']")
    _poll(lambda: _series(page)["zone"] == "UTC", "UTC")
    assert _series(page)["title"] == "time (UTC)"
    assert _first_x(page) == _wall_time(latest[0]["bar_start"], "UTC")
    # the mouse wheel zooms out past the first bar: earlier bars are read and drawn
    box = page.locator("#chart .draglayer .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(3):
        page.mouse.wheel(0, 300)
    _poll(lambda: _series(page)["bars"] > 600, "earlier bars")
    wider = _series(page)
    assert wider["first"] < shown["first"] and wider["range"] == ""
    # a day: every bar of the Lean day; all: the series, known to be whole
    page.click("#ranges button[data-range='1D']")
    _poll(lambda: _series(page)["bars"] == stored["n"], "the whole day's bars", timeout=120)
    _poll(lambda: _series(page)["range"] == "1D", "the 1D range")
    view = _series(page)["view"]
    assert view[0].startswith("2013-10-06 2") or view[0].startswith("2013-10-07 0")  # a day back
    page.click("#ranges button[data-range='all']")
    _poll(lambda: _series(page)["complete"] == "1", "the series read whole")
    assert _series(page)["bars"] == stored["n"]
    assert "(all)" in page.text_content("#info")
    for name in ("1D", "1W", "1M", "1Y", "all"):
        assert page.is_visible(f"#ranges button[data-range='{name}']")
    assert _first_x(page) == _wall_time(stored["first"].isoformat(), "UTC")
    _shot(page, "symbol-all")


def test_each_alert_rule_has_its_own_marker_a_legend_entry_and_a_toggle(page, lean_dashboard):
    page.goto(lean_dashboard + "symbol?symbol=SPY&timeframe=1m")
    chart = page.locator("#chart")
    _poll(lambda: int(chart.get_attribute("data-bars") or 0) == 600, "candles")

    def markers() -> dict[str, dict]:
        return {
            t["rule"]: t
            for t in page.evaluate(
                """() => document.getElementById('chart').data.filter(t => t.meta && t.meta.rule)
                    .map(t => ({rule: t.meta.rule, name: t.name, symbol: t.marker.symbol,
                                color: t.marker.color, points: t.x.length, visible: t.visible}))"""
            )
        }

    first = int(chart.get_attribute("data-first"))
    alerts = page.request.get(
        lean_dashboard + "api/alerts", params={"symbol": "SPY", "limit": 100_000}
    ).json()
    expected: dict[str, int] = {}
    for a in alerts:
        start = int(_epoch_ms(a["bar_start"]))
        if a["timeframe"] == "1m" and start >= first:
            expected[a["rule"]] = expected.get(a["rule"], 0) + 1
    drawn = markers()
    assert {r: m["points"] for r, m in drawn.items()} == expected and len(expected) >= 3
    styles = {(m["symbol"], m["color"]) for m in drawn.values()}
    assert len(styles) == len(drawn)  # one marker style per rule
    assert len({m["symbol"] for m in drawn.values()}) == len(drawn)  # shapes differ too
    legend = page.eval_on_selector_all("#chart .legend .traces", "t => t.map(x => x.textContent)")
    for rule, m in drawn.items():
        assert m["name"] == f"alert {rule} ({expected[rule]})" and m["name"] in legend
    # a click on a rule's legend entry hides its markers; another shows them
    rule = sorted(drawn)[0]
    entry = page.locator("#chart .legend .traces", has_text=f"alert {rule} (")
    entry.click()
    _poll(lambda: markers()[rule]["visible"] == "legendonly", "the rule's markers hidden")
    assert chart.get_attribute("data-hidden-rules") == rule
    assert all(m["visible"] is True for r, m in markers().items() if r != rule)
    entry.click()
    _poll(lambda: markers()[rule]["visible"] is True, "the rule's markers shown again")
    _shot(page, "symbol-markers")
    # the same rule keeps its style on another symbol of the dataset
    page.select_option("#symbol", "AIG")
    _poll(lambda: page.url.endswith("symbol=AIG&timeframe=1m") and markers(), "AIG's markers")
    for rule, m in markers().items():
        if rule in drawn:
            assert (m["symbol"], m["color"]) == (drawn[rule]["symbol"], drawn[rule]["color"])


def _epoch_ms(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


def test_a_symbol_page_opened_before_any_data_fills_once_a_dataset_is_written(page, tmp_path):
    with _serve(tmp_path, "dashboard", "--lake", str(tmp_path / "lake")) as url:
        page.goto(url)  # the watchlist: loading, then says why it is empty
        assert page.get_attribute("#state", "data-state") in ("loading", "empty")
        _poll(lambda: page.get_attribute("#state", "data-state") == "empty", "the empty state")
        assert "No data yet" in page.text_content("#state")
        page.goto(url + "symbol")
        page.wait_for_selector("#dataset", state="attached")
        assert page.eval_on_selector_all("#dataset option", "o => o.length") == 0  # nothing yet
        assert page.eval_on_selector_all("#symbol option", "o => o.length") == 0
        _replay_lean(tmp_path)
        chart = page.locator("#chart")
        _poll(lambda: int(chart.get_attribute("data-bars") or 0) > 0, "candles of the replay")
        assert chart.get_attribute("data-dataset") == REPLAY
        assert page.locator("#dataset").input_value() == REPLAY
        assert page.url.endswith(f"?dataset={REPLAY}&symbol=AIG&timeframe=1s")


def test_a_lake_dashboards_last_price_stays_shown_when_the_symbol_changes_and_back(
    page, lean_dashboard
):
    """A lake sends each symbol's last price once (nothing changes it): a page that resets
    after that must still show it (once, a reset just after the first push blanked it)."""
    page.goto(lean_dashboard + "symbol?symbol=SPY&timeframe=1m")
    _poll(lambda: page.text_content("#last"), "SPY's last price")
    spy = page.text_content("#last")
    page.select_option("#symbol", "AIG")
    _poll(lambda: page.text_content("#last") not in ("", spy), "AIG's last price")
    page.select_option("#symbol", "SPY")
    _poll(lambda: page.text_content("#last") == spy, "SPY's last price again")


GREEN = "rgb(47, 191, 113)"  # the colour of a live pipeline's badge


def _badge(page) -> dict[str, str]:
    """The source badge's text, class and colour, once it names a dataset."""
    _poll(lambda: ":" in page.text_content("#status"), "the source badge")
    return page.eval_on_selector(
        "#status",
        "s => ({text: s.textContent, cls: s.className, color: getComputedStyle(s).color})",
    )


def test_a_lake_dashboard_says_its_pages_show_a_stored_dataset(page, lean_dashboard, lean_lake):
    """Over a lake: the badge says "stored dataset", not green; the pipeline page shows what
    the lake holds (rows, span, files per table; dead letters by reason), not empty tiles."""
    from marketpulse.analytics import query

    page.goto(lean_dashboard + "pipeline")
    badge = _badge(page)
    assert badge["text"] == f"stored dataset: {REPLAY}"
    assert "source-lake" in badge["cls"] and badge["color"] != GREEN
    _poll(lambda: page.eval_on_selector_all("#tables tbody tr", "r => r.length"), "the tables")
    shown = page.eval_on_selector_all(
        "#tables tbody tr", "rs => rs.map(r => [r.dataset.table, Number(r.dataset.rows),"
        " r.cells[2].textContent, r.cells[4].textContent])",
    )  # fmt: skip
    stored = query(
        lean_lake.lake,
        "SELECT 'bars' AS t, count(*) AS n, min(bar_start) AS first FROM bars UNION ALL "
        "SELECT 'indicators', count(*), min(bar_start) FROM indicators UNION ALL "
        "SELECT 'alerts', count(*), min(bar_end) FROM alerts UNION ALL "
        "SELECT 'trades', count(*), min(ts) FROM trades",
    ).to_pylist()
    files = {t: len(list((lean_lake.lake / t).rglob("*.parquet"))) for t in ("bars", "trades")}
    assert [row[:2] for row in shown] == [[r["t"], r["n"]] for r in stored]  # no empty tables
    assert shown[3][1] == 388_417  # every trade of the Lean file
    assert shown[0][2] == stored[0]["first"].strftime("%Y-%m-%d %H:%M:%S")
    assert [int(shown[0][3]), int(shown[3][3])] == [files["bars"], files["trades"]]
    assert page.is_visible("#no-reasons") and not page.is_visible("#reasons")  # no dead letters
    # no rate exists over a lake: its tiles and chart are not shown empty
    assert not page.is_visible("#ticks_per_s") and not page.is_visible("#rate")
    assert "no pipeline streams" in page.text_content("#source")
    icon = page.evaluate("fetch(document.querySelector('link[rel=icon]').href).then(r => r.status)")
    assert icon == 200
    _shot(page, "pipeline-lake")


def test_the_alerts_page_counts_every_alert_of_a_dataset_and_pages_through_them(
    page, lean_dashboard, lean_lake
):
    """The count is the lake's, not the rows a page holds; older pages are a click away."""
    from marketpulse.analytics import query

    rows = query(lean_lake.lake, "SELECT rule, count(*) AS n FROM alerts GROUP BY rule")
    by_rule = {r["rule"]: r["n"] for r in rows.to_pylist()}
    total = sum(by_rule.values())
    assert total > 200  # more than two pages
    page.goto(lean_dashboard + "alerts")
    count = page.locator("#count")
    _poll(lambda: count.get_attribute("data-total"), "the count")
    assert int(count.get_attribute("data-total")) == total
    assert count.text_content() == f"1–100 of {total:,} alerts"

    def ids() -> list[str]:
        return page.eval_on_selector_all("#alerts tbody tr", "rs => rs.map(r => r.dataset.id)")

    newest = ids()
    assert len(newest) == 100 and page.is_disabled("#newer")
    page.click("#older")
    _poll(lambda: count.get_attribute("data-offset") == "100" and ids() != newest, "page two")
    second = page.evaluate("fetch('/api/alerts?limit=100&offset=100').then(r => r.json())")
    assert ids() == [a["id"] for a in second]
    assert count.text_content() == f"101–200 of {total:,} alerts"
    page.click("#newer")
    _poll(lambda: ids() == newest, "page one again")
    # each rule is listed with its count; picking one counts that rule's
    options = page.eval_on_selector_all(
        "#rule option", "os => os.map(o => [o.value, o.textContent])"
    )
    assert options[1:] == [[r, f"{r} ({n:,})"] for r, n in sorted(by_rule.items())]
    rule = max(by_rule, key=by_rule.get)
    page.select_option("#rule", rule)
    _poll(lambda: count.get_attribute("data-total") == str(by_rule[rule]), "the rule's count")
    shown = page.eval_on_selector_all("#alerts tbody tr", "rs => rs.map(r => r.dataset.rule)")
    assert set(shown) == {rule}


def test_watchlist_keeps_up_with_a_thousand_symbols(page, tmp_path):
    with _run(tmp_path, "--symbols", "1000", "--rate", "5000", "--intervals", "1s") as url:
        page.goto(url)
        first = _poll(
            lambda: (p := _prices(page)) and len(p) == 1000 and p, "1,000 rows", timeout=120
        )
        _poll(
            lambda: sum(v != first[s] for s, v in _prices(page).items()) >= 100,
            "a hundred prices to change",
            timeout=120,
        )
        page.fill("#filter", "AAPL")
        _poll(lambda: "AAPL" in _prices(page) and len(_prices(page)) < 10, "the filter")
        page.fill("#filter", "")
        _shot(page, "watchlist-1000")


def test_pipeline_page_shows_consumer_lag_when_following_kafka_topics(
    page, tmp_path, kafka_bootstrap, topic_prefix
):
    kafka = ["--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix]
    with (
        _run(tmp_path, *kafka, "--symbols", "6", "--rate", "2000", "--intervals", "1s"),
        _serve(tmp_path, "dashboard", *kafka, "--lake", str(tmp_path / "lake")) as url,
    ):
        page.goto(url + "pipeline")
        partitions = _poll(
            lambda: page.eval_on_selector_all(
                "#lag tbody tr", "rows => rows.map(r => r.cells[0].textContent)"
            ),
            "the lag table",
        )
        assert {p.split("[")[0] for p in partitions} == {
            f"{topic_prefix}{t}" for t in ("bars", "indicators", "alerts", "dlq")
        }
        _poll(
            lambda: (
                (t := page.text_content("#ticks_per_s")) != "—" and float(t.replace(",", "")) > 0
            ),
            "a tick rate from the bars topic",
        )
        badge = _badge(page)
        assert badge["text"].startswith("Kafka topics: ") and "source-topics" in badge["cls"]
        _shot(page, "pipeline-kafka")


def test_api_docs_page_renders_every_operation(page, tmp_path):
    """`/docs`: the bundled Swagger UI renders the API under the page's strict policy."""
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    with _serve(tmp_path, "dashboard", "--lake", str(tmp_path / "lake")) as url:
        schema = page.request.get(url + "openapi.json").json()
        page.goto(url + "docs")
        # either the operations or Swagger UI's refusal of the document
        page.wait_for_selector(".opblock-summary-path, .version-pragma", timeout=60_000)
        assert "Unable to render this definition" not in page.text_content("body")
        shown = page.eval_on_selector_all(
            ".opblock-summary-path", "paths => paths.map(p => p.dataset.path || p.textContent)"
        )
        assert sorted(shown) == sorted(schema["paths"])
        # an operation opens with its parameters, a nullable one shown as a plain string
        page.click("#operations-history-bars_api_bars_get .opblock-summary")
        bars = page.locator("#operations-history-bars_api_bars_get")
        bars.locator(".parameters-container tr[data-param-name='start']").wait_for()
        start = bars.locator("tr[data-param-name='start'] .parameter__type").text_content()
        assert start.strip().startswith("string")
        _shot(page, "docs")
    assert console_errors == [], console_errors


def test_the_indicator_pane_draws_any_declared_indicator_the_user_picks(page, tmp_path):
    """A lake written with declared indicators: the select lists them; the pane draws the pick."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    result = subprocess.run(
        [sys.executable, "-m", "marketpulse", "replay", str(LEAN / "trades.csv.gz"),
         "--intervals", "1m", "--lake", str(tmp_path / "lake"), "--speed", "max",
         "--indicators", "ema(50), rsi(7), bb=bbands(20, 2.5)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with _serve(tmp_path, "dashboard", "--lake", str(tmp_path / "lake")) as url:
        rows = page.request.get(
            url + "api/indicators", params={"symbol": "SPY", "timeframe": "1m", "limit": 600}
        ).json()
        page.goto(url + "symbol?symbol=SPY&timeframe=1m")
        chart = page.locator("#chart")
        _poll(lambda: int(chart.get_attribute("data-bars") or 0) > 100, "candles")
        options = page.eval_on_selector_all("#indicator option", "o => o.map(x => x.value)")
        assert options == ["ema_50", "rsi_7", "bb_upper", "bb_middle", "bb_lower"]
        assert chart.get_attribute("data-indicator") == "rsi_7"  # the first RSI column
        assert int(chart.get_attribute("data-rsi")) == 0  # rsi_14 was not declared

        def pane():
            return page.evaluate(
                """() => document.getElementById('chart').data.filter(t => t.yaxis === 'y3')
                    .map(t => ({name: t.name, y: t.y}))"""
            )

        (drawn,) = pane()
        assert drawn["name"] == "RSI 7" and drawn["y"] == [r["rsi_7"] for r in rows]
        page.select_option("#indicator", "ema_50")
        _poll(lambda: chart.get_attribute("data-indicator") == "ema_50", "the picked indicator")
        (drawn,) = pane()
        assert drawn["name"] == "EMA 50" and drawn["y"] == [r["ema_50"] for r in rows]
        points = sum(r["ema_50"] is not None for r in rows)
        assert int(chart.get_attribute("data-indicator-points")) == points > 100
        assert page.locator("#chart .yaxislayer-above .y3tick").count() > 0  # drawn, on its scale
        assert "indicator=ema_50" in page.url
        # no trace of a classic column the run did not declare
        names = page.evaluate("() => document.getElementById('chart').data.map(t => t.name)")
        assert "SMA 20" not in names and "MACD" not in names and "BB upper" in names
        page.reload()  # the pick is the page's address
        _poll(lambda: chart.get_attribute("data-indicator") == "ema_50", "the pick kept")
        _shot(page, "symbol-declared-indicator")


def test_a_live_run_with_declared_indicators_charts_them_as_they_close(page, tmp_path):
    with _serve(
        tmp_path, "run", "--symbols", "3", "--rate", "500", "--intervals", "1s",
        "--indicators", "ema(5), rsi(7)", "--lake", str(tmp_path / "lake"), "--duration", "300",
        "--updates-per-s", "10",
    ) as url:  # fmt: skip
        page.goto(url + "symbol?timeframe=1s")
        chart = page.locator("#chart")
        _poll(lambda: int(chart.get_attribute("data-live") or 0) >= 10, "bars pushed live")
        options = page.eval_on_selector_all("#indicator option", "o => o.map(x => x.value)")
        assert options == ["ema_5", "rsi_7"]
        _poll(lambda: int(chart.get_attribute("data-indicator-points") or 0) > 5, "RSI 7 drawn")
        assert chart.get_attribute("data-indicator") == "rsi_7"
        page.select_option("#indicator", "ema_5")
        _poll(lambda: chart.get_attribute("data-indicator") == "ema_5", "the picked indicator")
        assert int(chart.get_attribute("data-indicator-points")) > 5


def test_alerts_page_charts_each_rules_track_record_against_random_bars(
    page, lean_dashboard, lean_lake
):
    """`marketpulse dashboard` over the replayed Lean day: the default rules' backtest."""
    from marketpulse.analytics import query

    stored = {
        r["rule"]: r["n"]
        for r in query(lean_lake.lake, "SELECT rule, count(*) AS n FROM alerts GROUP BY rule")
        .to_pylist()
    }  # fmt: skip
    page.goto(lean_dashboard + "alerts")
    _poll(lambda: page.get_attribute("#track", "data-rules"), "the track record chart", 120)
    record = page.evaluate(
        "fetch('/api/track-record?horizon=15').then(r => r.json())"
    )  # fmt: skip
    charted = [r for r in record["rules"] if r["alerts"]]
    assert {r["rule"]: r["alerts"] for r in charted} == stored  # what the stream raised
    assert int(page.get_attribute("#track", "data-rules")) == len(charted) >= 4
    assert page.get_attribute("#track", "data-horizon") == "15"
    rows = page.eval_on_selector_all("#track-table tbody tr", "rs => rs.map(r => r.dataset.rule)")
    assert rows == [r["rule"] for r in charted]
    # two box traces (the alerts, the random bars), one box per rule with returns
    traces = page.evaluate("document.getElementById('track').data.map(t => [t.name, t.x])")
    with_returns = [r["rule"] for r in charted if r["returns"]]
    assert traces == [["alerts", with_returns], ["random bars", with_returns]]
    # drawn with both axes named and a legend of the two
    assert page.text_content("#track .g-xtitle") == "alert rule"
    assert page.text_content("#track .g-ytitle") == "forward return after 15 bars (%)"
    legend = page.eval_on_selector_all("#track .legend .traces", "t => t.map(x => x.textContent)")
    assert legend == ["alerts", "random bars"]
    for rule in charted:
        if rule["returns"]:
            assert rule["returns"]["n"] == rule["with_return"]
            assert rule["baseline"]["n"] == 20 * rule["with_return"]
            assert rule["returns"]["low"] <= rule["returns"]["median"] <= rule["returns"]["high"]
    for bad, status in (("horizon=0", 422), ("dataset=nope", 404)):
        got = page.evaluate(f"fetch('/api/track-record?{bad}').then(r => r.status)")
        assert got == status, bad
    page.select_option("#horizon", "5")
    _poll(lambda: page.get_attribute("#track", "data-horizon") == "5", "the 5-bar record")
    page.locator("#track-table").scroll_into_view_if_needed()
    _shot(page, "track-record")


def _forecast_record(lake: Path, symbol: str, timeframe: str) -> dict[tuple[str, int], tuple]:
    """Per model and horizon, (calls whose outcome moved, of those right), from the lake's
    files by hand: the bar ``horizon`` bars of the series later, its close against this one's."""
    import duckdb

    def read(table, columns):
        return duckdb.sql(
            f"SELECT {columns} FROM read_parquet('{lake}/{table}/**/*.parquet', "
            f"hive_partitioning = true) WHERE symbol = '{symbol}' AND timeframe = '{timeframe}' "
            "ORDER BY 1"
        ).fetchall()  # fmt: skip

    bars = read("bars", "epoch_ns(bar_start), close")
    closes = [close for _, close in bars]
    where = {start: i for i, (start, _) in enumerate(bars)}
    out: dict[tuple[str, int], list[int]] = {}
    for start, model, h, direction in read(
        "predictions", "epoch_ns(bar_start), model, horizon, direction"
    ):
        i = where[start]
        tally = out.setdefault((model, h), [0, 0])
        if i + h < len(closes) and closes[i + h] != closes[i] and direction:
            tally[0] += 1
            tally[1] += (closes[i + h] > closes[i]) == (direction > 0)
    return {key: tuple(v) for key, v in out.items()}


def test_a_symbol_page_shows_each_models_latest_call_and_its_record(page, tmp_path):
    """A replay with forecasting models: the symbol page lists them under the chart, with
    the share of their calls the price followed, counted here from the lake's files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    lake = tmp_path / "lake"
    result = subprocess.run(
        [sys.executable, "-m", "marketpulse", "replay", str(LEAN / "trades.csv.gz"),
         "--intervals", "1m", "--lake", str(lake), "--forecast", "online-linear,random",
         "--forecast-horizons", "1,5", "--alerts-file", str(tmp_path / "a.jsonl")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    want = _forecast_record(lake, "IBM", "1m")
    assert set(want) == {(m, h) for m in ("online-linear", "random") for h in (1, 5)}
    with _serve(tmp_path, "dashboard", "--lake", str(lake)) as url:
        page.goto(url + "symbol?symbol=IBM&timeframe=1m")
        page.wait_for_selector("#forecasts:not([hidden]) tbody tr")
        cells = page.eval_on_selector_all(
            "#forecasts tbody tr",
            "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => td.textContent))",
        )
        page.locator("#forecasts").scroll_into_view_if_needed()
        _shot(page, "symbol-forecasts")
    assert len(cells) == 4
    for model, horizon, call, p_up, _, record in cells:
        resolved, hits = want[model, int(horizon)]
        assert resolved > 100
        assert record == f"{100 * hits / resolved:.1f} % of {resolved:,}"
        assert call in ("up", "down", "none")
        assert 0 <= float(p_up) <= 1
    assert {row[0] for row in cells} == {"online-linear", "random"}


def test_a_symbol_page_without_forecasting_models_shows_no_forecasts(page, lean_dashboard):
    with page.expect_response(lambda r: "/api/forecasts" in r.url) as answer:
        page.goto(lean_dashboard + "symbol?symbol=SPY&timeframe=1m")
    assert answer.value.json() == []
    page.wait_for_timeout(300)  # the answer applied
    assert page.is_hidden("#forecasts")
