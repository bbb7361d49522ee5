"""The stream's predictions in PostgreSQL and InfluxDB: the lake's rows, under the same key."""

import math

import pytest

from .conftest import LEAN_TRADES, marketpulse
from .db_fixtures import influx_query, primary_key

pytestmark = pytest.mark.integration


def test_replay_with_forecast_into_postgres_equals_the_lake(sql, tmp_path, postgres_url):
    import psycopg

    lake = tmp_path / "lake"
    out = marketpulse("replay", LEAN_TRADES, "--sink", "postgres", "--sink", "lake",
                      "--lake", lake, "--postgres-url", postgres_url, "--intervals", "1m",
                      "--forecast", "online-linear,random", "--forecast-horizons", "1,3",
                      cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    expected = sql(lake, "SELECT symbol, timeframe, epoch_ns(bar_start) AS start, model, horizon,"
                         " direction, probability, value FROM predictions"
                         " ORDER BY symbol, timeframe, bar_start, model, horizon")  # fmt: skip
    with psycopg.connect(postgres_url) as conn:
        key = primary_key(conn, "predictions")
        got = conn.execute(
            "SELECT symbol, timeframe, (extract(epoch FROM bar_start) * 1e9)::bigint, model,"
            " horizon, direction, probability, value FROM predictions"
            " ORDER BY symbol, timeframe, bar_start, model, horizon"
        ).fetchall()
    assert key == "symbol,timeframe,bar_start,model,horizon,dataset"
    # two models at two horizons on every bar of the day
    assert len(got) == len(expected) > 4 * 1_000
    assert [row[:6] for row in got] == [
        (r["symbol"], r["timeframe"], r["start"], r["model"], r["horizon"], r["direction"])
        for r in expected
    ]
    for row, r in zip(got, expected, strict=True):
        for value, want in ((row[6], r["probability"]), (row[7], r["value"])):
            if want is None or (isinstance(want, float) and math.isnan(want)):
                assert value is None or math.isnan(value)
            else:
                assert abs(value - want) <= 1e-12 * (1 + abs(want))


def test_replay_with_forecast_into_influx_equals_the_lake(sql, tmp_path, influx_url,
                                                          influx_base_url):  # fmt: skip
    lake = tmp_path / "lake"
    out = marketpulse("replay", LEAN_TRADES, "--sink", "influx", "--sink", "lake",
                      "--lake", lake, "--influx-url", influx_url, "--intervals", "1m",
                      "--forecast", "online-linear,random", "--forecast-horizons", "1,3",
                      cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    expected = sql(lake, "SELECT dataset, symbol, timeframe, model, horizon::VARCHAR AS horizon,"
                         " epoch_ns(bar_start) AS time, epoch_ns(bar_end) AS bar_end, direction,"
                         " probability, value FROM predictions")  # fmt: skip
    tags = ("dataset", "symbol", "timeframe", "model", "horizon")
    got = {}
    database = influx_url.rsplit("/", 1)[1]
    for series in influx_query(influx_base_url, database, "SELECT * FROM predictions GROUP BY *"):
        for values in series["values"]:
            row = dict(zip(series["columns"], values, strict=True)) | series["tags"]
            got[tuple(row[c] for c in (*tags, "time"))] = row
    assert len(got) == len(expected) > 4 * 1_000
    for want in expected:
        row = got[tuple(want[c] for c in (*tags, "time"))]
        assert (row["bar_end"], row["direction"]) == (want["bar_end"], want["direction"])
        for column in ("probability", "value"):
            value = want[column]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert row[column] is None, (column, want, row)
            else:
                assert row[column] == value, (column, want, row)
