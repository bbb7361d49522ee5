"""The PostgreSQL schema of MarketPulse: tables, keys, versioned migrations, checks.

Tables have the lake's columns (``timeframe``, ``bar_start``, ``bar_end``,
``dataset`` on every row: no name needs quoting) with event times as
``timestamptz`` and an alert's ``details`` as ``jsonb``. PostgreSQL keeps
microseconds: the pipeline's nanoseconds are floored to the microsecond (Lean
and the vendors' times are milli- or microsecond times and lose nothing; a
feed with nanosecond times loses the last three digits, and trades within one
microsecond are told apart by ``seq``). Primary keys are the natural keys
with the dataset (last in the index: a flush holds one dataset), which also
serve the dashboard's queries by symbol, timeframe and time range:

- bars and indicators: (symbol, timeframe, bar_start, dataset), so the view
  ``bars_with_indicators`` joins them exactly;
- alerts: (symbol, timeframe, bar_start, rule, dataset): a rule fires at most
  once per bar, and an alert's ``id`` is derived from these but the dataset,
  so the same alert of two datasets is two rows;
- trades: (symbol, ts, seq, dataset), ``seq`` numbering the trades of one
  symbol within one microsecond;
- custom (the values of users' plugins, long form): (symbol, timeframe,
  bar_start, name, dataset): one value per bar and name;
- predictions: (symbol, timeframe, bar_start, model, horizon, dataset);
- news: (symbol, ts, id, dataset): one row per article and symbol, however often
  a vendor's polls return it.

:func:`migrate` applies the numbered migrations not yet recorded in
``marketpulse_schema`` inside one transaction under an advisory lock, so it is
idempotent and safe to run from several processes. Migration 3 converts the
tables of earlier MarketPulse versions (``interval``, ``start``/``end``, the
indicators' and alerts' ``ts``, alerts' ``values``, no dataset); it rewrites
the tables, so only ``marketpulse db migrate`` applies it to a database that
holds them (``convert=True``): the sinks stop with one line saying so. Where
the TimescaleDB extension is installed the time-series tables become
hypertables.

The ``indicators`` table grows with the declared indicators: a batch with
columns the table lacks adds them (``double precision``, see
:func:`add_indicator_columns`) before its rows are written, and rows without
some of the table's columns store NULL there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import psycopg
from psycopg import sql

from marketpulse.models import BAR_QUOTE_COLUMNS, INDICATOR_COLUMNS, INTERVALS
from marketpulse.sinks.exceptions import SchemaMismatchError

__all__ = [
    "CONVERTS",
    "LEGACY_DATASET",
    "MIGRATIONS",
    "PG_TABLES",
    "SQL_TYPES",
    "VIEWS",
    "PgTable",
    "add_bar_quote_columns",
    "add_indicator_columns",
    "bar_table",
    "check_tables",
    "indicator_table",
    "migrate",
    "schema_version",
]

logger = logging.getLogger(__name__)

_LOCK_ID = 0x4D50_5347  # "MPSG": one advisory lock for schema changes

#: The dataset of rows converted from an earlier MarketPulse's tables (as ``lake migrate``).
LEGACY_DATASET = "legacy"


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
# the dataset last: a flush holds one dataset, and keys that differ early compare
# faster (10% less server CPU per row than the dataset first, measured on 1M bars
# and indicators); the dashboard's queries use the (symbol, timeframe, time) prefix
_BAR_KEY = ("symbol", "timeframe", "bar_start", "dataset")

#: The tables the PostgreSQL sink writes.
PG_TABLES: Mapping[str, PgTable] = MappingProxyType(
    {
        "bars": PgTable(
            "bars",
            (
                ("symbol", "text"),
                ("timeframe", "text"),
                ("bar_start", "timestamptz"),
                ("bar_end", "timestamptz"),
                *_BAR_VALUES,
                ("dataset", "text"),
            ),
            _BAR_KEY,
            "bar_start",
        ),  # fmt: skip
        "indicators": PgTable(
            "indicators",
            (
                ("symbol", "text"),
                ("timeframe", "text"),
                ("bar_start", "timestamptz"),
                ("bar_end", "timestamptz"),
                ("close", "float8"),
                *((name, "float8") for name in INDICATOR_COLUMNS),
                ("dataset", "text"),
            ),
            _BAR_KEY,
            "bar_start",
        ),  # fmt: skip
        "alerts": PgTable(
            "alerts",
            (
                ("id", "text"),
                ("rule", "text"),
                ("symbol", "text"),
                ("timeframe", "text"),
                ("bar_start", "timestamptz"),
                ("bar_end", "timestamptz"),
                ("severity", "text"),
                ("message", "text"),
                ("details", "jsonb"),
                ("dataset", "text"),
            ),
            (*_BAR_KEY[:3], "rule", "dataset"),  # one alert per rule and bar
            "bar_start",
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
                ("dataset", "text"),
            ),
            ("symbol", "ts", "seq", "dataset"),  # seq tells apart trades in one microsecond
            "ts",
        ),  # fmt: skip
        "custom": PgTable(
            "custom",
            (
                ("symbol", "text"),
                ("timeframe", "text"),
                ("bar_start", "timestamptz"),
                ("bar_end", "timestamptz"),
                ("name", "text"),
                ("value", "float8"),
                ("dataset", "text"),
            ),
            (*_BAR_KEY[:3], "name", "dataset"),  # one value per bar and name
            "bar_start",
        ),  # fmt: skip
        "predictions": PgTable(
            "predictions",
            (
                ("symbol", "text"),
                ("timeframe", "text"),
                ("bar_start", "timestamptz"),
                ("bar_end", "timestamptz"),
                ("model", "text"),
                ("horizon", "int8"),
                ("direction", "int8"),
                ("probability", "float8"),
                ("value", "float8"),
                ("dataset", "text"),
            ),
            (*_BAR_KEY[:3], "model", "horizon", "dataset"),  # one per bar, model and horizon
            "bar_start",
        ),  # fmt: skip
        "news": PgTable(
            "news",
            (
                ("id", "text"),
                ("symbol", "text"),
                ("ts", "timestamptz"),
                ("headline", "text"),
                ("source", "text"),
                ("url", "text"),
                ("sentiment", "float8"),
                ("dataset", "text"),
            ),
            # an article is seen again by later polls: one row per article and symbol (its
            # time is in the key for TimescaleDB's hypertables, and is the article's own)
            ("symbol", "ts", "id", "dataset"),
            "ts",
        ),  # fmt: skip
    }
)

#: The columns of every indicators row besides its declared indicator columns.
INDICATOR_FIXED = ("symbol", "timeframe", "bar_start", "bar_end", "close", "dataset")


def indicator_table(columns: Sequence[str]) -> PgTable:
    """The ``indicators`` table as a batch with the declared ``columns`` writes it."""
    base = PG_TABLES["indicators"]
    fixed = dict(base.columns)
    return PgTable(
        base.name,
        (
            *((name, fixed[name]) for name in INDICATOR_FIXED[:-1]),
            *((name, "float8") for name in columns),
            ("dataset", "text"),
        ),
        base.key,
        base.time,
    )


def add_indicator_columns(conn: psycopg.Connection, columns: Sequence[str]) -> list[str]:
    """Add to the ``indicators`` table the declared ``columns`` it lacks; return those added.

    Each is added as ``double precision`` (``ADD COLUMN IF NOT EXISTS``: sinks
    adding the same column at once both succeed), and to the end of the
    ``bars_with_indicators`` view. Call it inside the transaction that writes
    the rows.

    Raises:
        SchemaMismatchError: one of ``columns`` is in the table with another type.
    """
    return _add_float_columns(conn, "indicators", columns, "a declared indicator column")


def bar_table(quoted: bool) -> PgTable:
    """The ``bars`` table as a batch writes it: with :data:`BAR_QUOTE_COLUMNS` when ``quoted``."""
    base = PG_TABLES["bars"]
    if not quoted:
        return base
    columns = (*base.columns[:-1], *((n, "float8") for n in BAR_QUOTE_COLUMNS), base.columns[-1])
    return PgTable(base.name, columns, base.key, base.time)


def add_bar_quote_columns(conn: psycopg.Connection) -> list[str]:
    """Add to the ``bars`` table the quote columns it lacks (as :func:`add_indicator_columns`).

    Raises:
        SchemaMismatchError: one of them is in the table with another type.
    """
    return _add_float_columns(conn, "bars", BAR_QUOTE_COLUMNS, "a bar's quote column")


def _add_float_columns(
    conn: psycopg.Connection, table: str, columns: Sequence[str], what: str
) -> list[str]:
    found = _udts(conn, table)
    added = []
    for name in columns:
        kind = found.get(name)
        if kind is None:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} double precision").format(
                    sql.Identifier(table), sql.Identifier(name)
                )
            )
            added.append(name)
        elif kind != "float8":
            raise SchemaMismatchError(
                f"postgres table {table!r}: column {name!r} is {kind}, the sink writes"
                f" float8 ({what})"
            )
    if added:
        if table == "indicators":
            _extend_view(conn, added)
        logger.info("postgres: %s gained column(s) %s", table, ", ".join(added))
    return added


#: The tables migration 3 converts (those of the earlier MarketPulse versions).
_V3_TABLES = ("bars", "indicators", "alerts", "trades")

#: The bar's columns in ``bars_with_indicators``, before the indicators'.
_VIEW_BAR_COLUMNS = (
    "dataset", "symbol", "timeframe", "bar_start", "bar_end", "open", "high", "low", "close",
    "volume", "vwap", "trades",
)  # fmt: skip


def bars_with_indicators_query(columns: Sequence[str]) -> str:
    """The ``bars_with_indicators`` view's query, with the indicator ``columns`` in order.

    Bars with the indicators of the same bar (an exact join on the shared key).
    The indicators' session VWAP is ``session_vwap`` beside the bar's own
    ``vwap``; the columns are the lake view's (but its ``period``).
    """
    return (
        "SELECT dataset, symbol, timeframe, bar_start, b.bar_end, b.open, b.high, b.low,"
        " b.close, b.volume, b.vwap, b.trades, "
        + ", ".join(
            "i.vwap AS session_vwap" if name == "vwap" else f'i."{name}"' for name in columns
        )
        + " FROM bars b JOIN indicators i"
        " USING (dataset, symbol, timeframe, bar_start)"
    )


#: Views over the tables, as a new database gets them.
VIEWS: Mapping[str, str] = MappingProxyType(
    {"bars_with_indicators": bars_with_indicators_query(INDICATOR_COLUMNS)}
)


def _extend_view(conn: psycopg.Connection, added: Sequence[str]) -> None:
    """Append the ``added`` indicator columns to ``bars_with_indicators``, where it exists.

    ``CREATE OR REPLACE VIEW`` keeps the view's columns and their order and
    appends the new ones, so queries written against it keep working. A view
    the user dropped stays dropped.
    """
    shown = [
        "vwap" if name == "session_vwap" else name
        for name, _ in sorted(
            conn.execute(
                "SELECT column_name, ordinal_position FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = 'bars_with_indicators'"
            ).fetchall(),
            key=lambda row: row[1],
        )
    ][len(_VIEW_BAR_COLUMNS) :]
    if not shown:
        return
    columns = [*shown, *(name for name in added if name not in shown)]
    conn.execute(
        sql.SQL("CREATE OR REPLACE VIEW bars_with_indicators AS {}").format(
            sql.SQL(bars_with_indicators_query(columns))
        )
    )


#: The SQL type of each column kind (as :mod:`marketpulse.sinks.pgcopy` names kinds).
SQL_TYPES = {"int8": "bigint", "int4": "integer", "float8": "double precision",
             "text": "text", "timestamptz": "timestamptz", "jsonb": "jsonb"}  # fmt: skip


def _create(table: PgTable, name: str, if_missing: bool = False) -> sql.Composable:
    # keys compare bytewise ("C"): several times faster to index than a locale's rules
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(
            sql.Identifier(column),
            sql.SQL(SQL_TYPES[kind]),
            sql.SQL(
                (' COLLATE "C"' if kind == "text" else "") + " NOT NULL"
                if column in table.key
                else ""
            ),
        )  # fmt: skip
        for column, kind in table.columns
    )
    key = sql.SQL(", ").join(map(sql.Identifier, table.key))
    create = "CREATE TABLE IF NOT EXISTS" if if_missing else "CREATE TABLE"
    return sql.SQL(create + " {} ({}, PRIMARY KEY ({}))").format(sql.Identifier(name), columns, key)


# Migrations 1 and 2 as they were first released (the tables of earlier
# MarketPulse versions): a new database goes through 3 as an old one does.
_V1 = (
    'CREATE TABLE IF NOT EXISTS bars (symbol text COLLATE "C" NOT NULL,'
    ' "interval" text COLLATE "C" NOT NULL, start timestamptz NOT NULL, "end" timestamptz,'
    " open double precision, high double precision, low double precision,"
    " close double precision, volume double precision, vwap double precision, trades bigint,"
    ' PRIMARY KEY (symbol, "interval", start))',
    'CREATE TABLE IF NOT EXISTS indicators (symbol text COLLATE "C" NOT NULL,'
    ' "interval" text COLLATE "C" NOT NULL, ts timestamptz NOT NULL, close double precision, '
    + ", ".join(f"{name} double precision" for name in INDICATOR_COLUMNS)
    + ', PRIMARY KEY (symbol, "interval", ts))',
    'CREATE TABLE IF NOT EXISTS alerts (id text COLLATE "C" NOT NULL, rule text, symbol text,'
    ' "interval" text, ts timestamptz NOT NULL, severity text, message text, "values" text,'
    " PRIMARY KEY (id, ts))",
    "CREATE INDEX IF NOT EXISTS alerts_symbol_interval_ts ON alerts"
    ' (symbol COLLATE "C", "interval" COLLATE "C", ts)',
)
_V2 = (
    'CREATE TABLE IF NOT EXISTS trades (symbol text COLLATE "C" NOT NULL,'
    " ts timestamptz NOT NULL, seq integer NOT NULL, price double precision,"
    " size double precision, exchange text, condition text, PRIMARY KEY (symbol, ts, seq))",
)


#: The columns migration 3 converts, per table.
_OLD_COLUMNS = {
    "bars": ("symbol", "interval", "start", "end", *(c for c, _ in _BAR_VALUES)),
    "indicators": ("symbol", "interval", "ts", "close", *INDICATOR_COLUMNS),
    "alerts": ("id", "rule", "symbol", "interval", "ts", "severity", "message", "values"),
    "trades": ("symbol", "ts", "seq", "price", "size", "exchange", "condition"),
}


def _v1(conn: psycopg.Connection, dataset: str) -> None:
    for statement in _V1:
        conn.execute(statement)


def _v2(conn: psycopg.Connection, dataset: str) -> None:
    for statement in _V2:
        conn.execute(statement)


def _v3(conn: psycopg.Connection, dataset: str) -> None:
    """Rewrite the tables of migrations 1 and 2 in the issue-19 data contract.

    Indicators and alerts carried their bar's end (``ts``); their ``bar_start``
    is the start of the stored bar that ends then, else ``ts`` minus the
    timeframe's length. Times stored as integer nanoseconds (tables made by
    hand) are converted too.
    """
    _v1(conn, dataset)  # tables dropped since are converted empty
    _v2(conn, dataset)
    old = {t: _udts(conn, t) for t in _V3_TABLES}
    for table, columns in _OLD_COLUMNS.items():
        lacking = [c for c in columns if c not in old[table]]
        if lacking:
            raise SchemaMismatchError(
                f"postgres table {table!r} is not an earlier MarketPulse's (it lacks column"
                f" {lacking[0]!r}): drop or rename it, then run marketpulse db migrate again"
            )

    def when(table: str, column: str, alias: str = "o") -> sql.Composable:
        ref = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(column))
        if old[table].get(column) in ("int8", "int4", "numeric"):  # epoch nanoseconds
            return sql.SQL(
                "(timestamptz '1970-01-01 00:00:00+00' + floor({0}::numeric / 1000)::bigint"
                " * interval '1 microsecond')"
            ).format(ref)
        return ref

    lengths = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}::interval").format(
            sql.Literal(tf), sql.Literal(f"{ns // 1000} microseconds")
        )
        for tf, ns in INTERVALS.items()
    )
    ds = sql.Literal(dataset)

    def start_of(table: str) -> sql.Composable:
        """bar_start of an indicators/alerts row ``o`` keyed by its bar's end ``o.ts``."""
        return sql.SQL('coalesce({b_start}, {end} - CASE o."interval" {lengths} END)').format(
            b_start=when("bars", "start", "b"), end=when(table, "ts"), lengths=lengths
        )

    bar_join = sql.SQL(
        ' LEFT JOIN bars b ON b.symbol = o.symbol AND b."interval" = o."interval" AND {} = {}'
    )
    statements = []
    for name in _V3_TABLES:
        statements.append(_create(PG_TABLES[name], f"{name}_v3"))
    values = sql.SQL(", ").join(sql.SQL("o.{}").format(sql.Identifier(c)) for c, _ in _BAR_VALUES)
    statements.append(sql.SQL(
        "INSERT INTO bars_v3 SELECT o.symbol, o.\"interval\", {}, {}, {}, {} FROM bars o"
    ).format(when("bars", "start"), when("bars", "end"), values, ds))  # fmt: skip
    indicators = sql.SQL(", ").join(
        sql.SQL("o.{}").format(sql.Identifier(c)) for c in ("close", *INDICATOR_COLUMNS)
    )
    statements.append(sql.SQL(
        'INSERT INTO indicators_v3 SELECT o.symbol, o."interval", {}, {}, {}, {} FROM indicators o'
    ).format(start_of("indicators"), when("indicators", "ts"), indicators, ds)
      + bar_join.format(when("bars", "end", "b"), when("indicators", "ts")))  # fmt: skip
    statements.append(sql.SQL(
        'INSERT INTO alerts_v3 SELECT o.id, o.rule, o.symbol, o."interval", {}, {}, o.severity,'
        ' o.message, o."values"::jsonb, {} FROM alerts o'
    ).format(start_of("alerts"), when("alerts", "ts"), ds)
      + bar_join.format(when("bars", "end", "b"), when("alerts", "ts")))  # fmt: skip
    statements.append(sql.SQL(
        "INSERT INTO trades_v3 SELECT o.symbol, {}, o.seq, o.price, o.size, o.exchange,"
        " o.condition, {} FROM trades o"
    ).format(when("trades", "ts"), ds))  # fmt: skip
    for table in _V3_TABLES:
        statements.append(sql.SQL("DROP TABLE {} CASCADE").format(sql.Identifier(table)))
        statements.append(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            sql.Identifier(f"{table}_v3"), sql.Identifier(table)))  # fmt: skip
        statements.append(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
            sql.Identifier(table), sql.Identifier(f"{table}_v3_pkey"),
            sql.Identifier(f"{table}_pkey")))  # fmt: skip
    for name, query in VIEWS.items():
        statements.append(sql.SQL("CREATE VIEW {} AS {}").format(sql.Identifier(name),
                                                                 sql.SQL(query)))  # fmt: skip
    for statement in statements:
        conn.execute(statement)


def _udts(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT column_name, udt_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    ).fetchall()
    return dict(rows)


def _v4(conn: psycopg.Connection, dataset: str) -> None:
    """Create the ``custom`` table (plugins' values) where it is missing."""
    conn.execute(_create(PG_TABLES["custom"], "custom", if_missing=True))


def _v5(conn: psycopg.Connection, dataset: str) -> None:
    """Create the ``predictions`` table (forecasting models' predictions) where it is missing."""
    conn.execute(_create(PG_TABLES["predictions"], "predictions", if_missing=True))


def _v6(conn: psycopg.Connection, dataset: str) -> None:
    """Create the ``news`` table (headlines and their sentiment) where it is missing."""
    conn.execute(_create(PG_TABLES["news"], "news", if_missing=True))


#: Numbered migrations: (version, description, apply(conn, dataset of converted rows)).
#: Append, never edit.
MIGRATIONS: tuple[tuple[int, str, Callable[[psycopg.Connection, str], None]], ...] = (
    (1, "bars, indicators, alerts", _v1),
    (2, "trades", _v2),
    (3, "data contract: timeframe, bar_start/bar_end, dataset, jsonb details, views", _v3),
    (4, "custom: the values of plugins", _v4),
    (5, "predictions: the forecasting models' predictions", _v5),
    (6, "news: headlines and their sentiment", _v6),
)
#: The first migration that rewrites stored rows: only ``db migrate`` applies it to them.
CONVERTS = 3


def schema_version(conn: psycopg.Connection) -> int:
    """Return the newest migration applied to the database (0 for none)."""
    found = conn.execute("SELECT to_regclass('marketpulse_schema') IS NOT NULL").fetchone()
    if not found or not found[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM marketpulse_schema").fetchone()
    return int(row[0]) if row else 0


def migrate(
    conn: psycopg.Connection, *, convert: bool = False, dataset: str = LEGACY_DATASET
) -> list[int]:
    """Apply the migrations the database lacks; return their versions.

    Runs in one transaction under an advisory lock: concurrent runs wait for
    each other, and a failed migration leaves the schema as it was.

    Args:
        conn: an autocommit connection.
        convert: rewrite the tables of an earlier MarketPulse (``db migrate``);
            without it such tables raise.
        dataset: the dataset of the rows converted.

    Raises:
        SchemaMismatchError: the database holds tables of an earlier
            MarketPulse and ``convert`` is not set (one line saying how to
            convert them).
    """
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS marketpulse_schema (version integer PRIMARY KEY,"
            " description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = schema_version(conn)
        if current < CONVERTS and not convert:
            held = _held_tables(conn)
            if held:
                raise SchemaMismatchError(
                    f"postgres table {held[0]!r} has the columns of an earlier MarketPulse"
                    f" (schema version {current}); convert the tables with: marketpulse db"
                    " migrate (on the same database), or drop them"
                )
        timescale = _timescale(conn)
        for version, description, apply in MIGRATIONS:
            if version <= current:
                continue
            apply(conn, dataset)
            conn.execute(
                "INSERT INTO marketpulse_schema (version, description) VALUES (%s, %s)",
                (version, description),
            )
            applied.append(version)
        if timescale:
            for table in PG_TABLES.values():
                conn.execute(
                    "SELECT create_hypertable(%s, %s, if_not_exists => true, migrate_data => true)",
                    (table.name, table.time),
                )
    for version in applied:  # committed
        logger.info("postgres: applied migration %d (%s)", version, MIGRATIONS[version - 1][1])
    return applied


def _held_tables(conn: psycopg.Connection) -> list[str]:
    """The tables of earlier MarketPulse versions that exist (those migration 3 converts)."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_name = ANY(%s)",
        (list(_V3_TABLES),),
    ).fetchall()
    found = {name for (name,) in rows}
    return [name for name in _V3_TABLES if name in found]


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

    The ``indicators`` table may have more ``double precision`` columns: those
    of indicators declared by earlier runs.

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
        if name == "indicators":  # declared indicators' columns
            extra = [c for c in extra if columns[c] != "float8"]
        elif name == "bars":  # quote columns, added by the first bars with quotes
            extra = [c for c in extra if c not in BAR_QUOTE_COLUMNS or columns[c] != "float8"]
        if extra:
            raise SchemaMismatchError(
                f"postgres table {name!r} has column {extra[0]!r}, which the sink does not"
                f" write (expected: {', '.join(expected)})"
            )
