"""Rule backtests: what alert rules would have raised over a dataset's history, and how it went.

The bars of one dataset of the lake (its whole history, for the indicators'
warm-up) get the declared indicators from the stream's own kernels
(:func:`marketpulse.indicators.compute`), and the rules are evaluated by the
stream's own :class:`~marketpulse.alerts.AlertEngine`, cooldowns included: the
alerts are those the stream raises for the same bars. Nothing is written: the
stored alerts stay as they are.

For each rule and horizon ``h`` (in bars of the alert's timeframe) the track
record is:

- the forward return of each alert, ``close[i + h] / close[i] - 1`` from the
  bar that raised it (alerts too near the end of their series have none);
- the hit rate: the share of returns in the alert's direction
  (:func:`~marketpulse.alerts.conditions.direction`; a rule without one, a
  volume spike, has none), with its 95% Wilson score interval;
- a baseline: ``baseline`` random bars per alert, drawn from the same series
  (symbol and timeframe) within the same dates and taken in the same
  direction, with the same figures, and the two-sided p-value of the
  difference (two-proportion z-test on the hit rates; for a rule without a
  direction, Welch's z on the absolute returns). A rule beats chance when its
  interval clears the baseline's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa

from marketpulse.alerts import AlertEngine, Rule
from marketpulse.alerts.conditions import direction
from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.analytics.intervals import two_proportions_p, welch_p, wilson
from marketpulse.analytics.reports import pick_dataset
from marketpulse.analytics.sql import Lake
from marketpulse.indicators.declare import DEFAULT, DeclaredSet
from marketpulse.models import Alert
from marketpulse.timeframes import sort_key

__all__ = ["BacktestResult", "BacktestScope", "backtest"]

_PRICES = ("open", "high", "low", "close", "volume")
_NS_PER_DAY = 86_400 * 10**9

#: The columns of a track record, in order.
TRACK_RECORD = pa.schema(
    [
        ("rule", pa.string()),
        ("horizon", pa.int64()),
        ("alerts", pa.int64()),
        ("with_return", pa.int64()),
        ("mean_return_pct", pa.float64()),
        ("mean_abs_return_pct", pa.float64()),
        ("hit_rate", pa.float64()),
        ("hit_low", pa.float64()),
        ("hit_high", pa.float64()),
        ("baseline_n", pa.int64()),
        ("baseline_mean_return_pct", pa.float64()),
        ("baseline_mean_abs_return_pct", pa.float64()),
        ("baseline_hit_rate", pa.float64()),
        ("baseline_hit_low", pa.float64()),
        ("baseline_hit_high", pa.float64()),
        ("p_value", pa.float64()),
    ]
)


@dataclass(frozen=True, slots=True)
class BacktestScope:
    """What a backtest covers.

    Attributes:
        dataset: the dataset; ``None`` for the lake's only one.
        start: first date (UTC) whose alerts count, inclusive; ``None``: the first bar.
        end: last date (UTC) whose alerts count, inclusive; ``None``: the last bar.
        symbols: the symbols; empty for all.
        horizons: bars after each alert at which its return is taken.
        baseline: random bars drawn per alert for the baseline.
        seed: the baseline's random seed (the same seed, the same baseline).
    """

    dataset: str | None = None
    start: date | None = None
    end: date | None = None
    symbols: tuple[str, ...] = ()
    horizons: tuple[int, ...] = (5, 15, 60)
    baseline: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise AnalyticsError(f"--end {self.end} is before --start {self.start}")
        if not self.horizons or any(h < 1 for h in self.horizons):
            raise AnalyticsError(
                f"--horizons: whole numbers of bars, at least 1, got {list(self.horizons)}"
            )
        if self.baseline < 1:
            raise AnalyticsError(f"--baseline: at least 1 random bar per alert, "
                                 f"got {self.baseline}")  # fmt: skip


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """A backtest's alerts and track record.

    Attributes:
        dataset: the dataset backtested.
        bars: bars the rules were evaluated on (warm-up included).
        alerts: the alerts raised within the scope's dates, in bar order.
        record: one row per rule and horizon (:data:`TRACK_RECORD`).
        returns: per rule and horizon, the alerts' forward returns (in
            percent; for the dashboard's distribution chart).
        baseline_returns: per rule and horizon, the baseline's (in percent).
        timeframes: the dataset's timeframes, sorted.
        not_applied: the rules that cannot fire on the dataset: each watches
            timeframes it has no bars of (their rows in ``record`` are empty).
    """

    dataset: str
    bars: int
    alerts: list[Alert]
    record: pa.Table
    returns: dict[tuple[str, int], list[float]]
    baseline_returns: dict[tuple[str, int], list[float]]
    timeframes: tuple[str, ...] = ()
    not_applied: tuple[Rule, ...] = ()


def backtest(
    lake: Lake,
    rules: Sequence[Rule],
    scope: BacktestScope,
    declared: DeclaredSet = DEFAULT,
) -> BacktestResult:
    """Evaluate ``rules`` over a dataset's bars and measure the alerts' forward returns.

    Raises:
        AnalyticsError: no bars, several datasets and none chosen, an unknown
            dataset, a symbol named without bars, or no bars for any rule's
            timeframes.
    """
    from marketpulse.indicators import compute

    if not rules:
        raise AnalyticsError("no rules to backtest")
    dataset = pick_dataset(lake, scope.dataset)
    bars, timeframes = _bars(lake, dataset, rules, scope.symbols)
    bars = compute(bars, declared)
    rows = _engine_rows(bars, declared)
    engine = AlertEngine(rules, dataset)
    first, last = _range_ns(scope)
    alerts = [a for a in engine.evaluate(rows) if first <= a.bar_start < last]
    series = _Series(bars)
    by_name = {rule.name: rule for rule in rules}
    rng = np.random.default_rng(scope.seed)
    record: list[dict[str, object]] = []
    returns: dict[tuple[str, int], list[float]] = {}
    baseline_returns: dict[tuple[str, int], list[float]] = {}
    for rule in rules:
        mine = [a for a in alerts if a.rule == rule.name]
        where = [series.locate(a.symbol, a.timeframe, a.bar_start) for a in mine]
        signs = np.array([direction(by_name[a.rule], a.details) for a in mine], np.int64)
        for h in scope.horizons:
            got = np.array([series.forward(k, i, h) for k, i in where], np.float64)
            draws, draw_signs = _baseline(series, where, signs, got, h, scope, first, last, rng)
            returns[rule.name, h] = (got[np.isfinite(got)] * 100.0).tolist()
            baseline_returns[rule.name, h] = (draws[np.isfinite(draws)] * 100.0).tolist()
            record.append(_figures(rule.name, h, len(mine), got, signs, draws, draw_signs))
    table = pa.Table.from_pylist(record, schema=TRACK_RECORD)
    idle = tuple(r for r in rules if r.intervals and not set(r.intervals) & set(timeframes))
    return BacktestResult(dataset, bars.num_rows, alerts, table, returns, baseline_returns,
                          tuple(sorted(timeframes, key=sort_key)), idle)  # fmt: skip


def _bars(
    lake: Lake, dataset: str, rules: Sequence[Rule], symbols: tuple[str, ...]
) -> tuple[pa.Table, list[str]]:
    """The dataset's bars of the rules' timeframes (by timeframe, symbol, time), its timeframes."""
    found = lake.query(
        "SELECT DISTINCT timeframe FROM bars WHERE dataset = $1", [dataset]
    ).column("timeframe").to_pylist()  # fmt: skip
    wanted = set(found)
    if all(rule.intervals for rule in rules):
        wanted &= {iv for rule in rules for iv in rule.intervals or ()}
    if not wanted:
        named = sorted({iv for rule in rules for iv in rule.intervals or ()})
        raise AnalyticsError(
            f"dataset {dataset} has no bars of the rules' timeframes ({', '.join(named)}; "
            f"it has: {', '.join(sorted(found)) or 'none'})"
        )
    params: list[object] = [dataset, *sorted(wanted)]
    timeframes = ", ".join(f"${i}" for i in range(2, len(params) + 1))
    where = f"dataset = $1 AND timeframe IN ({timeframes})"
    if symbols:
        marks = ", ".join(f"${i}" for i in range(len(params) + 1, len(params) + 1 + len(symbols)))
        where += f" AND symbol IN ({marks})"
        params += symbols
    table = lake.query(
        "SELECT symbol, timeframe, epoch_ns(bar_start) AS bar_start,"
        " epoch_ns(bar_end) AS bar_end, open, high, low, close, volume, vwap"
        f" FROM bars WHERE {where} ORDER BY timeframe, symbol, bar_start",  # noqa: S608
        params,
    )
    missing = sorted(set(symbols) - set(table.column("symbol").to_pylist()))
    if missing:
        raise AnalyticsError(f"--symbols: no bars of {', '.join(missing)} in dataset {dataset}")
    return table, found


def _engine_rows(bars: pa.Table, declared: DeclaredSet) -> dict[str, np.ndarray]:
    """The columns the alert engine reads, as the stream gives them (NaN for null)."""
    rows: dict[str, np.ndarray] = {
        "symbol": np.array(bars.column("symbol").to_pylist(), object),
        "timeframe": np.array(bars.column("timeframe").to_pylist(), object),
        "bar_start": bars.column("bar_start").to_numpy(),
        "bar_end": bars.column("bar_end").to_numpy(),
    }
    for name in (*_PRICES, *declared.columns):
        column = bars.column(name).cast(pa.float64())
        rows[name] = column.fill_null(math.nan).to_numpy()
    return rows


def _range_ns(scope: BacktestScope) -> tuple[int, int]:
    """The scope's dates as [first, last) bar starts in ns."""

    def ns(day: date) -> int:
        return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 10**9

    first = ns(scope.start) if scope.start else -(2**62)
    last = ns(scope.end + timedelta(days=1)) if scope.end else 2**62
    return first, last


class _Series:
    """Each (symbol, timeframe)'s bars: where they are in the sorted table, their closes."""

    def __init__(self, bars: pa.Table) -> None:
        symbols = bars.column("symbol").to_pylist()
        timeframes = bars.column("timeframe").to_pylist()
        self.start = bars.column("bar_start").to_numpy()
        self.close = bars.column("close").cast(pa.float64()).fill_null(math.nan).to_numpy()
        self.spans: dict[tuple[str, str], tuple[int, int]] = {}
        begin = 0
        for i in range(1, len(symbols) + 1):
            if i == len(symbols) or (symbols[i], timeframes[i]) != (symbols[begin],
                                                                    timeframes[begin]):  # fmt: skip
                self.spans[symbols[begin], timeframes[begin]] = (begin, i)
                begin = i
        self.keys = list(self.spans)
        self._numbers = {key: n for n, key in enumerate(self.keys)}

    def locate(self, symbol: str, timeframe: str, bar_start: int) -> tuple[int, int]:
        """(series number, row) of a bar."""
        begin, end = self.spans[symbol, timeframe]
        row = begin + int(np.searchsorted(self.start[begin:end], bar_start))
        return self._numbers[symbol, timeframe], row

    def forward(self, key: int, row: int, h: int) -> float:
        """The return from ``row``'s close to the close ``h`` bars later (NaN past the end)."""
        end = self.spans[self.keys[key]][1]
        if row + h >= end:
            return math.nan
        return float(self.close[row + h] / self.close[row] - 1.0)

    def rows_within(self, key: int, h: int, first: int, last: int) -> np.ndarray:
        """The rows of series ``key`` starting in [first, last) that have a close ``h`` later."""
        begin, end = self.spans[self.keys[key]]
        starts = self.start[begin : end - h] if end - h > begin else self.start[:0]
        lo, hi = np.searchsorted(starts, first), np.searchsorted(starts, last)
        return np.arange(begin + lo, begin + hi)


def _baseline(
    series: _Series,
    where: list[tuple[int, int]],
    signs: np.ndarray,
    got: np.ndarray,
    h: int,
    scope: BacktestScope,
    first: int,
    last: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns of random bars of each alert's series, ``scope.baseline`` per alert, and signs."""
    returns: list[np.ndarray] = []
    signs_out: list[np.ndarray] = []
    pools: dict[int, np.ndarray] = {}
    for (key, _), sign, own in zip(where, signs, got, strict=True):
        if not math.isfinite(own):
            continue  # alerts without a return have no counterpart either
        pool = pools.get(key)
        if pool is None:
            pool = pools[key] = series.rows_within(key, h, first, last)
        if len(pool) == 0:
            continue
        rows = pool[rng.integers(0, len(pool), scope.baseline)]
        returns.append(series.close[rows + h] / series.close[rows] - 1.0)
        signs_out.append(np.full(scope.baseline, sign, np.int64))
    if not returns:
        return np.empty(0), np.empty(0, np.int64)
    return np.concatenate(returns), np.concatenate(signs_out)


def _figures(
    rule: str,
    h: int,
    alerts: int,
    got: np.ndarray,
    signs: np.ndarray,
    draws: np.ndarray,
    draw_signs: np.ndarray,
) -> dict[str, object]:
    """One row of the track record."""
    own = np.isfinite(got)
    base = np.isfinite(draws)
    row: dict[str, object] = {
        "rule": rule, "horizon": h, "alerts": alerts,
        "with_return": int(own.sum()), "baseline_n": int(base.sum()),
        "mean_return_pct": _pct(got[own]), "mean_abs_return_pct": _pct(np.abs(got[own])),
        "baseline_mean_return_pct": _pct(draws[base]),
        "baseline_mean_abs_return_pct": _pct(np.abs(draws[base])),
    }  # fmt: skip
    directed, base_directed = own & (signs != 0), base & (draw_signs != 0)
    hits, n = int((np.sign(got[directed]) == signs[directed]).sum()), int(directed.sum())
    base_hits = int((np.sign(draws[base_directed]) == draw_signs[base_directed]).sum())
    base_n = int(base_directed.sum())
    for prefix, k, m in (("", hits, n), ("baseline_", base_hits, base_n)):
        rate, low, high = wilson(k, m)
        row |= {f"{prefix}hit_rate": rate, f"{prefix}hit_low": low, f"{prefix}hit_high": high}
    if n and base_n:
        row["p_value"] = two_proportions_p(hits, n, base_hits, base_n)
    elif own.sum() > 1 and base.sum() > 1 and not directed.any():
        row["p_value"] = welch_p(np.abs(got[own]), np.abs(draws[base]))
    else:
        row["p_value"] = None
    return row


def _pct(values: np.ndarray) -> float | None:
    """The mean of fractions, in percent (``None`` for none)."""
    return float(values.mean()) * 100.0 if len(values) else None
