"""Corporate actions: bar prices adjusted by the file's adjusted close (Yahoo's ``Adj Close``).

A bar file in the Yahoo layout carries, beside each row's raw close, the close
adjusted for every later split and dividend. Their ratio, the row's *factor*
``adj_close / close``, tells how the row's raw prices must be scaled to be
comparable with the last row's. Three modes:

- ``none`` (the default): the raw prices, as in the file.
- ``all``: every price (open, high, low, close, vwap) times the row's factor,
  the volume divided by it, so that the dollar volume (price x volume) is kept.
  The close becomes the file's adjusted close.
- ``splits``: only the splits in the factor, dividends left out. A split shows
  as a jump of the factor between two consecutive rows of a symbol (in time
  order) by a ratio of small whole numbers: the factor is multiplied by ``n/m``
  or ``m/n`` with ``m`` at most 10, ``n`` at most 100, ``n > m``, within 0.1%
  (2:1, 3:2, 10:1, 1:10, 11:10, ...). Every other change of the factor
  (dividends, which move it by a few per cent at most, and rounding) is left
  out. Each row is then scaled by the exact ratios (2, not 1.9993) of the
  splits after it, so the last row keeps its raw prices, as Yahoo does.
  Finding the splits takes a first pass over the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "ADJUST_MODES",
    "MAX_DENOMINATOR",
    "MAX_NUMERATOR",
    "TOLERANCE",
    "SplitHistory",
    "adjust_prices",
    "row_factors",
    "split_ratios",
]

logger = logging.getLogger(__name__)

#: The modes, the default first.
ADJUST_MODES: tuple[str, ...] = ("none", "splits", "all")
#: A split is ``n:m`` (or ``m:n``) with ``m <= MAX_DENOMINATOR``, ``n <= MAX_NUMERATOR``.
MAX_DENOMINATOR = 10
MAX_NUMERATOR = 100
#: Relative distance within which a change of the factor is taken as a split's ratio.
TOLERANCE = 1e-3


def row_factors(close: pa.Array, adj_close: pa.Array, errors: dict[int, list[str]]) -> pa.Array:
    """Each row's ``adj_close / close``; a row where it is not a positive number is an error.

    Rows already null (a value that did not convert) stay null and are not
    reported again.
    """
    factor = pc.divide(adj_close, close)
    good = pc.and_(pc.is_finite(factor), pc.greater(factor, 0.0))
    bad = pc.invert(pc.fill_null(good, True)).to_numpy(zero_copy_only=False)
    for row in np.flatnonzero(bad):
        adj, raw = adj_close[row].as_py(), close[row].as_py()
        errors.setdefault(int(row), []).append(
            f"adj_close: {adj!r} over close {raw!r} is not a positive adjustment factor"
        )
    if bad.any():
        factor = pc.if_else(pa.array(bad), pa.scalar(None, pa.float64()), factor)
    return factor


def split_ratios(changes: np.ndarray) -> np.ndarray:
    """The exact split ratio of each change of the factor between two rows, NaN where none.

    Args:
        changes: ``factor[i + 1] / factor[i]`` of consecutive rows of one symbol.

    Returns:
        ``n/m`` (or ``m/n``) as defined in the module's rule, else NaN.
    """
    changes = np.asarray(changes, dtype=np.float64)
    out = np.full(changes.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(changes >= 1.0, changes, 1.0 / changes)  # >= 1 either way
    valid = np.isfinite(up) & (up > 1.0)
    for m in range(1, MAX_DENOMINATOR + 1):
        n = np.rint(up * m)
        hit = valid & np.isnan(out) & (n > m) & (n <= MAX_NUMERATOR)
        hit &= np.abs(up - n / m) <= TOLERANCE * up
        exact = np.where(changes >= 1.0, n / m, m / np.maximum(n, 1.0))
        out = np.where(hit, exact, out)
    return out


@dataclass(slots=True)
class SplitHistory:
    """The splits of each symbol of a file, found from its rows' factors.

    Attributes:
        times: symbol → the bar start of the first row after each split, ascending.
        after: symbol → ``after[k]`` is the product of ``1/ratio`` over splits
            ``k`` and later (``after[len(times)] == 1``): the factor of a row
            that ``k`` splits precede.
    """

    times: dict[str, np.ndarray]
    after: dict[str, np.ndarray]

    @classmethod
    def find(cls, symbols: np.ndarray, starts: np.ndarray, factors: np.ndarray) -> SplitHistory:
        """Find the splits in the factors of every row of a file (any order).

        Args:
            symbols: each row's symbol (objects).
            starts: each row's bar start (int64 ns).
            factors: each row's ``adj_close / close``.
        """
        times: dict[str, np.ndarray] = {}
        after: dict[str, np.ndarray] = {}
        if not len(symbols):
            return cls(times, after)
        codes, names = _codes(symbols)
        order = np.lexsort((starts, codes))
        codes, starts, factors = codes[order], starts[order], factors[order]
        same = codes[1:] == codes[:-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = split_ratios(factors[1:] / factors[:-1])
        found = np.flatnonzero(same & ~np.isnan(ratios))
        for code in np.unique(codes[found + 1]):
            mine = found[codes[found + 1] == code]
            name = names[code]
            times[name] = starts[mine + 1]
            inverse = 1.0 / ratios[mine]
            after[name] = np.append(np.cumprod(inverse[::-1])[::-1], 1.0)
            logger.info(
                "%s: %d split(s) found in the adjusted close: %s",
                name, len(mine), ", ".join(_ratio_text(r) for r in ratios[mine]),
            )  # fmt: skip
        return cls(times, after)

    def factors(self, symbols: pa.Array, starts: pa.Array) -> pa.Array:
        """The split factor of each row (1.0 for a symbol without splits)."""
        out = np.ones(len(symbols), dtype=np.float64)
        if not self.times or not len(symbols):
            return pa.array(out)
        names = symbols.to_numpy(zero_copy_only=False)
        at = pc.fill_null(starts, 0).to_numpy(zero_copy_only=False)
        for name, times in self.times.items():
            rows = np.flatnonzero(names == name)
            if len(rows):
                out[rows] = self.after[name][np.searchsorted(times, at[rows], side="right")]
        return pa.array(out)


def adjust_prices(
    prices: list[pa.Array], volume: pa.Array, vwap: pa.Array, factor: pa.Array
) -> tuple[list[pa.Array], pa.Array, pa.Array]:
    """Prices (and vwap) times ``factor``, volume divided by it: dollar volume is kept."""
    scaled = [pc.multiply(price, factor) for price in prices]
    return scaled, pc.divide(volume, factor), pc.multiply(vwap, factor)


def _codes(symbols: np.ndarray) -> tuple[np.ndarray, list[str]]:
    names, codes = np.unique(symbols.astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(name) for name in names]


def _ratio_text(ratio: float) -> str:
    for m in range(1, MAX_DENOMINATOR + 1):
        if abs(ratio * m - round(ratio * m)) < 1e-9:
            return f"{round(ratio * m)}:{m}"
        if abs(m / ratio - round(m / ratio)) < 1e-9:
            return f"{m}:{round(m / ratio)}"
    return f"{ratio:g}"
