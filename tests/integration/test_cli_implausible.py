"""End to end: implausible times and values go to the dlq and poison nothing (issue 18)."""

import gzip

import pytest

from .conftest import LEAN_TRADES

pytestmark = pytest.mark.integration


FAR_FUTURE = "2030-01-01T00:00:00.000Z,SPY,167.41,100,P,20002000,0\n"
# the two replays' datasets are their files' names: compared without them
BARS = "SELECT * EXCLUDE (period, dataset) FROM bars ORDER BY symbol, timeframe, bar_start"
LATER_THAN_2020 = "SELECT count(*) AS n FROM trades WHERE ts > TIMESTAMPTZ '2020-01-01 00:00Z'"
VOLUME = "SELECT sum(trades) AS n, sum(volume) AS volume FROM bars WHERE timeframe = '1s'"


def test_one_far_future_trade_in_the_lean_day_changes_no_bar(cli, sql, lean_lake, tmp_path):
    """The issue: inserted after line 1,001, it sent 387,417 trades to the dlq as late."""
    lines = gzip.open(LEAN_TRADES, "rt").readlines()
    poisoned = tmp_path / "poisoned.csv.gz"
    with gzip.open(poisoned, "wt") as out:
        out.writelines(lines[:1001] + [FAR_FUTURE] + lines[1001:])
    clean_lake, lake = lean_lake.lake, tmp_path / "lake"  # clean: replay LEAN_TRADES, unchanged
    cli("replay", poisoned, "--lake", lake, "--alerts-file", tmp_path / "b.jsonl")
    dead = sql(lake, "SELECT reason, source_line AS line, error FROM dlq")
    assert dead == [
        {
            "reason": "future",
            "line": 1002,
            "error": "field ts: 2030-01-01T00:00:00Z is more than 1,209,600 s (max_time_jump) "
            "ahead of its partition's newest trade, 2013-10-07T11:59:02.678Z",
        }
    ]
    # the trades table holds what the processor kept: every trade of the day, not the
    # refused one; each input row is in exactly one of trades and dlq
    assert sql(lake, LATER_THAN_2020) == [{"n": 0}]
    day = sql(lake, "SELECT count(*) AS n FROM trades WHERE period = '2013-10-07'")[0]["n"]
    assert day == len(lines) - 1
    stored = sql(lake, "SELECT count(*) AS n FROM trades")[0]["n"]
    assert stored + len(dead) == len(lines)  # the header is not a row, the inserted line is
    expected = sql(clean_lake, BARS)
    assert len(expected) > 40_000
    assert sql(lake, BARS) == expected


def test_implausible_years_and_magnitudes_go_to_the_dlq_and_nothing_stored_is_infinite(
    cli, sql, tmp_path
):
    good = gzip.open(LEAN_TRADES, "rt").readlines()[:41]  # header and 40 trades
    stamp = good[10].split(",")[0]
    bad = {
        "1900-01-01T00:00:00.000Z,SPY,167.41,100,P,,0\n": ("time", "field ts: 1900-01-01"),
        "-0001-01-01T00:00:00.000Z,SPY,167.41,100,P,,0\n": ("parse", "timestamp: '-0001"),
        "9223372036855,SPY,167.41,100,P,,0\n": ("parse", "timestamp: '9223372036855'"),
        f"{stamp},SPY,1e308,100,P,,0\n": ("price", "field price: must be from"),
        f"{stamp},SPY,1e-320,100,P,,0\n": ("price", "got 1e-320"),
        f"{stamp},SPY,167.41,1e30,P,,0\n": ("size", "got 1e+30"),
        f"{stamp},SPY,inf,100,P,,0\n": ("nan", "field price"),
    }
    path = tmp_path / "bad.csv"
    path.write_text("".join(good[:11] + list(bad) + good[11:]))
    lake = tmp_path / "lake"
    cli("replay", path, "--lake", lake, "--alerts-file", tmp_path / "a.jsonl")
    dead = sql(lake, "SELECT source_line AS line, reason, error FROM dlq ORDER BY line")
    assert [(d["line"], d["reason"]) for d in dead] == [
        (12 + i, reason) for i, (reason, _) in enumerate(bad.values())
    ]
    for row, (_, words) in zip(dead, bad.values(), strict=True):
        assert words in row["error"], row
    assert sql(lake, "SELECT count(*) AS n FROM trades")[0]["n"] == 40
    prices = [float(line.split(",")[2]) for line in good[1:]]
    high = sql(lake, "SELECT max(high) AS high, min(low) AS low FROM bars")[0]
    assert (high["high"], high["low"]) == (max(prices), min(prices))
    infinite = sql(
        lake,
        "SELECT (SELECT count(*) FROM bars WHERE isinf(open) OR isinf(high) OR isinf(low) "
        "OR isinf(close) OR isinf(volume) OR isinf(vwap)) AS bars, "
        "(SELECT count(*) FROM trades WHERE isinf(price) OR isinf(size)) AS trades",
    )[0]
    assert infinite == {"bars": 0, "trades": 0}


def _gapped(path):
    """Trades on a Friday and the Monday after: a 3-day gap, as every weekend."""
    friday, monday = "2013-10-04T19:59:59", "2013-10-07T13:30:0"
    rows = [f"{friday}.{i:03d}Z,SPY,167.{i},100,P,,0\n" for i in range(3)]
    rows += [f"{monday}{i}.000Z,SPY,168.{i},100,P,,0\n" for i in range(3)]
    path.write_text("timestamp,symbol,price,size,exchange,condition,suspicious\n" + "".join(rows))
    return path


def test_max_time_jump_setting_bounds_the_jump_a_trade_may_make(cli, sql, tmp_path):
    path = _gapped(tmp_path / "gap.csv")
    lake = tmp_path / "lake"
    cli("replay", path, "--lake", lake, env={"MARKETPULSE_MAX_TIME_JUMP": "86400"})
    # the first Monday trade is refused; the next one confirms the jump
    dead = sql(lake, "SELECT source_line AS line, reason FROM dlq")
    assert dead == [{"line": 5, "reason": "future"}]
    assert sql(lake, VOLUME)[0] == {"n": 5, "volume": 500.0}  # in the bars: all but it
    prices = sql(lake, "SELECT price FROM trades ORDER BY ts")  # in trades too: all but it
    assert [p["price"] for p in prices] == [167.0, 167.1, 167.2, 168.1, 168.2]
    default = tmp_path / "default"
    cli("replay", path, "--lake", default)  # 14 days by default: a weekend passes
    assert sql(default, "SELECT count(*) AS n FROM dlq")[0]["n"] == 0
    assert sql(default, VOLUME)[0] == {"n": 6, "volume": 600.0}


def test_negative_max_time_jump_is_refused_in_one_line(cli, tmp_path):
    path = _gapped(tmp_path / "gap.csv")
    (tmp_path / "marketpulse.toml").write_text("max_time_jump = -1\n")
    result = cli("replay", path, "--lake", tmp_path / "lake", ok=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    # one line naming the file, the setting and the value, from the settings' own check
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: marketpulse.toml: max_time_jump:") and "-1" in line, line
