"""``forecast evaluate``: every model's prequential track record over a dataset of the lake.

The bars of one dataset (each series, a symbol and timeframe, oldest first)
get the features of :mod:`marketpulse.forecast.features`; every model runs
over every series at every horizon (:func:`~marketpulse.forecast.prequential.prequential`),
and its predictions are scored per timeframe and horizon over all the
dataset's symbols (:func:`~marketpulse.forecast.scores.score`). The same bars
and seed give the same figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from marketpulse.analytics.reports import pick_dataset
from marketpulse.analytics.sql import Lake
from marketpulse.forecast.catalog import MODELS
from marketpulse.forecast.exceptions import ForecastError
from marketpulse.forecast.features import (
    INDICATORS,
    feature_columns,
    feature_rows,
    previous_closes,
)
from marketpulse.forecast.prequential import Record, prequential
from marketpulse.forecast.scores import SCORES, score
from marketpulse.forecast.stage import predictions_table
from marketpulse.models import PREDICTION_SCHEMA
from marketpulse.timeframes import sort_key

__all__ = ["Evaluation", "EvaluationScope", "evaluate", "predict"]


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
    run = _Run(lake, scope, progress)
    table = [
        score(name, timeframe, h, record)
        for (timeframe, h), records in run.records()
        for name, record in records.items()
    ]
    symbols = run.bars.column("symbol").to_pylist()
    starts = run.bars.column("bar_start").to_numpy()
    return Evaluation(run.dataset, run.bars.num_rows, tuple(sorted(set(symbols))),
                      int(starts.min()), int(starts.max()),
                      pa.Table.from_pylist(table, schema=SCORES))  # fmt: skip


def predict(
    lake: Lake,
    scope: EvaluationScope,
    progress: Callable[[int, int], None] | None = None,
) -> pa.Table:
    """The scope's models' predictions over the dataset's bars, as the stream makes them.

    The rows of the ``predictions`` table (:data:`~marketpulse.models.PREDICTION_SCHEMA`)
    that a run with the same models, horizons and seed stores for these bars,
    ordered by timeframe, symbol, bar, model and horizon.

    Raises:
        ForecastError: a timeframe or symbol without bars.
        AnalyticsError: no bars, an unknown dataset, several and none chosen.
    """
    run = _Run(lake, scope, progress)
    bars = run.bars.append_column("dataset", pa.array([run.dataset] * run.bars.num_rows))
    timeframes = np.asarray(bars.column("timeframe").to_pylist(), object)
    parts: list[pa.Table] = []
    for (timeframe, h), records in run.records():
        rows = np.flatnonzero(timeframes == timeframe)
        for name, record in records.items():
            parts.append(predictions_table(
                bars, rows, [name] * len(rows), np.full(len(rows), h), record.direction[rows],
                record.probability[rows], record.value[rows],
            ))  # fmt: skip
    if not parts:
        return PREDICTION_SCHEMA.empty_table()
    return pa.concat_tables(parts).sort_by(
        [(k, "ascending") for k in ("timeframe", "symbol", "bar_start", "model", "horizon")]
    )


class _Run:
    """A dataset's bars with their features, and the models run over them."""

    def __init__(
        self,
        lake: Lake,
        scope: EvaluationScope,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        from marketpulse.indicators import compute

        self.scope = scope
        self.dataset = pick_dataset(lake, scope.dataset)
        self.bars = compute(_bars(lake, self.dataset, scope), INDICATORS)
        self._timeframes = self.bars.column("timeframe").to_pylist()
        self._spans = _spans(self.bars.column("symbol").to_pylist(), self._timeframes)
        self._close = self.bars.column("close").cast(pa.float64()).to_numpy()
        starts = np.array([b for b, _, _ in self._spans], np.int64)
        self._rows = feature_rows(feature_columns(self.bars, previous_closes(self._close, starts)))
        self._total = self.bars.num_rows * len(scope.horizons) * len(scope.models)
        self._done = 0
        self._progress = progress

    def _step(self, count: int) -> None:
        self._done += count
        if self._progress is not None:
            self._progress(self._done, self._total)

    def records(self) -> Iterator[tuple[tuple[str, int], dict[str, Record]]]:
        """Each (timeframe, horizon)'s records, by model: rows of other timeframes unknown."""
        chosen = {name: MODELS[name] for name in self.scope.models}
        timeframes = self._timeframes
        for timeframe in sorted(set(timeframes), key=sort_key):
            mine = [span for span in self._spans if timeframes[span[0]] == timeframe]
            for h in self.scope.horizons:
                yield (
                    (timeframe, h),
                    prequential(
                        self._rows, self._close, mine, chosen, h, self.scope.seed, self._step
                    ),
                )


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
        "symbol, timeframe, epoch_ns(bar_start) AS bar_start, epoch_ns(bar_end) AS bar_end, "
        "open, high, low, close, volume, vwap"
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
