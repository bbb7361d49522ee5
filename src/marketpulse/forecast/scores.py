"""A model's track record: how its predictions went, with 95% intervals.

Of the predictions whose outcome is known (``predictions``):

- **directional accuracy** (in percent): the share of calls whose direction the price took,
  over the bars that moved (``moved``; a flat outcome has no direction) and on
  which the model made a call, with its Wilson interval;
- **Brier score**: the mean squared difference between the probability of an
  up move and what happened (1 up, 0 down), over the moved bars with a
  probability; 0.25 is a coin's, lower is better;
- **mean absolute error** of the predicted return, in basis points, over the
  bars with a predicted return.

Outcomes ``h`` bars long that start one bar apart overlap, so they are not
independent: the intervals count ``n / h`` observations (the number of
non-overlapping outcomes) instead of ``n``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from marketpulse.analytics.intervals import mean_interval, wilson
from marketpulse.forecast.prequential import Record

__all__ = ["SCORES", "score"]

#: The columns of a track record, in order.
SCORES = pa.schema(
    [
        ("model", pa.string()),
        ("timeframe", pa.string()),
        ("horizon", pa.int64()),
        ("predictions", pa.int64()),
        ("moved", pa.int64()),
        ("calls", pa.int64()),
        ("accuracy_pct", pa.float64()),
        ("accuracy_low_pct", pa.float64()),
        ("accuracy_high_pct", pa.float64()),
        ("brier", pa.float64()),
        ("brier_low", pa.float64()),
        ("brier_high", pa.float64()),
        ("mae_bp", pa.float64()),
        ("mae_bp_low", pa.float64()),
        ("mae_bp_high", pa.float64()),
    ]
)


def score(model: str, timeframe: str, horizon: int, record: Record) -> dict[str, object]:
    """One row of :data:`SCORES` from one model's predictions at one horizon."""
    known = np.isfinite(record.outcome)
    moved = known & (record.outcome != 0)
    up = record.outcome > 0
    called = moved & (record.direction != 0)
    hits = int((np.sign(record.outcome[called]) == record.direction[called]).sum())
    calls = int(called.sum())
    accuracy, low, high = (
        None if v is None else v * 100.0 for v in wilson(hits / horizon, calls / horizon)
    )
    sure = moved & np.isfinite(record.probability)
    brier = (record.probability[sure] - up[sure]) ** 2
    sized = known & np.isfinite(record.value)
    errors = np.abs(record.value[sized] - record.outcome[sized]) * 10_000.0
    row: dict[str, object] = {
        "model": model, "timeframe": timeframe, "horizon": horizon,
        "predictions": int(known.sum()), "moved": int(moved.sum()), "calls": calls,
        "accuracy_pct": accuracy, "accuracy_low_pct": low, "accuracy_high_pct": high,
    }  # fmt: skip
    for prefix, values in (("brier", brier), ("mae_bp", errors)):
        mean, lo, hi = mean_interval(values, len(values) / horizon)
        row |= {prefix: mean, f"{prefix}_low": lo, f"{prefix}_high": hi}
    return row
