"""Declared indicators from the command line, the config file and the environment, end to end."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from marketpulse.indicators import compute

from .conftest import LEAN_TRADES

pytestmark = pytest.mark.integration


talib = pytest.importorskip("talib")

DOZEN = (
    "ema(50), ema(200), rsi(7), bb=bbands(20, 2.5), macd, stoch, adx, obv, "
    "willr, cci, atr(14), vwap"
)
#: A comma that separates declarations (not one between a kind's arguments).
_OUTSIDE_PARENTHESES = r",\s*(?![^()]*\))"
RULES = """
rules:
  - name: golden_cross
    type: cross
    column: ema_50
    over: ema_200
    direction: up
    intervals: [1m]
  - name: fast_rsi
    type: rsi
    column: rsi_7
    below: 20
    intervals: [1m]
"""


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """The Lean day replayed with a dozen declared indicators and rules on them."""
    from .conftest import marketpulse

    where = tmp_path_factory.mktemp("declared")
    (where / "rules.yaml").write_text(RULES)
    result = marketpulse(
        "replay", str(LEAN_TRADES), "--lake", "lake", "--speed", "max", "--intervals", "1m",
        "--indicators", DOZEN, "--rules", "rules.yaml", cwd=where,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return where


def _query(cli, where, text):
    return json.loads(cli("sql", text, "--lake", "lake", "--format", "json", cwd=where).stdout)


def test_every_declared_column_is_stored_and_equals_the_batch_kernels_and_ta_lib(cli, replayed):
    rows = _query(cli, replayed, "select * from indicators order by symbol, bar_start")
    bars = _query(cli, replayed, "select * from bars order by symbol, bar_start")
    declared = [
        "ema_50", "ema_200", "rsi_7", "bb_upper", "bb_middle", "bb_lower", "macd", "macd_signal",
        "macd_hist", "stoch_k", "stoch_d", "adx", "obv", "willr", "cci", "atr_14", "vwap",
    ]  # fmt: skip
    assert set(declared) <= set(rows[0])
    stored = pd.DataFrame(rows)
    frame = pd.DataFrame(bars)
    assert len(stored) == len(frame) > 1_000
    # streaming (the pipeline) equals batch (the DataFrame API over the stored bars)
    batch = compute(frame, DOZEN)
    for column in declared:
        got = stored[column].to_numpy(np.float64, na_value=np.nan)
        want = batch[column].to_numpy(np.float64)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=column)
        np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-12)
    # and an independent reference: TA-Lib over each symbol's stored bars
    for symbol, group in frame.groupby("symbol"):
        mine = stored[stored["symbol"] == symbol]
        close = group["close"].to_numpy(np.float64)
        high, low = group["high"].to_numpy(np.float64), group["low"].to_numpy(np.float64)
        for column, expected in (
            ("ema_200", talib.EMA(close, 200)),
            ("adx", talib.ADX(high, low, close, 14)),
            ("willr", talib.WILLR(high, low, close, 14)),
        ):
            got = mine[column].to_numpy(np.float64, na_value=np.nan)
            warm = ~np.isnan(expected)
            assert warm.sum() > 100, (symbol, column)
            np.testing.assert_array_equal(np.isnan(got), ~warm, err_msg=f"{symbol} {column}")
            np.testing.assert_allclose(got[warm], expected[warm], rtol=1e-9, err_msg=column)


def test_rules_on_declared_columns_fire_on_their_crossings(cli, replayed):
    alerts = _query(cli, replayed, "select rule, symbol from alerts order by bar_end")
    rules = {a["rule"] for a in alerts}
    assert rules == {"golden_cross", "fast_rsi"}
    rows = pd.DataFrame(_query(
        cli, replayed, "select symbol, bar_start, ema_50, ema_200 from indicators order by 1, 2"
    ))  # fmt: skip
    crossings = 0
    for _, group in rows.groupby("symbol"):
        d = group["ema_50"].astype(float) - group["ema_200"].astype(float)
        crossings += int(((d.shift(1) < 0) & (d >= 0)).sum())
    assert crossings > 0
    # each golden_cross alert is one of those crossings (the cooldown may hold some back)
    assert sum(a["rule"] == "golden_cross" for a in alerts) <= crossings


def test_indicators_from_the_config_file_and_the_environment(cli, tmp_path):
    (tmp_path / "mp.toml").write_text('indicators = ["ema(9)", "bb=bbands(10, 1.5)"]\n')
    cli("replay", str(LEAN_TRADES), "--lake", "a", "--speed", "max", "--intervals", "5m",
        "--config", "mp.toml")  # fmt: skip
    file_rows = json.loads(cli("sql", "select * from indicators limit 1", "--lake", "a",
                               "--format", "json").stdout)  # fmt: skip
    assert {"ema_9", "bb_upper", "bb_middle", "bb_lower"} <= set(file_rows[0])
    assert file_rows[0]["rsi_14"] is None  # a default column: in the view, never computed
    cli("replay", str(LEAN_TRADES), "--lake", "b", "--speed", "max", "--intervals", "5m",
        env={"MARKETPULSE_INDICATORS": "kama(10), sar"})  # fmt: skip
    env_rows = json.loads(cli("sql", "select * from indicators limit 1", "--lake", "b",
                              "--format", "json").stdout)  # fmt: skip
    assert {"kama_10", "sar"} <= set(env_rows[0])


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("ema(0)", "indicators: indicator 'ema(0)': period must be between 2 and 100000, not 0"),
        ("nonsense(3)", "unknown kind 'nonsense'"),
        ("ema(50), ema(50)", "column 'ema_50' is declared twice"),
        ("", "--indicators: no indicators given"),
    ],
)
def test_a_bad_declaration_is_one_line_and_exit_2(cli, value, words):
    result = cli("replay", str(LEAN_TRADES), "--lake", "lake", "--indicators", value, ok=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_rules_file_reading_an_undeclared_column_is_refused(cli, tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES)
    result = cli("replay", str(LEAN_TRADES), "--lake", "lake", "--indicators", "ema(50), rsi(7)",
                 "--rules", "rules.yaml", ok=False)  # fmt: skip
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert "rule 'golden_cross' reads ema_200" in line and "declared: ema_50, rsi_7" in line
    assert not (tmp_path / "lake").exists()


def test_bars_with_indicators_carries_the_declared_columns(cli, replayed):
    rows = _query(cli, replayed, "select * from bars_with_indicators where ema_200 is not null "
                  "order by symbol, bar_start limit 3")  # fmt: skip
    assert len(rows) == 3
    assert {"ema_200", "stoch_k", "adx", "open", "session_vwap"} <= set(rows[0])
    both = _query(cli, replayed, "select count(*) as n from bars_with_indicators")
    bars = _query(cli, replayed, "select count(*) as n from bars")
    assert both[0]["n"] == bars[0]["n"] > 1_000


def test_a_dozen_declared_on_4h_and_session_days_in_replay_and_live(cli, tmp_path):
    (tmp_path / "marketpulse.toml").write_text(
        'session_calendar = "XNYS"\nintervals = ["1m", "4h", "1d"]\n'
        f"indicators = {json.dumps(re.split(_OUTSIDE_PARENTHESES, DOZEN))}\n"
    )
    cli("replay", str(LEAN_TRADES), "--config", "marketpulse.toml")
    trades = pd.read_csv(LEAN_TRADES, usecols=["timestamp", "symbol"])
    buckets = pd.to_datetime(trades["timestamp"], utc=True).dt.floor("4h")
    expected_4h = trades.assign(b=buckets).groupby("symbol")["b"].nunique().sum()
    four = json.loads(
        cli("sql", "select count(*) as n, count(obv) as obv from indicators where timeframe = '4h'",
            "--format", "json").stdout
    )  # fmt: skip
    assert four == [{"n": expected_4h, "obv": expected_4h}]
    days = json.loads(
        cli("sql", "select symbol, bar_start, bar_end, obv, stoch_k from indicators "
            "where timeframe = '1d' order by symbol", "--format", "json").stdout
    )  # fmt: skip
    assert [d["symbol"] for d in days] == ["AIG", "BAC", "IBM", "SPY"]
    assert {(d["bar_start"], d["bar_end"]) for d in days} == {
        ("2013-10-07T13:30:00Z", "2013-10-07T20:00:00Z")
    }
    assert all(d["obv"] is not None and d["stoch_k"] is None for d in days)  # one bar: not warm
    live = cli("run", "--config", "marketpulse.toml", "--duration", "3", "--no-dashboard",
               "--symbols", "5")  # fmt: skip
    assert "ticks in" in live.stdout and "error" not in live.stderr.lower()
