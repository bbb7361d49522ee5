"""News event study: how prices moved after headlines, by sentiment, against random times.

The headlines of one dataset of the lake (the ``news`` table) are set against
its bars of one timeframe. Each headline is classed by its sentiment score
(VADER's compound score, -1..1): positive at or above ``positive`` (0.05),
negative at or below ``negative`` (-0.05), neutral between. An article about
several symbols is one headline per symbol; a (symbol, id) stored more than
once counts once (its first publication).

Each headline enters at the close of the last bar of its symbol that ends at
or before the headline's ``ts``: the price known when it was published (a
headline before its symbol's first bar has none). Its forward return at
horizon ``h`` (in bars) is ``close[entry + h] / close[entry] - 1``; headlines
too near the end of their series have none.

Per class and horizon the record holds the mean return (percent) with its 95%
normal interval, the hit rate in the class's direction (up for positive, down
for negative; a neutral headline has none and is judged by its mean absolute
return) with its 95% Wilson interval, and the same figures for a baseline:
``baseline`` random entry bars per headline, drawn from the same symbol's
series within the same dates (seeded: the same seed, the same baseline), with
the two-sided p-value of the difference (two-proportion z-test on the hit
rates; Welch's z on the absolute returns for the neutral class). A class
moves prices when its interval clears the baseline's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.analytics.intervals import mean_interval, two_proportions_p, welch_p, wilson
from marketpulse.analytics.reports import pick_dataset
from marketpulse.analytics.sql import Lake
from marketpulse.timeframes import sort_key

__all__ = ["CLASSES", "HEADLINES", "NEWS_RECORD", "NewsScope", "NewsStudy", "news_study"]

#: The sentiment classes, in the record's order, and the direction each expects.
CLASSES = {"positive": 1, "negative": -1, "neutral": 0}
#: The timeframe studied when none is chosen and the dataset has it (else its shortest).
DEFAULT_TIMEFRAME = "1m"

#: The columns of a news study's record, in order.
NEWS_RECORD = pa.schema(
    [
        ("sentiment", pa.string()),
        ("horizon", pa.int64()),
        ("headlines", pa.int64()),
        ("with_return", pa.int64()),
        ("mean_return_pct", pa.float64()),
        ("mean_low_pct", pa.float64()),
        ("mean_high_pct", pa.float64()),
        ("mean_abs_return_pct", pa.float64()),
        ("hit_rate", pa.float64()),
        ("hit_low", pa.float64()),
        ("hit_high", pa.float64()),
        ("baseline_n", pa.int64()),
        ("baseline_mean_return_pct", pa.float64()),
        ("baseline_mean_low_pct", pa.float64()),
        ("baseline_mean_high_pct", pa.float64()),
        ("baseline_mean_abs_return_pct", pa.float64()),
        ("baseline_hit_rate", pa.float64()),
        ("baseline_hit_low", pa.float64()),
        ("baseline_hit_high", pa.float64()),
        ("p_value", pa.float64()),
    ]
)

#: The headlines studied, with their entry bars.
HEADLINES = pa.schema(
    [
        ("symbol", pa.string()),
        ("id", pa.string()),
        ("ts", pa.int64()),
        ("sentiment", pa.float64()),
        ("class", pa.string()),
        ("entry_start", pa.int64()),
        ("entry_close", pa.float64()),
    ]
)


@dataclass(frozen=True, slots=True)
class NewsScope:
    """What a news study covers.

    Attributes:
        dataset: the dataset; ``None`` for the lake's only one.
        timeframe: the bars' timeframe; ``None`` for :data:`DEFAULT_TIMEFRAME` if the
            dataset has it, else its shortest.
        start: first date (UTC) whose headlines count, inclusive; ``None``: all.
        end: last date (UTC) whose headlines count, inclusive; ``None``: all.
        symbols: the symbols; empty for all.
        horizons: bars after each headline's entry at which its return is taken.
        baseline: random entry bars drawn per headline for the baseline.
        seed: the baseline's random seed (the same seed, the same baseline).
        positive: the sentiment at or above which a headline is positive.
        negative: the sentiment at or below which a headline is negative.
    """

    dataset: str | None = None
    timeframe: str | None = None
    start: date | None = None
    end: date | None = None
    symbols: tuple[str, ...] = ()
    horizons: tuple[int, ...] = (5, 15, 60)
    baseline: int = 20
    seed: int = 0
    positive: float = 0.05
    negative: float = -0.05

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise AnalyticsError(f"--end {self.end} is before --start {self.start}")
        if not self.horizons or any(h < 1 for h in self.horizons):
            raise AnalyticsError(
                f"--horizons: whole numbers of bars, at least 1, got {list(self.horizons)}"
            )
        if self.baseline < 1:
            raise AnalyticsError(f"--baseline: at least 1 random bar per headline, "
                                 f"got {self.baseline}")  # fmt: skip
        if not -1.0 <= self.negative < self.positive <= 1.0:
            raise AnalyticsError(
                f"--cutoffs: expected -1 <= NEGATIVE < POSITIVE <= 1, got "
                f"{self.negative},{self.positive}"
            )

    def classify(self, sentiment: float) -> str:
        """The class of a headline of this sentiment score."""
        if sentiment >= self.positive:
            return "positive"
        return "negative" if sentiment <= self.negative else "neutral"


@dataclass(frozen=True, slots=True)
class NewsStudy:
    """A news study's headlines and record.

    Attributes:
        dataset: the dataset studied.
        timeframe: the bars' timeframe.
        timeframes: the dataset's timeframes, sorted.
        bars: bars of the headlines' symbols read.
        headlines: the headlines studied (:data:`HEADLINES`), by symbol and time;
            ``entry_start`` (the entry bar's start, ns) and ``entry_close`` are null
            for a headline without an entry bar.
        record: one row per class and horizon (:data:`NEWS_RECORD`).
        duplicates: stored rows left out as repeats of a (symbol, id) counted.
        unscored: headlines left out for want of a sentiment score.
    """

    dataset: str
    timeframe: str
    timeframes: tuple[str, ...]
    bars: int
    headlines: pa.Table
    record: pa.Table
    duplicates: int
    unscored: int


def news_study(lake: Lake, scope: NewsScope) -> NewsStudy:
    """Measure the forward returns after a dataset's headlines, by sentiment, against chance.

    Raises:
        AnalyticsError: no bars, several datasets and none chosen, an unknown
            dataset or timeframe, no headlines of the dataset, or a symbol named
            without bars of the timeframe.
    """
    dataset = pick_dataset(lake, scope.dataset)
    timeframes = tuple(sorted(lake.query(
        "SELECT DISTINCT timeframe FROM bars WHERE dataset = $1", [dataset]
    ).column("timeframe").to_pylist(), key=sort_key))  # fmt: skip
    timeframe = _pick_timeframe(dataset, timeframes, scope.timeframe)
    stored = _stored_headlines(lake, dataset)
    first, last = _range_ns(scope)
    kept = [
        n for n in stored
        if first <= n.ts < last and (not scope.symbols or n.symbol in scope.symbols)
    ]  # fmt: skip
    scored = [n for n in kept if math.isfinite(n.sentiment)]
    if scope.symbols:
        series = _read_series(lake, dataset, timeframe, scope.symbols, named=True)
    else:
        series = _read_series(lake, dataset, timeframe, tuple(sorted({n.symbol for n in scored})))
    entries = [_entry(series.get(n.symbol), n.ts) for n in scored]
    labels = [scope.classify(n.sentiment) for n in scored]
    rng = np.random.default_rng(scope.seed)
    pools: dict[tuple[str, int], np.ndarray] = {}
    record: list[dict[str, object]] = []
    for label, sign in CLASSES.items():
        mine = [(n.symbol, row) for n, row, c in zip(scored, entries, labels, strict=True)
                if c == label]  # fmt: skip
        for h in scope.horizons:
            got = np.array([series[s].forward(row, h) if row >= 0 else math.nan
                            for s, row in mine], np.float64)  # fmt: skip
            draws = _baseline(series, mine, got, h, scope.baseline, (first, last), pools, rng)
            record.append(_figures(label, sign, h, len(mine), got, draws))
    return NewsStudy(
        dataset=dataset,
        timeframe=timeframe,
        timeframes=timeframes,
        bars=sum(len(s.close) for s in series.values()),
        headlines=_headlines_table(scored, labels, entries, series),
        record=pa.Table.from_pylist(record, schema=NEWS_RECORD),
        duplicates=sum(n.copies - 1 for n in kept),
        unscored=len(kept) - len(scored),
    )


def _pick_timeframe(dataset: str, timeframes: tuple[str, ...], chosen: str | None) -> str:
    """``chosen`` if the dataset has its bars, else :data:`DEFAULT_TIMEFRAME`, else the shortest."""
    if chosen is not None:
        if chosen not in timeframes:
            raise AnalyticsError(f"--timeframe: no {chosen} bars in dataset {dataset} "
                                 f"(it has: {', '.join(timeframes)})")  # fmt: skip
        return chosen
    return DEFAULT_TIMEFRAME if DEFAULT_TIMEFRAME in timeframes else timeframes[0]


class _Headline(NamedTuple):
    """A stored headline: its symbol, id, time (ns), sentiment (NaN: none), rows stored."""

    symbol: str
    id: str
    ts: int
    sentiment: float
    copies: int


def _stored_headlines(lake: Lake, dataset: str) -> list[_Headline]:
    """The dataset's headlines, each (symbol, id) once (its first publication).

    Raises:
        AnalyticsError: the dataset has no headlines (the line says how to store some).
    """
    table = lake.query(
        "SELECT symbol, id, epoch_ns(ts) AS ts, sentiment,"
        " count(*) OVER (PARTITION BY symbol, id) AS copies"
        " FROM news WHERE dataset = $1"
        " QUALIFY row_number() OVER (PARTITION BY symbol, id"
        "                            ORDER BY ts, sentiment NULLS LAST) = 1"
        " ORDER BY symbol, ts, id",
        [dataset],
    )
    if table.num_rows == 0:
        others = lake.query("SELECT DISTINCT dataset FROM news ORDER BY dataset")
        held = others.column("dataset").to_pylist()
        where = f"; the news table holds datasets {', '.join(held)}" if held else ""
        raise AnalyticsError(
            f"no headlines of dataset {dataset} in the lake at {lake.store.uri}{where}: store "
            f"some with `marketpulse news --feed VENDOR` or `--file FILE` (--dataset {dataset})"
        )
    table = table.set_column(3, "sentiment", table.column("sentiment").fill_null(math.nan))
    return [_Headline(**row) for row in table.to_pylist()]


def _range_ns(scope: NewsScope) -> tuple[int, int]:
    """The scope's dates as [first, last) times in ns."""

    def ns(day: date) -> int:
        return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 10**9

    first = ns(scope.start) if scope.start else -(2**62)
    last = ns(scope.end + timedelta(days=1)) if scope.end else 2**62
    return first, last


class _Series:
    """One symbol's bars of the timeframe: when each starts and ends, its close."""

    def __init__(self, start: np.ndarray, end: np.ndarray, close: np.ndarray) -> None:
        self.start, self.end, self.close = start, end, close

    def forward(self, row: int, h: int) -> float:
        """The return from ``row``'s close to the close ``h`` bars later (NaN past the end)."""
        if row + h >= len(self.close):
            return math.nan
        return float(self.close[row + h] / self.close[row] - 1.0)

    def pool(self, h: int, first: int, last: int) -> np.ndarray:
        """The rows ending in [first, last) that have a close ``h`` bars later."""
        ends = self.end[: max(len(self.end) - h, 0)]
        return np.arange(np.searchsorted(ends, first), np.searchsorted(ends, last))


def _read_series(
    lake: Lake, dataset: str, timeframe: str, symbols: tuple[str, ...], named: bool = False
) -> dict[str, _Series]:
    """The bars of ``symbols`` in the timeframe, by symbol.

    Raises:
        AnalyticsError: ``named`` (by ``--symbols``) and a symbol has no bars of the timeframe.
    """
    if not symbols:
        return {}
    marks = ", ".join(f"${i}" for i in range(3, len(symbols) + 3))
    table = lake.query(
        "SELECT symbol, epoch_ns(bar_start) AS bar_start, epoch_ns(bar_end) AS bar_end, close"
        f" FROM bars WHERE dataset = $1 AND timeframe = $2 AND symbol IN ({marks})"  # noqa: S608
        " ORDER BY symbol, bar_start",
        [dataset, timeframe, *symbols],
    )
    names = np.array(table.column("symbol").to_pylist(), object)
    start = table.column("bar_start").to_numpy()
    end = table.column("bar_end").to_numpy()
    close = table.column("close").cast(pa.float64()).fill_null(math.nan).to_numpy()
    series: dict[str, _Series] = {}
    bounds = [0, *(np.flatnonzero(names[1:] != names[:-1]) + 1).tolist(), len(names)]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi > lo:
            series[names[lo]] = _Series(start[lo:hi], end[lo:hi], close[lo:hi])
    missing = [s for s in symbols if s not in series] if named else []
    if missing:
        raise AnalyticsError(f"--symbols: no {timeframe} bars of {', '.join(missing)} "
                             f"in dataset {dataset}")  # fmt: skip
    return series


def _entry(series: _Series | None, ts: int) -> int:
    """The row of the last bar ending at or before ``ts`` (-1: none)."""
    if series is None:
        return -1
    return int(np.searchsorted(series.end, ts, side="right")) - 1


def _baseline(
    series: dict[str, _Series],
    headlines: list[tuple[str, int]],
    got: np.ndarray,
    h: int,
    per_headline: int,
    dates: tuple[int, int],
    pools: dict[tuple[str, int], np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """Returns of random entry bars of each headline's symbol, ``per_headline`` per headline."""
    returns: list[np.ndarray] = []
    for (symbol, _), own in zip(headlines, got, strict=True):
        if not math.isfinite(own):
            continue  # headlines without a return have no counterpart either
        pool = pools.get((symbol, h))
        if pool is None:
            pool = pools[symbol, h] = series[symbol].pool(h, *dates)
        if len(pool) == 0:
            continue
        rows = pool[rng.integers(0, len(pool), per_headline)]
        close = series[symbol].close
        returns.append(close[rows + h] / close[rows] - 1.0)
    return np.concatenate(returns) if returns else np.empty(0)


def _figures(
    label: str, sign: int, h: int, headlines: int, got: np.ndarray, draws: np.ndarray
) -> dict[str, object]:
    """One row of the record."""
    own, base = got[np.isfinite(got)], draws[np.isfinite(draws)]
    row: dict[str, object] = {"sentiment": label, "horizon": h, "headlines": headlines,
                              "with_return": len(own), "baseline_n": len(base)}  # fmt: skip
    for prefix, values in (("", own), ("baseline_", base)):
        mean, low, high = mean_interval(values * 100.0)
        row |= {f"{prefix}mean_return_pct": mean, f"{prefix}mean_low_pct": low,
                f"{prefix}mean_high_pct": high,
                f"{prefix}mean_abs_return_pct": float(np.abs(values).mean()) * 100.0
                if len(values) else None}  # fmt: skip
        hits = int((np.sign(values) == sign).sum())
        rate, low, high = wilson(hits, len(values)) if sign else (None, None, None)
        row |= {f"{prefix}hit_rate": rate, f"{prefix}hit_low": low, f"{prefix}hit_high": high}
    if sign and len(own) and len(base):
        own_hits = int((np.sign(own) == sign).sum())
        base_hits = int((np.sign(base) == sign).sum())
        row["p_value"] = two_proportions_p(own_hits, len(own), base_hits, len(base))
    elif not sign and len(own) > 1 and len(base) > 1:
        row["p_value"] = welch_p(np.abs(own), np.abs(base))
    else:
        row["p_value"] = None
    return row


def _headlines_table(
    scored: list[_Headline],
    labels: list[str],
    entries: list[int],
    series: dict[str, _Series],
) -> pa.Table:
    """The headlines studied with their classes and entry bars."""
    rows = []
    for n, label, row in zip(scored, labels, entries, strict=True):
        bars = series[n.symbol] if row >= 0 else None
        rows.append(n._asdict() | {
            "class": label,
            "entry_start": int(bars.start[row]) if bars is not None else None,
            "entry_close": float(bars.close[row]) if bars is not None else None,
        })  # fmt: skip
    return pa.Table.from_pylist(rows, schema=HEADLINES)
