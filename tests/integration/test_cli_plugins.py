"""End to end: a replay with the README's example plugin, its rows checked against the lake."""

from pathlib import Path

import pytest

from .conftest import LEAN_TRADES
from .db_fixtures import primary_key

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ZSCORE = "examples.zscore_plugin:zscore"


def test_replay_with_the_zscore_plugin_stores_its_values_and_alerts(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    cli("replay", LEAN_TRADES, "--lake", lake, "--alerts-file", tmp_path / "a.jsonl",
        "--plugin", ZSCORE, cwd=REPO)  # fmt: skip
    # one custom row per bar, and each equals the z-score recomputed from the stored bar
    # and its indicators (null where the bands are not warmed up)
    check = sql(
        lake,
        """
        WITH z AS (
          SELECT dataset, symbol, timeframe, bar_start,
                 CASE WHEN bb_upper - bb_middle > 0
                      THEN (close - bb_middle) / ((bb_upper - bb_middle) / 2) END AS expected
          FROM bars_with_indicators)
        SELECT
          (SELECT count(*) FROM bars) AS bars,
          (SELECT count(*) FROM custom) AS custom,
          (SELECT count(*) FROM custom WHERE name <> 'zscore') AS other_names,
          (SELECT count(DISTINCT (dataset, symbol, timeframe, bar_start)) FROM custom) AS keys,
          (SELECT count(*) FROM custom c JOIN z USING (dataset, symbol, timeframe, bar_start)
           WHERE (c.value IS NULL) = (z.expected IS NULL)
             AND (c.value IS NULL OR abs(c.value - z.expected) <= 1e-9 * (1 + abs(z.expected)))
          ) AS equal,
          (SELECT count(value) FROM custom) AS valued,
          (SELECT count(*) FROM z WHERE abs(expected) > 2.5) AS extreme,
          (SELECT count(*) FROM alerts WHERE rule = 'zscore_extreme') AS alerts,
          (SELECT count(*) FROM alerts a JOIN z USING (dataset, symbol, timeframe, bar_start)
           WHERE a.rule = 'zscore_extreme' AND abs(z.expected) > 2.5
             AND abs(a.details['zscore'] - z.expected) <= 1e-9 * (1 + abs(z.expected))
          ) AS alerts_right,
          (SELECT count(*) FROM dlq) AS dead
        """,
    )[0]
    assert check["bars"] > 40_000
    assert check["custom"] == check["keys"] == check["equal"] == check["bars"]
    assert check["other_names"] == 0
    assert 0 < check["valued"] < check["custom"]  # warm-up rows are null
    assert check["extreme"] > 0
    assert check["alerts"] == check["alerts_right"] == check["extreme"]
    assert check["dead"] == 0
    # stored where the indicators are: custom/dataset=/timeframe=/period=
    parts = {p.relative_to(lake / "custom").parts[:2] for p in (lake / "custom").rglob("*.parquet")}
    assert parts == {("dataset=lean-2013-10-07-trades", f"timeframe={tf}") for tf in
                     ("1s", "1m", "5m")}  # fmt: skip
    # the alerts also went to the alerts file
    assert '"rule":"zscore_extreme"' in (tmp_path / "a.jsonl").read_text()


def test_a_failing_plugin_is_a_dead_letter_and_the_replay_goes_on(cli, sql, tmp_path):
    (tmp_path / "failing_plugin.py").write_text(
        "def fail(bars):\n    raise ValueError('cannot cope')\n"
    )
    lake = tmp_path / "lake"
    cli("replay", LEAN_TRADES, "--lake", lake, "--plugin", "failing_plugin:fail",
        "--alerts-file", tmp_path / "a.jsonl")  # fmt: skip
    rows = sql(lake, "SELECT count(*) AS n, min(error) AS error, count(DISTINCT reason) AS reasons,"
                     " min(reason) AS reason FROM dlq")[0]  # fmt: skip
    bars = sql(lake, "SELECT count(*) AS n FROM bars")[0]["n"]
    assert bars > 40_000  # processing went on
    assert rows["n"] > 0 and rows["reasons"] == 1 and rows["reason"] == "plugin"
    assert rows["error"] == "plugin failing_plugin:fail: ValueError: cannot cope"
    assert sql(lake, "SELECT count(*) AS n FROM custom")[0]["n"] == 0


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("examples.zscore_plugin", "expected module:function"),
        ("examples.no_such_plugin:zscore", "no module named 'examples.no_such_plugin'"),
        ("examples.zscore_plugin:nothing", "has no attribute 'nothing'"),
        ("examples.zscore_plugin:THRESHOLD", "THRESHOLD is not callable"),
    ],
)
def test_a_bad_plugin_stops_the_command_with_one_line(cli, tmp_path, spec, says):
    for command in (["replay", LEAN_TRADES], ["run", "--duration", "5", "--no-dashboard"]):
        result = cli(*command, "--lake", tmp_path / "lake", "--plugin", spec, ok=False, cwd=REPO)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and spec in lines[0], result.stderr
        assert not (tmp_path / "lake").exists()


def test_a_bad_plugin_in_the_environment_stops_process_with_one_line(cli, tmp_path):
    result = cli("process", "--bootstrap-servers", "127.0.0.1:1", ok=False, cwd=REPO,
                 env={"MARKETPULSE_PLUGINS": "examples.zscore_plugin:zscore,nocolon"})  # fmt: skip
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == "error: plugin 'nocolon': expected module:function (such as mypkg.mod:fn)"


def test_replay_with_the_plugin_into_postgres_equals_the_lake(cli, sql, tmp_path, postgres_url):
    import psycopg

    lake = tmp_path / "lake"
    cli("replay", LEAN_TRADES, "--sink", "postgres", "--sink", "lake", "--lake", lake,
        "--postgres-url", postgres_url, "--postgres-tables", "bars,custom",
        "--intervals", "1m", "--plugin", ZSCORE, cwd=REPO)  # fmt: skip
    expected = sql(lake, "SELECT symbol, epoch_ns(bar_start) AS start, name, value FROM custom"
                         " ORDER BY symbol, bar_start, name")  # fmt: skip
    with psycopg.connect(postgres_url) as conn:
        key = primary_key(conn, "custom")
        got = conn.execute(
            "SELECT symbol, (extract(epoch FROM bar_start) * 1e9)::bigint, name, value"
            " FROM custom ORDER BY symbol, bar_start, name"
        ).fetchall()
    assert key == "symbol,timeframe,bar_start,name,dataset"
    assert len(got) == len(expected) > 1000
    assert [(s, t, n) for s, t, n, _ in got] == [
        (r["symbol"], r["start"], r["name"]) for r in expected
    ]
    assert all(
        (v is None and r["value"] is None) or abs(v - r["value"]) <= 1e-12 * (1 + abs(v))
        for (_, _, _, v), r in zip(got, expected, strict=True)
    )
