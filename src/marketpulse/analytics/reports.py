"""Historical reports over the lake's bars: daily OHLC, movers, volatility, correlation.

A report reads one dataset (``--dataset``; without it, the only dataset the
lake's bars have: datasets never mix) and starts from daily bars per symbol,
built from the bars of one timeframe (``1d`` when the dataset has it, as a
replay of daily files gives; else the smallest, aggregated by UTC date):

- ``daily``: open, high, low, close, volume, and the average price (the
  volume-weighted average of the bars' VWAP, or of their closes without volume);
- ``movers``: return from the first close to the last close of the period in
  percent (``return_pct``), the top gainers (a positive return) and losers (a
  negative one): a side can be shorter than ``top``, or empty;
- ``volatility``: standard deviation of daily log returns (sample) in percent,
  annualised by the square root of 252 trading days, over ``return_days``
  daily returns;
- ``correlation``: Pearson correlation of two symbols' daily log returns over
  the days both have.

The dataset, timeframe and period are constants of the query, so DuckDB opens
the files of those partitions alone. Columns in percent end ``_pct`` and are
marked so that tables for people show them as percentages
(:func:`~marketpulse.analytics.results.mark_percent`); CSV and JSON keep the
plain numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow as pa

from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.analytics.results import mark_percent
from marketpulse.analytics.sql import Lake
from marketpulse.models import DATASET_NAME
from marketpulse.sinks.lake_layout import Partition, partitions, period_start

__all__ = ["REPORTS", "ReportRange", "lake_datasets", "movers_note", "pick_dataset", "report"]

#: The reports :func:`report` runs.
REPORTS = ("daily", "movers", "volatility", "correlation")

_TRADING_DAYS = 252
_TIMEFRAME = re.compile(r"[0-9]+[A-Za-z]+")


@dataclass(frozen=True, slots=True)
class ReportRange:
    """Which rows a report covers.

    Attributes:
        start: first date (UTC), inclusive.
        end: last date (UTC), inclusive.
        symbols: the symbols; empty for all.
        interval: the timeframe of the bars to build days from; ``None`` picks
            ``1d`` or the smallest.
        top: rows of each side for ``movers``.
        dataset: the dataset; ``None`` for the lake's only one.
    """

    start: date
    end: date
    symbols: tuple[str, ...] = ()
    interval: str | None = None
    top: int = 10
    dataset: str | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise AnalyticsError(f"--end {self.end} is before --start {self.start}")
        if self.top < 1:
            raise AnalyticsError("--top must be at least 1")
        if self.dataset is not None and not DATASET_NAME.fullmatch(self.dataset):
            raise AnalyticsError(
                f"--dataset: {self.dataset!r} is not a dataset name (a letter or digit, "
                "then up to 63 letters, digits, '.', '_' or '-')"
            )
        if self.interval is not None and not _TIMEFRAME.fullmatch(self.interval):
            raise AnalyticsError(f"--interval: expected a timeframe such as 1m or 1d, "
                                 f"got {self.interval!r}")  # fmt: skip


def lake_datasets(lake: Lake) -> list[str]:
    """The datasets of the lake's bars, sorted (from the partition folders: no file is read)."""
    return sorted({p.dataset for p in _bar_partitions(lake)})


def _bar_partitions(lake: Lake, dataset: str | None = None) -> list[Partition]:
    try:
        return partitions(lake.store, "bars", dataset)
    except OSError as exc:
        raise AnalyticsError(f"cannot list the lake at {lake.store.uri}: {exc}") from None


def report(lake: Lake, name: str, scope: ReportRange) -> pa.Table:
    """Run one of :data:`REPORTS` over one dataset of the lake.

    Raises:
        AnalyticsError: unknown report, no bars, several datasets and none
            chosen, an unknown dataset, no bars in the range, a symbol named
            without bars in it, or one symbol for ``correlation``.
    """
    if name not in REPORTS:
        raise AnalyticsError(f"unknown report {name!r} (known: {', '.join(REPORTS)})")
    if name == "correlation" and len(set(scope.symbols)) == 1:
        raise AnalyticsError("--symbols: correlation needs two symbols or more (none: all)")
    dataset = pick_dataset(lake, scope.dataset)
    timeframe = scope.interval or _pick_timeframe(lake, scope, dataset)
    where = _where(scope, dataset, timeframe)
    days = _DAILY.format(where=where + _symbols_filter(scope.symbols, first=1))
    params: list[object] = [*scope.symbols]
    # an empty or silently shorter report would hide a misspelt symbol or timeframe
    found = lake.query(
        f"SELECT DISTINCT symbol FROM bars WHERE {where}{_symbols_filter(scope.symbols, 1)}",
        params or None,
    ).column("symbol")
    if len(found) == 0:
        raise AnalyticsError(
            f"no {timeframe} bars between {scope.start} and {scope.end} in dataset {dataset}"
        )
    missing = sorted(set(scope.symbols) - set(found.to_pylist()))
    if missing:
        raise AnalyticsError(
            f"--symbols: no {timeframe} bars of {', '.join(missing)} "
            f"between {scope.start} and {scope.end} in dataset {dataset}"
        )
    sql = {
        "daily": "SELECT * FROM days ORDER BY symbol, date",
        "movers": _MOVERS,
        "volatility": _VOLATILITY,
        "correlation": _CORRELATION,
    }[name]
    if name == "movers":
        params.append(scope.top)
        sql = sql.replace("${top}", f"${len(params)}")
    result = lake.query(f"WITH days AS ({days}) {sql}", params or None)
    return mark_percent(result, signed=("return_pct",),
                        unsigned=("daily_volatility_pct", "annualised_volatility_pct"))  # fmt: skip


def movers_note(movers: pa.Table, scope: ReportRange) -> str | None:
    """One line on the sides of a ``movers`` report shorter than ``top``; ``None`` if none is.

    A gainer rose and a loser fell over the period: when fewer symbols did,
    a side has fewer rows (or none), and this line says so.
    """
    sides = movers.column("side").to_pylist()
    short = []
    for side, moved in (("gainer", "rose"), ("loser", "fell")):
        n = sides.count(side)
        if n == 0:
            short.append(f"no symbol {moved}, so no {side}s")
        elif n < scope.top:
            symbols = "symbol" if n == 1 else "symbols"
            short.append(
                f"only {n} {symbols} {moved}, so {n} {side}{'s' * (n > 1)} (--top {scope.top})"
            )
    if not short:
        return None
    return f"between {scope.start} and {scope.end} {'; '.join(short)}"


def pick_dataset(lake: Lake, chosen: str | None) -> str:
    """The dataset to read: ``chosen`` if the lake's bars have it, else the lake's only one.

    Raises:
        AnalyticsError: no bars; ``chosen`` unknown (the datasets are named);
            none chosen and several datasets.
    """
    datasets = lake_datasets(lake)
    if not datasets:
        raise AnalyticsError(f"no bars in the lake at {lake.store.uri}")
    if chosen is not None:
        if chosen not in datasets:
            raise AnalyticsError(
                f"--dataset: no bars of dataset {chosen!r} (the lake has: {', '.join(datasets)})"
            )
        return chosen
    if len(datasets) > 1:
        raise AnalyticsError(
            f"the lake holds {len(datasets)} datasets ({', '.join(datasets)}): "
            "choose one with --dataset"
        )
    return datasets[0]


def _where(scope: ReportRange, dataset: str, timeframe: str) -> str:
    """The rows of the range, with constants only (so partitions are pruned)."""
    first = period_start(scope.start, timeframe)
    after = scope.end + timedelta(days=1)
    return (
        f"dataset = '{dataset}' AND timeframe = '{timeframe}'"
        f" AND period BETWEEN DATE '{first}' AND DATE '{scope.end}'"
        f" AND bar_start >= TIMESTAMPTZ '{scope.start} 00:00:00+00'"
        f" AND bar_start < TIMESTAMPTZ '{after} 00:00:00+00'"
    )


def _pick_timeframe(lake: Lake, scope: ReportRange, dataset: str) -> str:
    """``1d``, else the smallest timeframe with a partition in the range."""
    found = {
        p.timeframe
        for p in _bar_partitions(lake, dataset)
        if p.timeframe is not None and p.period <= scope.end and p.end > scope.start
    }
    if not found:
        raise AnalyticsError(f"no bars between {scope.start} and {scope.end} in dataset {dataset}")
    if "1d" in found:
        return "1d"
    return min(sorted(found), key=_seconds)


def _seconds(timeframe: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return float(timeframe[:-1]) * units[timeframe[-1]]
    except (KeyError, ValueError):
        return float("inf")


def _symbols_filter(symbols: Sequence[str], first: int) -> str:
    if not symbols:
        return ""
    marks = ", ".join(f"${first + i}" for i in range(len(symbols)))
    return f" AND symbol IN ({marks})"


# the lake's connection works in UTC: a bar's date is its UTC date
_DAILY = """
SELECT symbol, CAST(bar_start AS DATE) AS date,
       arg_min(open, bar_start) AS open, max(high) AS high, min(low) AS low,
       arg_max(close, bar_start) AS close, sum(volume) AS volume,
       coalesce(sum(vwap * volume) / nullif(sum(volume), 0), avg(close)) AS avg_price,
       count(*) AS bars
FROM bars
WHERE {where}
GROUP BY ALL
"""

_RETURNS = """
returns AS (
    SELECT symbol, date, ln(close / lag(close) OVER (PARTITION BY symbol ORDER BY date)) AS r
    FROM days WHERE close > 0
)
"""

_MOVERS = """
, periods AS (
    SELECT symbol, min(date) AS first_date, max(date) AS last_date,
           arg_min(close, date) AS first_close, arg_max(close, date) AS last_close
    FROM days GROUP BY symbol
), ranked AS (
    SELECT *, 100 * (last_close / first_close - 1) AS return_pct,
           row_number() OVER (ORDER BY last_close / first_close DESC, symbol) AS up,
           row_number() OVER (ORDER BY last_close / first_close ASC, symbol) AS down
    FROM periods WHERE first_close > 0
)
SELECT 'gainer' AS side, symbol, first_date, last_date, first_close, last_close, return_pct
FROM ranked WHERE up <= $4 AND last_close > first_close
UNION ALL
SELECT 'loser', symbol, first_date, last_date, first_close, last_close, return_pct
FROM ranked WHERE down <= $4 AND last_close < first_close
ORDER BY side, CASE WHEN side = 'gainer' THEN -return_pct ELSE return_pct END, symbol
""".replace("$4", "${top}")

_VOLATILITY = f"""
, {_RETURNS}
SELECT symbol, count(r) AS return_days, 100 * stddev_samp(r) AS daily_volatility_pct,
       100 * stddev_samp(r) * sqrt({_TRADING_DAYS}) AS annualised_volatility_pct
FROM returns GROUP BY symbol ORDER BY annualised_volatility_pct DESC NULLS LAST, symbol
"""

_CORRELATION = f"""
, {_RETURNS}
SELECT a.symbol AS symbol_a, b.symbol AS symbol_b, count(*) AS days,
       corr(a.r, b.r) AS correlation
FROM returns a JOIN returns b ON a.date = b.date AND a.symbol < b.symbol
WHERE a.r IS NOT NULL AND b.r IS NOT NULL
GROUP BY a.symbol, b.symbol ORDER BY a.symbol, b.symbol
"""
