"""A dataset's bars with their features, as every offline run of the models reads them.

:class:`Frame` reads the bars of a dataset of the lake (one scope of
timeframes and symbols), computes the indicators the features need with the
stream's kernels, and holds each bar's features both as columns (what a
batch learner such as LightGBM takes) and as rows (what the online models
take). ``forecast evaluate`` and ``forecast train`` share it, so both see the
same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from marketpulse.analytics.reports import pick_dataset
from marketpulse.analytics.sql import Lake
from marketpulse.forecast.exceptions import ForecastError
from marketpulse.forecast.features import (
    FEATURES,
    INDICATORS,
    feature_columns,
    feature_rows,
    previous_closes,
)
from marketpulse.timeframes import sort_key

__all__ = ["Frame"]


class Frame:
    """A dataset's bars in scope, by timeframe, symbol and time, with their features.

    Args:
        lake: the lake.
        dataset: the dataset; ``None`` for the lake's only one.
        timeframes: the timeframes; empty for all the dataset has.
        symbols: the symbols; empty for all.
        option: the option naming the timeframes, in errors.

    Raises:
        ForecastError: a timeframe or symbol without bars.
        AnalyticsError: no bars, an unknown dataset, several and none chosen.
    """

    def __init__(
        self,
        lake: Lake,
        dataset: str | None,
        timeframes: Sequence[str] = (),
        symbols: Sequence[str] = (),
        option: str = "--timeframes",
    ) -> None:
        from marketpulse.indicators import compute

        self.dataset = pick_dataset(lake, dataset)
        #: the bars, with the indicators' columns
        self.bars = compute(_bars(lake, self.dataset, timeframes, symbols, option), INDICATORS)
        #: each bar's timeframe
        self.timeframes: list[str] = self.bars.column("timeframe").to_pylist()
        #: each series as (first row, end row, ``symbol|timeframe``)
        self.spans = _spans(self.bars.column("symbol").to_pylist(), self.timeframes)
        #: each bar's close
        self.close = self.bars.column("close").cast(pa.float64()).to_numpy()
        #: each bar's start, ns since the epoch (UTC)
        self.bar_start = self.bars.column("bar_start").to_numpy().astype(np.int64)
        starts = np.array([b for b, _, _ in self.spans], np.int64)
        self._columns = feature_columns(self.bars, previous_closes(self.close, starts))
        #: each bar's defined features, as the online models take them
        self.rows = feature_rows(self._columns)

    def matrix(self) -> np.ndarray:
        """The features as a matrix: a row per bar, a column per :data:`FEATURES` (``NaN``)."""
        n = self.bars.num_rows
        return np.column_stack([self._columns.get(name, np.full(n, np.nan)) for name in FEATURES])

    def series_of(self, timeframe: str) -> list[tuple[int, int, str]]:
        """The spans of one timeframe's series."""
        return [span for span in self.spans if self.timeframes[span[0]] == timeframe]


def _bars(
    lake: Lake, dataset: str, timeframes: Sequence[str], symbols: Sequence[str], option: str
) -> pa.Table:
    """The dataset's bars in scope, by timeframe, symbol and time."""
    found = lake.query(
        "SELECT DISTINCT timeframe FROM bars WHERE dataset = $1", [dataset]
    ).column("timeframe").to_pylist()  # fmt: skip
    missing = sorted(set(timeframes) - set(found), key=sort_key)
    if missing:
        has = ", ".join(sorted(found, key=sort_key))
        raise ForecastError(
            f"{option}: dataset {dataset} has no bars of {', '.join(missing)} (it has: {has})"
        )
    wanted = list(timeframes or found)
    params: list[object] = [dataset, *wanted]
    where = f"dataset = $1 AND timeframe IN ({', '.join(f'${i + 2}' for i in range(len(wanted)))})"
    if symbols:
        marks = ", ".join(f"${i + len(params) + 1}" for i in range(len(symbols)))
        where += f" AND symbol IN ({marks})"
        params += symbols
    columns = (
        "symbol, timeframe, epoch_ns(bar_start) AS bar_start, epoch_ns(bar_end) AS bar_end, "
        "open, high, low, close, volume, vwap"
    )
    names = set(lake.query("SELECT * FROM bars LIMIT 0").column_names)
    columns += "".join(f", {c}" for c in ("order_flow_imbalance", "spread_twa") if c in names)
    table = lake.query(
        f"SELECT {columns} FROM bars WHERE {where} ORDER BY timeframe, symbol, bar_start",  # noqa: S608
        params,
    )
    absent = sorted(set(symbols) - set(table.column("symbol").to_pylist()))
    if absent:
        raise ForecastError(f"--symbols: no bars of {', '.join(absent)} in dataset {dataset}")
    return table


def _spans(symbols: Sequence[str], timeframes: Sequence[str]) -> list[tuple[int, int, str]]:
    """Each series as (first row, end row, name)."""
    spans: list[tuple[int, int, str]] = []
    begin = 0
    for i in range(1, len(symbols) + 1):
        if i == len(symbols) or (symbols[i], timeframes[i]) != (symbols[begin], timeframes[begin]):
            spans.append((begin, i, f"{symbols[begin]}|{timeframes[begin]}"))
            begin = i
    return spans
