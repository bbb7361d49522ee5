"""The alerts page's track record: a backtest of the dashboard's rules over one dataset.

:func:`marketpulse.analytics.backtest.backtest` over the lake, summarised for a
chart: per rule, the figures of the track record and the distribution of the
alerts' forward returns and of the baseline's (5th, 25th, 50th, 75th and 95th
percentiles and the mean, in percent). Results are kept for a minute per
dataset and horizon: a backtest reads the dataset's whole history.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from marketpulse.alerts import Rule
from marketpulse.analytics import Lake
from marketpulse.analytics.backtest import BacktestScope, backtest
from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.indicators.declare import DEFAULT, DeclaredSet
from marketpulse.sinks.lake_location import LakeLocation

__all__ = ["TrackRecords"]

_FIGURES = (
    "alerts", "with_return", "mean_return_pct", "hit_rate", "hit_low", "hit_high",
    "baseline_n", "baseline_mean_return_pct", "baseline_hit_rate", "baseline_hit_low",
    "baseline_hit_high", "p_value",
)  # fmt: skip


class TrackRecords:
    """Backtests of ``rules`` over a lake's datasets, kept for ``keep_s`` seconds each.

    Args:
        location: the lake.
        rules: the rules (default: the built-in rules).
        declared: the indicators they read (default: the default set).
        keep_s: how long a result is served before it is computed again.
    """

    def __init__(
        self,
        location: LakeLocation,
        rules: Sequence[Rule] | None = None,
        declared: DeclaredSet | None = None,
        keep_s: float = 60.0,
    ) -> None:
        from marketpulse.alerts import default_rules

        self.location = location
        self.rules = list(rules) if rules is not None else default_rules()
        self.declared = declared or DEFAULT
        self.keep_s = keep_s
        self._lock = threading.Lock()
        self._kept: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}

    def get(self, dataset: str, horizon: int) -> dict[str, Any]:
        """The track record of every rule over ``dataset`` at ``horizon`` bars (JSON-ready)."""
        with self._lock:  # one backtest at a time: each reads the whole dataset
            kept = self._kept.get((dataset, horizon))
            if kept is not None and time.monotonic() - kept[0] < self.keep_s:
                return kept[1]
            result = self._compute(dataset, horizon)
            self._kept[dataset, horizon] = (time.monotonic(), result)
            return result

    def _compute(self, dataset: str, horizon: int) -> dict[str, Any]:
        answer: dict[str, Any] = {"dataset": dataset, "horizon": horizon, "rules": []}
        try:
            with Lake(self.location) as lake:
                result = backtest(
                    lake, self.rules, BacktestScope(dataset=dataset, horizons=(horizon,)),
                    self.declared,
                )  # fmt: skip
        except AnalyticsError as exc:
            answer["note"] = str(exc)
            return answer
        answer["bars"] = result.bars
        for row in result.record.to_pylist():
            key = (row["rule"], horizon)
            entry = {"rule": row["rule"], **{name: row[name] for name in _FIGURES}}
            entry["returns"] = _spread(result.returns[key])
            entry["baseline"] = _spread(result.baseline_returns[key])
            answer["rules"].append(entry)
        return answer


def _spread(values: list[float]) -> dict[str, float] | None:
    """Percentiles 5, 25, 50, 75, 95 and the mean of ``values`` (``None`` for none)."""
    if not values:
        return None
    low, q1, median, q3, high = np.percentile(values, [5, 25, 50, 75, 95]).tolist()
    return {"n": len(values), "low": low, "q1": q1, "median": median, "q3": q3, "high": high,
            "mean": float(np.mean(values))}  # fmt: skip
