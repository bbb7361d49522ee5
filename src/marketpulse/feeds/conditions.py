"""Trade filters on the sale condition, for ``FileReplay(exclude_conditions=...)``.

A filter is a test on one condition code: membership in a set of codes, or a
named preset (:data:`CONDITION_PRESETS`) such as ``"lean"``, which drops the
trades whose price QuantConnect Lean leaves out of its bars.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["CONDITION_PRESETS", "condition_rule", "excluded_rows", "lean_excludes_price"]

#: Named filters accepted by ``FileReplay(exclude_conditions=...)``.
CONDITION_PRESETS = ("lean",)

# Lean's TradeConditionFlags (QuantConnect/Lean, Common/Data/Auxiliary/
# TradeConditionFlags.cs): the bits of the hexadecimal sale condition of its US
# equity ticks (Tick.ParsedSaleCondition). "Bar Building" in Lean's US equity
# "Data Preparation" documentation: a trade's price stays out of the bars when
# it has none of the included flags and at least one of the excluded ones.
_LEAN_INCLUDED = (
    1 << 0  # Regular
    | 1 << 1  # Cash
    | 1 << 2  # NextDay
    | 1 << 6  # OpeningPrints
    | 1 << 7  # ClosingPrints
    | 1 << 10  # FormT
    | 1 << 13  # ExtendedHours
    | 1 << 24  # OfficialClose
    | 1 << 26  # OfficialOpen
)
_LEAN_EXCLUDED = (
    1 << 5  # IntermarketSweep
    | 1 << 29  # TradeThroughExempt
    | 1 << 31  # OddLot
)
_HEX_UINT = re.compile(r"[0-9A-Fa-f]{1,8}")


def lean_excludes_price(condition: str | None) -> bool:
    """Tell whether Lean leaves a trade with this sale condition out of its bar prices.

    ``condition`` is Lean's hexadecimal TradeConditionFlags mask (``"20000020"``
    is IntermarketSweep | TradeThroughExempt). A trade is left out when it has
    no Regular, Cash, NextDay, FormT, ExtendedHours, OpeningPrints,
    ClosingPrints, OfficialOpen or OfficialClose flag and has an
    IntermarketSweep, TradeThroughExempt or OddLot flag. A missing condition,
    or one that is not a 32-bit hexadecimal mask, is kept.
    """
    text = (condition or "").strip()
    if not _HEX_UINT.fullmatch(text):
        return False
    flags = int(text, 16)
    return not flags & _LEAN_INCLUDED and bool(flags & _LEAN_EXCLUDED)


def condition_rule(exclude: Iterable[str] | str | None) -> Callable[[str], bool] | None:
    """Return the test that drops a trade by its condition, from ``exclude_conditions=``."""
    if exclude is None:
        return None
    if isinstance(exclude, str):
        if exclude == "lean":
            return lean_excludes_price
        raise ValueError(
            f"unknown exclude_conditions preset {exclude!r} (known: "
            f"{', '.join(CONDITION_PRESETS)}); pass a collection of codes to drop"
        )
    codes = frozenset(exclude)
    if not all(isinstance(code, str) for code in codes):
        raise TypeError("exclude_conditions codes must be strings, as in the condition column")
    return codes.__contains__ if codes else None


def excluded_rows(conditions: pa.Array, rule: Callable[[str], bool]) -> np.ndarray | None:
    """Return the rows whose condition ``rule`` rejects (nulls kept); None if none."""
    encoded = pc.dictionary_encode(conditions)
    verdicts = np.array([bool(rule(c)) for c in encoded.dictionary.to_pylist()] + [False])
    if not verdicts.any():
        return None
    indices = encoded.indices.fill_null(len(verdicts) - 1).to_numpy(zero_copy_only=False)
    return verdicts[indices]
