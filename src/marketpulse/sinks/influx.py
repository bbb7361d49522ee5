"""The InfluxDB sink: line protocol over HTTP ``/write`` (the 1.x API).

The 1.x ``/write`` endpoint is also served by InfluxDB 2.x and 3.x for v1
compatibility (database = bucket, user and password = user and token), so one
sink reaches them all. One measurement per table (``bars``, ``indicators``,
``alerts``); tags ``dataset``, ``symbol`` and ``timeframe`` (and ``rule`` for
alerts); the other columns are fields, null and non-finite ones left out
(``bar_end`` as integer nanoseconds, an alert's ``details`` as a JSON object
text: InfluxDB has neither timestamp nor map fields; an indicators row's
fields are its close, its declared indicator columns, whichever they are, and
``bar_end``); the point's time is the
bar's start in nanoseconds, the key bars, indicators and alerts share. A
point with the same measurement, tags and time replaces the earlier one, so
writing rows again is idempotent, and datasets never overwrite each other.

Rows are buffered and sent when ``max_rows`` are buffered, when the oldest has
waited ``max_age_s``, and on :meth:`InfluxSink.flush`, as gzip-compressed
requests of up to ``batch_lines`` points; failed requests (no connection,
5xx, 429) are retried with exponential backoff for up to ``retry_s`` seconds.
"""

from __future__ import annotations

import base64
import gzip
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import msgspec
import pyarrow as pa

from marketpulse.config import STORAGE_RETRY, Secret, redact_url
from marketpulse.models import BAR_QUOTE_COLUMNS, INDICATOR_KEY_COLUMNS
from marketpulse.sinks.base import TABLES, SinkStats, SourceRange
from marketpulse.sinks.batching import BatchingSink
from marketpulse.sinks.exceptions import SinkError, StorageLostError
from marketpulse.sinks.retry import with_retries

__all__ = ["INFLUX_TABLES", "InfluxSink", "line_protocol"]

logger = logging.getLogger(__name__)

_TAGS = ("dataset", "symbol", "timeframe")

#: Per table: (tag columns, field columns, time column) of its measurement; an
#: indicators point also has a field per declared indicator column of its row, a
#: bars point one per quote column (:data:`~marketpulse.models.BAR_QUOTE_COLUMNS`) of its row.
INFLUX_TABLES: Mapping[str, tuple[tuple[str, ...], tuple[str, ...], str]] = MappingProxyType(
    {
        "bars": (_TAGS, ("open", "high", "low", "close", "volume", "vwap", "trades", "bar_end"),
                 "bar_start"),
        "indicators": (_TAGS, ("close", "bar_end"), "bar_start"),
        "alerts": ((*_TAGS, "rule"), ("id", "severity", "message", "details", "bar_end"),
                   "bar_start"),
        "predictions": ((*_TAGS, "model", "horizon"),
                        ("direction", "probability", "value", "bar_end"), "bar_start"),
        "news": (("dataset", "symbol"), ("id", "headline", "source", "url", "sentiment"), "ts"),
    }
)  # fmt: skip
_JSON = msgspec.json.Encoder()  # NaN and infinities as null


class _Transient(Exception):
    """A request that may succeed if sent again (no connection, 5xx, 429)."""


_TRANSIENT = (_Transient, urllib.error.URLError, ConnectionError, TimeoutError)


class InfluxSink(BatchingSink):
    """Write output tables to InfluxDB as line protocol.

    Args:
        url: ``http://[user:password@]host:8086/database`` (the database, or a
            2.x/3.x bucket, is the path); the password is never printed.
        tables: the tables to store (:data:`INFLUX_TABLES`); others are ignored.
        max_rows: buffered rows that trigger a flush.
        max_age_s: age of the oldest buffered row that triggers a flush.
        batch_lines: points per HTTP request at most.
        connect_timeout_s: how long :meth:`open` retries an unreachable server.
        retry_s: how long a request is retried.
        clock: monotonic clock in seconds, replaceable in tests.
    """

    name = "influx"

    def __init__(
        self,
        url: str | Secret,
        tables: Sequence[str] = tuple(INFLUX_TABLES),
        max_rows: int = 100_000,
        max_age_s: float = 2.0,
        *,
        batch_lines: int = 5_000,
        connect_timeout_s: float = 15.0,
        retry_s: float = STORAGE_RETRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        unknown = [t for t in tables if t not in INFLUX_TABLES]
        if unknown:
            raise ValueError(f"influx sink: unknown table {unknown[0]!r} "
                             f"(known: {', '.join(INFLUX_TABLES)})")  # fmt: skip
        text = url.reveal() if isinstance(url, Secret) else url
        parts = urllib.parse.urlsplit(text)
        database = parts.path.strip("/")
        if parts.scheme not in ("http", "https") or not parts.hostname or not database:
            raise ValueError(
                f"influx URL {redact_url(text)!r}: expected http(s)://[user:password@]host:port/"
                "database"
            )
        self.where = redact_url(text)
        self.database = database
        self._base = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        self._auth = None
        if parts.username:
            user = urllib.parse.unquote(parts.username)
            token = f"{user}:{urllib.parse.unquote(parts.password or '')}"
            self._auth = Secret("Basic " + base64.b64encode(token.encode()).decode())
        query = dict(urllib.parse.parse_qsl(parts.query))
        self._write_url = f"{self._base}/write?" + urllib.parse.urlencode(
            {"db": database, "precision": "ns", **{k: v for k, v in query.items() if k == "rp"}}
        )
        super().__init__(tuple(tables), max_rows, max_age_s, clock)
        self.batch_lines = batch_lines
        self.connect_timeout_s, self.retry_s = connect_timeout_s, retry_s
        self._lines: list[str] = []
        self._pending: dict[str, int] = {}
        self._rows = dict.fromkeys(TABLES, 0)
        self._requests = self._bytes = self._flushes = self._retries = 0
        self._opened = False
        self._lost = False  # unreachable past retry_s mid-run: close sends no more

    def open(self) -> InfluxSink:
        """Check the server answers (retrying for ``connect_timeout_s``); create a 1.x database.

        Raises:
            SinkUnavailableError: no answer within ``connect_timeout_s``.
        """
        if self._opened:
            return self
        version = with_retries(self._ping, f"reach InfluxDB at {self.where}", _TRANSIENT,
                               self.connect_timeout_s, on_retry=self._count_retry)  # fmt: skip
        if version.startswith("1."):
            statement = f'CREATE DATABASE "{self.database}"'  # idempotent in 1.x
            self._request(f"{self._base}/query", urllib.parse.urlencode({"q": statement}).encode(),
                          {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        self._opened = True
        logger.info("influx sink: %s (InfluxDB %s)", self.where, version or "?")
        return self

    def write(
        self, table: str, data: pa.Table | pa.RecordBatch, source: SourceRange | None = None
    ) -> None:
        """Encode rows of a stored table as points; flush when ``max_rows`` are buffered."""
        if not self._stores(table, data):
            return
        self._lines.extend(line_protocol(table, data))
        self._pending[table] = self._pending.get(table, 0) + data.num_rows
        self._buffered()

    def _largest(self) -> int:
        return len(self._lines)

    def flush(self) -> None:
        """Send every buffered point, ``batch_lines`` per request, retrying failures."""
        if not self._lines:
            return
        self.open()
        headers = {"Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip"}
        while self._lines:
            chunk = self._lines[: self.batch_lines]
            body = gzip.compress(("\n".join(chunk) + "\n").encode(), compresslevel=1)
            try:
                with_retries(
                    lambda body=body: self._request(self._write_url, body, headers),
                    f"write to InfluxDB at {self.where}", _TRANSIENT, self.retry_s,
                    on_retry=self._count_retry, lost="InfluxDB",
                )  # fmt: skip
            except StorageLostError:
                self._lost = True
                raise
            del self._lines[: len(chunk)]  # sent: a later failure resends only the rest
            self._requests += 1
            self._bytes += len(body)
        for table, count in self._pending.items():
            self._rows[table] += count
        self._pending.clear()
        self._since = None
        self._flushes += 1

    def close(self) -> None:
        """Flush (not after the server stayed away past ``retry_s``); later writes raise."""
        if not self._closed:
            try:
                if not self._lost:
                    self.flush()
            finally:
                self._closed = True

    @property
    def stats(self) -> SinkStats:
        """Rows sent, rows buffered, requests, (compressed) bytes and attempts retried."""
        buffered = dict.fromkeys(TABLES, 0) | self._pending
        return SinkStats(dict(self._rows), buffered, self._requests, self._bytes, self._flushes,
                         self._retries)  # fmt: skip

    def _count_retry(self, exc: BaseException) -> None:
        self._retries += 1

    def _ping(self) -> str:
        request = urllib.request.Request(f"{self._base}/ping", method="GET")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return str(response.headers.get("X-Influxdb-Version", ""))
        except urllib.error.HTTPError as exc:
            raise _Transient(f"HTTP {exc.code} from /ping") from exc

    def _request(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        if self._auth is not None:
            request.add_unredirected_header("Authorization", self._auth.reveal())
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            if exc.code >= 500 or exc.code == 429:
                raise _Transient(f"HTTP {exc.code}: {detail}") from exc
            raise SinkError(f"InfluxDB at {self.where} refused a write (HTTP {exc.code}): "
                            f"{detail}") from exc  # fmt: skip


def line_protocol(table: str, data: pa.Table | pa.RecordBatch) -> list[str]:
    """Return the rows of ``table`` as InfluxDB line-protocol points.

    Raises:
        ValueError: a column of the measurement is missing.
    """
    tags, fields, time_column = INFLUX_TABLES[table]
    missing = [c for c in (*tags, *fields, time_column) if c not in data.column_names]
    if missing:
        raise ValueError(f"{table}: missing columns {', '.join(missing)}")
    if table == "indicators":  # the declared indicators' columns, whichever they are
        declared = [
            field.name
            for field in data.schema
            if field.name not in (*INDICATOR_KEY_COLUMNS, *tags)
            and pa.types.is_floating(field.type)
        ]
        fields = ("close", *declared, "bar_end")
    elif table == "bars":  # a bar's quote columns, where it has them (null ones are left out)
        fields = (*fields, *(c for c in BAR_QUOTE_COLUMNS if c in data.column_names))
    measurement = _escape_key(table)
    tag_values = [
        [None if v is None else f",{t}={_escape_key(v)}" for v in data.column(t).to_pylist()]
        for t in tags
    ]
    field_values = [(f, _formatter(data.schema.field(f).type), _ns(data.column(f)).to_pylist())
                    for f in fields]  # fmt: skip
    times = _ns(data.column(time_column)).to_pylist()
    lines = []
    for i, ts in enumerate(times):
        head = measurement + "".join(column[i] or "" for column in tag_values)
        parts = [
            f"{name}={fmt(values[i])}"
            for name, fmt, values in field_values
            if values[i] is not None and _finite(values[i])
        ]
        if parts and ts is not None:
            lines.append(f"{head} {','.join(parts)} {ts}")
    return lines


def _formatter(kind: pa.DataType) -> Callable[[object], str]:
    if pa.types.is_integer(kind) or pa.types.is_timestamp(kind):
        return lambda v: f"{v}i"
    if pa.types.is_floating(kind):
        return repr  # shortest text that reads back as the same float
    if pa.types.is_map(kind):  # (key, value) pairs: a JSON object
        return lambda v: _quoted(_JSON.encode(dict(v)).decode())
    return lambda v: _quoted(str(v))


def _ns(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Return a timestamp column as integer nanoseconds; other columns as they are."""
    if pa.types.is_timestamp(column.type):
        return column.cast(pa.timestamp("ns", tz=column.type.tz)).cast(pa.int64())
    return column


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _finite(value: object) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _escape_key(value: object) -> str:
    text = str(value).replace("\\", "\\\\")
    return text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
