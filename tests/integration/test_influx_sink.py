"""The InfluxDB sink against a real server (Debian's influxd, started by the fixtures)."""

import re

import pyarrow as pa
import pytest

from marketpulse.models import BAR_SCHEMA
from marketpulse.sinks import InfluxSink, SinkError, SinkUnavailableError

from .conftest import LEAN_TRADES
from .db_fixtures import assert_influx_equals_lake, free_port, influx_query

pytestmark = pytest.mark.integration

_LEAN_DATASET = "lean-2013-10-07-trades"


def _database(url):
    return url.rsplit("/", 1)[1]


def test_replay_into_influx_equals_the_lake(cli, sql, tmp_path, influx_url, influx_base_url):
    lake = tmp_path / "lake"
    cli("replay", LEAN_TRADES, "--sink", "influx", "--sink", "lake", "--lake", lake,
        "--influx-url", influx_url)  # fmt: skip
    assert_influx_equals_lake(sql, lake, influx_base_url, _database(influx_url), {_LEAN_DATASET})


def test_datasets_are_series_of_their_own(influx_url, influx_base_url):
    bars = pa.table({"symbol": ["A"], "timeframe": ["1m"], "bar_start": [60 * 10**9],
                     "bar_end": [120 * 10**9], "open": [1.0], "high": [1.0], "low": [1.0],
                     "close": [1.0], "volume": [1.0], "vwap": [1.0], "trades": [1],
                     "dataset": ["simulator"]}, schema=BAR_SCHEMA)  # fmt: skip
    lean = bars.set_column(11, "dataset", pa.array(["lean"]))
    lean = lean.set_column(7, "close", pa.array([2.0]))
    with InfluxSink(influx_url) as sink:
        sink.write("bars", bars)
        sink.write("bars", lean)  # the same bar time and symbol: not a replacement
    query = "SELECT close FROM bars GROUP BY dataset"
    series = influx_query(influx_base_url, _database(influx_url), query)
    closes = {s["tags"]["dataset"]: [v[1] for v in s["values"]] for s in series}
    assert closes == {"simulator": [1.0], "lean": [2.0]}


def test_writing_again_replaces_points(cli, tmp_path, influx_url, influx_base_url):
    for _ in range(2):
        done = cli("replay", LEAN_TRADES, "--sink", "influx", "--influx-url", influx_url)
    summary = done.stdout.strip().splitlines()[-1]
    made = _count(summary, "bars")
    db = _database(influx_url)
    bars = influx_query(influx_base_url, db, "SELECT count(close) FROM bars")[0]["values"][0][1]
    distinct = influx_query(
        influx_base_url, db, "SELECT count(close) FROM bars GROUP BY dataset, symbol, timeframe"
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
