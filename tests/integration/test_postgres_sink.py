"""The PostgreSQL sink against a real server (Debian's PostgreSQL, started by the fixtures)."""

import datetime as dt
import json
import math
import threading
import time

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from marketpulse.models import ALERT_SCHEMA, BAR_SCHEMA, INDICATOR_COLUMNS, TRADE_SCHEMA
from marketpulse.sinks import PostgresSink, SchemaMismatchError, SinkError, SinkUnavailableError
from marketpulse.sinks.postgres_schema import MIGRATIONS, PG_TABLES

from .conftest import LEAN_TRADES
from .db_fixtures import create_database, free_port

pytestmark = pytest.mark.integration

_NS = 1_000_000_000
_UTC = dt.UTC
_LEAN_DATASET = "lean-2013-10-07-trades"


def _rows(url, sql, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def _column_names(url, table):
    with psycopg.connect(url) as conn:
        return [d.name for d in conn.execute(f"SELECT * FROM {table} LIMIT 0").description]


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def _selects(columns):
    """The (column, kind)s as (DuckDB, PostgreSQL) select lists, times as microseconds."""
    lake, pg = [], []
    for name, kind in columns:
        if kind == "timestamptz":
            lake.append(f"epoch_us({name}) AS {name}")
            pg.append(f"(extract(epoch FROM {name}) * 1000000)::bigint AS {name}")
        elif kind == "jsonb":
            lake.append(f"to_json({name})::VARCHAR AS {name}")
            pg.append(f"{name}::text AS {name}")
        elif name != "seq":
            lake.append(name)
            pg.append(name)
    return ", ".join(lake), ", ".join(pg)


def test_replay_into_postgres_equals_the_lake(cli, sql, tmp_path, postgres_url):
    lake = tmp_path / "lake"
    cli("replay", LEAN_TRADES, "--sink", "postgres", "--sink", "lake", "--lake", lake,
        "--postgres-url", postgres_url,
        "--postgres-tables", "bars,indicators,alerts,trades")  # fmt: skip
    # every trade, those of one symbol in one microsecond told apart by seq
    (trades,) = sql(lake, "SELECT count(*) AS n, sum(price * size) AS notional FROM trades")
    assert _rows(postgres_url, "SELECT count(*), sum(price * size) FROM trades") == [
        (trades["n"], pytest.approx(trades["notional"], rel=1e-12))]  # fmt: skip
    for table in ("bars", "indicators", "alerts", "bars_with_indicators"):
        if table == "bars_with_indicators":  # the lake's view has the same columns (and period)
            columns = [(name, "timestamptz" if name.startswith("bar_") else "")
                       for name in _column_names(postgres_url, table)]  # fmt: skip
            key = ", ".join(PG_TABLES["bars"].key)
            (first,) = sql(lake, f"SELECT * EXCLUDE (period) FROM {table} LIMIT 1")
            assert list(first) == [name for name, _ in columns]
        else:
            columns, key = PG_TABLES[table].columns, ", ".join(PG_TABLES[table].key)
        lake_columns, pg_columns = _selects(columns)
        expected = sql(lake, f"SELECT {lake_columns} FROM {table} ORDER BY {key}")
        with psycopg.connect(postgres_url) as conn:
            cur = conn.execute(f"SELECT {pg_columns} FROM {table} ORDER BY {key}")
            names = [d.name for d in cur.description]
            got = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        assert len(got) == len(expected) > 0, table
        assert {row["dataset"] for row in got} == {_LEAN_DATASET}
        for lake_row, pg_row in zip(expected, got, strict=True):
            assert lake_row.keys() == pg_row.keys()
            for column, value in lake_row.items():
                if column == "details":  # both JSON objects
                    assert json.loads(pg_row[column]) == json.loads(value), (lake_row, pg_row)
                else:
                    assert _same(pg_row[column], value), (table, column, lake_row, pg_row)


def test_bars_with_indicators_joins_each_bar_to_its_own_indicators(cli, tmp_path, postgres_url):
    cli("replay", LEAN_TRADES, "--sink", "postgres", "--lake", tmp_path / "lake",
        "--postgres-url", postgres_url)  # fmt: skip
    ((bars, indicators, joined),) = _rows(postgres_url, """
        SELECT (SELECT count(*) FROM bars), (SELECT count(*) FROM indicators),
               (SELECT count(*) FROM bars_with_indicators)""")  # fmt: skip
    assert bars == indicators == joined > 1000
    # each bar with the indicators computed on it: same end, same close, same symbol row
    (mismatched,) = _rows(
        postgres_url,
        """
        SELECT count(*) FROM bars_with_indicators v
        JOIN indicators i USING (dataset, symbol, timeframe, bar_start)
        WHERE v.bar_end <> i.bar_end OR v.close <> i.close
           OR v.session_vwap IS DISTINCT FROM i.vwap OR v.rsi_14 IS DISTINCT FROM i.rsi_14""",
    )
    assert mismatched == (0,)
    # the join the issue reported misaligned: every bar of the lean day finds its indicators
    (spy,) = _rows(postgres_url, """
        SELECT count(*) FROM bars b JOIN indicators i USING (dataset, symbol, timeframe, bar_start)
        WHERE symbol = 'SPY' AND timeframe = '1m'""")  # fmt: skip
    (spy_bars,) = _rows(postgres_url, "SELECT count(*) FROM bars"
                                      " WHERE symbol = 'SPY' AND timeframe = '1m'")  # fmt: skip
    assert spy == spy_bars and spy[0] > 300


def test_columns_have_the_contract_names_and_types(postgres_url):
    PostgresSink(postgres_url, tables=tuple(PG_TABLES)).open()
    rows = _rows(postgres_url, """
        SELECT table_name, column_name, data_type FROM information_schema.columns
        WHERE table_schema = current_schema()
          AND table_name IN ('bars', 'indicators', 'alerts', 'trades')""")  # fmt: skip
    types = {(t, c): d for t, c, d in rows}
    for table in ("bars", "indicators", "alerts"):
        assert types[(table, "timeframe")] == "text"
        assert (
            types[(table, "bar_start")] == types[(table, "bar_end")] == "timestamp with time zone"
        )
        assert not {(table, old) for old in ("interval", "start", "end", "ts")} & types.keys()
    assert types[("trades", "ts")] == "timestamp with time zone"
    assert types[("alerts", "details")] == "jsonb"
    assert ("alerts", "values") not in types
    for table in ("bars", "indicators", "alerts", "trades"):
        assert types[(table, "dataset")] == "text"
    view = _rows(
        postgres_url,
        """
        SELECT column_name FROM information_schema.columns
        WHERE table_name = 'bars_with_indicators' ORDER BY ordinal_position""",
    )
    names = [n for (n,) in view]
    assert names[:5] == ["dataset", "symbol", "timeframe", "bar_start", "bar_end"]
    assert "session_vwap" in names and "rsi_14" in names and names.count("vwap") == 1


def test_migrate_is_versioned_and_idempotent(cli, postgres_url):
    first = cli("db", "migrate", "--postgres-url", postgres_url)
    assert "applied 1, 2, 3" in first.stdout
    assert "converted" not in first.stdout  # a new database has nothing to convert
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
        "bars": "symbol,timeframe,bar_start,dataset",
        "indicators": "symbol,timeframe,bar_start,dataset",
        "alerts": "symbol,timeframe,bar_start,rule,dataset",
        "trades": "symbol,ts,seq,dataset",
    }


def test_migrate_refuses_a_bad_dataset_name_before_touching_the_database(cli, postgres_url):
    result = cli("db", "migrate", "--postgres-url", postgres_url, "--dataset", "no way",
                 ok=False)  # fmt: skip
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: --dataset: 'no way' is not a dataset name")
    assert _rows(postgres_url, "SELECT to_regclass('marketpulse_schema')") == [(None,)]


def _earlier_marketpulse(url):
    """A database as MarketPulse wrote it before the issue-19 contract (migrations 1 and 2)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE marketpulse_schema (version integer PRIMARY KEY,"
            " description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, description, apply in MIGRATIONS[:2]:
            apply(conn, "unused")
            conn.execute("INSERT INTO marketpulse_schema (version, description) VALUES (%s, %s)",
                         (version, description))  # fmt: skip
        conn.execute("""INSERT INTO bars VALUES
            ('SPY', '1m', '2013-10-07 13:31:00+00', '2013-10-07 13:32:00+00',
             167.0, 167.5, 166.5, 167.25, 1000, 167.1, 12)""")
        indicators = ", ".join(INDICATOR_COLUMNS)
        conn.execute(f"""INSERT INTO indicators (symbol, "interval", ts, close, {indicators})
            VALUES ('SPY', '1m', '2013-10-07 13:32:00+00', 167.25, {", ".join(["1.5"] * 13)}),
                   ('SPY', '5m', '2013-10-07 14:00:00+00', 168.0, {", ".join(["NULL"] * 13)})""")
        conn.execute("""INSERT INTO alerts VALUES ('a1', 'rsi-high', 'SPY', '1m',
            '2013-10-07 13:32:00+00', 'warning', 'RSI 81.5', '{"rsi_14": 81.5}')""")
        conn.execute("INSERT INTO trades VALUES ('SPY', '2013-10-07 13:31:05.25+00', 0, 167.0,"
                     " 100, 'Q', NULL)")  # fmt: skip


def test_an_earlier_schema_stops_the_sink_with_one_line_and_migrate_converts_it(
    cli, tmp_path, postgres_url
):
    _earlier_marketpulse(postgres_url)
    with pytest.raises(SchemaMismatchError, match=r"earlier MarketPulse.*marketpulse db migrate"):
        PostgresSink(postgres_url).open()
    result = cli("replay", LEAN_TRADES, "--sink", "postgres", "--lake", tmp_path / "lake",
                 "--postgres-url", postgres_url, ok=False)  # fmt: skip
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: postgres table 'bars' has the columns of an earlier")
    assert "convert the tables with: marketpulse db migrate" in line
    assert "Traceback" not in result.stderr
    # nothing was changed or written
    assert _rows(postgres_url, "SELECT max(version) FROM marketpulse_schema") == [(2,)]
    assert _rows(postgres_url, "SELECT count(*) FROM bars WHERE \"interval\" = '1m'") == [(1,)]

    # README: marketpulse db migrate --postgres-url ... --dataset before-upgrade
    done = cli("db", "migrate", "--postgres-url", postgres_url, "--dataset", "before-19")
    assert "applied 3" in done.stdout and "under dataset before-19" in done.stdout
    t = dt.datetime
    assert _rows(postgres_url, "SELECT * FROM bars") == [
        ("SPY", "1m", t(2013, 10, 7, 13, 31, tzinfo=_UTC), t(2013, 10, 7, 13, 32, tzinfo=_UTC),
         167.0, 167.5, 166.5, 167.25, 1000.0, 167.1, 12, "before-19")]  # fmt: skip
    # the bar's start: from the stored bar ending then, else the end minus the timeframe
    assert _rows(postgres_url, "SELECT timeframe, bar_start, bar_end, rsi_14, dataset"
                               " FROM indicators ORDER BY timeframe") == [  # fmt: skip
        ("1m", t(2013, 10, 7, 13, 31, tzinfo=_UTC), t(2013, 10, 7, 13, 32, tzinfo=_UTC), 1.5,
         "before-19"),
        ("5m", t(2013, 10, 7, 13, 55, tzinfo=_UTC), t(2013, 10, 7, 14, 0, tzinfo=_UTC), None,
         "before-19"),
    ]  # fmt: skip
    assert _rows(postgres_url, "SELECT id, timeframe, bar_start, details, dataset FROM alerts") == [
        ("a1", "1m", t(2013, 10, 7, 13, 31, tzinfo=_UTC), {"rsi_14": 81.5}, "before-19")
    ]
    assert _rows(postgres_url, "SELECT ts, seq, dataset FROM trades") == [
        (t(2013, 10, 7, 13, 31, 5, 250000, tzinfo=_UTC), 0, "before-19")
    ]
    # the converted old bar joins its converted indicators
    assert _rows(postgres_url, "SELECT symbol, timeframe, rsi_14 FROM bars_with_indicators") == [
        ("SPY", "1m", 1.5)
    ]
    PostgresSink(postgres_url, tables=tuple(PG_TABLES)).open()  # the sink takes the tables now


def test_hand_made_tables_with_integer_nanoseconds_are_converted_exactly(cli, postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute('CREATE TABLE bars (symbol text, "interval" text, start bigint, "end" bigint,'
                     " open float8, high float8, low float8, close float8, volume float8,"
                     " vwap float8, trades bigint)")  # fmt: skip
        # a nanosecond time and one before 1970: floored to the microsecond
        conn.execute(
            "INSERT INTO bars VALUES ('A', '1s', 1381152660123456789, 1381152661123456789,"
            " 1, 1, 1, 1, 1, 1, 1), ('B', '1s', -1500, -500, 2, 2, 2, 2, 2, 2, 2)"
        )
    with pytest.raises(SchemaMismatchError, match="'bars' has the columns of an earlier"):
        PostgresSink(postgres_url).open()
    cli("db", "migrate", "--postgres-url", postgres_url)
    rows = _rows(postgres_url, "SELECT symbol, (extract(epoch FROM bar_start) * 1000000)::bigint,"
                               " (extract(epoch FROM bar_end) * 1000000)::bigint, dataset"
                               " FROM bars ORDER BY symbol")  # fmt: skip
    assert rows == [("A", 1381152660123456, 1381152661123456, "legacy"), ("B", -2, -1, "legacy")]


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
        conn.execute("DROP VIEW bars_with_indicators")
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


def _bars(n_batches, per_batch, dataset="bench"):
    """Batches of distinct 1-minute bars of 50 symbols, with some nulls."""
    rng = np.random.default_rng(5)
    for b in range(n_batches):
        index = np.arange(b * per_batch, (b + 1) * per_batch)
        start = (1_381_150_000 + (index // 50) * 60) * _NS
        close = rng.random(per_batch)
        yield pa.table({
            "symbol": [f"S{i % 50:02d}" for i in index], "timeframe": ["1m"] * per_batch,
            "bar_start": start, "bar_end": start + 60 * _NS, "open": close, "high": close + 1,
            "low": close - 1, "close": close, "volume": rng.random(per_batch),
            "vwap": pa.array([None if i % 7 == 0 else float(i) for i in index], pa.float64()),
            "trades": index, "dataset": [dataset] * per_batch,
        }, schema=BAR_SCHEMA)  # fmt: skip


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
    query = "SELECT * FROM bars ORDER BY symbol, timeframe, bar_start"
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


def test_datasets_are_rows_of_their_own_and_writing_again_changes_nothing(postgres_url):
    (sim,) = _bars(1, 500, "simulator")
    (lean,) = _bars(1, 500, "lean")  # the same keys but the dataset
    lean = lean.set_column(lean.column_names.index("close"), "close", pa.array(np.full(500, 7.0)))
    with PostgresSink(postgres_url) as sink:
        sink.write("bars", sim)
        sink.write("bars", lean)
    query = "SELECT dataset, count(*), sum(close) FROM bars GROUP BY 1 ORDER BY 1"
    stored = _rows(postgres_url, query)
    assert stored == [("lean", 500, 3500.0),
                      ("simulator", 500, pytest.approx(sum(sim["close"].to_pylist())))]  # fmt: skip
    versions = "SELECT dataset, symbol, bar_start, xmin::text FROM bars ORDER BY 1, 2, 3"
    before = _rows(postgres_url, versions)
    with PostgresSink(postgres_url) as sink:  # a second run of the same data
        sink.write("bars", lean)
        sink.write("bars", sim)
        sink.flush()
        assert sink.stats.rows["bars"] == 1000
    assert _rows(postgres_url, query) == stored
    # rows stored as they are were left alone: no new row versions
    assert _rows(postgres_url, versions) == before
    changed = lean.set_column(lean.column_names.index("close"), "close", pa.array(np.ones(500)))
    with PostgresSink(postgres_url) as sink:
        sink.write("bars", changed.slice(0, 10))
    after = _rows(postgres_url, versions)
    assert sum(a != b for a, b in zip(after, before, strict=True)) == 10  # only the new values
    assert _rows(postgres_url, "SELECT sum(close) FROM bars WHERE dataset = 'lean'") == [
        (490 * 7.0 + 10,)
    ]


def test_alert_details_are_a_json_object(postgres_url):
    details = pa.array([[("rsi_14", 81.5), ("limit", 70.0)], [("change", float("nan"))], None],
                       pa.map_(pa.string(), pa.float64()))  # fmt: skip
    alerts = pa.table({"id": ["a", "b", "c"], "rule": ["rsi", "drop", "gap"], "symbol": ["A"] * 3,
                       "timeframe": ["1m"] * 3, "bar_start": [60 * _NS] * 3,
                       "bar_end": [120 * _NS] * 3, "severity": ["warning"] * 3,
                       "message": ["m"] * 3, "details": details, "dataset": ["d"] * 3},
                      schema=ALERT_SCHEMA)  # fmt: skip
    with PostgresSink(postgres_url) as sink:
        sink.write("alerts", alerts)
    rows = _rows(postgres_url, "SELECT id, details, jsonb_typeof(details),"
                               " details ->> 'rsi_14' FROM alerts ORDER BY id")  # fmt: skip
    assert rows == [
        ("a", {"rsi_14": 81.5, "limit": 70.0}, "object", "81.5"),
        ("b", {"change": None}, "object", None),  # NaN: JSON has no such number
        ("c", None, None, None),
    ]


def _trades(ts, dataset="d"):
    n = len(ts)
    return pa.table({"symbol": pa.array(["A"] * n).dictionary_encode(),
                     "ts": np.asarray(ts, np.int64), "price": np.arange(float(n)),
                     "size": np.ones(n), "exchange": ["Q"] * n, "condition": [None] * n,
                     "dataset": [dataset] * n}, schema=TRADE_SCHEMA)  # fmt: skip


def test_trades_are_numbered_within_one_microsecond(postgres_url):
    ts = np.array([5, 5, 5, 6, 6, 7], np.int64) * _NS
    ts[1] += 999  # a nanosecond time: the same microsecond as ts[0] in PostgreSQL
    ts[4] += 1000  # the next microsecond: a key of its own
    trades = _trades(ts)
    with PostgresSink(postgres_url, tables=("trades",)) as sink:
        sink.write("trades", trades.slice(0, 2))
        sink.write("trades", trades.slice(2, 4))  # the third trade at 5 s follows the others
        sink.write("trades", _trades(ts[:2], "other"))  # another dataset counts on its own
    rows = _rows(postgres_url, "SELECT dataset, seq, price,"
                               " (extract(epoch FROM ts) * 1000000)::bigint FROM trades"
                               " ORDER BY dataset, price")  # fmt: skip
    assert rows == [("d", 0, 0.0, 5_000_000), ("d", 1, 1.0, 5_000_000), ("d", 2, 2.0, 5_000_000),
                    ("d", 0, 3.0, 6_000_000), ("d", 0, 4.0, 6_000_001), ("d", 0, 5.0, 7_000_000),
                    ("other", 0, 0.0, 5_000_000), ("other", 1, 1.0, 5_000_000)]  # fmt: skip


def test_unreachable_server_raises_after_its_budget():
    sink = PostgresSink(f"postgresql://u:p@127.0.0.1:{free_port()}/x", connect_timeout_s=1.0)
    with pytest.raises(SinkUnavailableError, match=r"u:\*\*\*\*\*\*\*\*@"):
        sink.open()


def test_missing_table_says_to_migrate(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE marketpulse_schema (version integer PRIMARY KEY,"
                     " description text NOT NULL, applied_at timestamptz)")  # fmt: skip
        conn.execute("INSERT INTO marketpulse_schema VALUES (1, 'x', now()), (2, 'y', now()),"
                     " (3, 'z', now())")  # fmt: skip
    with pytest.raises(SchemaMismatchError, match="'bars' does not exist: run `marketpulse db"):
        PostgresSink(postgres_url).open()


def test_a_row_without_its_dataset_is_refused_naming_the_column():
    (bars,) = _bars(1, 3)
    bars = bars.set_column(11, "dataset", pa.array(["d", None, "d"]))
    sink = PostgresSink(f"postgresql://u:p@127.0.0.1:{free_port()}/x")
    with pytest.raises(ValueError, match="bars: null dataset in a row"):
        sink.write("bars", bars)
    assert sink.stats.buffered["bars"] == 0


def test_migrate_leaves_a_table_it_does_not_know_as_it_is(cli, postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bars (symbol text, price float8)")
        conn.execute("INSERT INTO bars VALUES ('A', 1.5)")
    result = cli("db", "migrate", "--postgres-url", postgres_url, ok=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: postgres table 'bars' is not an earlier MarketPulse's")
    assert "'interval'" in line
    # one transaction: nothing created, nothing recorded, the table as it was
    assert _rows(postgres_url, "SELECT to_regclass('marketpulse_schema')") == [(None,)]
    assert _rows(postgres_url, "SELECT to_regclass('indicators')") == [(None,)]
    assert _rows(postgres_url, "SELECT * FROM bars") == [("A", 1.5)]


def test_rows_the_database_refuses_are_one_line_and_stay_buffered(postgres_url):
    (bars,) = _bars(1, 10)
    with PostgresSink(postgres_url, tables=("bars",)) as sink:
        sink.write("bars", bars)
        sink.flush()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE bars ADD CONSTRAINT small CHECK (close < 100)")
        sink.write("bars", bars.set_column(7, "close", pa.array(np.full(10, 500.0))))
        with pytest.raises(SinkError) as refused:
            sink.flush()
        assert not isinstance(refused.value, SinkUnavailableError)  # not retried
        message = str(refused.value)
        assert "refused rows of bars" in message and '"small"' in message
        assert "\n" not in message
        assert sink.stats.buffered["bars"] == 10  # kept for a flush that may succeed
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE bars DROP CONSTRAINT small")
        sink.flush()
    assert _rows(postgres_url, "SELECT min(close), count(*) FROM bars") == [(500.0, 10)]
