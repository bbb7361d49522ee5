"""Streaming technical indicators: numba kernels over per-key state arrays.

Indicators are declared (``ema(50)``, ``bb=bbands(20, 2.5)``); one call
advances many series (keys) by a batch of closed bars and returns every
declared column for each bar. Kinds TA-Lib has match it once warmed up; batch
(:func:`compute_indicators`, :func:`compute` on a DataFrame) and streaming
(:func:`update_indicators` over any split of the bars) give bit-identical
results.
"""

from marketpulse.indicators.catalog import KINDS
from marketpulse.indicators.declare import DEFAULT, Declared, DeclaredSet, parse, parse_set
from marketpulse.indicators.first_values import bars_needed
from marketpulse.indicators.frame import compute
from marketpulse.indicators.state import (
    IndicatorState,
    StateMismatch,
    compute_indicators,
    update_indicators,
    warm_up,
)

#: The default set's columns (the thirteen classic ones).
COLUMNS: tuple[str, ...] = DEFAULT.columns

__all__ = [
    "COLUMNS",
    "DEFAULT",
    "KINDS",
    "Declared",
    "DeclaredSet",
    "IndicatorState",
    "StateMismatch",
    "bars_needed",
    "compute",
    "compute_indicators",
    "parse",
    "parse_set",
    "update_indicators",
    "warm_up",
]
