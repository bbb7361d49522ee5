"""Streaming technical indicators: numba kernels over per-key state arrays.

One call advances many series (keys) by a batch of closed bars and returns
every indicator of :data:`COLUMNS` for each bar, matching TA-Lib once warmed
up; batch (:func:`compute_indicators`) and streaming (:func:`update_indicators`
over any split of the bars) give bit-identical results.
"""

from marketpulse.indicators.kernels import COLUMNS
from marketpulse.indicators.state import IndicatorState, compute_indicators, update_indicators

__all__ = ["COLUMNS", "IndicatorState", "compute_indicators", "update_indicators"]
