"""End to end: the marketpulse command on real data, checked through `marketpulse sql`."""

import json

import pytest

from .conftest import KAGGLE, LEAN_TRADES

pytestmark = pytest.mark.integration


def test_run_simulated_market_for_a_duration(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    # 20 s of 1s bars: enough for RSI(14) to warm up
    result = cli("run", "--duration", "20", "--symbols", "12", "--rate", "3000", "--seed", "4",
                 "--lake", lake, "--alerts-file", tmp_path / "alerts.jsonl")  # fmt: skip
    lines = result.stdout.strip().splitlines()
    # not a terminal: periodic figure lines, then the final summary
    assert any(line.startswith("ticks ") for line in lines[:-1])
    assert lines[-1].startswith("done: ticks in ")
    counts = sql(
        lake,
        "SELECT (SELECT count(*) FROM trades) AS trades, "
        "(SELECT count(DISTINCT symbol) FROM trades) AS symbols, "
        "(SELECT count(*) FROM bars WHERE interval = '1s') AS bars_1s, "
        "(SELECT count(*) FROM indicators WHERE rsi_14 IS NOT NULL) AS rsi",
    )[0]
    # the simulator's intraday curve runs from 0.85x the mean rate at midday to
    # 2.6x at the open, and `run` stamps trades with the wall clock's time of day
    assert 3000 * 20 * 0.6 < counts["trades"] < 3000 * 20 * 3.0
    assert counts["symbols"] == 12
    assert counts["bars_1s"] > 12 * 4
    assert counts["rsi"] > 0
    summary = lines[-1]
    assert f"ticks in {counts['trades']:,}" in summary  # everything accepted was flushed


def test_replay_lean_trades_fills_the_lake(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    result = cli("replay", LEAN_TRADES, "--lake", lake, "--alerts-file", tmp_path / "a.jsonl")
    assert "ticks in 388,417" in result.stdout
    rows = sql(
        lake, "SELECT symbol, count(*) AS n, sum(size) AS volume FROM trades GROUP BY 1 ORDER BY 1"
    )
    assert [r["symbol"] for r in rows] == ["AIG", "BAC", "IBM", "SPY"]
    assert sum(r["n"] for r in rows) == 388_417
    bars = sql(
        lake,
        "SELECT interval, count(*) AS n, sum(volume) AS volume FROM bars GROUP BY 1 ORDER BY 1",
    )
    volumes = {b["interval"]: b["volume"] for b in bars}
    # every trade lands in exactly one bar of each interval
    assert volumes["1s"] == volumes["1m"] == volumes["5m"] == sum(r["volume"] for r in rows)
    ind = sql(
        lake, "SELECT count(*) AS n, count(macd) AS macd FROM indicators WHERE interval = '1m'"
    )[0]
    assert ind["n"] == next(b["n"] for b in bars if b["interval"] == "1m")
    assert 0 < ind["macd"] < ind["n"]  # warm-up rows are null
    assert sql(lake, "SELECT count(*) AS n FROM dlq")[0]["n"] == 0
    alerts = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    in_lake = sql(lake, "SELECT count(*) AS n FROM alerts")[0]["n"]
    assert len(alerts) == in_lake > 0


def test_replay_kaggle_daily_bars(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    cli("replay", KAGGLE, "--lake", lake, timeout=900)
    rows = sql(
        lake,
        "SELECT count(*) AS n, count(DISTINCT symbol) AS symbols FROM bars WHERE interval = '1d'",
    )
    assert rows[0] == {"n": 104_224, "symbols": 13}
    hsi = sql(
        lake, "SELECT ts, close, sma_20 FROM indicators WHERE symbol = 'HSI' ORDER BY ts LIMIT 21"
    )
    assert hsi[18]["sma_20"] is None
    assert hsi[19]["sma_20"] == pytest.approx(sum(r["close"] for r in hsi[:20]) / 20, rel=1e-12)


def test_replay_equals_backfill(cli, sql, tmp_path):
    """Streaming equals batch: the same rows from a replay and from a backfill."""
    live, batch, relake = tmp_path / "live", tmp_path / "batch", tmp_path / "relake"
    cli("replay", LEAN_TRADES, "--lake", live, "--alerts-file", tmp_path / "a.jsonl")
    cli("backfill", "--file", LEAN_TRADES, "--lake", batch)
    cli("replay", LEAN_TRADES, "--lake", relake, "--alerts-file", tmp_path / "b.jsonl")
    cli("backfill", "--lake", relake)  # recompute from the lake's own trades, in place
    for table, key in (("bars", "symbol, interval, start"), ("indicators", "symbol, interval, ts"),
                       ("alerts", "id")):  # fmt: skip
        query = f"SELECT * EXCLUDE (date) FROM {table} ORDER BY {key}"
        expected = sql(live, query)
        assert len(expected) > 0
        assert sql(batch, query) == expected, table
        assert sql(relake, query) == expected, table
