"""``marketpulse backtest``: the stream's alerts over the lake's history, and their track record.

Checked against what the stream stored (a replay's alerts) and against forward
returns computed independently in SQL over the stored bars.
"""

import json
import math
import os
import re

import pytest

from .conftest import KAGGLE, LEAN_TRADES, marketpulse, marketpulse_in_process

pytestmark = pytest.mark.integration

RULES = """\
rules:
  - name: fast_over_slow
    type: cross
    column: ema_5
    over: ema_20
    intervals: [1m]
  - name: rsi7_high
    type: rsi
    column: rsi_7
    above: 70
    intervals: [1m]
"""
DECLARED = "ema(5), ema(20), rsi(7)"


@pytest.fixture(scope="module")
def lean_lake(tmp_path_factory):
    """The Lean day replayed with the default rules (dataset lean), then with RULES (declared)."""
    root = tmp_path_factory.mktemp("backtest")
    (root / "rules.yaml").write_text(RULES, encoding="utf-8")
    for args in (
        ("--dataset", "lean"),
        ("--dataset", "declared", "--rules", root / "rules.yaml", "--indicators", DECLARED),
    ):
        result = marketpulse("replay", LEAN_TRADES, "--lake", root / "lake", *args, cwd=root)
        assert result.returncode == 0, result.stderr
    return root


# backtest and sql in this process: what they print is the point, not the start-up (the two
# tests of one-line errors at the end run the command as a user does)
def _run(cwd, *args, ok=True):
    result = marketpulse_in_process("backtest", "--lake", cwd / "lake", *args, cwd=cwd)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def _record(cwd, *args):
    return json.loads(_run(cwd, *args, "--format", "json").stdout)


def _stored(cwd, query):
    out = marketpulse_in_process("sql", query, "--lake", cwd / "lake", "--format", "json", cwd=cwd)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _files(lake):
    return sorted(
        (str(p.relative_to(lake)), p.stat().st_mtime_ns) for p in (lake / "alerts").rglob("*")
    )


def test_backtest_raises_the_alerts_the_stream_stored_and_leaves_them_alone(lean_lake):
    before = _files(lean_lake / "lake")
    rows = _record(lean_lake, "--dataset", "lean", "--horizons", "5")
    stored = {
        r["rule"]: r["n"]
        for r in _stored(
            lean_lake, "SELECT rule, count(*) AS n FROM alerts WHERE dataset = 'lean' GROUP BY rule"
        )  # fmt: skip
    }
    assert sum(stored.values()) > 300
    assert {r["rule"]: r["alerts"] for r in rows if r["alerts"]} == stored
    assert _files(lean_lake / "lake") == before  # nothing written


def test_declared_indicators_and_a_rules_file_backtest_as_they_streamed(lean_lake):
    rows = _record(lean_lake, "--dataset", "declared", "--rules", lean_lake / "rules.yaml",
                   "--indicators", DECLARED, "--horizons", "5,15")  # fmt: skip
    stored = {
        r["rule"]: r["n"]
        for r in _stored(
            lean_lake,
            "SELECT rule, count(*) AS n FROM alerts WHERE dataset = 'declared' GROUP BY rule",
        )  # fmt: skip
    }
    assert set(stored) == {"fast_over_slow", "rsi7_high"}
    for row in rows:
        assert row["alerts"] == stored[row["rule"]]


def test_forward_returns_and_hit_rate_equal_an_independent_sql_computation(lean_lake):
    """rsi_overbought (RSI-14 up through 70: direction up) at 15 bars, from the stored bars."""
    (row,) = [r for r in _record(lean_lake, "--dataset", "lean", "--horizons", "15")
              if r["rule"] == "rsi_overbought"]  # fmt: skip
    returns = [
        r["ret"]
        for r in _stored(lean_lake, """
            WITH b AS (
                SELECT symbol, timeframe, bar_start, close,
                       lead(close, 15) OVER (PARTITION BY symbol, timeframe
                                             ORDER BY bar_start) AS later
                FROM bars WHERE dataset = 'lean')
            SELECT later / close - 1 AS ret
            FROM alerts a JOIN b USING (symbol, timeframe, bar_start)
            WHERE a.dataset = 'lean' AND a.rule = 'rsi_overbought'""")
        if r["ret"] is not None
    ]  # fmt: skip
    assert row["alerts"] >= 10 and row["with_return"] == len(returns)
    assert math.isclose(row["mean_return_pct"], 100 * sum(returns) / len(returns), rel_tol=1e-9)
    assert row["hit_rate"] == sum(r > 0 for r in returns) / len(returns)
    assert row["hit_low"] <= row["hit_rate"] <= row["hit_high"]
    # the baseline: 20 random bars per alert with a return, in the same direction
    assert row["baseline_n"] == 20 * row["with_return"]
    assert row["baseline_hit_low"] <= row["baseline_hit_rate"] <= row["baseline_hit_high"]
    assert 0.0 <= row["p_value"] <= 1.0


def test_the_baseline_is_drawn_again_with_another_seed_only(lean_lake):
    args = ("--dataset", "lean", "--horizons", "5", "--format", "csv")
    first, again = _run(lean_lake, *args).stdout, _run(lean_lake, *args).stdout
    other = _run(lean_lake, *args, "--seed", "7").stdout
    assert first == again and other != first
    rule_part = [line.split(",")[:9] for line in first.splitlines()]
    assert rule_part == [line.split(",")[:9] for line in other.splitlines()]


def test_start_and_end_keep_the_alerts_of_those_dates(lean_lake):
    rows = _record(lean_lake, "--dataset", "lean", "--start", "2013-10-08", "--horizons", "5")
    assert all(r["alerts"] == 0 for r in rows)  # the day is 2013-10-07
    rows = _record(lean_lake, "--dataset", "lean", "--symbols", "SPY", "--end", "2013-10-07",
                   "--horizons", "5")  # fmt: skip
    spy = _stored(lean_lake, "SELECT count(*) AS n FROM alerts"
                             " WHERE dataset = 'lean' AND symbol = 'SPY'")  # fmt: skip
    assert sum(r["alerts"] for r in rows) == spy[0]["n"] > 0


def test_default_rules_over_the_kaggle_daily_series_print_a_track_record(tmp_path):
    replay = marketpulse("replay", KAGGLE, "--lake", tmp_path / "lake", cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr
    result = marketpulse_in_process("backtest", "--lake", tmp_path / "lake", "--horizons",
                                    "5,20", cwd=tmp_path, env={"COLUMNS": "400"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    head, rule_line, *table = result.stdout.splitlines()
    names = head.split()
    assert names[:4] == ["rule", "horizon", "alerts", "with_return"]  # wide enough: all
    assert "baseline_hit_rate" in names and "p_value" in names
    daily = [dict(zip(names, re.split(r"\s{2,}", line.strip()), strict=True)) for line in table]
    assert [d["horizon"] for d in daily if d["rule"] == "daily_move"] == ["5", "20"]
    alerts = int(daily[0]["alerts"].replace(",", ""))
    assert alerts > 1000 and int(daily[0]["baseline_n"].replace(",", "")) == 20 * alerts
    # the daily series: only the rules that watch 1d (or every timeframe) have rows
    assert {d["rule"] for d in daily} == {"rsi_overbought", "rsi_oversold", "daily_move"}
    summary, idle = result.stderr.splitlines()
    assert summary.startswith("backtest of dataset indexProcessed: 104,224 bars,")
    assert "from 3 rules" in summary
    assert "no bars of the timeframes they watch (it has 1d)" in idle
    assert "news_move (1s)" in idle and "macd_cross (1m, 5m)" in idle


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--horizons", "5,x"), "--horizons: expected whole numbers"),
        (("--horizons", "0"), "--horizons: whole numbers of bars, at least 1"),
        (("--baseline", "0"), "--baseline"),
        (("--dataset", "nope"), "--dataset: no bars of dataset 'nope'"),
        (("--symbols", "ZZZ", "--dataset", "lean"), "--symbols: no bars of ZZZ"),
        (("--start", "2013-10-08", "--end", "2013-10-01"), "--end 2013-10-01 is before"),
        (("--start", "yesterday"), "--start: expected a date"),
        (("--dataset", "lean", "--indicators", "ema(5)", "--rules", "rules.yaml"), "reads ema_20"),
    ],
)
def test_bad_uses_are_one_line(lean_lake, args, words):
    result = _run(lean_lake, *args, ok=False)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and words in line, line


def test_a_lake_without_bars_is_one_line(tmp_path):
    result = marketpulse("backtest", "--lake", tmp_path / "none", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == f"error: no bars in the lake at {os.path.join(tmp_path, 'none')}", line


def test_the_dashboards_rules_file_is_checked_before_it_serves(tmp_path):
    """`dashboard --rules` (what the alerts page's track record backtests): a missing file."""
    result = marketpulse("dashboard", "--rules", tmp_path / "none.yaml", "--lake",
                         tmp_path / "lake", "--duration", "1", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "none.yaml" in line, line


@pytest.mark.parametrize("width", [80, 120])
def test_the_table_fits_the_terminal_and_names_what_it_leaves_out(lean_lake, width):
    args = ("backtest", "--lake", lean_lake / "lake", "--dataset", "lean", "--horizons", "5,60")
    table = marketpulse_in_process(*args, cwd=lean_lake, env={"COLUMNS": str(width)})
    whole = marketpulse_in_process(*args, "--format", "csv", cwd=lean_lake,
                                   env={"COLUMNS": str(width)})  # fmt: skip
    assert table.returncode == whole.returncode == 0, table.stderr + whole.stderr
    lines = table.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= width
    shown = lines[0].split()
    assert shown[:3] == ["rule", "horizon", "alerts"]  # in their order; the telling ones first
    assert {"hit_rate", "baseline_hit_rate", "p_value"} <= set(shown)
    every = whole.stdout.splitlines()[0].split(",")  # CSV: every column, whatever the width
    assert len(every) == 16 and set(shown) < set(every)
    (left_out,) = [line for line in table.stderr.splitlines() if "left out to fit" in line]
    assert all(name in left_out for name in set(every) - set(shown))
    assert f"fit {width} characters" in left_out
    # percent columns, when shown, are percentages with a sign; CSV keeps the number
    if "mean_return_pct" in shown:
        cells = re.split(r"\s{2,}", lines[2].strip())
        assert re.fullmatch(r"[+-]\d+\.\d\d %", cells[shown.index("mean_return_pct")])


def test_rules_that_cannot_fire_on_the_data_are_one_line_not_rows_of_nulls(lean_lake):
    """The Lean day has 1s, 1m and 5m bars: daily_move (1d) cannot fire."""
    result = _run(lean_lake, "--dataset", "lean", "--horizons", "5", "--format", "json")
    rows = json.loads(result.stdout)
    assert "daily_move" not in {r["rule"] for r in rows}
    assert {"news_move", "macd_cross", "rsi_overbought"} <= {r["rule"] for r in rows}
    (idle,) = [line for line in result.stderr.splitlines() if "daily_move" in line]
    assert idle.startswith("not applied") and "daily_move (1d)" in idle
    assert "(it has 1s, 1m, 5m)" in idle
    table = _run(lean_lake, "--dataset", "lean", "--horizons", "5")
    assert "daily_move" not in table.stdout
