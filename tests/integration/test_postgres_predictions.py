"""The stream's predictions in PostgreSQL: the lake's rows, under the data contract's key."""

import math

import pytest

from .conftest import LEAN_TRADES, marketpulse

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
        key = conn.execute(
            "SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM pg_index i"
            " JOIN pg_class t ON t.oid = i.indrelid"
            " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
            " WHERE i.indisprimary AND t.relname = 'predictions'"
        ).fetchone()[0]
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
