"""``forecast evaluate``: every model's prequential track record over a dataset of the lake.

The bars of one dataset (each series, a symbol and timeframe, oldest first)
get the features of :mod:`marketpulse.forecast.features`; every model runs
over every series at every horizon (:func:`~marketpulse.forecast.prequential.prequential`),
and its predictions are scored per timeframe and horizon over all the
dataset's symbols (:func:`~marketpulse.forecast.scores.score`). The same bars
and seed give the same figures.

With walk-forward models among them (``gbm``, ``lstm``,
:mod:`marketpulse.forecast.walkforward`), which predict only the bars of
their test windows (the same windows for each), every model is scored over
those bars alone, so that each row of the table covers the same predictions
(:attr:`Evaluation.scored` says so).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from marketpulse.analytics.sql import Lake
from marketpulse.forecast.catalog import EVALUATED, FOLDS, MODELS, WALK_FORWARD
from marketpulse.forecast.exceptions import ForecastError
from marketpulse.forecast.frame import Frame
from marketpulse.forecast.prequential import Record, prequential
from marketpulse.forecast.scores import SCORES, score
from marketpulse.forecast.stage import predictions_table
from marketpulse.forecast.walkforward import LEARNERS, require, walk_forward
from marketpulse.models import PREDICTION_SCHEMA
from marketpulse.timeframes import sort_key

__all__ = ["PREQUENTIAL", "Evaluation", "EvaluationScope", "evaluate", "predict"]

#: What an evaluation without walk-forward models scores.
PREQUENTIAL = "Prequential: each prediction made before the bars it is about, then learned."


@dataclass(frozen=True, slots=True)
class EvaluationScope:
    """What an evaluation covers.

    Attributes:
        dataset: the dataset; ``None`` for the lake's only one.
        timeframes: the timeframes; empty for all the dataset has.
        symbols: the symbols; empty for all.
        horizons: bars between a prediction and its outcome.
        models: the models by name (:data:`~marketpulse.forecast.catalog.EVALUATED`).
        seed: the seed of the models that draw (the same seed, the same figures).
        folds: the walk-forward models' test windows.
    """

    dataset: str | None = None
    timeframes: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    horizons: tuple[int, ...] = (1, 5)
    models: tuple[str, ...] = tuple(MODELS)
    seed: int = 0
    folds: int = FOLDS

    def __post_init__(self) -> None:
        if not self.horizons or min(self.horizons) < 1:
            raise ForecastError(
                f"--horizons: whole numbers of bars, at least 1, got {list(self.horizons)}"
            )
        unknown = [m for m in self.models if m not in EVALUATED]
        if unknown or not self.models:
            raise ForecastError(
                f"--models: unknown model {', '.join(unknown) or '(none given)'} "
                f"(known: {', '.join(EVALUATED)})"
            )
        if self.folds < 1:
            raise ForecastError(f"--folds: at least 1, got {self.folds}")
        for name in dict.fromkeys(m for m in self.models if m in WALK_FORWARD):
            require(name)  # missing: one line now, not after the online models ran


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
        scored: which predictions the record scores, in a sentence.
    """

    dataset: str
    bars: int
    symbols: tuple[str, ...]
    first: int
    last: int
    record: pa.Table
    scored: str = PREQUENTIAL


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
    starts = run.frame.bar_start
    walked = [m for m in scope.models if m in WALK_FORWARD]
    scored = PREQUENTIAL
    if walked:
        scored = (
            f"Walk-forward ({', '.join(walked)}): every model scored over the same bars, the "
            f"last half of each timeframe's bar times in {scope.folds} test windows; "
            f"{', '.join(walked)} trained on the bars whose outcome precedes each window, "
            "the others prequential."
        )
    return Evaluation(run.dataset, run.bars.num_rows, tuple(sorted(set(symbols))),
                      int(starts.min()), int(starts.max()),
                      pa.Table.from_pylist(table, schema=SCORES), scored)  # fmt: skip


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
        self.scope = scope
        self.frame = Frame(lake, scope.dataset, scope.timeframes, scope.symbols)
        self.dataset = self.frame.dataset
        self.bars = self.frame.bars
        self._total = self.bars.num_rows * len(scope.horizons) * len(scope.models)
        self._done = 0
        self._progress = progress

    def _step(self, count: int) -> None:
        self._done += count
        if self._progress is not None:
            self._progress(self._done, self._total)

    def records(self) -> Iterator[tuple[tuple[str, int], dict[str, Record]]]:
        """Each (timeframe, horizon)'s records, by model: rows of other timeframes unknown.

        With a walk-forward model, the outcomes outside its test windows are
        unknown in every model's record: no model is scored on other bars.
        """
        frame = self.frame
        online = {name: MODELS[name] for name in self.scope.models if name in MODELS}
        walked = [name for name in self.scope.models if name in WALK_FORWARD]
        x = frame.matrix() if walked else None
        for timeframe in sorted(set(frame.timeframes), key=sort_key):
            mine = frame.series_of(timeframe)
            for h in self.scope.horizons:
                found = prequential(
                    frame.rows, frame.close, mine, online, h, self.scope.seed, self._step
                )
                if x is not None:
                    runs = {}
                    for name in dict.fromkeys(walked):
                        runs[name] = walk_forward(x, frame.close, frame.bar_start, mine, h,
                                                  self.scope.seed, self.scope.folds,
                                                  LEARNERS[name])  # fmt: skip
                        self._step(sum(e - b for b, e, _ in mine) * walked.count(name))
                    found |= {name: run.record for name, run in runs.items()}
                    # the same bars and folds: every walk-forward model tests the same rows
                    tested = next(iter(runs.values())).tested
                    found = {name: _within(r, tested) for name, r in found.items()}
                yield (timeframe, h), {name: found[name] for name in self.scope.models}


def _within(record: Record, rows: np.ndarray) -> Record:
    """The record with the outcomes of the other rows unknown (so not scored)."""
    return Record(record.direction, record.probability, record.value,
                  np.where(rows, record.outcome, np.nan))  # fmt: skip
