"""Rejected input rows described as dead letters: what is wrong, and where the row came from."""

from __future__ import annotations

import msgspec
import numpy as np
import pyarrow as pa

from marketpulse.bus.base import Batch
from marketpulse.models import DeadLetter

__all__ = ["dead_letters"]

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
                ts=row.get("ts", row.get("start")),
            )
        )
    return letters


def _describe(reason: str, row: dict) -> str:
    if reason == "late":
        return f"late tick: {row.get('symbol')} at ts {row.get('ts')} is behind the watermark"
    if reason == "symbol":
        return f"field symbol: invalid symbol {row.get('symbol')!r}"
    if reason == "nan":
        numeric = ("price", "size", "open", "high", "low", "close", "volume")
        fields = [k for k in numeric if k in row and (row[k] is None or row[k] != row[k])]
        fields += [k for k in numeric if k in row and row[k] in (float("inf"), float("-inf"))]
        return f"field {', '.join(fields) or 'value'}: missing, infinite or not a number"
    if reason == "price":
        return f"field price: must be > 0, got {row.get('price', row.get('close'))}"
    if reason == "size":
        return f"field size: must be >= 0, got {row.get('size', row.get('volume'))}"
    return f"schema: {row}"
