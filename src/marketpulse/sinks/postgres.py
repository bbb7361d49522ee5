"""The PostgreSQL sink: binary COPY, then upserts on natural keys where keys are stored.

Rows are buffered per table and written when a table's buffer holds
``max_rows`` rows, when the oldest buffered row has waited ``max_age_s``, and
on :meth:`PostgresSink.flush`. A flush is one transaction per table. New keys,
the usual case, go by ``COPY ... (FORMAT BINARY)`` straight into the table
(no staging, no per-row conflict check); a key already stored makes that
roll back to its savepoint, and the rows go by COPY into a temporary staging
table, then ``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE`` moves them
into the table, leaving alone the rows stored as they are (a replay's rows:
no new row versions). Rewriting rows (a replay after a crash) leaves the
same table, so the Kafka sink service commits its offsets after the flush
and may write again.

If the connection breaks (the server restarted), the sink reconnects with
backoff for up to ``retry_s`` seconds and redoes the whole transaction; rows
stay buffered until a commit succeeds, so none is lost or written twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import msgspec
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from marketpulse.config import STORAGE_RETRY, Secret
from marketpulse.exceptions import ConfigError
from marketpulse.models import BAR_QUOTE_COLUMNS
from marketpulse.redaction import redact_text, redact_url, secret_values
from marketpulse.sinks.base import TABLES, SinkStats, SourceRange
from marketpulse.sinks.batching import BatchingSink
from marketpulse.sinks.exceptions import SchemaMismatchError, SinkError, StorageLostError
from marketpulse.sinks.pgcopy import encode
from marketpulse.sinks.postgres_schema import (
    INDICATOR_FIXED,
    PG_TABLES,
    PgTable,
    add_bar_quote_columns,
    add_indicator_columns,
    bar_table,
    check_tables,
    indicator_table,
    migrate,
)
from marketpulse.sinks.retry import with_retries

__all__ = ["DEFAULT_TABLES", "PostgresSink"]

logger = logging.getLogger(__name__)

#: What the sink stores unless told otherwise (trades are many: opt in).
DEFAULT_TABLES = ("bars", "indicators", "alerts", "custom", "predictions", "news")

_TRANSIENT = (psycopg.OperationalError, psycopg.errors.AdminShutdown)
#: Connection failures that retrying cannot cure.
_PERMANENT = ("does not exist", "authentication failed", "no pg_hba.conf entry")
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="postgres")
_JSON = msgspec.json.Encoder()  # NaN and infinities as null


class PostgresSink(BatchingSink):
    """Write output tables to PostgreSQL, idempotently.

    :meth:`open` connects (retrying for ``connect_timeout_s``), migrates the
    schema and checks the tables' columns; the first write opens the sink if
    the caller has not.

    Args:
        url: ``postgresql://user:password@host:port/database`` or libpq's
            ``host=... password=...``; its secrets are never printed or logged.
        tables: the tables to store; writes to other tables are ignored.
        max_rows: buffered rows of one table that trigger a flush.
        max_age_s: age of the oldest buffered row that triggers a flush.
        connect_timeout_s: how long :meth:`open` retries an unreachable server.
        retry_s: how long a flush retries after the connection broke.
        clock: monotonic clock in seconds, replaceable in tests.
        convert: convert the tables of an earlier MarketPulse, giving their
            rows this dataset (``marketpulse db migrate``); without it,
            :meth:`open` refuses such tables.

    Raises:
        ConfigError: ``url`` is not a valid connection string (the message masks its secrets).
    """

    name = "postgres"

    def __init__(
        self,
        url: str | Secret,
        tables: Sequence[str] = DEFAULT_TABLES,
        max_rows: int = 500_000,
        max_age_s: float = 2.0,
        *,
        connect_timeout_s: float = 15.0,
        retry_s: float = STORAGE_RETRY,
        clock: Callable[[], float] = time.monotonic,
        convert: str | None = None,
    ) -> None:
        unknown = [t for t in tables if t not in PG_TABLES]
        if unknown:
            raise ValueError(f"postgres sink: unknown table {unknown[0]!r} "
                             f"(known: {', '.join(PG_TABLES)})")  # fmt: skip
        super().__init__(tuple(tables), max_rows, max_age_s, clock)
        self._url = url if isinstance(url, Secret) else Secret(url)
        self.where = redact_url(self._url.reveal())
        self._secrets = secret_values(self._url.reveal())
        try:
            conninfo_to_dict(self._url.reveal())
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"PostgreSQL URL {self.where}: {self._redact(exc)}") from None
        self.connect_timeout_s = connect_timeout_s
        self.retry_s = retry_s
        self._convert = convert
        self._conns: dict[str, psycopg.Connection] = {}  # one per table, flushed in parallel
        self._opened = False
        self._lost = False  # unreachable past retry_s mid-run: close flushes no more
        #: Migrations :meth:`open` applied.
        self.applied: list[int] = []
        self._buffers: dict[str, list[pa.Table]] = {}
        self._counts: dict[str, int] = {}
        # (dataset, symbol) -> (newest microsecond, trades in it)
        self._last_trade: dict[tuple[str, str], tuple[int, int]] = {}
        self._rows = dict.fromkeys(TABLES, 0)
        self._bytes = self._flushes = self._retries = 0
        #: The indicators table's columns known to be there (added or checked).
        self._indicator_columns: set[str] = set()

    def open(self) -> PostgresSink:
        """Connect, migrate and check the tables; return the sink.

        Raises:
            SinkUnavailableError: the server could not be reached in ``connect_timeout_s``.
            SchemaMismatchError: a table's columns are not what the sink writes,
                or the tables are an earlier MarketPulse's and ``convert`` is not set.
        """
        if not self._opened:
            conn = self._connect(self.tables[0], self.connect_timeout_s)
            try:
                if self._convert is None:
                    self.applied = migrate(conn)
                else:
                    self.applied = migrate(conn, convert=True, dataset=self._convert)
                check_tables(conn, list(self.tables))
            except psycopg.Error as exc:
                raise SinkError(f"PostgreSQL at {self.where}: {self._first_line(exc)}") from None
            self._opened = True
            logger.info("postgres sink: %s, tables %s", self.where, ", ".join(self.tables))
        return self

    def write(
        self, table: str, data: pa.Table | pa.RecordBatch, source: SourceRange | None = None
    ) -> None:
        """Buffer rows of a stored table; flush when ``max_rows`` are buffered."""
        if not self._stores(table, data):
            return
        rows = _conform(_pg_table(table, data), data)
        if table == "trades":
            rows = self._numbered_trades(rows)
        self._buffers.setdefault(table, []).append(rows)
        self._counts[table] = self._counts.get(table, 0) + rows.num_rows
        self._buffered()

    def flush(self) -> None:
        """Upsert every buffered row, one transaction per table, retrying broken connections.

        Tables are written on their own connections at the same time: the
        server spends most of a flush maintaining each table's key index, and
        does so on as many cores as there are tables.
        """
        if not self._buffers:
            return
        self.open()
        tables = list(self._buffers)
        try:
            if len(tables) == 1:
                self._flush_table(tables[0])
            else:
                for future in [_POOL.submit(self._flush_table, t) for t in tables]:
                    future.result()
        except StorageLostError:
            self._lost = True
            raise
        self._flushes += 1
        self._since = None if not self._buffers else self._since

    def close(self) -> None:
        """Flush and disconnect; later writes raise.

        Once the server stayed away past ``retry_s`` (:class:`StorageLostError`),
        closing disconnects without waiting that long again: the rows left are
        reported as not stored.
        """
        if self._closed:
            return
        try:
            if not self._lost:
                self.flush()
        finally:
            self._closed = True
            for conn in self._conns.values():
                conn.close()
            self._conns.clear()

    def _largest(self) -> int:
        return max(self._counts.values(), default=0)

    @property
    def stats(self) -> SinkStats:
        """Rows upserted so far, rows buffered, bytes sent, attempts retried."""
        buffered = dict.fromkeys(TABLES, 0) | self._counts
        return SinkStats(dict(self._rows), buffered, self._flushes, self._bytes, self._flushes,
                         self._retries)  # fmt: skip

    def _count_retry(self, exc: BaseException) -> None:
        self._retries += 1

    def _flush_table(self, table: str) -> None:
        # batches of other declared sets: a column a batch lacks is null in its rows
        rows = pa.concat_tables(self._buffers[table], promote_options="default")
        target = _pg_table(table, rows)
        rows = rows.select(target.names)
        payload = encode(rows, [kind for _, kind in target.columns])
        with_retries(
            lambda: self._upsert(target, payload), f"write {table} to PostgreSQL at {self.where}",
            _TRANSIENT, self.retry_s, on_retry=self._count_retry, lost="PostgreSQL",
        )  # fmt: skip
        # dropped only after the commit: a failure keeps the rows for the next flush
        del self._buffers[table]
        del self._counts[table]
        self._rows[table] += rows.num_rows
        self._bytes += len(payload)

    def _connect(self, table: str, budget_s: float) -> psycopg.Connection:
        what = f"connect to PostgreSQL at {self.where}"
        return with_retries(lambda: self._connect_once(table), what, _TRANSIENT, budget_s,
                            on_retry=self._count_retry)  # fmt: skip

    def _connect_once(self, table: str) -> psycopg.Connection:
        try:
            conn = psycopg.connect(self._url.reveal(), connect_timeout=5, autocommit=True)
        except psycopg.OperationalError as exc:
            if any(text in str(exc) for text in _PERMANENT):  # waiting will not help
                raise SinkError(f"PostgreSQL at {self.where}: {self._redact(exc)}") from None
            # retried and logged by with_retries: libpq's text may quote the connection string
            raise type(exc)(self._redact(exc)) from None
        # staging tables are session-local: keep a flush's rows in memory, not in temp files
        conn.execute("SET temp_buffers = '256MB'")
        self._conns[table] = conn
        return conn

    def _first_line(self, exc: BaseException) -> str:
        """Return the first line of a PostgreSQL error (the rest quotes the statement)."""
        text = self._redact(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__

    def _redact(self, exc: BaseException) -> str:
        """Return the text of ``exc`` without the URL's secrets."""
        return redact_text(str(exc), self._secrets)

    def _upsert(self, target: PgTable, payload: bytes) -> None:
        table = target.name
        conn = self._conns.get(table)
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            conn = self._connect_once(table)  # with_retries around us paces the attempts
        declared = [c for c in target.names if c not in INDICATOR_FIXED]
        lacking = [c for c in declared if c not in self._indicator_columns]
        try:
            with conn.transaction():
                if table == "indicators" and lacking:
                    add_indicator_columns(conn, lacking)
                if table == "bars" and len(target.columns) > len(PG_TABLES["bars"].columns):
                    add_bar_quote_columns(conn)  # bars with quotes: IF NOT EXISTS
                _copy_and_upsert(conn, target, payload)
            if table == "indicators":  # committed: the columns are there
                self._indicator_columns.update(declared)
        except SchemaMismatchError as exc:
            raise SchemaMismatchError(f"PostgreSQL at {self.where}: {exc}") from None
        except _TRANSIENT:
            conn.close()
            del self._conns[table]
            raise
        except psycopg.Error as exc:  # refused rows: retrying will not help; the rows stay
            raise SinkError(
                f"PostgreSQL at {self.where} refused rows of {table}: {self._first_line(exc)}"
            ) from None

    def _numbered_trades(self, rows: pa.Table) -> pa.Table:
        """Add ``seq``: the trade's rank among the symbol's trades in the same microsecond.

        Microseconds, not the pipeline's nanoseconds: PostgreSQL stores those,
        and trades apart by less must still get keys of their own. Counts
        carry across batches for the newest time of each dataset and symbol
        (trades of a symbol arrive in time order), so a replay numbers them
        the same.
        """
        datasets = rows.column("dataset").to_numpy(zero_copy_only=False).astype(str)
        symbols = rows.column("symbol").to_numpy(zero_copy_only=False).astype(str)
        ts = rows.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
        us = np.floor_divide(ts, 1000)
        order = np.lexsort((us, symbols, datasets))
        d, s, t = datasets[order], symbols[order], us[order]
        new_key = np.ones(len(order), np.bool_)
        new_key[1:] = (s[1:] != s[:-1]) | (d[1:] != d[:-1])
        new_group = new_key.copy()
        new_group[1:] |= t[1:] != t[:-1]
        starts = np.flatnonzero(new_group)
        group_of = np.cumsum(new_group) - 1
        seq_sorted = np.arange(len(order)) - starts[group_of]
        bounds = np.append(starts, len(order))
        for start in np.flatnonzero(new_key):  # a symbol's first time may continue
            last = self._last_trade.get((d[start], s[start]))
            if last is not None and last[0] == t[start]:
                g = group_of[start]
                seq_sorted[bounds[g] : bounds[g + 1]] += last[1]
        for end in np.flatnonzero(np.append(new_key[1:], True)):
            self._last_trade[(d[end], s[end])] = (int(t[end]), int(seq_sorted[end]) + 1)
        seq = np.empty(len(order), np.int32)
        seq[order] = seq_sorted
        return rows.add_column(2, "seq", pa.array(seq, pa.int32()))


def _pg_table(table: str, data: pa.Table | pa.RecordBatch) -> PgTable:
    """The table as ``data`` is written: indicators with the columns ``data`` declares."""
    if table == "bars":
        return bar_table(BAR_QUOTE_COLUMNS[0] in data.schema.names)
    if table != "indicators":
        return PG_TABLES[table]
    declared = [
        field.name
        for field in data.schema
        if field.name not in INDICATOR_FIXED and pa.types.is_floating(field.type)
    ]
    return indicator_table(declared)


def _conform(table: PgTable, data: pa.Table | pa.RecordBatch) -> pa.Table:
    """Return the columns of ``table`` (but ``seq``) from ``data``, checked."""
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    names = [n for n in table.names if n != "seq"]
    missing = [n for n in names if n not in data.column_names]
    if missing:
        raise ValueError(f"{table.name}: missing columns {', '.join(missing)}")
    rows = data.select(names)
    nulls = [n for n in table.key if n != "seq" and rows.column(n).null_count]
    if nulls:  # a row the key cannot hold: say which column, not PostgreSQL's constraint
        raise ValueError(f"{table.name}: null {nulls[0]} in a row (a key column)")
    if table.name == "trades":
        rows = rows.set_column(0, "symbol", pc.cast(rows.column("symbol"), pa.string()))
    if "details" in names:
        i = names.index("details")
        rows = rows.set_column(i, "details", _json_objects(rows.column(i)))
    return rows


def _json_objects(column: pa.ChunkedArray) -> pa.Array:
    """Return a map column (an alert's ``details``) as JSON object texts, for ``jsonb``.

    Non-finite numbers, which JSON cannot hold, become ``null``. A column of
    strings is taken as JSON texts already.
    """
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.combine_chunks()
    return pa.array(
        [None if pairs is None else _JSON.encode(dict(pairs)).decode()
         for pairs in column.to_pylist()],
        pa.string(),
    )  # fmt: skip


def _stage(table: str) -> sql.Identifier:
    return sql.Identifier(f"marketpulse_stage_{table}")


def _table_columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [name for (name,) in rows]


def _copy_and_upsert(conn: psycopg.Connection, table: PgTable, payload: bytes) -> None:
    columns = copied = sql.SQL(", ").join(map(sql.Identifier, table.names))
    copy = "COPY {} ({}) FROM STDIN (FORMAT BINARY)"
    with conn.cursor() as cur:
        try:  # new keys, the usual case: straight into the table, no staging, no speculation
            with conn.transaction():  # a savepoint: on a key already stored, upsert below
                with cur.copy(sql.SQL(copy).format(sql.Identifier(table.name), columns)) as stream:
                    stream.write(payload)
            return
        except psycopg.errors.UniqueViolation:
            logger.debug("postgres sink: %s keys already stored, upserting", table.name)
        stage = _stage(table.name)
        if table.name == "indicators":
            # the table may have gained columns since the staging table was made,
            # and the row replaces the stored one: the table's other columns become null
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
            names = list(_table_columns(conn, table.name))
            table = PgTable(table.name, tuple((n, "") for n in names), table.key, table.time)
        cur.execute(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS")
            .format(stage, sql.Identifier(table.name))
        )  # fmt: skip
        with cur.copy(sql.SQL(copy).format(stage, copied)) as stream:
            stream.write(payload)
        columns = sql.SQL(", ").join(map(sql.Identifier, table.names))
        key = sql.SQL(", ").join(map(sql.Identifier, table.key))
        values = [sql.Identifier(c) for c in table.names if c not in table.key]
        updates = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(c) for c in values)
        # a row stored as it is (a replay writes the same rows again) is left alone:
        # no new row version, no index entries
        changed = sql.SQL("({}) IS DISTINCT FROM ({})").format(
            sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier(table.name), c)
                               for c in values),
            sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(c) for c in values),
        )  # fmt: skip
        target = {"table": sql.Identifier(table.name), "columns": columns, "stage": stage,
                  "key": key, "updates": updates, "changed": changed}  # fmt: skip
        insert = sql.SQL(
            "INSERT INTO {table} ({columns}) SELECT {distinct}{columns} FROM {stage}{order}"
            " ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE {changed}"
        )
        try:
            with conn.transaction():  # a savepoint: a key twice in one batch retries below
                cur.execute(insert.format(distinct=sql.SQL(""), order=sql.SQL(""), **target))
        except psycopg.errors.CardinalityViolation:
            # the same key twice in one flush (a record read again): the later row wins
            cur.execute(
                insert.format(
                    distinct=sql.SQL("DISTINCT ON ({}) ").format(key),
                    order=sql.SQL(" ORDER BY {}, ctid DESC").format(key), **target,
                )
            )  # fmt: skip
