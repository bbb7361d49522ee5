"""Read a time column, whatever its form, as int64 UTC nanoseconds.

Text may be ISO 8601 with ``Z`` or an offset, ISO 8601 without a zone (taken
as UTC), a date alone (midnight UTC), or an epoch count of seconds,
milliseconds, microseconds or nanoseconds, told apart by magnitude, with or
without a decimal fraction. Typed columns (timestamp, date, integer, float)
are converted directly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.models import NS_PER_S

__all__ = ["CONVERT_ERRORS", "TimestampParser", "is_text", "text"]

#: What a failed column conversion raises.
CONVERT_ERRORS = (pa.ArrowException, ValueError, OverflowError)

_INT64_MAX = 2**63 - 1

Convert = Callable[[pa.Array], pa.Array]


def text(arr: pa.Array) -> pa.Array:
    """Return ``arr`` as a plain string array."""
    if pa.types.is_string(arr.type):
        return arr
    return arr.cast(pa.string())


def is_text(arr: pa.Array) -> bool:
    """Tell whether ``arr`` holds strings (plain, large or dictionary-encoded)."""
    t = arr.type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)


def _epoch_factor(whole: np.ndarray) -> np.ndarray:
    """Nanoseconds per unit of epoch numbers, told by magnitude (s, ms, us or ns).

    Raises:
        ValueError: a number, with a fraction of its unit, does not fit in int64
            nanoseconds (a wrapped product would be a wrong time, not an error).
    """
    size = np.abs(whole.astype(np.float64))
    factor = np.where(
        size < 10**10, NS_PER_S, np.where(size < 10**13, 10**6, np.where(size < 10**16, 10**3, 1))
    )
    if (size > _INT64_MAX // factor - 1).any():
        raise ValueError("out of range")
    return factor


def _epoch_ns(arr: pa.Array) -> pa.Array:
    """Scale epoch numbers (integer or float) to nanoseconds."""
    mask = arr.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_floating(arr.type):
        values = pc.fill_null(arr, 0.0).to_numpy(zero_copy_only=False)
        if not (np.abs(values) < 2.0**63).all():
            raise ValueError("not a finite number in range")
        whole = np.floor(values).astype(np.int64)
        factor = _epoch_factor(whole)
        # float64 holds no more than ~0.25 us of an epoch: round the fraction to 1 us
        step = np.minimum(factor, 1000)
        ns = whole * factor + np.rint((values - whole) * factor / step).astype(np.int64) * step
    else:
        whole = pc.fill_null(arr.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        ns = whole * _epoch_factor(whole)
    return pa.array(ns, pa.int64(), mask=mask)


def _text_epoch_decimal(arr: pa.Array) -> pa.Array:
    """Read epoch numbers with a decimal fraction (``1381132800.464``) exactly."""
    parts = pc.extract_regex(arr, r"^(?P<sign>-?)(?P<whole>\d+)\.(?P<frac>\d*)$")
    if parts.null_count > arr.null_count:
        raise ValueError("not a decimal number")
    whole = pc.fill_null(pc.cast(pc.struct_field(parts, "whole"), pa.int64()), 0).to_numpy()
    nine = pc.utf8_slice_codeunits(pc.utf8_rpad(pc.struct_field(parts, "frac"), 9, "0"), 0, 9)
    frac = pc.fill_null(pc.cast(nine, pa.int64()), 0).to_numpy()
    factor = _epoch_factor(whole)
    ns = whole * factor + frac * factor // NS_PER_S
    negative = pc.fill_null(pc.equal(pc.struct_field(parts, "sign"), "-"), False)
    ns = np.where(negative.to_numpy(zero_copy_only=False), -ns, ns)
    return pa.array(ns, pa.int64(), mask=arr.is_null().to_numpy(zero_copy_only=False))


def _iso_zoned(arr: pa.Array) -> pa.Array:
    return pc.cast(arr, pa.timestamp("ns", tz="UTC")).cast(pa.int64())


def _iso_naive(arr: pa.Array) -> pa.Array:
    return pc.cast(arr, pa.timestamp("ns")).cast(pa.int64())


def _text_epoch_int(arr: pa.Array) -> pa.Array:
    return _epoch_ns(pc.cast(arr, pa.int64()))


class TimestampParser:
    """Convert a time column to int64 UTC nanoseconds, whatever its form.

    One parser serves one file: the text form that worked last is tried first.
    """

    def __init__(self) -> None:
        self._text_parsers: list[Convert] = [
            _iso_zoned,
            _iso_naive,
            _text_epoch_int,
            _text_epoch_decimal,
        ]

    def __call__(self, arr: pa.Array) -> pa.Array:
        """Return ``arr`` as int64 nanoseconds; raise if any value cannot be read."""
        t = arr.type
        if pa.types.is_timestamp(t):
            return pc.cast(arr, pa.timestamp("ns", tz=t.tz)).cast(pa.int64())
        if pa.types.is_date(t):
            return pc.multiply_checked(pc.cast(arr, pa.date64()).cast(pa.int64()), 10**6)
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            return _epoch_ns(arr)
        if pa.types.is_null(t):
            return pa.nulls(len(arr), pa.int64())
        arr = text(arr)
        for i, parse in enumerate(self._text_parsers):
            try:
                result = parse(arr)
            except CONVERT_ERRORS:
                continue
            if i:
                self._text_parsers.insert(0, self._text_parsers.pop(i))
            return result
        raise ValueError("not a timestamp")
