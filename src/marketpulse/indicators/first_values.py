"""How many closed bars each declared column needs before its first value.

The kernels are the one definition of their warm-up (MACD(12, 26, 9)'s
histogram comes at bar 34, RSI(14) at bar 15, as TA-Lib's lookbacks say), so
the count is read off them: the columns are computed over a synthetic series
and the first bar with a value is taken.
"""

from __future__ import annotations

import numpy as np

from marketpulse.indicators.declare import DeclaredSet
from marketpulse.indicators.state import compute_indicators

__all__ = ["bars_needed"]

#: Bars of the synthetic series: a column without a value by then needs more.
_SERIES = 1000


def bars_needed(declared: DeclaredSet, columns: tuple[str, ...]) -> dict[str, int | None]:
    """Return, for each of ``columns``, the number of bars that gives it its first value.

    ``None`` for a column without a value over :data:`_SERIES` bars (a longer
    period) or not declared.
    """
    wanted = set(columns)
    items = tuple(item for item in declared.items if wanted & set(item.columns))
    found: dict[str, int | None] = dict.fromkeys(columns)
    if not items:
        return found
    subset = DeclaredSet(items)
    step = np.arange(_SERIES, dtype=np.float64)
    close = 100.0 + np.sin(step / 7.0) + 0.01 * step  # moves both ways: no 0/0 anywhere
    volume = np.full(_SERIES, 1000.0)
    out = compute_indicators(
        close + 0.5, close - 0.5, close, volume, close * volume, np.zeros(_SERIES, np.int64),
        open_=close - 0.1, declared=subset,
    )  # fmt: skip
    for index, column in enumerate(subset.columns):
        if column in wanted:
            valued = np.flatnonzero(~np.isnan(out[:, index]))
            found[column] = int(valued[0]) + 1 if len(valued) else None
    return found
