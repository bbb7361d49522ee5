"""95% confidence intervals of the shares and means that track records report.

And the two-sided p-values with which a track record compares them with its
baseline (:mod:`~marketpulse.analytics.backtest`, :mod:`~marketpulse.analytics.news_study`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Z95", "mean_interval", "two_proportions_p", "welch_p", "wilson"]

#: The standard normal's two-sided 95% quantile.
Z95 = 1.959963984540054


def wilson(k: float, n: float) -> tuple[float | None, float | None, float | None]:
    """The share ``k / n`` and its 95% Wilson score interval (``None`` without trials).

    ``k`` and ``n`` may be fractional: an effective count (overlapping outcomes
    counted as fewer independent ones) keeps the share and widens the interval.
    """
    if n <= 0:
        return None, None, None
    p = k / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(
    values: np.ndarray, effective: float | None = None
) -> tuple[float | None, float | None, float | None]:
    """The mean of ``values`` and its 95% normal interval (``None`` without values).

    Args:
        values: the observations.
        effective: the number of independent observations they amount to
            (default: their number); the interval's half-width is
            ``1.96 * sd / sqrt(effective)``.
    """
    n = len(values)
    if n == 0:
        return None, None, None
    mean = float(values.mean())
    if n < 2:
        return mean, None, None
    half = Z95 * float(values.std(ddof=1)) / math.sqrt(effective if effective else n)
    return mean, mean - half, mean + half


def two_proportions_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test of ``k1 / n1`` against ``k2 / n2``."""
    pooled = (k1 + k2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 1.0
    return math.erfc(abs(k1 / n1 - k2 / n2) / spread / math.sqrt(2))


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of Welch's z on the means of ``a`` and ``b`` (normal approximation)."""
    spread = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    if spread == 0:
        return 1.0
    return math.erfc(abs(a.mean() - b.mean()) / spread / math.sqrt(2))
