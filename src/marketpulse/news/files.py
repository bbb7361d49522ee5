"""Headlines from a file: CSV with a header, or JSON Lines, as a feed of ``news`` batches.

Each row (or JSON object) names one headline::

    symbol,ts,headline,source,url,id
    AAPL,2013-10-07T13:45:00Z,Apple shares rise on iPhone demand,Reuters,https://...,r-1
    "AAPL,MSFT",2013-10-07T14:02:10Z,Tech stocks rally,,,

- ``symbol``: the symbol, or several separated by commas (one item each, same id);
- ``ts`` (or ``time``, ``datetime``, ``published``): ISO 8601 with or without a
  zone (without: ``--timezone``, UTC by default), or an epoch count in s, ms, us
  or ns (told by its magnitude);
- ``headline`` (or ``title``): the text the scorer reads;
- ``source``, ``url``, ``id``: optional. Without an ``id`` a row's id is derived
  from its symbol, time and headline, so a file read twice gives the same ids.

A row that cannot be read (a missing headline, a time that is no time, a JSON
line that is no object) becomes a dead letter naming the file, the line and the
field; the rows around it are kept.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from marketpulse.exceptions import ConfigError
from marketpulse.feeds.base import FeedBatch
from marketpulse.feeds.vendors.timestamps import epoch_ns
from marketpulse.models import NEWS_SCHEMA, DeadLetter, NewsItem

__all__ = ["NewsFile", "news_batch"]

_TIME = ("ts", "time", "datetime", "published")
_HEADLINE = ("headline", "title")
_BATCH_ROWS = 10_000
#: Characters that stand for bytes which were not UTF-8 (``surrogateescape``).
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def news_batch(items: list[NewsItem]) -> pa.RecordBatch:
    """The items as a record batch of :data:`~marketpulse.models.NEWS_SCHEMA`."""
    columns = {name: [getattr(item, name) for item in items] for name in NEWS_SCHEMA.names}
    return pa.RecordBatch.from_pydict(columns, schema=NEWS_SCHEMA)


def _first(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            return value
    return None


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value).strip() or None


class NewsFile:
    """A CSV or JSON Lines file of headlines, read once from start to end.

    Args:
        path: the file (``.jsonl``/``.ndjson`` is JSON Lines; anything else CSV).
        timezone: the zone of times written without one.

    Raises:
        ConfigError: the file is missing, or its header names no symbol, time or headline.
    """

    realtime = False

    def __init__(self, path: Path, timezone: str = "UTC") -> None:
        if not path.is_file():
            raise ConfigError(f"news file {path}: no such file")
        self.path = path
        self.name = str(path)
        self.timezone = timezone
        self._json = path.suffix.lower() in (".jsonl", ".ndjson")

    def batches(self) -> Iterator[FeedBatch]:
        """Yield the file's headlines in batches, with the dead letters of bad rows."""
        total = self.path.stat().st_size
        items: list[NewsItem] = []
        dead: list[DeadLetter] = []
        with self.path.open("rb") as raw:
            for line, row, text in self._rows(raw):
                self._read(line, row, text, items, dead)
                if len(items) + len(dead) >= _BATCH_ROWS:
                    yield FeedBatch("news", news_batch(items), dead, raw.tell(), total)
                    items, dead = [], []
        yield FeedBatch("news", news_batch(items), dead, total, total)

    def close(self) -> None:
        """Nothing to release: the file is closed as its last batch is read."""

    def _rows(self, raw: io.BufferedReader) -> Iterator[tuple[int, Any, bytes]]:
        """(line, row or an error text, the raw line) of each row."""
        if self._json:
            for number, data in enumerate(raw, start=1):
                if not data.strip():
                    continue
                try:
                    yield number, msgspec.json.decode(data), data
                except msgspec.DecodeError as exc:
                    yield number, f"not JSON: {exc}", data
            return
        # bytes that are not UTF-8 stay as surrogates: their row is refused, not the file
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.DictReader(text)
        header = [name.strip().lower() for name in reader.fieldnames or []]
        if any(_NOT_UTF8.search(name) for name in header):
            raise ConfigError(f"news file {self.path}: its header is not UTF-8 text "
                              "(expected a CSV file with symbol, ts, headline)")  # fmt: skip
        missing = [
            what
            for what, names in (("symbol", ("symbol",)), ("time", _TIME), ("headline", _HEADLINE))
            if not set(names) & set(header)
        ]
        if missing:
            raise ConfigError(
                f"news file {self.path}: the header names no {' and no '.join(missing)} column "
                f"(expected symbol, ts, headline; found {', '.join(header) or 'nothing'})"
            )
        reader.fieldnames = header
        rows = iter(reader)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:  # a field past the csv module's limit, an open quote
                raise ConfigError(f"news file {self.path}, after line {reader.line_num}: {exc}"
                                  ) from None  # fmt: skip
            line = ",".join(str(v) for v in row.values() if v is not None)
            if _NOT_UTF8.search(line):
                yield reader.line_num, "not UTF-8 text", line.encode("utf-8", "surrogateescape")
                continue
            yield reader.line_num, row, line.encode()

    def _read(self, line: int, row: Any, raw: bytes, items: list[NewsItem],
              dead: list[DeadLetter]) -> None:  # fmt: skip
        def refuse(reason: str, error: str) -> None:
            dead.append(DeadLetter(reason=reason, error=f"{self.path}:{line}: {error}", value=raw,
                                   file=str(self.path), line=line))  # fmt: skip

        if isinstance(row, str):
            refuse("parse", row)
            return
        if not isinstance(row, dict):
            refuse("parse", "expected a JSON object")
            return
        row = {str(k).strip().lower(): v for k, v in row.items()}
        symbols = [s.strip() for s in str(row.get("symbol") or "").split(",") if s.strip()]
        headline = _text(_first(row, _HEADLINE))
        when = _first(row, _TIME)
        if not symbols:
            refuse("symbol", "field symbol: missing")
            return
        if headline is None:
            refuse("schema", "field headline: missing")
            return
        try:
            ts = epoch_ns(when, self.timezone)
        except ValueError as exc:
            refuse("schema", f"field ts: {exc}" if when is not None else "field ts: missing")
            return
        ident = _text(row.get("id"))
        if ident is None:
            digest = hashlib.sha256(f"{','.join(symbols)}|{ts}|{headline}".encode()).hexdigest()
            ident = f"file:{digest[:16]}"
        source, url = _text(row.get("source")), _text(row.get("url"))
        for symbol in symbols:
            items.append(NewsItem(id=ident, symbol=symbol, ts=ts, headline=headline,
                                  source=source, url=url))  # fmt: skip
