"""`marketpulse sink postgres|influx`: the database sinks as Kafka consumer services."""

import sys

import psycopg
import pytest

from .conftest import LEAN_TRADES
from .db_fixtures import influx_query
from .kafka_tools import create_topics, load_file, run_to_end, start, wait_log

pytestmark = pytest.mark.integration


def _sink(kind, bootstrap, prefix, group, *options):
    proc = start([sys.executable, "-m", "marketpulse", "sink", kind, "--bootstrap-servers",
                  bootstrap, "--topic-prefix", prefix, "--group", group, "--exit-when-idle", "5",
                  *options])  # fmt: skip
    log = wait_log(proc, 300)
    assert proc.returncode == 0, log
    return log


def _table(url, sql):
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_database_sinks_store_the_topics_like_the_lake_sink(
    kafka_bootstrap, topic_prefix, tmp_path, sql, postgres_url, influx_url, influx_base_url
):
    create_topics(kafka_bootstrap, topic_prefix)
    load_file(kafka_bootstrap, topic_prefix, LEAN_TRADES)
    run_to_end(kafka_bootstrap, topic_prefix)
    lake = tmp_path / "lake"
    _sink("lake", kafka_bootstrap, topic_prefix, f"{topic_prefix}lake", "--lake", str(lake))
    log = _sink("postgres", kafka_bootstrap, topic_prefix, f"{topic_prefix}pg",
                "--postgres-url", postgres_url)  # fmt: skip
    assert "secret-pw" not in log
    _sink("influx", kafka_bootstrap, topic_prefix, f"{topic_prefix}influx",
          "--influx-url", influx_url)  # fmt: skip

    order = " ORDER BY dataset, symbol, timeframe, bar_start"
    expected = sql(lake, "SELECT dataset, symbol, timeframe, epoch_ns(bar_start) AS t, close,"
                         " volume, trades FROM bars" + order)  # fmt: skip
    bars = "SELECT dataset, symbol, timeframe, (extract(epoch FROM bar_start) * 1e9)::bigint," \
           " close, volume, trades FROM bars" + order  # fmt: skip
    got = _table(postgres_url, bars)
    assert [tuple(row.values()) for row in expected] == got
    assert len(got) > 1000 and {row[0] for row in got} == {"live"}  # process's default dataset
    counts = "SELECT (SELECT count(*) FROM indicators), (SELECT count(*) FROM alerts)"
    lake_counts = sql(lake, "SELECT (SELECT count(*) FROM indicators) AS i,"
                            " (SELECT count(*) FROM alerts) AS a")[0]  # fmt: skip
    assert _table(postgres_url, counts) == [(lake_counts["i"], lake_counts["a"])]

    # a new group reads every record again: the upserts leave the same tables
    _sink("postgres", kafka_bootstrap, topic_prefix, f"{topic_prefix}pg2",
          "--postgres-url", postgres_url)  # fmt: skip
    assert _table(postgres_url, bars) == got
    assert _table(postgres_url, counts) == [(lake_counts["i"], lake_counts["a"])]

    db = influx_url.rsplit("/", 1)[1]
    points = influx_query(influx_base_url, db, "SELECT count(close) FROM bars")
    assert points[0]["values"][0][1] == len(got)
