"""Every SQL query of the Grafana dashboards (deploy/grafana/dashboards) parses and runs.

Grafana cannot be installed here, so its dashboards are checked without it:
the macros and variables Grafana substitutes are substituted the same way, the
query is parsed by sqlglot (PostgreSQL dialect), then run against a real
PostgreSQL whose schema the PostgreSQL sink's own migrations created, holding
one bar, its indicators and an alert that the queries must find.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import psycopg
import pytest
import sqlglot
from sqlglot.errors import ParseError

from marketpulse.sinks.postgres_schema import migrate

pytestmark = pytest.mark.integration

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
BAR_START = dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC)
VARIABLES = {"dataset": "live", "symbol": "SYM1", "timeframe": "1m"}


def grafana_sql(sql: str) -> str:
    """Substitute what Grafana substitutes: ``$__timeFilter(col)`` and ``$variable``."""
    start, end = BAR_START - dt.timedelta(hours=1), BAR_START + dt.timedelta(hours=1)

    def time_filter(match: re.Match) -> str:
        return f"{match.group(1)} BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'"

    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", time_filter, sql)
    assert "$__" not in sql, f"a Grafana macro this test does not substitute: {sql}"
    sql = re.sub(r"\$(\w+)", lambda m: VARIABLES[m.group(1)], sql)
    return sql


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, SQL) of every PostgreSQL query: panel targets and template variables."""
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if "rawSql" in target:
                    queries.append((f"{path.name}: {panel['title']}", target["rawSql"]))
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                queries.append((f"{path.name}: ${variable['name']}", variable["query"]))
    return queries


@pytest.fixture
def dashboard_database(postgres_url):
    """A database with the sink's schema and one bar, its indicators and an alert."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        migrate(conn)
        key = ("SYM1", "1m", BAR_START, BAR_START + dt.timedelta(minutes=1), "live")
        conn.execute(
            "INSERT INTO bars (symbol, timeframe, bar_start, bar_end, dataset, open, high, low,"
            " close, volume, trades) VALUES (%s, %s, %s, %s, %s, 10, 11, 9, 10.5, 100, 3)",
            key,
        )
        conn.execute(
            "INSERT INTO indicators (symbol, timeframe, bar_start, bar_end, dataset, close,"
            " sma_20, rsi_14, macd) VALUES (%s, %s, %s, %s, %s, 10.5, 10.2, 55, 0.1)",
            key,
        )
        conn.execute(
            "INSERT INTO alerts (symbol, timeframe, bar_start, bar_end, dataset, id, rule,"
            " severity, message) VALUES (%s, %s, %s, %s, %s, 'a1', 'breakout', 'info', 'up')",
            key,
        )
    return postgres_url


def test_the_dashboards_have_the_queries_this_test_runs():
    wheres = [where for where, _ in dashboard_queries()]
    assert len(wheres) >= 8
    assert any("candles" in w for w in wheres)


def test_every_dashboard_query_parses_and_runs_against_the_sinks_schema(dashboard_database):
    with psycopg.connect(dashboard_database) as conn:
        for where, raw in dashboard_queries():
            sql = grafana_sql(raw)
            sqlglot.parse_one(sql, read="postgres")
            rows = conn.execute(sql).fetchall()
            assert rows, f"{where}: no rows for the stored bar: {sql}"
            if "FROM bars" in sql and '"time"' in sql:
                assert rows[0][0] == BAR_START and rows[0][1:5] == (10, 11, 9, 10.5), where


def test_a_query_naming_a_column_the_schema_lacks_fails(dashboard_database):
    with psycopg.connect(dashboard_database) as conn, pytest.raises(psycopg.errors.UndefinedColumn):
        conn.execute(grafana_sql("SELECT start FROM bars WHERE $__timeFilter(start)"))


def test_a_malformed_query_does_not_parse():
    with pytest.raises(ParseError):
        sqlglot.parse_one(
            grafana_sql("SELECT open, FROM bars WHERE symbol = '$symbol' AND"), read="postgres"
        )
