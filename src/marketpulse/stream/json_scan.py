"""A numba scanner that decodes a batch of JSON trade records straight into columns.

msgspec decodes one record per call and the columns are then gathered from the
structs, about 1 µs a record in all; this scanner makes one pass over the whole
batch instead, about 0.2 µs a record. It accepts only plain trade records, as
our producer writes them, and leaves every other record to msgspec, the
authority: for a record it accepts, its columns equal msgspec's bit for bit.

A record is accepted when it is one JSON object (JSON whitespace allowed
between tokens) whose keys, in any order and each at most once, are among
``type`` (the string ``"trade"``), ``symbol`` (a string), ``ts`` (an integer,
``|ts| < 2**63``), ``price`` and ``size`` (numbers), ``exchange`` and
``condition`` (a string or null), ``ts_ingest`` (an integer as ``ts``, or
null) and ``extra`` (null only), with the first five present. Strings must be
ASCII, without backslash escapes or the control characters JSON forbids.
Numbers take Clinger's fast path only: all their digits as one integer of at
most 2**53 and a decimal exponent within ±22, so that one multiplication or
division by an exact power of ten gives the correctly rounded double.
Unknown keys, escapes, non-ASCII, other numbers and anything malformed are
not accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import pyarrow as pa
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from marketpulse.models import TRADE_SCHEMA
from marketpulse.numba_blas import defer_blas_check

defer_blas_check()

__all__ = ["KERNELS", "scan_trades"]


def _words(text: bytes) -> list[int]:
    """Return ``text`` (at most 16 bytes) as two little-endian words, each with its byte mask."""
    padded = text.ljust(16, b"\0")
    mask = (b"\xff" * len(text)).ljust(16, b"\0")
    return [int.from_bytes(half, "little") for half in (padded[:8], mask[:8], padded[8:], mask[8:])]


_KEY_NAMES = (
    "type", "symbol", "ts", "price", "size", "exchange", "condition", "ts_ingest", "extra"
)  # fmt: skip
_TYPE, _SYMBOL, _TS, _PRICE, _SIZE, _EXCHANGE, _CONDITION, _TS_INGEST, _EXTRA = range(9)
_REQUIRED = (1 << _TYPE) | (1 << _SYMBOL) | (1 << _TS) | (1 << _PRICE) | (1 << _SIZE)
#: The texts a record is matched against: its quoted keys, then two values.
_TEXTS = [f'"{name}"'.encode() for name in _KEY_NAMES] + [b'"trade"', b"null"]
_TRADE, _NULL = len(_KEY_NAMES), len(_KEY_NAMES) + 1
_TEXT_WORDS = np.array([_words(text) for text in _TEXTS], np.uint64)
_TEXT_LENGTHS = np.array([len(text) for text in _TEXTS], np.int64)
#: The record buffer ends with this much padding, so that two words can be read at any record byte.
_PADDING = 16
_BYTES_LIKE = (bytes, bytearray, memoryview)
#: Arrow string offsets are int32: a larger batch is left to msgspec.
_MAX_BYTES = 2**31 - 1

_INT64_MAX = 2**63 - 1
_MANTISSA_MAX = 2**53
#: Every power of ten up to 1e22 is an exact double (5**22 < 2**53).
_POW10 = np.array([float(10**k) for k in range(23)])

# Eight bytes of a word at once (as simdjson does): are they digits, their value, is one 0.
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_LOW_NIBBLES = np.uint64(0x0F0F0F0F0F0F0F0F)
_SIXES = np.uint64(0x0606060606060606)
_THREES = np.uint64(0x3333333333333333)
_BYTE_PAIRS = np.uint64(0x00FF00FF00FF00FF)
_SHORT_PAIRS = np.uint64(0x0000FFFF0000FFFF)
_ONES = np.uint64(0x0101010101010101)
_HIGH_BITS = np.uint64(0x8080808080808080)

#: The longest symbol the kernel dictionary-encodes (two words); longer ones go to Arrow.
_LONGEST_SYMBOL = 16
#: The masks of a word's first 0..8 bytes.
_BYTE_MASKS = np.array([(1 << 8 * k) - 1 for k in range(9)], np.uint64)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: Fibonacci hashing

# numba increfs and decrefs every array argument at each call of a jitted function,
# inlined or not (its pruning of reference counts misses functions with loops): that was
# half the time of the parser. The parser and its helpers allocate nothing, so they are
# compiled without numba's runtime (``_nrt``, as numba's own string helpers are), and
# the helpers are inlined into it.
_kernel = numba.njit(cache=True, nogil=True)
_parser = numba.njit(cache=True, nogil=True, _nrt=False)
_inline = numba.njit(cache=True, nogil=True, _nrt=False, inline="always")


@intrinsic
def _load_word(typingctx, buf, p):
    """Read the 8 bytes from ``buf[p]`` as one word (little-endian on the CPUs numba runs on).

    An unaligned load: numba's own array indexing would assume an aligned one.
    """
    sig = types.uint64(buf, types.int64)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        address = builder.gep(array.data, [args[1]])
        return builder.load(builder.bitcast(address, ir.IntType(64).as_pointer()), align=1)

    return sig, codegen


def scan_trades(values: Sequence[bytes | None]) -> tuple[pa.RecordBatch | None, np.ndarray]:
    """Decode the trade records among ``values`` into ``TRADE_SCHEMA`` columns.

    The records are joined with NUL bytes in between, which an accepted
    record never holds; a batch in which a value holds one (never valid JSON)
    is not scanned: none of its records is accepted.

    Args:
        values: JSON records, as Kafka delivers them; ``None`` (a tombstone)
            is never accepted.

    Returns:
        the columns of the accepted records, in their order (``None`` when
        none is accepted), and per value whether it was accepted.
    """
    n = len(values)
    try:
        data = b"\0".join([*values, bytes(_PADDING)])
    except TypeError:  # a tombstone (None) or no bytes at all: an empty record, never accepted
        records = (value if isinstance(value, _BYTES_LIKE) else b"" for value in values)
        data = b"\0".join([*records, bytes(_PADDING)])
    if n == 0 or len(data) > _MAX_BYTES:
        return None, np.zeros(n, np.bool_)
    buf = np.frombuffer(data, np.uint8)
    accepted, count, ts, price, size, starts, spans = _scan(buf, n)
    if count == 0:
        return None, accepted
    batch = pa.RecordBatch.from_arrays(
        [
            _symbols(buf, starts[0, :count], spans[0, :count]),
            pa.array(ts[:count]),
            pa.array(price[:count]),
            pa.array(size[:count]),
            _strings(buf, starts[1, :count], spans[1, :count]),
            _strings(buf, starts[2, :count], spans[2, :count]),
            pa.nulls(count, pa.string()),  # the dataset: the processor's
        ],
        schema=TRADE_SCHEMA,
    )
    return batch, accepted


def _symbols(buf: np.ndarray, starts: np.ndarray, spans: np.ndarray) -> pa.DictionaryArray:
    """Build the dictionary-encoded symbol column, as ``dictionary_encode`` does."""
    codes, firsts = _symbol_codes(buf, starts, spans)
    if codes.size < spans.size:  # a symbol too long for the kernel's keys
        return _strings(buf, starts, spans).dictionary_encode()
    return pa.DictionaryArray.from_arrays(
        pa.array(codes), _strings(buf, starts[firsts], spans[firsts])
    )


def _strings(buf: np.ndarray, starts: np.ndarray, spans: np.ndarray) -> pa.StringArray:
    """Build a string column from byte spans of ``buf`` (a span of -1 is null)."""
    if spans.size and spans.max() < 0:
        return pa.nulls(spans.size, pa.string())  # no exchange or condition: most feeds
    offsets, data = _gather(buf, starts, spans)
    valid = spans >= 0
    nulls = valid.size - int(np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.StringArray.from_buffers(
        valid.size, pa.py_buffer(offsets), pa.py_buffer(data), bitmap, nulls
    )


@_kernel
def _scan(buf, n):  # pragma: no cover - numba
    """Parse the ``n`` records of ``buf``; accepted ones fill rows ``0..count-1`` of the outputs.

    ``starts`` and ``spans`` hold, per string column (symbol, exchange,
    condition), where each value starts in ``buf`` and its length (-1: null).
    When a record holds a NUL byte (never valid JSON), the records cannot be
    told apart: then none is accepted.
    """
    accepted = np.zeros(n, np.bool_)
    ts = np.empty(n, np.int64)
    price = np.empty(n, np.float64)
    size = np.empty(n, np.float64)
    starts = np.empty((3, n), np.int64)
    spans = np.empty((3, n), np.int64)
    end = buf.size - _PADDING  # just after the NUL that ends the last record
    # np.int64, not 0: a literal 0 makes numba compile _record a second time, for it alone
    count = np.int64(0)
    p = np.int64(0)
    for i in range(n):
        q = _record(buf, p, end, count, ts, price, size, starts, spans)
        if q >= 0:
            accepted[i] = True
            count += 1
        else:
            q = _next_nul(buf, p, end)
        p = q + 1
    if p != end:
        accepted[:] = False
        count = 0
    return accepted, count, ts, price, size, starts, spans


@_parser
def _record(buf, p, end, row, ts, price, size, starts, spans):  # pragma: no cover - numba
    """Parse the record at ``p`` into ``row`` of the outputs.

    Returns:
        the position of the NUL byte that ends the record, or -1 if the record
        is not accepted.
    """
    p = _skip_space(buf, p, end)
    if p >= end or buf[p] != 123:  # {
        return -1
    p = _skip_space(buf, p + 1, end)
    spans[1, row] = -1
    spans[2, row] = -1
    seen = 0
    key = -1
    while True:
        key = _key(buf, p, end, key + 1)
        if key < 0 or seen & (1 << key):
            return -1
        seen |= 1 << key
        p = _skip_space(buf, p + _TEXT_LENGTHS[key], end)
        if p >= end or buf[p] != 58:  # :
            return -1
        p = _skip_space(buf, p + 1, end)
        if p >= end:
            return -1
        if key == _PRICE or key == _SIZE:
            value, p = _number(buf, p, end)
            if key == _PRICE:
                price[row] = value
            else:
                size[row] = value
        elif key == _TS:
            ts[row], p = _integer(buf, p, end)
        elif key == _TYPE:
            if not _starts_with(buf, p, end, _TRADE):
                return -1
            p += _TEXT_LENGTHS[_TRADE]
        elif key != _SYMBOL and _starts_with(buf, p, end, _NULL):  # the optional fields
            p += _TEXT_LENGTHS[_NULL]
        elif key == _TS_INGEST:
            _, p = _integer(buf, p, end)
        elif key == _EXTRA or buf[p] != 34:  # "
            return -1
        else:  # symbol, exchange or condition
            q = _string_end(buf, p + 1, end)
            if q < 0:
                return -1
            column = 0 if key == _SYMBOL else (1 if key == _EXCHANGE else 2)
            starts[column, row] = p + 1
            spans[column, row] = q - p - 1
            p = q + 1
        if p < 0:
            return -1
        p = _skip_space(buf, p, end)
        if p >= end:
            return -1
        if buf[p] == 125:  # }
            break
        if buf[p] != 44:  # ,
            return -1
        p = _skip_space(buf, p + 1, end)
    p = _skip_space(buf, p + 1, end)
    if p >= end or buf[p] != 0 or seen & _REQUIRED != _REQUIRED:
        return -1
    return p


@_inline
def _skip_space(buf, p, end):  # pragma: no cover - numba
    """Return the position of the first byte from ``p`` that is not JSON whitespace."""
    while p < end:
        c = buf[p]
        if c != 32 and c != 10 and c != 13 and c != 9:
            break
        p += 1
    return p


@_inline
def _next_nul(buf, p, end):  # pragma: no cover - numba
    """Return the position of the first NUL byte from ``p`` (``end`` if none)."""
    while p + 8 <= end and not _has_zero_byte(_load_word(buf, p)):
        p += 8
    while p < end and buf[p] != 0:
        p += 1
    return p


@_inline
def _has_zero_byte(word):  # pragma: no cover - numba
    """Whether one of the 8 bytes of ``word`` is 0."""
    return (word - _ONES) & ~word & _HIGH_BITS != 0


@_inline
def _string_end(buf, p, end):  # pragma: no cover - numba
    """Return the closing quote of a string whose content starts at ``p``, or -1.

    Escapes and non-ASCII bytes give -1 (left to msgspec), as do control
    characters, which JSON forbids in strings.
    """
    while p < end:
        c = buf[p]
        if c == 34:
            return p
        if c == 92 or c < 32 or c > 127:
            return -1
        p += 1
    return -1


@_inline
def _starts_with(buf, p, end, text):  # pragma: no cover - numba
    """Whether the record bytes from ``p`` (up to ``end``) start with text number ``text``."""
    return (
        p + _TEXT_LENGTHS[text] <= end
        and _load_word(buf, p) & _TEXT_WORDS[text, 1] == _TEXT_WORDS[text, 0]
        and _load_word(buf, p + 8) & _TEXT_WORDS[text, 3] == _TEXT_WORDS[text, 2]
    )


@_inline
def _key(buf, p, end, expected):  # pragma: no cover - numba
    """Return the field number of the quoted key at ``p``, or -1 for any other.

    ``expected`` is tried first: the field our producer writes next.
    """
    if expected < len(_KEY_NAMES) and _starts_with(buf, p, end, expected):
        return expected
    for key in range(len(_KEY_NAMES)):
        if _starts_with(buf, p, end, key):
            return key
    return -1


@_inline
def _is_digit(buf, p, end):  # pragma: no cover - numba
    """Whether ``buf[p]`` is a decimal digit."""
    return p < end and 48 <= buf[p] <= 57


@_inline
def _integer(buf, p, end):  # pragma: no cover - numba
    """Parse a JSON integer within int64 at ``p``; return it and the next position (-1: refused).

    A fraction or exponent is refused: msgspec does not decode ``1.0`` or
    ``1e3`` as an int.
    """
    negative = buf[p] == 45  # -
    if negative:
        p += 1
    if not _is_digit(buf, p, end):
        return 0, -1
    value = 0
    if buf[p] == 48:  # a lone 0: "01" is refused by the caller's next token
        p += 1
    else:
        first = p
        while p - first <= 10 and p + 8 <= end:  # 8 digits at a time, up to 18: no overflow
            block = _eight_digits(_load_word(buf, p))
            if block < 0:
                break
            value = value * 100_000_000 + block
            p += 8
        while _is_digit(buf, p, end) and p - first < 18:
            value = value * 10 + (buf[p] - 48)
            p += 1
        if _is_digit(buf, p, end):
            digit = buf[p] - 48
            if value > (_INT64_MAX - digit) // 10:
                return 0, -1
            value = value * 10 + digit
            p += 1
            if _is_digit(buf, p, end):
                return 0, -1
    if p < end and (buf[p] == 46 or buf[p] == 101 or buf[p] == 69):  # . e E
        return 0, -1
    return (-value if negative else value), p


@_inline
def _eight_digits(word):  # pragma: no cover - numba
    """Return the number that the 8 bytes of ``word`` write in ASCII digits, or -1."""
    if word & _HIGH_NIBBLES | ((word + _SIXES) & _HIGH_NIBBLES) >> np.uint64(4) != _THREES:
        return -1
    word = (word & _LOW_NIBBLES) * np.uint64(2561) >> np.uint64(8)
    word = (word & _BYTE_PAIRS) * np.uint64(6553601) >> np.uint64(16)
    return np.int64((word & _SHORT_PAIRS) * np.uint64(42949672960001) >> np.uint64(32))


@_inline
def _number(buf, p, end):  # pragma: no cover - numba
    """Parse a JSON number at ``p`` by Clinger's fast path; return it and the next position.

    The position is -1 when the number is malformed or off the fast path.
    """
    negative = buf[p] == 45  # -
    if negative:
        p += 1
    if not _is_digit(buf, p, end):
        return 0.0, -1
    mantissa = 0
    exponent = 0
    is_integer = True
    if buf[p] == 48:  # a lone 0: "01" is refused by the caller's next token
        p += 1
    else:
        while _is_digit(buf, p, end):
            if mantissa <= _MANTISSA_MAX:  # past it the number is refused: stop before overflow
                mantissa = mantissa * 10 + (buf[p] - 48)
            p += 1
    if p < end and buf[p] == 46:  # .
        is_integer = False
        p += 1
        if not _is_digit(buf, p, end):
            return 0.0, -1
        while _is_digit(buf, p, end):
            if mantissa <= _MANTISSA_MAX:
                mantissa = mantissa * 10 + (buf[p] - 48)
            exponent -= 1
            p += 1
    if p < end and (buf[p] == 101 or buf[p] == 69):  # e E
        is_integer = False
        p += 1
        negative_exponent = p < end and buf[p] == 45
        if p < end and (buf[p] == 45 or buf[p] == 43):  # - +
            p += 1
        if not _is_digit(buf, p, end):
            return 0.0, -1
        written = 0
        while _is_digit(buf, p, end):
            if written < 1000:  # far out of range already: stop before overflow
                written = written * 10 + (buf[p] - 48)
            p += 1
        exponent += -written if negative_exponent else written
    if mantissa > _MANTISSA_MAX or exponent < -22 or exponent > 22:
        return 0.0, -1
    if exponent >= 0:
        value = float(mantissa) * _POW10[exponent]
    else:
        value = float(mantissa) / _POW10[-exponent]
    if negative and not (is_integer and mantissa == 0):  # msgspec reads "-0" as int 0: 0.0
        value = -value
    return value, p


@_kernel
def _gather(buf, starts, spans):  # pragma: no cover - numba
    """Copy the spans of ``buf`` into Arrow string offsets (int32) and data."""
    offsets = np.empty(spans.size + 1, np.int32)
    total = 0
    for i in range(spans.size):
        total += max(spans[i], 0)
    data = np.empty(total, np.uint8)
    offsets[0] = 0
    q = 0
    for i in range(spans.size):
        start = starts[i]
        for k in range(spans[i]):
            data[q + k] = buf[start + k]
        q += max(spans[i], 0)
        offsets[i + 1] = q
    return offsets, data


@_kernel
def _symbol_codes(buf, starts, spans):  # pragma: no cover - numba
    """Dictionary-encode the symbols (of at most 16 bytes) with a hash table.

    Returns:
        each row's code (int32), codes numbered in order of first appearance,
        and the row where each code first appears. No codes at all when a
        symbol is longer than 16 bytes.
    """
    n = spans.size
    bits = 4
    while 1 << bits < 2 * n:
        bits += 1
    slots = np.zeros(1 << bits, np.int32)  # code + 1 (0: free)
    keys = np.empty((n, 2), np.uint64)
    lengths = np.empty(n, np.int64)
    firsts = np.empty(n, np.int64)
    codes = np.empty(n, np.int32)
    distinct = 0
    for row in range(n):
        length = spans[row]
        if length > _LONGEST_SYMBOL:
            return codes[:0], firsts[:0]
        start = starts[row]
        low = _load_word(buf, start) & _BYTE_MASKS[min(length, 8)]
        high = _load_word(buf, start + 8) & _BYTE_MASKS[max(length - 8, 0)]
        slot = np.int64(((low ^ high * _GOLDEN) * _GOLDEN) >> np.uint64(64 - bits))
        while True:
            code = slots[slot] - 1
            if code < 0:
                slots[slot] = distinct + 1
                keys[distinct, 0] = low
                keys[distinct, 1] = high
                lengths[distinct] = length
                firsts[distinct] = row
                codes[row] = distinct
                distinct += 1
                break
            if keys[code, 0] == low and keys[code, 1] == high and lengths[code] == length:
                codes[row] = code
                break
            slot = (slot + 1) & ((1 << bits) - 1)
    return codes, firsts[:distinct]


#: The kernels called from Python (marketpulse.kernel_progress reads their callees off them).
KERNELS = (_scan, _symbol_codes, _gather)
