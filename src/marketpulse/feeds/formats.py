"""Recognise a market data file: container, compression, delimiter and column layout.

Nothing here reads more than the head of a file; :mod:`marketpulse.feeds.replay`
does the streaming. Every problem is an :class:`~marketpulse.exceptions.InputError`
whose message starts with the file's path.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from marketpulse.exceptions import InputError
from marketpulse.feeds.decompress import Decompressed
from marketpulse.feeds.sanitise import MAX_LINE, line_problem

__all__ = ["Layout", "Source", "resolve_layout", "sniff"]

logger = logging.getLogger(__name__)

Kind = Literal["trades", "bars"]

_SAMPLE_BYTES = 64 * 1024
_MAGIC: dict[bytes, str] = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\x28\xb5\x2f\xfd": "zstd"}

#: Our column names and the file column names (normalised) recognised for each,
#: in order of preference.
_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "datetime", "ts", "date", "time"),
    "symbol": ("symbol", "ticker", "sym", "index"),
    "price": ("price",),
    "size": ("size", "quantity", "qty", "shares"),
    "exchange": ("exchange", "venue"),
    "condition": ("condition", "conditions", "salecondition"),
    "suspicious": ("suspicious",),
    # the quote in force at each trade (trades files): replayed as quotes before the trades
    "bid": ("bid", "bidprice"),
    "ask": ("ask", "askprice", "offer"),
    "bid_size": ("bidsize",),
    "ask_size": ("asksize",),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume", "vol"),
    "vwap": ("vwap",),
    "trades": ("trades", "tradecount"),
    "adj_close": ("adjclose", "adjustedclose"),
}
#: Other spellings accepted as targets of a ``columns=`` mapping.
_TARGET_SYNONYMS = {
    "ts": "timestamp",
    "time": "timestamp",
    "date": "timestamp",
    "datetime": "timestamp",
    "adjclose": "adj_close",
    "adjustedclose": "adj_close",
}

TRADE_COLUMNS = (
    "timestamp", "symbol", "price", "size", "exchange", "condition", "suspicious", "bid", "ask",
    "bid_size", "ask_size",
)  # fmt: skip
BAR_COLUMNS = (
    "timestamp", "symbol", "open", "high", "low", "close", "volume", "vwap", "trades", "adj_close",
)  # fmt: skip
_REQUIRED: dict[str, tuple[str, ...]] = {
    "trades": ("timestamp", "symbol", "price", "size"),
    "bars": ("timestamp", "symbol", "open", "high", "low", "close"),
}


@dataclass(frozen=True, slots=True)
class Source:
    """What a file is, from its first bytes.

    Attributes:
        path: the file.
        container: ``"csv"`` or ``"parquet"``.
        compression: codec of a compressed CSV (``"gzip"``, ...), else ``None``.
        delimiter: field separator of a CSV.
        header: the column names, as written in the file.
        row_bytes: average length of a data row in the sample (CSV), for block sizing.
        size: size of the file in bytes.
        types: the Arrow type of each column (Parquet; empty for CSV).
    """

    path: Path
    container: Literal["csv", "parquet"]
    compression: str | None
    delimiter: str
    header: tuple[str, ...]
    row_bytes: float
    size: int
    types: tuple[pa.DataType, ...] = ()


@dataclass(frozen=True, slots=True)
class Layout:
    """How a file's columns map onto a trades or bars table.

    Attributes:
        kind: ``"trades"`` or ``"bars"``.
        fields: our column name → index of the file column that holds it.
    """

    kind: Kind
    fields: dict[str, int]


def _norm(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch not in " _-")


def _fail(path: Path, message: str) -> InputError:
    return InputError(f"{path}: {message}")


def sniff(path: str | Path) -> Source:
    """Identify the container, compression, delimiter and header of ``path``.

    Raises:
        InputError: the file is missing, unreadable, empty, or neither CSV nor Parquet.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise _fail(path, "is a directory, not a file")
        with path.open("rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except OSError as exc:
        raise _fail(path, f"cannot read file ({exc.strerror or exc})") from None
    if head == b"PAR1":
        return _sniff_parquet(path, size)
    compression = next((codec for magic, codec in _MAGIC.items() if head.startswith(magic)), None)
    return _sniff_csv(path, size, compression)


def _sniff_parquet(path: Path, size: int) -> Source:
    try:
        schema = pq.ParquetFile(path).schema_arrow
    except (OSError, pa.ArrowException) as exc:
        raise _fail(path, f"not a readable Parquet file ({exc})") from None
    except UnicodeDecodeError:  # a damaged footer: a column name that is not UTF-8
        raise _fail(path, "not a readable Parquet file (a column name is not UTF-8)") from None
    return Source(path, "parquet", None, ",", tuple(schema.names), 0.0, size, tuple(schema.types))


def _sniff_csv(path: Path, size: int, compression: str | None) -> Source:
    """Read the header line; the rest of the file is rows, judged one by one later."""
    try:
        source = Decompressed(str(path), compression)
    except OSError as exc:
        raise _fail(path, f"cannot read file ({exc.strerror or exc})") from None
    parts: list[bytes] = []
    try:
        for piece in source.pieces():
            parts.append(piece)
            if sum(map(len, parts)) >= _SAMPLE_BYTES:
                break
    finally:
        source.close()
    sample = b"".join(parts)
    if not sample and source.broken is not None:
        raise _fail(path, f"cannot read {compression or 'file'} data ({source.broken.what})")
    if not sample.strip():
        raise _fail(path, "file is empty (expected a CSV header or Parquet data)")
    ends = [i for i in (sample.find(b"\n"), sample.find(b"\r")) if i >= 0]
    if not ends and len(sample) > MAX_LINE:
        raise _fail(path, f"unknown format: no line break in the first {len(sample):,} bytes")
    head = sample[: min(ends)] if ends else sample
    if b"\x00" in head:
        raise _fail(path, "unknown format: binary data, expected CSV (optionally gzip) or Parquet")
    try:
        first = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _fail(path, "unknown format: not UTF-8 text, expected CSV or Parquet") from None
    delimiter = max(",\t;|", key=first.count)
    if first.count(delimiter) == 0:
        delimiter = ","
    problem = line_problem(head, delimiter)
    if problem is not None:
        raise _fail(path, f"cannot read the header line: {problem}")
    header = tuple(next(csv.reader([first], delimiter=delimiter)))
    complete = sample[: sample.rfind(b"\n") + 1] or sample
    rows = max(complete.count(b"\n") - 1, 1)
    row_bytes = max((len(complete) - len(head) - 1) / rows, 8.0)
    return Source(path, "csv", compression, delimiter, header, row_bytes, size)


def resolve_layout(
    source: Source,
    kind: Kind | None = None,
    columns: dict[str, str] | None = None,
    symbol: str | None = None,
) -> Layout:
    """Map the file's columns onto ours and decide between trades and bars.

    Args:
        source: the sniffed file.
        kind: ``"trades"`` or ``"bars"`` to force the layout; ``None`` detects it.
        columns: file column name → our column name, for names we do not recognise.
        symbol: the instrument, when the file has no symbol column.

    Raises:
        InputError: a mapped column is not in the file, the columns fit neither
            layout, or a required column is missing.
    """
    path, header = source.path, source.header
    found = ", ".join(header) or "(none)"
    fields: dict[str, int] = {}
    for user_name, target in (columns or {}).items():
        ours = _TARGET_SYNONYMS.get(_norm(target), _norm(target))
        if ours not in _ALIASES:
            known = ", ".join(_ALIASES)
            raise _fail(
                path, f"columns= maps {user_name!r} to unknown column {target!r} (known: {known})"
            )
        index = _find(header, user_name)
        if index is None:
            raise _fail(
                path,
                f"column {user_name!r} given in columns= is not in the file "
                f"(columns found: {found})",
            )
        fields[ours] = index
    taken = set(fields.values())
    normalised = [_norm(name) for name in header]
    for ours, aliases in _ALIASES.items():
        if ours in fields:
            continue
        for alias in aliases:
            if alias in normalised and normalised.index(alias) not in taken:
                fields[ours] = normalised.index(alias)
                taken.add(fields[ours])
                break
    if kind is None:
        if {"price", "size"} <= fields.keys():
            kind = "trades"
        elif {"open", "high", "low", "close"} <= fields.keys():
            kind = "bars"
        else:
            raise _fail(
                path,
                f"columns fit neither trades (timestamp, symbol, price, size) "
                f"nor bars (date, open, high, low, close); columns found: {found}; "
                f"map other names with columns=",
            )
    elif kind not in _REQUIRED:
        raise ValueError(f"format must be 'trades', 'bars' or None, not {kind!r}")
    missing = [
        name
        for name in _REQUIRED[kind]
        if name not in fields and not (name == "symbol" and symbol is not None)
    ]
    if missing == ["symbol"]:
        raise _fail(path, "no symbol column; pass --symbol (symbol=) to name the instrument")
    if missing:
        raise _fail(
            path,
            f"missing required column(s) {', '.join(missing)} for {kind} "
            f"(columns found: {found}); map other names with columns=",
        )
    wanted = TRADE_COLUMNS if kind == "trades" else BAR_COLUMNS
    layout = Layout(kind, {name: index for name, index in fields.items() if name in wanted})
    logger.debug("%s: %s layout %s", path, kind, layout.fields)
    return layout


def _find(header: tuple[str, ...], name: str) -> int | None:
    if name in header:
        return header.index(name)
    matches = [i for i, column in enumerate(header) if _norm(column) == _norm(name)]
    return matches[0] if len(matches) == 1 else None
