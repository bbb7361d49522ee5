"""A MarketPulse plugin: each bar's close as a z-score within its Bollinger bands.

Run it with::

    marketpulse replay trades.csv.gz --plugin examples.zscore_plugin:zscore

(from the folder holding ``examples/``: the current directory is importable).
The column ``zscore`` is stored in the table ``custom``; a bar whose close lies
more than 2.5 standard deviations from its 20-bar mean raises an alert.

The bands are Bollinger's with k = 2, so one standard deviation is half the
distance from the middle band to the upper one:
``zscore = (close - bb_middle) / ((bb_upper - bb_middle) / 2)``.
The function is deterministic and keeps no state: a replay after a crash
gives the same rows, which is what exactly-once output needs.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from marketpulse.plugins import PluginResult, alert

#: |z| above this raises an alert.
THRESHOLD = 2.5


def zscore(bars: pa.Table) -> PluginResult:
    """Return the z-score of each bar's close, and an alert where it is extreme."""
    close = bars.column("close").to_numpy(zero_copy_only=False)
    middle = bars.column("bb_middle").to_numpy(zero_copy_only=False)  # NaN until warmed up
    upper = bars.column("bb_upper").to_numpy(zero_copy_only=False)
    sigma = (upper - middle) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(sigma > 0, (close - middle) / sigma, np.nan)
    alerts = []
    for row in np.flatnonzero(np.abs(np.nan_to_num(z)) > THRESHOLD).tolist():
        alerts.append(
            alert(
                "zscore_extreme",
                bars.column("symbol")[row].as_py(),
                bars.column("timeframe")[row].as_py(),
                bars.column("bar_start")[row].as_py(),
                bars.column("bar_end")[row].as_py(),
                f"close {z[row]:+.2f} standard deviations from its 20-bar mean",
                details={"zscore": float(z[row]), "close": float(close[row])},
            )
        )
    return PluginResult(columns={"zscore": z}, alerts=alerts)
