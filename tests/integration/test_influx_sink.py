"""The InfluxDB sink against a real server (Debian's influxd, started by the fixtures)."""

import math
import re

import pytest

from marketpulse.sinks import InfluxSink, SinkError, SinkUnavailableError

from .conftest import LEAN_TRADES
from .db_fixtures import free_port, influx_query

pytestmark = pytest.mark.integration


def _database(url):
    return url.rsplit("/", 1)[1]


def test_replay_into_influx_equals_the_lake(cli, sql, tmp_path, influx_url, influx_base_url):
    lake = tmp_path / "lake"
    cli("replay", LEAN_TRADES, "--sink", "influx", "--sink", "lake", "--lake", lake,
        "--influx-url", influx_url)  # fmt: skip
    db = _database(influx_url)
    for table, time_column in (("bars", "start"), ("indicators", "ts")):
        expected = sql(lake, f"SELECT * FROM {table} ORDER BY symbol, interval, {time_column}")
        series = influx_query(influx_base_url, db, f"SELECT * FROM {table} GROUP BY *")
        got = {}
        for s in series:
            for values in s["values"]:
                row = dict(zip(s["columns"], values, strict=True))
                got[(s["tags"]["symbol"], s["tags"]["interval"], row["time"])] = row
        assert len(got) == len(expected) > 0, table
        for lake_row in expected:
            row = got[(lake_row["symbol"], lake_row["interval"], lake_row[time_column])]
            for column, value in lake_row.items():
                if column in ("symbol", "interval", "date", time_column):
                    continue
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    assert row[column] is None, (table, column)
                else:
                    assert row[column] == value, (table, column, lake_row, row)
    alerts = sql(lake, "SELECT count(*) AS n FROM alerts")[0]["n"]
    counted = influx_query(influx_base_url, db, "SELECT count(message) FROM alerts")
    assert counted[0]["values"][0][1] == alerts > 0


def test_writing_again_replaces_points(cli, tmp_path, influx_url, influx_base_url):
    for _ in range(2):
        done = cli("replay", LEAN_TRADES, "--sink", "influx", "--influx-url", influx_url)
    summary = done.stdout.strip().splitlines()[-1]
    made = _count(summary, "bars")
    db = _database(influx_url)
    bars = influx_query(influx_base_url, db, "SELECT count(close) FROM bars")[0]["values"][0][1]
    distinct = influx_query(
        influx_base_url, db, "SELECT count(close) FROM bars GROUP BY symbol, interval"
    )
    assert bars == sum(s["values"][0][1] for s in distinct) == made > 0  # one point per bar


def _count(summary, name):
    """The figure after ``name`` in the replay's summary line ("bars 44,819, ...")."""
    return int(re.search(rf"\b{name} ([\d,]+)", summary).group(1).replace(",", ""))


def test_influx_down_at_start_is_a_clear_error(cli):
    url = f"http://admin:secret-pw@127.0.0.1:{free_port()}/market"
    result = cli("replay", LEAN_TRADES, "--sink", "influx", "--influx-url", url, ok=False)
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: reach InfluxDB at http://admin:********@127.0.0.1:")
    assert "secret-pw" not in result.stderr + result.stdout


def test_a_refused_write_is_not_retried(influx_base_url):
    sink = InfluxSink(f"{influx_base_url}/mp_refused", retry_s=60).open()
    sink._lines.append("bars,symbol=A close=1 notatime")  # malformed: HTTP 400
    sink._since = 0.0
    with pytest.raises(SinkError, match="HTTP 400") as raised:
        sink.flush()
    assert not isinstance(raised.value, SinkUnavailableError)


def test_a_url_without_database_is_rejected():
    with pytest.raises(ValueError, match="expected http"):
        InfluxSink("http://127.0.0.1:8086")
