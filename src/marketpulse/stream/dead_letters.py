"""Rejected input rows described as dead letters: what is wrong, and where the row came from."""

from __future__ import annotations

import msgspec
import numpy as np
import pyarrow as pa

from marketpulse.bus.base import Batch
from marketpulse.models import DeadLetter
from marketpulse.stream.validate import (
    EARLIEST_BAR,
    EARLIEST_TRADE,
    LATEST,
    MAX_CLOCK_SKEW,
    MAX_PRICE,
    MAX_SIZE,
    MIN_PRICE,
)

__all__ = ["dead_letters", "iso_time"]

_json = msgspec.json.Encoder()


def dead_letters(
    data: pa.RecordBatch,
    rows: np.ndarray,
    reasons: list[str],
    batch: Batch,
    offsets: np.ndarray | None = None,
) -> list[DeadLetter]:
    """Describe rejected rows as dead letters, with where they came from."""
    offsets = rows if offsets is None else offsets
    picked = data.take(pa.array(rows)).to_pylist()
    metadata = data.schema.metadata or {}
    source = metadata.get(b"source", b"").decode() or None
    letters = []
    for row, reason, offset in zip(picked, reasons, offsets, strict=True):
        line = row.pop("line", None)  # file replays: the source line
        absolute = row.pop("offset", None)  # decoded messages: their own offset
        row.pop("dataset", None)  # the run's, not the record's
        letters.append(
            DeadLetter(
                reason=reason,
                error=_describe(reason, row),
                value=_json.encode({"type": "trade" if "price" in row else "bar", **row}),
                key=row.get("symbol"),
                topic=batch.topic,
                partition=batch.partition,
                offset=int(absolute) if absolute is not None else batch.first_offset + int(offset),
                file=source,
                line=line,
                ts=row.get("ts", row.get("bar_start")),
            )
        )
    return letters


def iso_time(ns: int | None) -> str:
    """Return a time in ns as ISO 8601 UTC (``2030-01-01T00:00:00Z``), to the precision it has."""
    if ns is None:
        return "missing"
    unit = "s" if ns % 10**9 == 0 else "auto"
    return f"{np.datetime_as_string(np.datetime64(int(ns), 'ns'), unit=unit)}Z"


_PRICES = ("price", "open", "high", "low", "close", "vwap")
_NUMBERS = ("price", "size", "open", "high", "low", "close", "volume", "vwap")


def _describe(reason: str, row: dict) -> str:
    if reason == "late":
        return f"late tick: {row.get('symbol')} at ts {row.get('ts')} is behind the watermark"
    if reason == "symbol":
        return f"field symbol: invalid symbol {row.get('symbol')!r}"
    if reason == "nan":
        fields = [k for k in _NUMBERS if k in row and (row[k] is None or row[k] != row[k])]
        fields = [k for k in fields if k != "vwap"]  # a missing vwap is allowed
        fields += [k for k in _NUMBERS if k in row and row[k] in (float("inf"), float("-inf"))]
        return f"field {', '.join(fields) or 'value'}: missing, infinite or not a number"
    if reason == "price":
        name, value = next(
            ((k, row[k]) for k in _PRICES if k in row and not _plausible_price(row[k])),
            ("price", row.get("price", row.get("close"))),
        )
        return f"field {name}: must be from {MIN_PRICE:g} to {MAX_PRICE:g}, got {value!r}"
    if reason == "size":
        name = "size" if "size" in row else "volume"
        return f"field {name}: must be from 0 to {MAX_SIZE:g}, got {row.get(name)!r}"
    if reason == "time":
        return _describe_time(row)
    if reason == "future":
        name = "ts" if "ts" in row else "bar_start"
        value = row.get(name)
        limit = (
            f"after {iso_time(LATEST)}"
            if value is not None and value > LATEST
            else f"more than {MAX_CLOCK_SKEW // 10**9} s ahead of the wall clock"
        )
        return f"field {name}: {iso_time(value)} is {limit}"
    if reason == "ohlc":
        o, h, lo, c = (row.get(k) for k in ("open", "high", "low", "close"))
        if h < lo:
            return f"field high: {h!r} is below low {lo!r}"
        name, value = ("open", o) if not lo <= o <= h else ("close", c)
        return f"field {name}: {value!r} is outside low {lo!r} to high {h!r}"
    return f"schema: {row}"


def _plausible_price(value: float | None) -> bool:
    if value is None or value != value:
        return True  # a missing vwap: not the field at fault
    return MIN_PRICE <= value <= MAX_PRICE


def _describe_time(row: dict) -> str:
    if "ts" in row:
        return (
            f"field ts: {iso_time(row['ts'])} is before {iso_time(EARLIEST_TRADE)}, "
            "the earliest a trade may be"
        )
    start, end = row.get("bar_start"), row.get("bar_end")
    if start is not None and start < EARLIEST_BAR:
        return (
            f"field bar_start: {iso_time(start)} is before {iso_time(EARLIEST_BAR)}, "
            "the earliest a bar may start"
        )
    return f"field bar_end: {iso_time(end)} is not after bar_start {iso_time(start)}"
