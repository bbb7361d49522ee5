"""End to end: `--intervals` with any whole number of s/m/h, and session-aligned daily bars."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from .conftest import LEAN_TRADES

pytestmark = pytest.mark.integration


HOUR_NS = 3_600 * 10**9


def as_ns(text):
    """A time of `marketpulse sql --format json` as nanoseconds since the epoch."""
    return pd.Timestamp(text).value


def session_bars(trades_csv, start, end):
    """Each symbol's OHLCV over [start, end), from the raw trades, with pandas alone."""
    trades = pd.read_csv(trades_csv)
    trades = trades[trades["suspicious"] == 0]
    ts = pd.to_datetime(trades["timestamp"], utc=True)
    day = trades[(ts >= start) & (ts < end)]
    grouped = day.groupby("symbol")
    return pd.DataFrame({
        "open": grouped["price"].first(), "high": grouped["price"].max(),
        "low": grouped["price"].min(), "close": grouped["price"].last(),
        "volume": grouped["size"].sum(), "trades": grouped["price"].count(),
    })  # fmt: skip


def test_replay_builds_4h_and_session_daily_bars_equal_to_pandas(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    env = {"MARKETPULSE_SESSION_CALENDAR": "XNYS"}
    cli("replay", LEAN_TRADES, "--intervals", "1m,4h,1d", "--lake", lake,
        "--alerts-file", tmp_path / "a.jsonl", env=env)  # fmt: skip

    # the regular session of Monday 2013-10-07 on the New York Stock Exchange: 13:30-20:00 UTC
    open_, close = pd.Timestamp("2013-10-07T13:30Z"), pd.Timestamp("2013-10-07T20:00Z")
    expected = session_bars(LEAN_TRADES, open_, close)
    daily = sql(lake, "SELECT * FROM bars WHERE timeframe = '1d' ORDER BY symbol")
    assert [d["symbol"] for d in daily] == list(expected.index) == ["AIG", "BAC", "IBM", "SPY"]
    for bar in daily:
        want = expected.loc[bar["symbol"]]
        assert (as_ns(bar["bar_start"]), as_ns(bar["bar_end"])) == (open_.value, close.value)
        assert [bar[k] for k in ("open", "high", "low", "close", "trades")] == [
            want["open"],
            want["high"],
            want["low"],
            want["close"],
            want["trades"],
        ]
        assert bar["volume"] == pytest.approx(want["volume"], rel=1e-12)
    # the day's indicator rows are there too, keyed like the bars
    assert sql(lake, "SELECT count(*) AS n FROM indicators WHERE timeframe = '1d'")[0]["n"] == 4

    # 4h bars: epoch-aligned windows over every trade, pre-market and after hours included
    four = sql(lake, "SELECT symbol, bar_start, bar_end, volume FROM bars WHERE timeframe = '4h'")
    assert all(as_ns(b["bar_start"]) % (4 * HOUR_NS) == 0 for b in four)
    assert all(as_ns(b["bar_end"]) - as_ns(b["bar_start"]) == 4 * HOUR_NS for b in four)
    minute = sql(lake, "SELECT sum(volume) AS v FROM bars WHERE timeframe = '1m'")[0]["v"]
    assert sum(b["volume"] for b in four) == pytest.approx(minute, rel=1e-12)
    assert len(four) == 4 * 4  # 08:00, 12:00, 16:00 and 20:00 for each symbol
    assert sql(lake, "SELECT count(*) AS n FROM dlq")[0]["n"] == 0

    # the API serves them: its timeframe parameter takes any interval
    from fastapi.testclient import TestClient

    from marketpulse.serve import LakeData, LakeMarket, ServeSettings, create_app

    data = LakeData(lake)
    app = create_app(ServeSettings(), data, LakeMarket(data))
    with TestClient(app, base_url="http://localhost:8050") as client:
        assert client.get("/api/timeframes").json() == ["1m", "4h", "1d"]
        four_h = client.get("/api/bars", params={"symbol": "SPY", "timeframe": "4h"}).json()
        assert len(four_h) == 4
        (day,) = client.get("/api/bars", params={"symbol": "SPY", "timeframe": "1d"}).json()
        assert (day["bar_start"], day["bar_end"]) == (
            "2013-10-07T13:30:00Z",
            "2013-10-07T20:00:00Z",
        )
        assert day["close"] == expected.loc["SPY", "close"]
    data.close()


def test_run_accepts_daily_bars_and_leaves_the_open_day_open(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    cli("run", "--duration", "2", "--symbols", "3", "--rate", "200", "--intervals", "1s,90s,1d",
        "--lake", lake, "--alerts-file", tmp_path / "a.jsonl")  # fmt: skip
    now = datetime.now(UTC)
    rows = sql(lake, "SELECT timeframe, count(*) AS n, max(bar_end) AS e FROM bars GROUP BY 1")
    closed = {r["timeframe"]: r for r in rows}
    assert closed["1s"]["n"] > 0
    # a day (midnight to midnight in New York without a calendar) closes when it has
    # ended, not when the run stops
    if "1d" in closed:  # the run crossed midnight in New York
        assert pd.Timestamp(closed["1d"]["e"]) <= now
        start = pd.Timestamp(closed["1d"]["e"]).tz_convert(ZoneInfo("America/New_York"))
        assert (start.hour, start.minute) == (0, 0)


@pytest.mark.parametrize(
    ("intervals", "env", "message"),
    [
        ("1m,7x", {}, "error: --intervals: '7x' is not an interval"),
        ("1d,1m", {}, "error: --intervals: intervals 1d,1m must be ascending (1m,1d)"),
        ("1m,90s", {}, "error: --intervals: interval 90s is not a multiple of the first, 1m"),
        (None, {"MARKETPULSE_INTERVALS": "1m,2d"},
         "error: intervals (MARKETPULSE_INTERVALS or the config file): '2d' is not an interval"),
        ("1m,1d", {"MARKETPULSE_SESSION_CALENDAR": "NOPE"},
         "error: unknown exchange calendar 'NOPE'"),
    ],
)  # fmt: skip
def test_bad_intervals_are_refused_in_one_line(cli, tmp_path, intervals, env, message):
    args = ["replay", LEAN_TRADES, "--lake", tmp_path / "lake"]
    result = cli(*args, *(["--intervals", intervals] if intervals else []), ok=False, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "lake" / "bars").exists()


@pytest.mark.parametrize("how", ["option", "setting"])
def test_replay_fill_gaps_closes_every_minute_with_the_previous_close(cli, sql, tmp_path, how):
    lake = tmp_path / "lake"
    fill = (["--fill-gaps"], {}) if how == "option" else ([], {"MARKETPULSE_FILL_GAPS": "true"})
    cli("replay", LEAN_TRADES, "--intervals", "1m", *fill[0], "--lake", lake,
        "--alerts-file", tmp_path / "a.jsonl", env=fill[1])  # fmt: skip
    per_symbol = sql(
        lake,
        "SELECT symbol, count(*) AS n, sum(volume) AS v, count(*) FILTER (WHERE trades = 0) "
        "AS empty FROM bars GROUP BY 1 ORDER BY 1",
    )
    traded = sql(lake, "SELECT symbol, sum(size) AS v FROM trades GROUP BY 1 ORDER BY 1")
    # every minute from 08:00 (each symbol's first trade) to 23:59 (the day's last)
    assert [r["n"] for r in per_symbol] == [16 * 60] * 4
    assert all(r["empty"] > 100 for r in per_symbol)
    assert [r["v"] for r in per_symbol] == pytest.approx([r["v"] for r in traded], rel=1e-12)
    wrong = sql(lake, """
        SELECT count(*) AS n FROM (
            SELECT trades, volume, open, high, low, close,
                   lag(close) OVER (PARTITION BY symbol ORDER BY bar_start) AS before
            FROM bars)
        WHERE trades = 0 AND NOT (volume = 0 AND open = before AND high = before
                                  AND low = before AND close = before)""")  # fmt: skip
    assert wrong == [{"n": 0}]


def test_fill_gaps_takes_no_value(cli, tmp_path):
    result = cli("replay", LEAN_TRADES, "--fill-gaps=yes", "--lake", tmp_path / "lake", ok=False)
    assert result.returncode == 2
    assert "--fill-gaps" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_backfill_with_daily_bars_and_filling_equals_the_replay(cli, sql, tmp_path):
    """Streaming equals batch with 4h, 1d and --fill-gaps: `replay` and `backfill --file`."""
    live, batch = tmp_path / "live", tmp_path / "batch"
    env = {"MARKETPULSE_SESSION_CALENDAR": "XNYS"}
    options = ("--intervals", "5m,4h,1d", "--fill-gaps")
    cli("replay", LEAN_TRADES, *options, "--lake", live, "--alerts-file", tmp_path / "a.jsonl",
        env=env)  # fmt: skip
    cli("backfill", "--file", LEAN_TRADES, *options, "--lake", batch, env=env)
    bar_key = "symbol, timeframe, bar_start"
    for table, key in (("bars", bar_key), ("indicators", bar_key), ("alerts", "id")):
        query = f"SELECT * EXCLUDE (period) FROM {table} ORDER BY {key}"
        expected = sql(live, query)
        assert len(expected) > 0
        assert sql(batch, query) == expected, table
    timeframes = sql(live, "SELECT timeframe, count(*) AS n FROM bars GROUP BY 1 ORDER BY 1")
    assert timeframes == [
        {"timeframe": "1d", "n": 4}, {"timeframe": "4h", "n": 16}, {"timeframe": "5m", "n": 4 * 192}
    ]  # fmt: skip
