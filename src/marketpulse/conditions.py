"""Sale conditions of US equity trades: QuantConnect Lean's TradeConditionFlags.

Lean's US equity ticks carry their sale condition as a hexadecimal mask of
TradeConditionFlags (QuantConnect/Lean, Common/Data/Auxiliary/
TradeConditionFlags.cs; ``"20000020"`` is IntermarketSweep |
TradeThroughExempt). Feed filters (:mod:`marketpulse.feeds.conditions`) and the
processor's tape rules (:mod:`marketpulse.stream.tape`) both read them here.
"""

from __future__ import annotations

import re

__all__ = [
    "CLOSING_PRINTS",
    "CROSS",
    "OFFICIAL",
    "OPENING_PRINTS",
    "condition_flags",
    "lean_excludes_price",
]

#: TradeConditionFlags bits of the auctions: opening and closing prints, cross
#: trades, official open and close reports (OfficialClose | OfficialOpen).
OPENING_PRINTS, CLOSING_PRINTS = 1 << 6, 1 << 7
CROSS = 1 << 21
OFFICIAL = 1 << 24 | 1 << 26

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


def condition_flags(condition: str | None) -> int:
    """Return the TradeConditionFlags of a condition; 0 if it is not a 32-bit hex mask."""
    text = (condition or "").strip()
    return int(text, 16) if _HEX_UINT.fullmatch(text) else 0
