"""Trade filters on the sale condition, for ``FileReplay(exclude_conditions=...)``.

A filter is a test on one condition code: membership in a set of codes, or a
named preset (:data:`CONDITION_PRESETS`) such as ``"lean"``, which drops the
trades whose price QuantConnect Lean leaves out of its bars.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.conditions import lean_excludes_price

__all__ = ["CONDITION_PRESETS", "condition_rule", "excluded_rows", "lean_excludes_price"]

#: Named filters accepted by ``FileReplay(exclude_conditions=...)``.
CONDITION_PRESETS = ("lean",)


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
