"""Declared indicators in PostgreSQL and InfluxDB: the stores gain the declared columns."""

import math
import sys

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from marketpulse.models import INDICATOR_COLUMNS, indicator_schema
from marketpulse.sinks import PostgresSink, SchemaMismatchError

from .conftest import LEAN_TRADES
from .db_fixtures import influx_query
from .kafka_tools import create_topics, load_file, process_command, start, wait_log

pytestmark = pytest.mark.integration

_DECLARED = "ema(50), rsi(7), bb=bbands(20, 2.5)"
_NEW = ("ema_50", "rsi_7")  # bb_upper, bb_middle, bb_lower: columns of the default set too
_KEY = "dataset, symbol, timeframe, bar_start"


def _rows(url, query):
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def _types(url):
    rows = _rows(url, "SELECT column_name, data_type FROM information_schema.columns WHERE"
                      " table_schema = current_schema() AND table_name = 'indicators'")  # fmt: skip
    return dict(rows)


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return a == b or (math.isnan(a) and math.isnan(b))


def _influx_rows(base_url, database, fields):
    query = f"SELECT close, {', '.join(fields)} FROM indicators GROUP BY *"  # close: every point
    series = influx_query(base_url, database, query)
    got = {}
    for s in series:
        for values in s["values"]:
            row = dict(zip(s["columns"], values, strict=True)) | s["tags"]
            got[(row["dataset"], row["symbol"], row["timeframe"], row["time"])] = row
    return got


def test_replay_stores_the_declared_columns_in_postgres_and_influx(
    cli, sql, tmp_path, postgres_url, influx_url, influx_base_url
):
    lake = tmp_path / "lake"
    cli("replay", LEAN_TRADES, "--sink", "postgres", "--sink", "influx", "--sink", "lake",
        "--lake", lake, "--postgres-url", postgres_url, "--influx-url", influx_url,
        "--indicators", _DECLARED)  # fmt: skip
    types = _types(postgres_url)
    assert all(types[name] == "double precision" for name in _NEW)
    columns = ("ema_50", "rsi_7", "bb_upper", "bb_middle", "bb_lower")
    expected = sql(lake, f"SELECT {_KEY.replace('bar_start', 'epoch_ns(bar_start) AS t')},"
                         f" {', '.join(columns)} FROM indicators ORDER BY {_KEY}")  # fmt: skip
    got = _rows(postgres_url, "SELECT dataset, symbol, timeframe,"
                              " (extract(epoch FROM bar_start) * 1e9)::bigint,"
                              f" {', '.join(columns)} FROM indicators ORDER BY {_KEY}")  # fmt: skip
    assert len(got) == len(expected) > 1000
    for lake_row, pg_row in zip(expected, got, strict=True):
        assert tuple(lake_row.values())[:4] == pg_row[:4]
        assert all(map(_same, tuple(lake_row.values())[4:], pg_row[4:])), (lake_row, pg_row)
    assert sum(row[4] is not None for row in got) > 1000  # EMA-50 past its warm-up
    # the default columns the run did not declare are NULL in its rows
    counts = "SELECT count(sma_20), count(rsi_14) FROM indicators"
    assert _rows(postgres_url, counts) == [(0, 0)]
    # the view shows them too: the default columns first, as before, the new ones appended
    view = [name for (name,) in _rows(postgres_url, "SELECT column_name FROM"
            " information_schema.columns WHERE table_name = 'bars_with_indicators'"
            " ORDER BY ordinal_position")]  # fmt: skip
    assert view[-2:] == list(_NEW) and "rsi_14" in view and "session_vwap" in view
    joined = _rows(postgres_url, "SELECT v.ema_50, i.ema_50, v.close FROM bars_with_indicators v"
                                 f" JOIN indicators i USING ({_KEY})")  # fmt: skip
    assert len(joined) == len(got) and all(_same(a, b) for a, b, _ in joined)
    assert sum(a is not None for a, _, _ in joined) > 1000

    # InfluxDB: the declared columns are fields of the indicators points, the others are not
    database = influx_url.rsplit("/", 1)[1]
    keys = influx_query(influx_base_url, database, "SHOW FIELD KEYS FROM indicators")
    fields = {name for name, _ in keys[0]["values"]}
    assert {"close", "bar_end", *columns} <= fields
    assert not fields & {"sma_20", "rsi_14", "ema_12"}
    points = _influx_rows(influx_base_url, database, columns)
    assert len(points) == len(expected)
    for lake_row in expected:
        point = points[tuple(lake_row[c] for c in ("dataset", "symbol", "timeframe", "t"))]
        for column in columns:
            assert _same(point[column], lake_row[column]), (column, lake_row, point)

    # a second run of the default set over the same keys (the upsert): each row is the
    # one written last, so the columns it lacks are NULL; the sink accepts the grown table
    cli("replay", LEAN_TRADES, "--sink", "postgres", "--lake", tmp_path / "lake2",
        "--postgres-url", postgres_url)  # fmt: skip
    ((n, ema_50, rsi_7, rsi_14, sma_20),) = _rows(
        postgres_url,
        "SELECT count(*), count(ema_50), count(rsi_7), count(rsi_14), count(sma_20)"
        " FROM indicators",
    )
    assert n == len(expected) and ema_50 == rsi_7 == 0 and rsi_14 > 1000 and sma_20 > 1000
    assert set(_types(postgres_url)) >= {*_NEW, *INDICATOR_COLUMNS}


def _indicators(columns, n=50, dataset="d"):
    schema = indicator_schema(columns)
    data = {
        "symbol": ["A"] * n,
        "timeframe": ["1m"] * n,
        "bar_start": np.arange(n, dtype=np.int64) * 60 * 10**9,
        "bar_end": (np.arange(n, dtype=np.int64) + 1) * 60 * 10**9,
        "close": np.arange(n, dtype=np.float64),
        "dataset": [dataset] * n,
    }
    for i, name in enumerate(columns):
        data[name] = np.arange(n, dtype=np.float64) + 1000 * (i + 1)
    return pa.table({f.name: data[f.name] for f in schema}, schema=schema)


def test_batches_of_other_declared_sets_in_one_flush_each_keep_their_columns(postgres_url):
    with PostgresSink(postgres_url, max_rows=10**9) as sink:
        sink.write("indicators", _indicators(("ema_50", "rsi_7"), dataset="x"))
        sink.write("indicators", _indicators(("willr_14",), dataset="y"))
    rows = _rows(postgres_url, "SELECT dataset, count(ema_50), count(rsi_7), count(willr_14),"
                               " sum(willr_14) FROM indicators GROUP BY 1 ORDER BY 1")  # fmt: skip
    assert rows == [("x", 50, 50, 0, None), ("y", 0, 0, 50, sum(range(1000, 1050)))]
    # stored keys again, with another set: the upsert (a new staging table with the new
    # column) replaces each row; what it lacks is NULL
    with PostgresSink(postgres_url, max_rows=10**9) as sink:
        sink.write("indicators", _indicators(("ema_50", "cci_20"), n=10, dataset="y"))
    rows = _rows(postgres_url, "SELECT count(ema_50), count(cci_20), count(willr_14)"
                               " FROM indicators WHERE dataset = 'y' AND bar_start <"
                               " to_timestamp(600)")  # fmt: skip
    assert rows == [(10, 10, 0)]
    assert _rows(postgres_url, "SELECT count(willr_14) FROM indicators WHERE dataset = 'y'") == [
        (40,)
    ]


def test_a_declared_column_of_another_type_is_refused_with_one_line(cli, tmp_path, postgres_url):
    cli("db", "migrate", "--postgres-url", postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE indicators ADD COLUMN ema_50 text")
    with pytest.raises(SchemaMismatchError, match="'ema_50'"):  # the table as it is: refused
        PostgresSink(postgres_url).open()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE indicators DROP COLUMN ema_50")
        conn.execute("ALTER TABLE indicators ADD COLUMN rsi_7 double precision")
    PostgresSink(postgres_url).open().close()  # a declared column of earlier runs: accepted
    # a column added after the sink opened, of another type: refused when writing
    sink = PostgresSink(postgres_url).open()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE indicators ADD COLUMN ema_50 integer")
    sink.write("indicators", _indicators(("ema_50",)))
    with pytest.raises(SchemaMismatchError, match="column 'ema_50' is int4"):
        sink.flush()
    result = cli("replay", LEAN_TRADES, "--sink", "postgres", "--lake", tmp_path / "lake",
                 "--postgres-url", postgres_url, "--indicators", "ema(50)", ok=False)  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and "'ema_50'" in line, result.stderr


def test_sink_services_store_the_declared_columns_of_the_topics(
    kafka_bootstrap, topic_prefix, postgres_url, influx_url, influx_base_url
):
    create_topics(kafka_bootstrap, topic_prefix)
    load_file(kafka_bootstrap, topic_prefix, LEAN_TRADES)
    proc = start(process_command(kafka_bootstrap, topic_prefix, "ref", "--exit-when-idle", "4",
                                 "--indicators", "ema(50), rsi(7)"))  # fmt: skip
    log = wait_log(proc, 300)
    assert proc.returncode == 0, log
    for kind, url in (("postgres", postgres_url), ("influx", influx_url)):
        proc = start([sys.executable, "-m", "marketpulse", "sink", kind, "--bootstrap-servers",
                      kafka_bootstrap, "--topic-prefix", topic_prefix, "--group",
                      f"{topic_prefix}{kind}", "--exit-when-idle", "5",
                      f"--{kind}-url", url])  # fmt: skip
        log = wait_log(proc, 300)
        assert proc.returncode == 0, log
    assert all(_types(postgres_url)[name] == "double precision" for name in _NEW)
    stored = _rows(postgres_url, "SELECT dataset, symbol, timeframe,"
                                 " (extract(epoch FROM bar_start) * 1e9)::bigint, ema_50, rsi_7,"
                                 " sma_20 FROM indicators")  # fmt: skip
    assert len(stored) > 1000 and sum(row[4] is not None for row in stored) > 1000
    assert all(row[6] is None for row in stored)  # not declared
    points = _influx_rows(influx_base_url, influx_url.rsplit("/", 1)[1], _NEW)
    assert len(points) == len(stored)
    for row in stored:
        point = points[row[:4]]
        assert _same(point["ema_50"], row[4]) and _same(point["rsi_7"], row[5]), (row, point)
