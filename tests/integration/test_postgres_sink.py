"""The PostgreSQL sink against a real server (Debian's PostgreSQL, started by the fixtures)."""

import math
import threading
import time

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from marketpulse.sinks import PostgresSink, SchemaMismatchError, SinkUnavailableError
from marketpulse.sinks.postgres_schema import MIGRATIONS

from .conftest import LEAN_TRADES
from .db_fixtures import create_database, free_port

pytestmark = pytest.mark.integration

_NS = 1_000_000_000


def _rows(url, sql):
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def test_replay_into_postgres_equals_the_lake(cli, sql, tmp_path, postgres_url):
    lake = tmp_path / "lake"
    cli("replay", LEAN_TRADES, "--sink", "postgres", "--sink", "lake", "--lake", lake,
        "--postgres-url", postgres_url,
        "--postgres-tables", "bars,indicators,alerts,trades")  # fmt: skip
    # every trade, those of one symbol at one time told apart by seq
    (trades,) = sql(lake, "SELECT count(*) AS n, sum(price * size) AS notional FROM trades")
    assert _rows(postgres_url, "SELECT count(*), sum(price * size) FROM trades") == [
        (trades["n"], pytest.approx(trades["notional"], rel=1e-12))]  # fmt: skip
    for table, key, time_column in (
        ("bars", "symbol, interval, start", "start"),
        ("indicators", "symbol, interval, ts", "ts"),
        ("alerts", "id, ts", "ts"),
    ):
        expected = sql(lake, f"SELECT * EXCLUDE (date) FROM {table} ORDER BY {key}")
        with psycopg.connect(postgres_url) as conn:
            cur = conn.execute(
                f"SELECT *, (extract(epoch FROM {time_column}) * 1e6)::bigint AS us"
                f" FROM {table} ORDER BY {key}"
            )
            names = [d.name for d in cur.description]
            got = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        assert len(got) == len(expected) > 0, table
        for lake_row, pg_row in zip(expected, got, strict=True):
            assert pg_row["us"] * 1000 == lake_row[time_column]
            for column, value in lake_row.items():
                if column in ("start", "end", "ts"):
                    continue  # compared as microseconds above (start) or by key (end)
                assert _same(pg_row[column], value), (table, column, lake_row, pg_row)


def test_migrate_is_versioned_and_idempotent(cli, postgres_url):
    first = cli("db", "migrate", "--postgres-url", postgres_url)
    assert "applied 1, 2" in first.stdout
    assert "secret-pw" not in first.stdout + first.stderr  # the password is never printed
    second = cli("db", "migrate", "--postgres-url", postgres_url)
    assert "nothing to do" in second.stdout
    versions = _rows(postgres_url, "SELECT version FROM marketpulse_schema ORDER BY 1")
    assert [v for (v,) in versions] == [m[0] for m in MIGRATIONS]
    keys = dict(_rows(postgres_url, """
        SELECT t.relname, string_agg(a.attname, ',' ORDER BY k.n)
        FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        WHERE i.indisprimary AND t.relname IN ('bars', 'indicators', 'alerts', 'trades')
        GROUP BY t.relname"""))  # fmt: skip
    assert keys == {
        "bars": "symbol,interval,start",
        "indicators": "symbol,interval,ts",
        "alerts": "id,ts",
        "trades": "symbol,ts,seq",
    }


@pytest.mark.parametrize(
    ("ddl", "words"),
    [
        ("ALTER TABLE bars ADD COLUMN note text", ["'bars'", "'note'"]),
        ("ALTER TABLE indicators DROP COLUMN rsi_14", ["'indicators'", "'rsi_14'"]),
        ("ALTER TABLE alerts ALTER COLUMN severity TYPE int USING 0", ["'alerts'", "'severity'"]),
    ],
)
def test_a_table_with_other_columns_is_named(cli, tmp_path, postgres_url, ddl, words):
    cli("db", "migrate", "--postgres-url", postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(ddl)
    result = cli("replay", LEAN_TRADES, "--sink", "postgres", "--lake", tmp_path / "lake",
                 "--postgres-url", postgres_url, ok=False)  # fmt: skip
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: postgres table")
    for word in words:
        assert word in line


def test_database_down_at_start_is_a_clear_error(cli, tmp_path):
    url = f"postgresql://postgres:secret-pw@127.0.0.1:{free_port()}/market"
    # bounded: it gives up by itself (a TimeoutExpired fails the test)
    result = cli("replay", LEAN_TRADES, "--sink", "postgres", "--postgres-url", url, ok=False,
                 timeout=120)  # fmt: skip
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: connect to PostgreSQL at postgresql://postgres:********@")
    assert "failed" in line and "time(s)" in line
    assert "secret-pw" not in result.stderr + result.stdout
    assert not (tmp_path / "data" / "lake" / "bars").exists()  # nothing ran


def _bars(n_batches, per_batch):
    """Batches of distinct 1-minute bars of 50 symbols, with some nulls."""
    rng = np.random.default_rng(5)
    for b in range(n_batches):
        index = np.arange(b * per_batch, (b + 1) * per_batch)
        start = (1_381_150_000 + (index // 50) * 60) * _NS
        close = rng.random(per_batch)
        yield pa.table({
            "symbol": [f"S{i % 50:02d}" for i in index], "interval": ["1m"] * per_batch,
            "start": start, "end": start + 60 * _NS, "open": close, "high": close + 1,
            "low": close - 1, "close": close, "volume": rng.random(per_batch),
            "vwap": pa.array([None if i % 7 == 0 else float(i) for i in index], pa.float64()),
            "trades": index,
        })  # fmt: skip


def test_database_restarted_mid_stream_loses_and_duplicates_nothing(private_postgres):
    reference = create_database(private_postgres.url)
    interrupted = create_database(private_postgres.url)
    with PostgresSink(reference, max_rows=10**9) as sink:
        for batch in _bars(40, 2_000):
            sink.write("bars", batch)
    sink = PostgresSink(interrupted, max_rows=10**9, retry_s=120).open()
    restarted = threading.Event()

    def restart_once_the_sink_retried():
        # the server stays down until a flush has failed and is being retried
        deadline = time.monotonic() + 60
        while sink.stats.retries == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        private_postgres.start()
        restarted.set()

    restarter = threading.Thread(target=restart_once_the_sink_retried)
    with sink:
        for n, batch in enumerate(_bars(40, 2_000)):
            sink.write("bars", batch)
            if n % 2:
                sink.flush()  # one batch in the buffer, one written, in turn
            if n == 10:
                assert sink.stats.retries == 0
                private_postgres.stop()  # synchronous: the next flush finds no server
                restarter.start()
            if n == 14:
                restarter.join()  # later flushes see a new server process
            # the same rows again, as a Kafka sink re-reads after a crash
            if n == 30:
                sink.write("bars", batch)
    assert restarted.is_set()
    assert sink.stats.retries > 0  # the fault hit a flush, which was retried
    query = "SELECT * FROM bars ORDER BY symbol, interval, start"
    assert _rows(interrupted, query) == _rows(reference, query)
    assert _rows(interrupted, "SELECT count(*) FROM bars") == [(80_000,)]


def test_new_stored_and_repeated_keys_each_end_as_one_row_with_the_latest_values(postgres_url):
    first, second = _bars(2, 100)
    changed = first.set_column(first.column_names.index("close"), "close",
                               pa.array(np.arange(100.0) + 1000))  # fmt: skip
    with PostgresSink(postgres_url, max_rows=10**9) as sink:
        sink.write("bars", first)
        sink.flush()  # new keys only: the plain insert
        sink.write("bars", changed.slice(0, 50))  # stored keys, new values: the upsert
        sink.write("bars", second)
        sink.flush()
        sink.write("bars", first.slice(60, 10))  # one key twice in one flush: the later wins
        sink.write("bars", changed.slice(60, 10))
    rows = _rows(postgres_url, "SELECT trades, close FROM bars ORDER BY trades")
    expected = [1000.0 + i for i in range(50)] + first["close"].to_pylist()[50:60]
    expected += [1000.0 + i for i in range(60, 70)] + first["close"].to_pylist()[70:]
    expected += second["close"].to_pylist()
    assert [t for t, _ in rows] == list(range(200))
    assert [c for _, c in rows] == expected


def test_trades_are_numbered_within_one_time(postgres_url):
    ts = np.array([5, 5, 5, 6, 6, 7], np.int64) * _NS
    trades = pa.table({"symbol": pa.array(["A"] * 6).dictionary_encode(), "ts": ts,
                       "price": np.arange(6.0), "size": np.ones(6), "exchange": ["Q"] * 6,
                       "condition": [None] * 6})  # fmt: skip
    with PostgresSink(postgres_url, tables=("trades",)) as sink:
        sink.write("trades", trades.slice(0, 2))
        sink.write("trades", trades.slice(2, 4))  # the third trade at ts 5 follows the others
    rows = _rows(postgres_url, "SELECT seq, price FROM trades ORDER BY price")
    assert rows == [(0, 0.0), (1, 1.0), (2, 2.0), (0, 3.0), (1, 4.0), (0, 5.0)]


def test_unreachable_server_raises_after_its_budget():
    sink = PostgresSink(f"postgresql://u:p@127.0.0.1:{free_port()}/x", connect_timeout_s=1.0)
    with pytest.raises(SinkUnavailableError, match=r"u:\*\*\*\*\*\*\*\*@"):
        sink.open()


def test_missing_table_says_to_migrate(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE marketpulse_schema (version integer PRIMARY KEY,"
                     " description text NOT NULL, applied_at timestamptz)")  # fmt: skip
        conn.execute("INSERT INTO marketpulse_schema VALUES (1, 'x', now()), (2, 'y', now())")
    with pytest.raises(SchemaMismatchError, match="'bars' does not exist: run `marketpulse db"):
        PostgresSink(postgres_url).open()
