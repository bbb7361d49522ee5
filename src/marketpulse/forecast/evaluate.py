"""``forecast evaluate``: every model's prequential track record over a dataset of the lake.

The bars of one dataset (each series, a symbol and timeframe, oldest first)
get the features of :mod:`marketpulse.forecast.features`; every model runs
over every series at every horizon (:func:`~marketpulse.forecast.prequential.prequential`),
and its predictions are scored per timeframe and horizon over all the
dataset's symbols (:func:`~marketpulse.forecast.scores.score`). The same bars
and seed give the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from marketpulse.analytics.reports import pick_dataset
from marketpulse.analytics.sql import Lake
from marketpulse.forecast.catalog import MODELS
from marketpulse.forecast.exceptions import ForecastError
from marketpulse.forecast.features import INDICATORS, feature_columns
from marketpulse.forecast.prequential import prequential
from marketpulse.forecast.scores import SCORES, score
from marketpulse.timeframes import sort_key

__all__ = ["Evaluation", "EvaluationScope", "evaluate"]


@dataclass(frozen=True, slots=True)
class EvaluationScope:
    """What an evaluation covers.

    Attributes:
        dataset: the dataset; ``None`` for the lake's only one.
        timeframes: the timeframes; empty for all the dataset has.
        symbols: the symbols; empty for all.
        horizons: bars between a prediction and its outcome.
        models: the models by name (:data:`~marketpulse.forecast.catalog.MODELS`).
        seed: the seed of the models that draw (the same seed, the same figures).
    """

    dataset: str | None = None
    timeframes: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    horizons: tuple[int, ...] = (1, 5)
    models: tuple[str, ...] = tuple(MODELS)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.horizons or min(self.horizons) < 1:
            raise ForecastError(
                f"--horizons: whole numbers of bars, at least 1, got {list(self.horizons)}"
            )
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ForecastError(
                f"--models: unknown model {', '.join(unknown) or '(none given)'} "
                f"(known: {', '.join(MODELS)})"
            )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """An evaluation's track record and what it was made on.

    Attributes:
        dataset: the dataset evaluated.
        bars: the bars the models ran over.
        symbols: the symbols, sorted.
        first: the first bar's start, ns since the epoch (UTC).
        last: the last bar's start.
        record: one row per model, timeframe and horizon (:data:`SCORES`).
    """

    dataset: str
    bars: int
    symbols: tuple[str, ...]
    first: int
    last: int
    record: pa.Table


def evaluate(
    lake: Lake,
    scope: EvaluationScope,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Run the scope's models over the dataset's bars and score them.

    Args:
        lake: the lake.
        scope: the dataset, timeframes, symbols, horizons, models and seed.
        progress: called with (bars done, bars to do) as series finish.

    Raises:
        ForecastError: a timeframe or symbol without bars.
        AnalyticsError: no bars, an unknown dataset, several and none chosen.
    """
    from marketpulse.indicators import compute

    dataset = pick_dataset(lake, scope.dataset)
    bars = _bars(lake, dataset, scope)
    bars = compute(bars, INDICATORS)
    timeframes = bars.column("timeframe").to_pylist()
    symbols = bars.column("symbol").to_pylist()
    spans = _spans(symbols, timeframes)
    features = feature_columns(bars, np.array([b for b, _, _ in spans], np.int64))
    rows = _rows(features, bars.num_rows)
    close = bars.column("close").cast(pa.float64()).to_numpy()
    total = bars.num_rows * len(scope.horizons) * len(scope.models)
    done = 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    chosen = {name: MODELS[name] for name in scope.models}
    table: list[dict[str, object]] = []
    for timeframe in sorted(set(timeframes), key=sort_key):
        mine = [span for span in spans if timeframes[span[0]] == timeframe]
        for h in scope.horizons:
            records = prequential(rows, close, mine, chosen, h, scope.seed, step)
            table += [score(name, timeframe, h, records[name]) for name in chosen]
    starts = bars.column("bar_start").to_numpy()
    return Evaluation(dataset, bars.num_rows, tuple(sorted(set(symbols))),
                      int(starts.min()), int(starts.max()),
                      pa.Table.from_pylist(table, schema=SCORES))  # fmt: skip


def _bars(lake: Lake, dataset: str, scope: EvaluationScope) -> pa.Table:
    """The dataset's bars in scope, by timeframe, symbol and time."""
    found = lake.query(
        "SELECT DISTINCT timeframe FROM bars WHERE dataset = $1", [dataset]
    ).column("timeframe").to_pylist()  # fmt: skip
    missing = sorted(set(scope.timeframes) - set(found), key=sort_key)
    if missing:
        has = ", ".join(sorted(found, key=sort_key))
        raise ForecastError(
            f"--timeframes: dataset {dataset} has no bars of {', '.join(missing)} (it has: {has})"
        )
    wanted = list(scope.timeframes or found)
    params: list[object] = [dataset, *wanted]
    where = f"dataset = $1 AND timeframe IN ({', '.join(f'${i + 2}' for i in range(len(wanted)))})"
    if scope.symbols:
        marks = ", ".join(f"${i + len(params) + 1}" for i in range(len(scope.symbols)))
        where += f" AND symbol IN ({marks})"
        params += scope.symbols
    columns = (
        "symbol, timeframe, epoch_ns(bar_start) AS bar_start, open, high, low, close, volume, vwap"
    )
    names = set(lake.query("SELECT * FROM bars LIMIT 0").column_names)
    columns += "".join(f", {c}" for c in ("order_flow_imbalance", "spread_twa") if c in names)
    table = lake.query(
        f"SELECT {columns} FROM bars WHERE {where} ORDER BY timeframe, symbol, bar_start",  # noqa: S608
        params,
    )
    absent = sorted(set(scope.symbols) - set(table.column("symbol").to_pylist()))
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


def _rows(features: dict[str, np.ndarray], n: int) -> list[dict[str, float]]:
    """Each bar's defined features, as the models take them."""
    names = list(features)
    matrix = np.column_stack([features[name] for name in names]) if names else np.empty((n, 0))
    return [
        {name: float(v) for name, v in zip(names, row, strict=True) if not math.isnan(v)}
        for row in matrix.tolist()
    ]
