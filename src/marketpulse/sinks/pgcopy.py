"""PostgreSQL's binary COPY format, encoded from Arrow columns without a Python loop per row.

The format (``COPY ... FROM STDIN (FORMAT BINARY)``): a header, then per row
an int16 field count and per field an int32 length (-1 for null) followed by
the value in network byte order; an int16 -1 ends the stream. Rows are laid
out by numba kernels, one column at a time, so a million rows take tens of
milliseconds instead of the seconds a ``write_row`` loop takes.

Column kinds: ``int8``/``float8`` (int64/float64 columns), ``int4`` (int32),
``text`` (strings), ``jsonb`` (strings holding JSON: sent as a version byte
and the text) and ``timestamptz`` (int64 UTC nanoseconds or Arrow timestamps,
stored as PostgreSQL's microseconds since 2000-01-01, floored: PostgreSQL has
no finer time, so the last three digits of a nanosecond time are lost).
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.numba_blas import defer_blas_check

defer_blas_check()

__all__ = ["KINDS", "encode", "warm_up"]

#: The PostgreSQL types this encoder writes, by kind name.
KINDS = ("int8", "int4", "float8", "text", "jsonb", "timestamptz")

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds


@numba.njit(cache=True, nogil=True)
def _put_null(buf, p):  # pragma: no cover - numba
    """Write a null field (length -1) at ``p``; return the next position."""
    for b in range(4):
        buf[p + b] = 255
    return p + 4


@numba.njit(cache=True, nogil=True)
def _put_fixed(buf, pos, values, valid, width):  # pragma: no cover - numba
    for i in range(pos.size):
        p = pos[i]
        if valid[i]:
            buf[p] = 0
            buf[p + 1] = 0
            buf[p + 2] = 0
            buf[p + 3] = width
            for b in range(width):
                buf[p + 4 + b] = values[i, b]
            pos[i] = p + 4 + width
        else:
            pos[i] = _put_null(buf, p)


@numba.njit(cache=True, nogil=True)
def _put_text(buf, pos, offsets, data, valid):  # pragma: no cover - numba
    for i in range(pos.size):
        p = pos[i]
        if valid[i]:
            lo, hi = offsets[i], offsets[i + 1]
            n = hi - lo
            buf[p] = (n >> 24) & 255
            buf[p + 1] = (n >> 16) & 255
            buf[p + 2] = (n >> 8) & 255
            buf[p + 3] = n & 255
            for b in range(n):
                buf[p + 4 + b] = data[lo + b]
            pos[i] = p + 4 + n
        else:
            pos[i] = _put_null(buf, p)


def encode(table: pa.Table, kinds: Sequence[str]) -> bytes:
    """Encode every row of ``table`` as one binary COPY stream.

    Args:
        table: the rows; its columns in the order of the COPY's column list.
        kinds: the kind of each column (:data:`KINDS`).

    Raises:
        ValueError: a kind is unknown, or its count differs from the columns'.
    """
    if len(kinds) != table.num_columns:
        raise ValueError(f"{len(kinds)} kinds for {table.num_columns} columns")
    n = table.num_rows
    fields = [_field(table.column(i), kind) for i, kind in enumerate(kinds)]
    sizes = np.full(n, 2, np.int64)  # the field count
    for _, valid, width in fields:
        sizes += 4 + np.where(valid, width, 0)
    starts = np.zeros(n, np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    body = int(sizes.sum())
    buf = np.empty(len(_HEADER) + body + len(_TRAILER), np.uint8)
    buf[: len(_HEADER)] = np.frombuffer(_HEADER, np.uint8)
    pos = starts + len(_HEADER)
    count = len(fields).to_bytes(2, "big")
    buf[pos] = count[0]
    buf[pos + 1] = count[1]
    pos += 2
    for values, valid, width in fields:
        if isinstance(values, tuple):
            _put_text(buf, pos, values[0], values[1], valid)
        else:
            _put_fixed(buf, pos, values, valid, width if np.isscalar(width) else 0)
    buf[-2:] = 255
    return buf.tobytes()


def _field(column: pa.ChunkedArray, kind: str) -> tuple[object, np.ndarray, object]:
    """Return (values, validity, encoded width) of one column.

    Values are an (n, width) big-endian byte matrix for fixed-width kinds, or
    (offsets, bytes) of the UTF-8 data for text.
    """
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    valid = (
        np.ones(len(column), np.bool_)
        if column.null_count == 0
        else column.is_valid().to_numpy(zero_copy_only=False)
    )
    if kind in ("text", "jsonb"):
        column = column.cast(pa.large_string())
        if kind == "jsonb":  # jsonb's binary form: version 1, then the JSON text
            text = pa.large_string()
            column = pc.binary_join_element_wise(pa.scalar("\x01", text), column,
                                                 pa.scalar("", text))  # fmt: skip
        _, offsets, data = column.buffers()
        offs = np.frombuffer(offsets, np.int64)[column.offset : column.offset + len(column) + 1]
        raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        widths = (offs[1:] - offs[:-1]).astype(np.int64)
        return (offs.astype(np.int64), raw), valid, widths
    if kind == "timestamptz":
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.timestamp("ns", tz=column.type.tz))
        ns = pc.fill_null(column.cast(pa.int64()), 0).to_numpy()
        values = (np.floor_divide(ns, 1000) - _PG_EPOCH_US).astype(">i8")
        width = 8
    elif kind in ("int8", "float8", "int4"):
        dtype = {"int8": (pa.int64(), ">i8"), "float8": (pa.float64(), ">f8"),
                 "int4": (pa.int32(), ">i4")}[kind]  # fmt: skip
        filled = pc.fill_null(column.cast(dtype[0]), 0).to_numpy()
        values = filled.astype(dtype[1])
        width = values.dtype.itemsize
    else:
        raise ValueError(f"unknown column kind {kind!r} (known: {', '.join(KINDS)})")
    matrix = np.ascontiguousarray(values).view(np.uint8).reshape(len(column), width)
    return matrix, valid, width


def warm_up() -> None:
    """Compile (or load from numba's cache) the encoder's kernels: two rows of every kind.

    Every column reaches the kernels with the same argument types, nulls or
    not, so a later first batch loads nothing. Container images call it at
    build time: the PostgreSQL sink's first batch would otherwise compile them.
    """
    text = pa.array(["a", None])
    columns = {
        "int8": pa.array([1, None], pa.int64()), "int4": pa.array([1, None], pa.int32()),
        "float8": pa.array([1.5, None]), "text": text, "jsonb": text,
        "timestamptz": pa.array([0, None], pa.timestamp("ns", tz="UTC")),
    }  # fmt: skip
    encode(pa.table(columns), list(columns))
