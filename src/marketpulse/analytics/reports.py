"""Historical reports over the lake's bars: daily OHLC, movers, volatility, correlation.

Every report starts from daily bars per symbol, built from the lake's ``bars``
of one interval (``1d`` when the lake has it, as a replay of daily files
gives; else the smallest interval, aggregated by UTC date):

- ``daily``: open, high, low, close, volume, and the average price (the
  volume-weighted average of the bars' VWAP, or of their closes without volume);
- ``movers``: return from the first close to the last close of the period,
  the top gainers and losers;
- ``volatility``: standard deviation of daily log returns (sample), annualised
  by the square root of 252 trading days;
- ``correlation``: Pearson correlation of two symbols' daily log returns over
  the days both have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pyarrow as pa

from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.analytics.sql import Lake

__all__ = ["REPORTS", "ReportRange", "report"]

#: The reports :func:`report` runs.
REPORTS = ("daily", "movers", "volatility", "correlation")

_TRADING_DAYS = 252


@dataclass(frozen=True, slots=True)
class ReportRange:
    """Which rows a report covers.

    Attributes:
        start: first date (UTC), inclusive.
        end: last date (UTC), inclusive.
        symbols: the symbols; empty for all.
        interval: bars to build days from; ``None`` picks ``1d`` or the smallest.
        top: rows of each side for ``movers``.
    """

    start: date
    end: date
    symbols: tuple[str, ...] = ()
    interval: str | None = None
    top: int = 10

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise AnalyticsError(f"--end {self.end} is before --start {self.start}")
        if self.top < 1:
            raise AnalyticsError("--top must be at least 1")


def report(lake: Lake, name: str, scope: ReportRange) -> pa.Table:
    """Run one of :data:`REPORTS` over the lake.

    Raises:
        AnalyticsError: unknown report, no bars in the range, a symbol named
            without bars in it, or one symbol for ``correlation``.
    """
    if name not in REPORTS:
        raise AnalyticsError(f"unknown report {name!r} (known: {', '.join(REPORTS)})")
    if name == "correlation" and len(set(scope.symbols)) == 1:
        raise AnalyticsError("--symbols: correlation needs two symbols or more (none: all)")
    interval = scope.interval or _pick_interval(lake, scope)
    days = _DAILY.format(symbols=_symbols_filter(scope.symbols))
    params = [interval, scope.start, scope.end, *scope.symbols]
    # an empty or silently shorter report would hide a misspelt symbol or interval
    found = lake.query(
        "SELECT DISTINCT symbol FROM bars WHERE interval = $1 AND date BETWEEN $2 AND $3"
        + _symbols_filter(scope.symbols),
        params,
    ).column("symbol")
    if len(found) == 0:
        raise AnalyticsError(f"no {interval} bars between {scope.start} and {scope.end}")
    missing = sorted(set(scope.symbols) - set(found.to_pylist()))
    if missing:
        raise AnalyticsError(
            f"--symbols: no {interval} bars of {', '.join(missing)} "
            f"between {scope.start} and {scope.end}"
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
    return lake.query(f"WITH days AS ({days}) {sql}", params)


def _pick_interval(lake: Lake, scope: ReportRange) -> str:
    rows = (
        lake.query(
            "SELECT DISTINCT interval FROM bars WHERE date BETWEEN $1 AND $2"
            + _symbols_filter(scope.symbols, first=3),
            [scope.start, scope.end, *scope.symbols],
        )
        .column("interval")
        .to_pylist()
    )
    if not rows:
        where = f" for {', '.join(scope.symbols)}" if scope.symbols else ""
        raise AnalyticsError(f"no bars between {scope.start} and {scope.end}{where}")
    if "1d" in rows:
        return "1d"
    return min(rows, key=_seconds)


def _seconds(interval: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return float(interval[:-1]) * units[interval[-1]]
    except (KeyError, ValueError):
        return float("inf")


def _symbols_filter(symbols: Sequence[str], first: int = 4) -> str:
    if not symbols:
        return ""
    marks = ", ".join(f"${first + i}" for i in range(len(symbols)))
    return f" AND symbol IN ({marks})"


_DAILY = """
SELECT symbol, date,
       arg_min(open, start) AS open, max(high) AS high, min(low) AS low,
       arg_max(close, start) AS close, sum(volume) AS volume,
       coalesce(sum(vwap * volume) / nullif(sum(volume), 0), avg(close)) AS avg_price,
       count(*) AS bars
FROM bars
WHERE interval = $1 AND date BETWEEN $2 AND $3{symbols}
GROUP BY symbol, date
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
    SELECT *, last_close / first_close - 1 AS return,
           row_number() OVER (ORDER BY last_close / first_close DESC, symbol) AS up,
           row_number() OVER (ORDER BY last_close / first_close ASC, symbol) AS down
    FROM periods WHERE first_close > 0
)
SELECT 'gainer' AS side, symbol, first_date, last_date, first_close, last_close, return
FROM ranked WHERE up <= $4
UNION ALL
SELECT 'loser', symbol, first_date, last_date, first_close, last_close, return
FROM ranked WHERE down <= $4
ORDER BY side, CASE WHEN side = 'gainer' THEN -return ELSE return END, symbol
""".replace("$4", "${top}")

_VOLATILITY = f"""
, {_RETURNS}
SELECT symbol, count(r) AS returns, stddev_samp(r) AS daily_volatility,
       stddev_samp(r) * sqrt({_TRADING_DAYS}) AS annualised_volatility
FROM returns GROUP BY symbol ORDER BY annualised_volatility DESC NULLS LAST, symbol
"""

_CORRELATION = f"""
, {_RETURNS}
SELECT a.symbol AS symbol_a, b.symbol AS symbol_b, count(*) AS days,
       corr(a.r, b.r) AS correlation
FROM returns a JOIN returns b ON a.date = b.date AND a.symbol < b.symbol
WHERE a.r IS NOT NULL AND b.r IS NOT NULL
GROUP BY a.symbol, b.symbol ORDER BY a.symbol, b.symbol
"""
