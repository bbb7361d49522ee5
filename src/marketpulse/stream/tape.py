"""Tape rules: which trades set a bar's prices, which only add volume (``--conditions``).

``none`` (the default): every trade sets prices. ``lean``: the rules by which
QuantConnect Lean builds its US equity bars from the same trades (found
against all 2,309 of Lean's minute bars of 2013-10-07, see
``tests/integration/test_lean_bars.py``), from the hexadecimal
TradeConditionFlags mask in each trade's ``condition``:

1. a trade whose condition has none of Lean's included flags and one of its
   excluded ones (:func:`~marketpulse.conditions.lean_excludes_price`:
   intermarket sweeps, trade-through-exempt and odd-lot prints) adds its
   volume to the bar, never a price;
2. auctions: the session's opening print (the first trade flagged
   OpeningPrints without Cross, OfficialOpen or OfficialClose: the listing
   market's auction, since other markets' auction prints carry Cross) is the
   first trade of its bar when it falls in the session's first bar of the
   smallest interval (a later one is left out); the closing print (same test
   with ClosingPrints) is the last trade of the session's last bar (its time
   is moved to the close's last nanosecond, so it arrives late by however
   long after the close it was printed: the allowed lateness must cover that,
   or it goes to the dead-letter topic as ``late``); every other auction print
   and official open/close report is left out (moves the clock only);
3. a window with only volume-only trades gets no bar; its volume goes to the
   symbol's previous bar (:mod:`marketpulse.stream.windows` holds each bar
   until the next window closes).

Sessions come from the processor's exchange calendar (``XNYS`` when none is
set: Lean's conditions are US equity ones).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.conditions import (
    CLOSING_PRINTS,
    CROSS,
    OFFICIAL,
    OPENING_PRINTS,
    condition_flags,
    lean_excludes_price,
)

__all__ = [
    "CONDITIONS",
    "LEAN_CALENDAR",
    "LEFT_OUT",
    "OPENING",
    "PRICED",
    "VOLUME_ONLY",
    "check_conditions",
    "lean_roles",
]

#: The sale-condition rule sets of ``--conditions``.
CONDITIONS = ("none", "lean")
#: The calendar of ``lean``'s sessions when the processor has none.
LEAN_CALENDAR = "XNYS"
#: Roles of a trade in the windows kernel.
PRICED, VOLUME_ONLY, LEFT_OUT, OPENING = 0, 1, 2, 3

_AUCTION = OPENING_PRINTS | CLOSING_PRINTS | CROSS | OFFICIAL


def check_conditions(name: str) -> str:
    """Return ``name`` if it is a rule set of :data:`CONDITIONS`.

    Raises:
        ValueError: it is not (one line naming the choices).
    """
    if name not in CONDITIONS:
        raise ValueError(f"conditions {name!r}: choose one of {', '.join(CONDITIONS)}")
    return name


def lean_roles(
    conditions: pa.Array | pa.ChunkedArray,
    sid: np.ndarray,
    ts: np.ndarray,
    taken: np.ndarray,
    opens: np.ndarray,
    closes: np.ndarray,
    base: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return each trade's role under ``lean`` and the times to window them by.

    Args:
        conditions: the trades' ``condition`` column.
        sid: their symbol ids.
        ts: their times (ns); a copy is returned with closing prints moved.
        taken: per symbol id, the session open and close whose opening and
            closing prints were taken (updated: part of the window state).
        opens: the sessions' opens (ns, ascending).
        closes: the sessions' closes (ns).
        base: the smallest interval (ns; 0: session-aligned only).
    """
    encoded = pc.dictionary_encode(conditions)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    words = encoded.dictionary.to_pylist()
    flags = np.array([condition_flags(w) for w in words] + [0], np.int64)
    volume_only = np.array([lean_excludes_price(w) for w in words] + [False])
    index = encoded.indices.fill_null(len(words)).to_numpy(zero_copy_only=False)
    roles = np.where(volume_only[index], VOLUME_ONLY, PRICED).astype(np.int8)
    if not (flags & _AUCTION).any():
        return roles, ts
    row_flags = flags[index]
    auction = (row_flags & _AUCTION) != 0
    roles[auction] = LEFT_OUT
    plain = auction & ((row_flags & (CROSS | OFFICIAL)) == 0)
    ts = ts.copy()
    for i in np.flatnonzero(plain & ((row_flags & (OPENING_PRINTS | CLOSING_PRINTS)) != 0)):
        t, s = int(ts[i]), int(sid[i])
        g = int(np.searchsorted(opens, t, side="right")) - 1  # the session opened last
        if g < 0:
            continue
        if row_flags[i] & OPENING_PRINTS:
            if taken[s, 0] == opens[g]:
                continue  # not the first: left out
            taken[s, 0] = opens[g]
            first_end = opens[g] - opens[g] % base + base if base else closes[g]
            if t < first_end:
                roles[i] = OPENING
        elif taken[s, 1] != closes[g]:
            taken[s, 1] = closes[g]
            roles[i] = PRICED
            ts[i] = closes[g] - 1
    return roles, ts
