"""The PostgreSQL schema of MarketPulse: tables, keys, versioned migrations, checks.

Tables have the lake's columns, with event times as ``timestamptz`` (the
pipeline's integer nanoseconds, floored to PostgreSQL's microseconds) and the
indicator columns under their usual names. Primary keys are the natural keys
(a bar is one symbol, interval and start), which also serve the dashboard's
queries by symbol, interval and time range; alerts get an index for those.

:func:`migrate` applies the numbered migrations not yet recorded in
``marketpulse_schema`` inside one transaction under an advisory lock, so it is
idempotent and safe to run from several processes. Where the TimescaleDB
extension is installed the time-series tables become hypertables.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import psycopg
from psycopg import sql

from marketpulse.models import INDICATOR_COLUMNS
from marketpulse.sinks.exceptions import SchemaMismatchError

__all__ = ["MIGRATIONS", "PG_TABLES", "PgTable", "check_tables", "migrate", "schema_version"]

logger = logging.getLogger(__name__)

_LOCK_ID = 0x4D50_5347  # "MPSG": one advisory lock for schema changes


@dataclass(frozen=True, slots=True)
class PgTable:
    """One table as the sink writes it.

    Attributes:
        name: table name (the pipeline's table name).
        columns: (column, kind) in order; kinds as :mod:`marketpulse.sinks.pgcopy` names them.
        key: the primary key's columns.
        time: the event-time column (hypertable dimension).
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    time: str

    @property
    def names(self) -> list[str]:
        """The column names, in order."""
        return [c for c, _ in self.columns]


_BAR_VALUES = (("open", "float8"), ("high", "float8"), ("low", "float8"), ("close", "float8"),
               ("volume", "float8"), ("vwap", "float8"), ("trades", "int8"))  # fmt: skip

#: The tables the PostgreSQL sink writes.
PG_TABLES: Mapping[str, PgTable] = MappingProxyType(
    {
        "bars": PgTable(
            "bars",
            (
                ("symbol", "text"),
                ("interval", "text"),
                ("start", "timestamptz"),
                ("end", "timestamptz"),
                *_BAR_VALUES,
            ),
            ("symbol", "interval", "start"),
            "start",
        ),  # fmt: skip
        "indicators": PgTable(
            "indicators",
            (
                ("symbol", "text"),
                ("interval", "text"),
                ("ts", "timestamptz"),
                ("close", "float8"),
                *((name, "float8") for name in INDICATOR_COLUMNS),
            ),
            ("symbol", "interval", "ts"),
            "ts",
        ),  # fmt: skip
        "alerts": PgTable(
            "alerts",
            (
                ("id", "text"),
                ("rule", "text"),
                ("symbol", "text"),
                ("interval", "text"),
                ("ts", "timestamptz"),
                ("severity", "text"),
                ("message", "text"),
                ("values", "text"),
            ),
            ("id", "ts"),  # a hypertable's keys include its time column
            "ts",
        ),  # fmt: skip
        "trades": PgTable(
            "trades",
            (
                ("symbol", "text"),
                ("ts", "timestamptz"),
                ("seq", "int4"),
                ("price", "float8"),
                ("size", "float8"),
                ("exchange", "text"),
                ("condition", "text"),
            ),
            ("symbol", "ts", "seq"),  # seq tells apart trades of one symbol at one time
            "ts",
        ),  # fmt: skip
    }
)

_SQL_TYPES = {"int8": "bigint", "int4": "integer", "float8": "double precision",
              "text": "text", "timestamptz": "timestamptz"}  # fmt: skip


def _create(table: PgTable) -> list[sql.Composable]:
    # keys compare bytewise ("C"): several times faster to index than a locale's rules
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(
            sql.Identifier(name),
            sql.SQL(_SQL_TYPES[kind]),
            sql.SQL(
                (' COLLATE "C"' if kind == "text" else "") + " NOT NULL"
                if name in table.key
                else ""
            ),
        )  # fmt: skip
        for name, kind in table.columns
    )
    key = sql.SQL(", ").join(map(sql.Identifier, table.key))
    return [
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
            sql.Identifier(table.name), columns, key
        )
    ]


def _v1() -> list[sql.Composable]:
    alerts_index = sql.SQL(
        "CREATE INDEX IF NOT EXISTS alerts_symbol_interval_ts ON alerts"
        ' (symbol COLLATE "C", "interval" COLLATE "C", ts)'
    )
    return [*_create(PG_TABLES["bars"]), *_create(PG_TABLES["indicators"]),
            *_create(PG_TABLES["alerts"]), alerts_index]  # fmt: skip


def _v2() -> list[sql.Composable]:
    return _create(PG_TABLES["trades"])


#: Numbered migrations: (version, description, statements). Append, never edit.
MIGRATIONS = (
    (1, "bars, indicators, alerts", _v1),
    (2, "trades", _v2),
)


def schema_version(conn: psycopg.Connection) -> int:
    """Return the newest migration applied to the database (0 for none)."""
    found = conn.execute("SELECT to_regclass('marketpulse_schema') IS NOT NULL").fetchone()
    if not found or not found[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM marketpulse_schema").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection) -> list[int]:
    """Apply the migrations the database lacks; return their versions.

    Runs in one transaction under an advisory lock: concurrent runs wait for
    each other, and a failed migration leaves the schema as it was.
    """
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS marketpulse_schema (version integer PRIMARY KEY,"
            " description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = schema_version(conn)
        timescale = _timescale(conn)
        for version, description, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements():
                conn.execute(statement)
            conn.execute(
                "INSERT INTO marketpulse_schema (version, description) VALUES (%s, %s)",
                (version, description),
            )
            applied.append(version)
            logger.info("postgres: applied migration %d (%s)", version, description)
        if timescale:
            for table in PG_TABLES.values():
                conn.execute(
                    "SELECT create_hypertable(%s, %s, if_not_exists => true, migrate_data => true)",
                    (table.name, table.time),
                )
    return applied


def _timescale(conn: psycopg.Connection) -> bool:
    """Create the TimescaleDB extension when the server has it; return whether it is there."""
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if row is None:
        return False
    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    return True


def check_tables(conn: psycopg.Connection, tables: list[str]) -> None:
    """Check that each table exists with exactly the columns the sink writes.

    Raises:
        SchemaMismatchError: a table is missing, lacks a column, has a column of
            another type, or has a column the sink does not know; the message
            names the table and the column.
    """
    rows = conn.execute(
        "SELECT table_name, column_name, udt_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ANY(%s)"
        " ORDER BY table_name, ordinal_position",
        (tables,),
    ).fetchall()
    found: dict[str, dict[str, str]] = {}
    for table, column, udt in rows:
        found.setdefault(table, {})[column] = udt
    for name in tables:
        expected = dict(PG_TABLES[name].columns)
        columns = found.get(name)
        if columns is None:
            raise SchemaMismatchError(
                f"postgres table {name!r} does not exist: run `marketpulse db migrate`"
            )
        for column, kind in expected.items():
            if column not in columns:
                raise SchemaMismatchError(f"postgres table {name!r} lacks column {column!r}")
            if columns[column] != kind:
                raise SchemaMismatchError(
                    f"postgres table {name!r}: column {column!r} is {columns[column]},"
                    f" the sink writes {kind}"
                )
        extra = [c for c in columns if c not in expected]
        if extra:
            raise SchemaMismatchError(
                f"postgres table {name!r} has column {extra[0]!r}, which the sink does not"
                f" write (expected: {', '.join(expected)})"
            )
