"""JSON records of a table's rows, written column by column in one numba pass.

msgspec encodes one struct a call: the columns are first read as Python lists,
a struct is built a row, then encoded: about 3 µs an ``indicators`` row in
all, the largest part of what ``process`` spends on its outputs in a catch-up,
against 2 µs written at once (``bench/bench_json_rows.py``).
:func:`encode_table` writes the records of a whole batch from its Arrow
columns instead, the bytes msgspec would write for the same struct, byte for
byte: the fields in the struct's order, a tagged struct's tag first, ``null``
for a missing value and for a float that is not finite, a field left out
where msgspec leaves it out (``omit_defaults`` with a default of ``None``),
numbers as msgspec writes them.

A float is written in its shortest form that reads back as the same double
(the closest such decimal where several are as short), found with Giulietti's
Schubfach algorithm (R. Giulietti, *The Schubfach way to render doubles*,
2020), and laid out as msgspec lays it out (``1.0``, ``0.00012``, ``1e16``,
``1.5e-7``). Texts are written as they are: a batch with a text JSON would
escape (a quote, a backslash, a control character) is left to msgspec, as is
a struct or a column this writer does not know (``None`` is returned).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import numba
import numpy as np
import pyarrow as pa
from llvmlite import ir
from msgspec import NODEFAULT
from numba import types
from numba.extending import intrinsic

from marketpulse.numba_blas import defer_blas_check

defer_blas_check()

__all__ = ["KERNELS", "encode_table", "warm_up"]

# The writer allocates nothing: compiled without numba's runtime, it is spared the
# reference counting of every array argument at each call, inlined or not (as the
# JSON scanner of the ticks is, :mod:`marketpulse.stream.json_scan`).
_kernel = numba.njit(cache=True, nogil=True, _nrt=False)
_inline = numba.njit(cache=True, nogil=True, _nrt=False, inline="always")

#: A field's kind in the writer's program.
_FLOAT, _INT, _TEXT, _LITERAL, _NULL = range(5)

#: The exponents ``e`` of the powers of ten ``10**e`` the conversion of a double needs.
_E_MIN, _E_MAX = -292, 324


def _floor_log2_pow10(e: int) -> int:
    """``floor(log2(10**e))`` for ``|e| <= 1233``, as the kernel computes it."""
    return (e * 1741647) >> 19


def _pow10_table() -> np.ndarray:
    """``g = floor(10**e / 2**r) + 1`` with ``2**127 <= g <= 2**128``, as (high, low) words."""
    rows = []
    for e in range(_E_MIN, _E_MAX + 1):
        r = _floor_log2_pow10(e) - 127
        if e >= 0:
            g = (10**e >> r) if r >= 0 else (10**e << -r)
        else:
            g = (1 << -r) // 10**-e
        g += 1
        assert 1 << 127 <= g <= 1 << 128, e
        rows.append((g >> 64, g & (2**64 - 1)))
    return np.array(rows, np.uint64)


_POW10 = _pow10_table()


@intrinsic
def _umulh(typingctx, a, b):
    """The high 64 bits of the 128-bit product of two unsigned words."""
    sig = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))

    return sig, codegen


@_inline
def _round_to_odd(g_hi, g_lo, cp):
    """``floor(g * cp / 2**128)``, its lowest bit set when the rest is not (nearly) zero."""
    x1 = _umulh(g_lo, cp)
    y0 = g_hi * cp
    y1 = _umulh(g_hi, cp)
    z = y0 + x1
    carry = np.uint64(1) if z < y0 else np.uint64(0)
    sticky = np.uint64(1) if z > np.uint64(1) else np.uint64(0)
    return (y1 + carry) | sticky


@_inline
def _to_decimal(significand, exponent, pow10):
    """The shortest decimal ``digits * 10**power`` that reads back as the double.

    ``significand`` and ``exponent`` are the double's fields (finite, not zero);
    among decimals as short, the closest, and the even one of two as close.
    """
    one = np.uint64(1)
    if exponent != 0:
        c = significand | (one << np.uint64(52))
        q = np.int64(exponent) - 1075
        if 0 <= -q < 53:  # an integer below 2**53: its digits as they are
            shift = np.uint64(-q)
            if c & ((one << shift) - one) == 0:
                return c >> shift, np.int64(0)
    else:
        c = significand
        q = np.int64(-1074)
    even = c & one == 0
    closer_below = significand == 0 and exponent > 1
    cbl = np.uint64(4) * c - np.uint64(2) + (one if closer_below else np.uint64(0))
    cb = np.uint64(4) * c
    cbr = np.uint64(4) * c + np.uint64(2)
    k = (q * 1262611 - (524031 if closer_below else 0)) >> 22
    h = np.uint64(q + ((-k * 1741647) >> 19) + 1)
    g_hi = pow10[-k - _E_MIN, 0]
    g_lo = pow10[-k - _E_MIN, 1]
    vbl = _round_to_odd(g_hi, g_lo, cbl << h)
    vb = _round_to_odd(g_hi, g_lo, cb << h)
    vbr = _round_to_odd(g_hi, g_lo, cbr << h)
    lower = vbl + (np.uint64(0) if even else one)
    upper = vbr - (np.uint64(0) if even else one)
    s = vb // np.uint64(4)
    if s >= np.uint64(10):
        sp = s // np.uint64(10)
        up_inside = lower <= np.uint64(40) * sp
        wp_inside = np.uint64(40) * sp + np.uint64(40) <= upper
        if up_inside != wp_inside:
            return sp + (one if wp_inside else np.uint64(0)), k + 1
    u_inside = lower <= np.uint64(4) * s
    w_inside = np.uint64(4) * s + np.uint64(4) <= upper
    if u_inside != w_inside:
        return s + (one if w_inside else np.uint64(0)), k
    mid = np.uint64(4) * s + np.uint64(2)
    up = vb > mid or (vb == mid and s & one != 0)
    return s + (one if up else np.uint64(0)), k


#: The two digits of each number below 100, for writing digits two at a time.
_PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), np.uint8).copy()


@_inline
def _write_digits(out, pos, digits, length, pairs):
    """Write the ``length`` decimal digits of ``digits`` at ``pos``; return the end."""
    end = pos + length
    at = end
    while digits >= np.uint64(100):
        rest = digits // np.uint64(100)
        pair = np.int64(digits - rest * np.uint64(100)) * 2
        digits = rest
        out[at - 1] = pairs[pair + 1]
        out[at - 2] = pairs[pair]
        at -= 2
    if digits >= np.uint64(10):
        pair = np.int64(digits) * 2
        out[at - 1] = pairs[pair + 1]
        out[at - 2] = pairs[pair]
    else:
        out[at - 1] = digits + np.uint64(48)
    return end


@_inline
def _write_int(out, pos, value, pairs):
    """Write a signed integer at ``pos``; return the end."""
    if value < 0:
        out[pos] = 45  # -
        pos += 1
        digits = np.uint64(0) - np.uint64(value)  # also right for -2**63
    else:
        digits = np.uint64(value)
    length = 1
    bound = np.uint64(10)
    while length < 20 and digits >= bound:
        length += 1
        bound = bound * np.uint64(10)
    return _write_digits(out, pos, digits, length, pairs)


@_inline
def _write_null(out, pos):
    out[pos] = 110  # n
    out[pos + 1] = 117  # u
    out[pos + 2] = 108  # l
    out[pos + 3] = 108  # l
    return pos + 4


@_inline
def _write_double(out, pos, bits, pow10, pairs):
    """Write the double with IEEE bits ``bits`` as msgspec does; ``null`` if not finite."""
    exponent = (bits >> np.uint64(52)) & np.uint64(0x7FF)
    significand = bits & np.uint64(0xFFFFFFFFFFFFF)
    if exponent == np.uint64(0x7FF):
        return _write_null(out, pos)
    if bits >> np.uint64(63):
        out[pos] = 45  # -
        pos += 1
    if exponent == 0 and significand == 0:
        out[pos] = 48  # 0
        out[pos + 1] = 46  # .
        out[pos + 2] = 48
        return pos + 3
    digits, power = _to_decimal(significand, exponent, pow10)
    while digits % np.uint64(10) == np.uint64(0):
        digits //= np.uint64(10)
        power += 1
    length = 1
    bound = np.uint64(10)
    while length < 17 and digits >= bound:
        length += 1
        bound = bound * np.uint64(10)
    point = length + power  # 10**(point - 1) <= value < 10**point
    if 0 <= power and point <= 16:  # 1234e7 -> 12340000000.0
        pos = _write_digits(out, pos, digits, length, pairs)
        for _ in range(power):
            out[pos] = 48
            pos += 1
        out[pos] = 46
        out[pos + 1] = 48
        return pos + 2
    if 0 < point <= 16:  # 1234e-2 -> 12.34
        end = _write_digits(out, pos + 1, digits, length, pairs)
        for i in range(point):
            out[pos + i] = out[pos + i + 1]
        out[pos + point] = 46
        return end
    if -5 < point <= 0:  # 1234e-6 -> 0.001234
        out[pos] = 48
        out[pos + 1] = 46
        pos += 2
        for _ in range(-point):
            out[pos] = 48
            pos += 1
        return _write_digits(out, pos, digits, length, pairs)
    if length == 1:  # 1e30
        out[pos] = digits + np.uint64(48)
        out[pos + 1] = 101  # e
        return _write_int(out, pos + 2, point - 1, pairs)
    end = _write_digits(out, pos + 1, digits, length, pairs)  # 1234e30 -> 1.234e33
    out[pos] = out[pos + 1]
    out[pos + 1] = 46
    out[end] = 101
    return _write_int(out, end + 1, point - 1, pairs)


@_kernel
def _write_rows(
    n, kinds, slots, omit, names, name_starts,
    floats, float_valid, ints, int_valid, text_ends, text_data, text_valid,
    pow10, pairs, out,
):  # fmt: skip
    """Write ``n`` JSON objects, each field by its ``kinds``, ``slots`` and name text.

    Each object is followed by a newline (no record holds one: a text with a
    control character is refused), so that one ``bytes.split`` cuts them apart.
    Returns the bytes written, or -1 when a text needs escaping.
    """
    pos = 0
    for row in range(n):
        out[pos] = 123  # {
        pos += 1
        first = True
        for field in range(kinds.shape[0]):
            kind = kinds[field]
            slot = slots[field]
            if kind == _FLOAT:
                present = float_valid[slot, row]
            elif kind == _INT:
                present = int_valid[slot, row]
            elif kind == _TEXT:
                present = text_valid[slot, row]
            else:
                present = kind == _LITERAL
            if not present and omit[field]:
                continue
            if not first:
                out[pos] = 44  # ,
                pos += 1
            first = False
            for i in range(name_starts[field], name_starts[field + 1]):
                out[pos] = names[i]
                pos += 1
            if kind == _LITERAL:
                continue
            if not present:
                pos = _write_null(out, pos)
            elif kind == _FLOAT:
                pos = _write_double(out, pos, floats[slot, row], pow10, pairs)
            elif kind == _INT:
                pos = _write_int(out, pos, ints[slot, row], pairs)
            else:
                out[pos] = 34  # "
                pos += 1
                for i in range(text_ends[slot, row], text_ends[slot, row + 1]):
                    byte = text_data[i]
                    if byte < 32 or byte == 34 or byte == 92:  # control, quote, backslash
                        return -1
                    out[pos] = byte
                    pos += 1
                out[pos] = 34
                pos += 1
        out[pos] = 125  # }
        out[pos + 1] = 10  # newline
        pos += 2
    return pos


KERNELS = (_write_rows,)


class _WarmUp(msgspec.Struct):
    number: float
    count: int
    text: str


def warm_up() -> None:
    """Compile the writer (or load it from numba's cache): one call serves every table."""
    data = pa.table({"number": [1.5], "count": [2], "text": ["x"]})
    encode_table(_WarmUp, data, data.column_names)


@functools.lru_cache(maxsize=64)
def _layout(struct: type[msgspec.Struct]) -> tuple[tuple[str, ...], tuple[bool, ...], bytes] | None:
    """The struct's field names in order, whether a null one is left out, and its tag text.

    ``None`` for a struct whose encoding this writer does not reproduce (renamed
    fields, arrays, a left-out default other than ``None``).
    """
    info = msgspec.inspect.type_info(struct)
    if not isinstance(info, msgspec.inspect.StructType) or info.array_like:
        return None
    omit_defaults = struct.__struct_config__.omit_defaults
    names, omit = [], []
    for field in info.fields:
        if field.name != field.encode_name:
            return None
        left_out = omit_defaults and not field.required
        if left_out and (field.default is not None or field.default_factory is not NODEFAULT):
            return None
        names.append(field.name)
        omit.append(left_out)
    tag = b""
    if info.tag_field is not None:
        tag = msgspec.json.encode(info.tag_field) + b":" + msgspec.json.encode(info.tag)
    return tuple(names), tuple(omit), tag


def encode_table(
    struct: type[msgspec.Struct], data: pa.Table | pa.RecordBatch, names: Sequence[str]
) -> list[bytes] | None:
    """The JSON records msgspec writes for ``struct(*row)`` of each row of ``data``.

    ``names``: the columns of ``data`` to write; the struct's other fields are
    null (left out where msgspec leaves them out). ``None`` when the batch is
    one msgspec must write: an unknown struct layout, a column that is not a
    float, integer or text, a text that JSON escapes, or a batch too large for
    the writer's offsets.
    """
    layout = _layout(struct)
    if layout is None:
        return None
    fields = layout[0]
    have = set(names)
    if not have <= set(fields):
        return None
    columns = {name: _one_array(data.column(name)) for name in names}
    kinds = tuple(_kind_of(columns[name].type) if name in have else _NULL for name in fields)
    if None in kinds:
        return None
    program = _program(struct, kinds)
    n = data.num_rows
    by_kind: dict[int, list[pa.Array]] = {_FLOAT: [], _INT: [], _TEXT: []}
    for name, kind in zip(fields, kinds, strict=True):
        if kind != _NULL:
            by_kind[kind].append(columns[name])
    floats = np.empty((len(by_kind[_FLOAT]), n), np.uint64)
    for row, column in zip(floats, by_kind[_FLOAT], strict=True):
        row[:] = _numbers(column, pa.float64()).view(np.uint64)
    ints = np.empty((len(by_kind[_INT]), n), np.int64)
    for row, column in zip(ints, by_kind[_INT], strict=True):
        row[:] = _numbers(column, pa.int64())
    text_ends, text_data = _stack_texts([_text_buffers(c) for c in by_kind[_TEXT]], n)
    # per row: braces, newline, commas, names, at most 25 bytes a number, quotes around texts
    bound = n * (program.fixed + 25 * (len(floats) + len(ints)) + 2 * len(text_ends))
    bound += len(text_data)
    if bound >= 2**62:
        return None
    out = np.empty(bound, np.uint8)
    written = _write_rows(
        n, program.kinds, program.slots, program.omit, program.names, program.name_starts,
        floats, _validity(by_kind[_FLOAT], n), ints, _validity(by_kind[_INT], n),
        text_ends, text_data, _validity(by_kind[_TEXT], n),
        _POW10, _PAIRS, out,
    )  # fmt: skip
    if written < 0:
        return None
    if not n:
        return []
    # cut at the newlines: a third of the time of a slice a record
    return out[: written - 1].tobytes().split(b"\n")


class _Program(NamedTuple):
    """What the writer does for each field of a struct, given its columns' kinds."""

    kinds: np.ndarray
    slots: np.ndarray
    omit: np.ndarray
    names: np.ndarray
    name_starts: np.ndarray
    fixed: int  # bytes of every row but its values


@functools.lru_cache(maxsize=256)
def _program(struct: type[msgspec.Struct], kinds: tuple[int, ...]) -> _Program:
    fields, omit, tag = _layout(struct) or ((), (), b"")
    texts = [msgspec.json.encode(name) + b":" for name in fields]
    counts = {_FLOAT: 0, _INT: 0, _TEXT: 0, _NULL: 0}
    slots = []
    for kind in kinds:
        slots.append(counts[kind] if kind != _NULL else 0)
        counts[kind] += 1
    all_kinds, all_omit = list(kinds), list(omit)
    if tag:
        texts, all_kinds, slots, all_omit = [tag, *texts], [_LITERAL, *all_kinds], [0, *slots], [
            False, *all_omit]  # fmt: skip
    name_bytes = b"".join(texts)
    return _Program(
        np.array(all_kinds, np.int8), np.array(slots, np.int64), np.array(all_omit, np.bool_),
        np.frombuffer(name_bytes, np.uint8).copy(),
        np.cumsum([0, *map(len, texts)], dtype=np.int64),
        3 + len(texts) + len(name_bytes) + 4 * counts[_NULL],
    )  # fmt: skip


def _kind_of(kind: pa.DataType) -> int | None:
    """The writer's kind for a column of this type (``None``: not one it writes)."""
    if pa.types.is_floating(kind):
        return _FLOAT
    if pa.types.is_integer(kind):
        return _INT
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _TEXT
    return None


def _numbers(column: pa.Array, to: pa.DataType) -> np.ndarray:
    """A number column's values as ``to``, nulls as zeros (their validity says which)."""
    if column.type != to:
        column = column.cast(to)
    if column.null_count:
        column = column.fill_null(0)
    return column.to_numpy(zero_copy_only=False)


def _one_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The column as one array, a dictionary one decoded."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column


def _validity(columns: list[pa.Array], n: int) -> np.ndarray:
    """Which rows of each column hold a value, a row of the result a column."""
    valid = np.ones((len(columns), n), np.bool_)
    for row, column in zip(valid, columns, strict=True):
        if column.null_count:
            row[:] = column.is_valid().to_numpy(zero_copy_only=False)
    return valid


def _text_buffers(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A text column's row ends (``n + 1`` offsets from its first byte) and bytes."""
    width = np.int64 if pa.types.is_large_string(column.type) else np.int32
    _, offsets, data = column.buffers()
    n = len(column)
    ends = np.frombuffer(offsets, width, n + 1, column.offset * np.dtype(width).itemsize)
    ends = ends.astype(np.int64)
    start = int(ends[0])
    size = int(ends[-1]) - start
    body = np.frombuffer(data, np.uint8, size, start) if size else np.empty(0, np.uint8)
    return ends - start, body


def _stack_texts(texts: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[Any, Any]:
    """All text columns' row ends (one row a column, into one byte array) and their bytes."""
    if not texts:
        return np.zeros((0, n + 1), np.int64), np.empty(0, np.uint8)
    ends = np.empty((len(texts), n + 1), np.int64)
    base = 0
    for i, (column_ends, body) in enumerate(texts):
        ends[i] = column_ends + base
        base += len(body)
    return ends, np.concatenate([body for _, body in texts])
