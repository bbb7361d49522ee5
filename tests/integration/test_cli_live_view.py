"""End to end: the live view of `run` and `replay` fits the terminal it runs in.

The commands run in a pseudo-terminal of a fixed size, as a user types them;
what they wrote is read back raw (line lengths, frame heights) and through a
terminal emulator (what is left on the screen), and compared with the lake.
"""

import itertools
import re

import pyarrow.dataset as ds
import pytest
import talib.abstract

from .conftest import LEAN_TRADES
from .terminal import in_terminal, live_heights, screen, written_lines

pytestmark = pytest.mark.integration

COLUMNS, ROWS = 80, 24
SYMBOLS = 50  # `run`'s default: more than 24 rows hold
DURATION = 25  # s: the simulator's first news items, and fewer 1 s bars than MACD needs


class Run:
    """What one command wrote to its terminal, and the lake it wrote."""

    def __init__(self, raw, lake, columns, rows):
        self.raw, self.lake, self.columns, self.rows = raw, lake, columns, rows
        self.screen = screen(raw, columns, rows)

    def table(self, name):
        return ds.dataset(self.lake / name, partitioning="hive").to_table().to_pylist()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """`marketpulse run` on the simulator, its default 50 symbols, in an 80 x 24 terminal."""
    folder = tmp_path_factory.mktemp("live-run")
    code, raw = in_terminal(
        "run", "--duration", DURATION, "--no-dashboard", "--lake", folder / "lake",
        columns=COLUMNS, rows=ROWS, cwd=folder,
    )  # fmt: skip
    assert code == 0, raw[-2000:]
    return Run(raw, folder / "lake", COLUMNS, ROWS)


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    """`marketpulse replay` of the Lean day (its progress bar), in a 60 x 16 terminal."""
    folder = tmp_path_factory.mktemp("live-replay")
    code, raw = in_terminal(
        "replay", LEAN_TRADES, "--lake", folder / "lake", columns=60, rows=16, cwd=folder
    )
    assert code == 0, raw[-2000:]
    return Run(raw, folder / "lake", 60, 16)


def _cells(line):
    return re.split(r"\s{2,}", line.strip())


def _frame_line(line):
    """Whether the line is one only a frame of the live view draws."""
    header = _cells(line)[:2] == ["symbol", "last"]
    return header or "ticks/s in" in line or (line.startswith("replay ") and "━" in line)


def _watchlist(run):
    """The last frame's table: its header, its rows by symbol and the line after them."""
    header_at = max(
        i for i, line in enumerate(run.screen) if _cells(line)[:2] == ["symbol", "last"]
    )
    header = _cells(run.screen[header_at])
    symbols = {row["symbol"] for row in run.table("trades")}
    rows, after = {}, header_at + 2  # under the header's rule
    while after < len(run.screen) and _cells(run.screen[after])[0] in symbols:
        cells = _cells(run.screen[after])
        rows[cells[0]] = dict(zip(header, cells, strict=False))
        after += 1
    return header_at, rows, run.screen[after]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("which", ["run", "replay"])
def test_no_line_is_wider_than_the_terminal_and_frames_fit_its_height(request, which):
    run = request.getfixturevalue(which)
    # the summary after the live view is one line however wide, as documented (replay.md)
    lines = [line for line in written_lines(run.raw) if not line.startswith("done: ")]
    assert max(len(line) for line in lines) <= run.columns, max(lines, key=len)
    heights = live_heights(run.raw)
    assert heights, "no live display was drawn"
    assert max(heights) <= run.rows


@pytest.mark.timeout(300)
def test_the_table_shows_the_symbols_with_alerts_then_the_busiest_and_counts_the_rest(run):
    _, rows, after = _watchlist(run)
    assert 5 <= len(rows) < SYMBOLS
    assert after.strip() == f"+ {SYMBOLS - len(rows)} more symbols not shown"
    alerted, volume = {}, {}
    for alert in run.table("alerts"):
        alerted[alert["symbol"]] = max(
            alert["bar_end"].timestamp(), alerted.get(alert["symbol"], 0)
        )
    for trade in run.table("trades"):
        volume[trade["symbol"]] = volume.get(trade["symbol"], 0) + trade["size"]
    # the latest alert first, then by volume (the rows without an alert: their own volume)
    expected = sorted(volume, key=lambda s: (-alerted.get(s, 0), -volume[s], s))
    if list(rows) != expected[: len(rows)]:
        # the last frame is the view's last refresh, which may come before the run's last
        # trades: two symbols whose volumes end within 2% may still stand in the order of
        # that moment (seen in a CI run: MSFT 471,654 shown above GOOGL 475,321)
        shown = list(rows)
        for above, below in itertools.pairwise(shown):
            assert alerted.get(above, 0) >= alerted.get(below, 0), (above, below)
            if alerted.get(above, 0) == alerted.get(below, 0):
                assert volume[above] >= 0.98 * volume[below], (above, below)
        left_out = [volume[s] for s in expected if s not in rows and s not in alerted]
        quiet = [volume[s] for s in shown if s not in alerted]
        assert not (left_out and quiet) or max(left_out) <= min(quiet) / 0.98
    assert set(alerted) <= set(rows)  # a few alerts: every alerting symbol is on screen


@pytest.mark.timeout(300)
@pytest.mark.parametrize("which", ["run", "replay"])
def test_log_lines_print_above_the_live_view_not_inside_it(request, which):
    run = request.getfixturevalue(which)
    logs = [i for i, line in enumerate(run.screen) if re.search(r"\b(INFO|WARNING)\b", line)]
    # the pipeline logs its stop while the live view is still drawn
    stopping = [i for i in logs if "pipeline stopping" in run.screen[i]]
    assert stopping, "\n".join(run.screen)
    drawn = [i for i, line in enumerate(run.screen) if _frame_line(line)]
    # the last frame is all that is left of the live view, under every log line
    assert drawn and min(drawn) > max(logs)


@pytest.mark.timeout(300)
def test_alerts_show_in_a_pane_of_their_own_one_line_each(run):
    alerts = run.table("alerts")
    assert alerts, "no alert in the run"
    header_at, _, _ = _watchlist(run)
    pane = [line for line in run.screen[header_at:] if re.match(r"\d\d:\d\d:\d\d ", line)]
    assert pane
    lines = {
        f"{a['bar_end']:%H:%M:%S} {a['symbol']} {a['timeframe']} {a['rule']}: {a['message']}": a
        for a in alerts
    }
    shown = []
    for line in pane:  # one alert a line: whole, or cut to the width with an ellipsis
        whole = [
            text
            for text in lines
            if line == text or (line.endswith("…") and text.startswith(line[:-1]))
        ]
        assert len(whole) == 1, line
        shown.append(lines[whole[0]]["bar_end"])
    assert shown == sorted(shown, reverse=True)  # the latest first
    assert shown[0] == max(a["bar_end"] for a in alerts)


@pytest.mark.timeout(300)
def test_macd_histogram_cells_show_the_warm_up_of_each_symbol(run):
    needed = talib.abstract.Function("MACD").lookback + 1  # MACD(12, 26, 9): its first value
    assert DURATION < needed  # 1 s bars: no symbol has a histogram yet
    bars = {}
    for row in run.table("indicators"):
        if row["timeframe"] == "1s":
            bars[row["symbol"]] = bars.get(row["symbol"], 0) + 1
    _, rows, _ = _watchlist(run)
    assert rows
    for symbol, cells in rows.items():
        assert cells["MACD hist"] == f"{bars[symbol]}/{needed}", cells  # bars so far / needed
        assert cells["RSI"] != "—"  # RSI(14) has its value from bar 15
    note = next(line for line in run.screen if line.startswith("warm-up"))
    assert f"macd_hist {needed}" in note and "1s bars" in note
