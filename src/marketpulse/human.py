"""Figures for people: byte counts, durations, rates and floats in summaries and text tables."""

from __future__ import annotations

import math

__all__ = ["human_bytes", "human_duration", "human_number", "human_rate"]

#: Significant digits of a float for people (prices to the cent up to 99,999.99).
_SIGNIFICANT = 7
_BYTE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def human_bytes(count: int) -> str:
    """A byte count in powers of 1000: ``512 B``, ``98.2 kB``, ``12.3 MB``."""
    size = float(count)
    for unit in _BYTE_UNITS:
        if abs(size) < 999.95 or unit == _BYTE_UNITS[-1]:
            return f"{count:,} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """A duration: ``0.23 s``, ``42.1 s``, ``12 min 5 s``, ``3 h 20 min``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600:,} h {whole % 3600 // 60} min"


def human_rate(count: float, seconds: float) -> str:
    """``count`` per second over ``seconds``, with thousands separators: ``52,345``, ``0.4``."""
    rate = count / seconds if seconds > 0 else 0.0
    return f"{rate:,.1f}" if 0 < rate < 10 else f"{rate:,.0f}"


def human_number(value: float) -> str:
    """A float for people: 7 significant digits, thousands separators, no trailing zeros.

    ``189.125``, ``1,234,568``, ``0.01234568``; very small or very large
    magnitudes in scientific notation (``1.235e+15``); ``nan``, ``inf``.
    """
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == 0:
        return "0"
    size = abs(value)
    if size >= 1e15 or size < 1e-4:
        return f"{value:.4g}"
    decimals = max(0, _SIGNIFICANT - (math.floor(math.log10(size)) + 1))
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
