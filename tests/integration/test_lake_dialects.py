"""The lake's tables as other tools read them: no quotes, no casts, no reserved words.

* Athena/Trino: the output of ``marketpulse lake ddl`` and a SELECT of every
  column of every table, parsed by sqlglot in the ``athena`` and ``trino``
  dialects; sqlglot writes back any identifier those dialects reserve in
  quotes, so a statement that comes back unchanged needed none.
* DuckDB: the views over a lake written by ``marketpulse replay`` of the Lean
  day, each queried for every column, unquoted; the DDL describes the same
  columns with the matching types.
* PostgreSQL: the tables ``marketpulse db migrate`` creates, each queried for
  every column, unquoted.
* No column is a keyword DuckDB (``duckdb_keywords()``) or PostgreSQL
  (``pg_get_keywords()``) keeps from column names.
"""

import shutil

import duckdb
import psycopg
import pytest
import sqlglot
from sqlglot import exp

from marketpulse.analytics import Lake
from marketpulse.analytics.lake_admin import ATHENA_DDL_RESERVED, bars_with_indicators_select
from marketpulse.sinks.lake_format import LAKE_SCHEMAS
from marketpulse.sinks.lake_layout import partition_columns

from .conftest import LEAN_TRADES, marketpulse

pytestmark = pytest.mark.integration

DIALECTS = ("athena", "trino")
VIEW = "bars_with_indicators"
#: What each type of the DDL is in DuckDB.
DUCKDB_TYPES = {
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "string": "VARCHAR",
    "double": "DOUBLE",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "binary": "BLOB",
    "date": "DATE",
    "map<string, double>": "MAP(VARCHAR, DOUBLE)",
}


def _view_columns() -> list[str]:
    return sqlglot.parse_one(bars_with_indicators_select(), read="duckdb").named_selects


#: Every column of every table (and of the view) as readers see it.
COLUMNS = {
    **{t: [*schema.names, *partition_columns(t)] for t, schema in LAKE_SCHEMAS.items()},
    VIEW: _view_columns(),
}
ALL_NAMES = sorted({name for names in COLUMNS.values() for name in names})


def _unquoted(sql: str, dialect: str) -> list[str]:
    """Problems of ``sql`` in ``dialect``: quoted identifiers, or a changed round trip."""
    try:
        parsed = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError as exc:
        return [f"does not parse: {str(exc).splitlines()[0]}"]
    problems = [f"quoted {i.name}" for i in parsed.find_all(exp.Identifier) if i.quoted]
    if parsed.sql(dialect=dialect) != sql:
        problems.append(f"written back as {parsed.sql(dialect=dialect)}")
    return problems


def _select(table: str, columns: list[str]) -> str:
    return f"SELECT {', '.join(columns)} FROM marketpulse.{table} WHERE dataset = 'lean'"


@pytest.fixture(scope="module")
def ddl(tmp_path_factory):
    """``marketpulse lake ddl`` as the README shows it."""
    result = marketpulse(
        "lake", "ddl", "--location", "s3://bucket/lake", cwd=tmp_path_factory.mktemp("ddl")
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def lean_lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("lean")
    result = marketpulse("replay", LEAN_TRADES, "--lake", root / "lake", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "lake"


def test_the_check_catches_reserved_names():
    """The round trip is a real check: names Athena/Trino reserve do not come back unchanged."""
    for dialect in DIALECTS:
        assert _unquoted(_select("bars", ["symbol", "end"]), dialect)
        assert _unquoted(_select("alerts", ["symbol", "values"]), dialect)
        assert _unquoted('SELECT "symbol" FROM marketpulse.bars', dialect)
        assert not _unquoted(_select("bars", ["symbol", "bar_start"]), dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_a_select_of_every_column_needs_no_quotes(table, dialect):
    assert _unquoted(_select(table, COLUMNS[table]), dialect) == []


def _ddl_types(create: exp.Create) -> dict[str, str]:
    """Column name -> type of a CREATE TABLE, partition columns included."""
    partitioned = create.find(exp.PartitionedByProperty).this.expressions
    return {c.name: c.args["kind"].sql("hive").lower()
            for c in [*create.this.expressions, *partitioned]}  # fmt: skip


def _tables(ddl: str) -> dict[str, exp.Create]:
    statements = sqlglot.parse(ddl, read="athena")
    return {s.this.this.name: s for s in statements if s.kind == "TABLE"}


def test_ddl_describes_every_table_with_timestamps_and_the_layout_s_partitions(ddl):
    tables = _tables(ddl)
    assert sorted(tables) == sorted(LAKE_SCHEMAS)
    for table, create in tables.items():
        schema = LAKE_SCHEMAS[table]
        columns = {c.name: c.args["kind"].sql("hive").lower() for c in create.this.expressions}
        partitioned = create.find(exp.PartitionedByProperty).this.expressions
        partitions = {c.name: c.args["kind"].sql("hive").lower() for c in partitioned}
        assert list(partitions) == list(partition_columns(table))
        assert partitions["period"] == "date" and partitions["dataset"] == "string"
        assert sorted(columns) == sorted(schema.names)
        for name in {"ts", "bar_start", "bar_end"} & set(columns):
            assert columns[name] == "timestamp", (table, name)
        assert "bigint" not in {columns.get(n) for n in ("ts", "bar_start", "bar_end")}
        template = [
            p for p in create.find_all(exp.Property) if p.name == "storage.location.template"
        ]
        expected = "/".join(f"{p}=${{{p}}}" for p in partition_columns(table))
        assert template[0].args["value"].name == f"s3://bucket/lake/{table}/{expected}/"


def test_ddl_quotes_only_what_athena_ddl_reserves(ddl):
    quoted = {
        (s.this.this.name, i.name)
        for s in sqlglot.parse(ddl, read="athena")
        for i in s.find_all(exp.Identifier)
        if i.quoted
    }
    assert quoted == {("trades", "exchange")}  # in the list of Athena's DDL reserved words
    assert {n for n in ALL_NAMES if n in ATHENA_DDL_RESERVED} == {"exchange"}
    assert "`" not in ddl.replace("`exchange`", "") and '"' not in ddl


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_view_parses_in_athena_and_trino(ddl, dialect):
    view = next(s for s in sqlglot.parse(ddl, read="athena") if s.kind == "VIEW")
    assert view.this.name == VIEW
    text = ddl[ddl.index("CREATE OR REPLACE VIEW") :].rstrip().rstrip(";")
    parsed = sqlglot.parse_one(text, read=dialect)
    assert not [i for i in parsed.find_all(exp.Identifier) if i.quoted]
    assert parsed.expression.named_selects == COLUMNS[VIEW]


def test_duckdb_reads_every_column_unquoted_as_the_ddl_describes(lean_lake, ddl):
    tables = _tables(ddl)
    with Lake(lean_lake) as lake:
        for table, columns in COLUMNS.items():
            result = lake.query(f"SELECT {', '.join(columns)} FROM {table}")
            assert result.column_names == columns
            if table in ("trades", "bars", "indicators", VIEW):
                assert result.num_rows > 0, table
            if table == VIEW:
                continue
            described = {r["column_name"]: r["column_type"]
                         for r in lake.query(f"DESCRIBE {table}").to_pylist()}  # fmt: skip
            ddl_types = _ddl_types(tables[table])
            assert {n: DUCKDB_TYPES[t] for n, t in ddl_types.items()} == described, table


def test_bars_with_indicators_join_is_exact(lean_lake):
    with Lake(lean_lake) as lake:
        (counts,) = lake.query(
            f"SELECT (SELECT count(*) FROM {VIEW}) AS joined, (SELECT count(*) FROM indicators)"
            " AS indicators, (SELECT count(*) FROM bars b WHERE EXISTS (SELECT 1 FROM indicators"
            " i WHERE i.dataset = b.dataset AND i.symbol = b.symbol AND i.timeframe = b.timeframe"
            " AND i.bar_start = b.bar_start)) AS bars"
        ).to_pylist()
        mismatched = lake.query(
            f"SELECT count(*) AS n FROM {VIEW} v JOIN indicators i USING (dataset, symbol,"
            " timeframe, bar_start) WHERE v.bar_end <> i.bar_end OR v.close <> i.close"
        ).to_pylist()[0]["n"]
    assert counts["joined"] == counts["indicators"] == counts["bars"] > 0
    assert mismatched == 0


def test_no_column_is_a_duckdb_keyword_kept_from_column_names():
    kept = {
        name
        for (name,) in duckdb.sql(
            "SELECT keyword_name FROM duckdb_keywords()"
            " WHERE keyword_category IN ('reserved', 'column_name')"
        ).fetchall()
    }
    assert {"end", "interval", "values"} <= kept  # the names of earlier releases were
    assert sorted(set(ALL_NAMES) & kept) == []


@pytest.fixture(scope="module")
def postgres_tables(tmp_path_factory, postgres_admin_url):
    from .db_fixtures import create_database

    url = create_database(postgres_admin_url)
    result = marketpulse("db", "migrate", "--postgres-url", url,
                         cwd=tmp_path_factory.mktemp("pg"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        ).fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return url, tables


def test_postgresql_reads_every_column_unquoted(postgres_tables):
    url, tables = postgres_tables
    assert {"bars", "indicators", "alerts", "trades"} <= set(tables)
    assert {"bar_start", "timeframe", "dataset"} <= set(tables["bars"])
    with psycopg.connect(url) as conn:
        for table, columns in tables.items():
            cursor = conn.execute(f"SELECT {', '.join(columns)} FROM {table} LIMIT 1")
            assert [d.name for d in cursor.description] == columns


def test_no_column_is_a_postgresql_keyword_kept_from_column_names(postgres_tables):
    url, tables = postgres_tables
    with psycopg.connect(url) as conn:
        kept = {w for (w,) in conn.execute(
            "SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T', 'C')")}  # fmt: skip
    assert {"end", "interval", "values"} <= kept  # the names of earlier releases were
    names = set(ALL_NAMES) | {c for columns in tables.values() for c in columns}
    assert sorted(names & kept) == []


def test_ddl_projects_the_lake_s_timeframes(lean_lake, tmp_path):
    result = marketpulse("lake", "ddl", "--lake", lean_lake, cwd=tmp_path,
                         env={"MARKETPULSE_INTERVALS": "15m"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    projected = {
        line.split("=")[1].strip(" ',")
        for line in result.stdout.splitlines()
        if "'projection.timeframe.values'" in line
    }
    # the replay wrote 1s, 1m and 5m bars; 15m is configured; 1d always
    assert projected == {"15m,1d,1m,1s,5m"}
    assert f"LOCATION '{lean_lake.resolve().as_uri()}/bars/'" in result.stdout


def test_lake_ddl_bad_database_is_one_line(tmp_path):
    result = marketpulse("lake", "ddl", "--database", "my-db", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --database: expected a plain name"), line


def test_ddl_of_a_lake_with_declared_indicators_has_their_columns(lean_lake, tmp_path):
    """A replay declaring ema(50) and rsi(7) beside the default set's lake: both in the DDL."""
    lake = tmp_path / "lake"
    shutil.copytree(lean_lake, lake)
    other = marketpulse("replay", LEAN_TRADES, "--lake", lake, "--dataset", "declared",
                        "--indicators", "ema(50), rsi(7)", cwd=tmp_path)  # fmt: skip
    assert other.returncode == 0, other.stderr
    result = marketpulse("lake", "ddl", "--lake", lake, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    indicators = _ddl_types(_tables(result.stdout)["indicators"])
    assert indicators["ema_50"] == indicators["rsi_7"] == indicators["rsi_14"] == "double"
    (view,) = [s for s in sqlglot.parse(result.stdout, read="athena") if s.kind == "VIEW"]
    assert {"ema_50", "rsi_7", "rsi_14", "session_vwap"} <= set(view.expression.named_selects)
    # the lake's own SQL reads the same columns from the same files
    with Lake(lake) as opened:
        counts = opened.query("SELECT count(ema_50) AS e, count(rsi_14) AS r"
                              " FROM bars_with_indicators WHERE dataset = 'declared'")  # fmt: skip
    assert counts.to_pylist() == [{"e": counts["e"][0].as_py(), "r": 0}]
    assert counts["e"][0].as_py() > 1000
    # without declared indicators in the lake, the table has the default columns only
    plain = marketpulse("lake", "ddl", "--lake", lean_lake, cwd=tmp_path).stdout
    assert "ema_50" not in _ddl_types(_tables(plain)["indicators"])
