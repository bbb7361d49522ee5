"""Forecasts in the stream: each closed bar first teaches the models, then gets their predictions.

The processor hands each batch of closed bars, with their indicators, to
:meth:`ForecastStage.step`. For each bar of a series (a symbol and
timeframe), in order, and each model and horizon ``h``:

1. the model learns the outcome of the bar ``h`` bars back (the return from
   its close to this bar's close, known only now), from that bar's features;
2. it predicts from this bar's features the return to the close ``h`` bars
   later: one row of the ``predictions`` table, keyed by this bar.

That is the prequential order of :mod:`marketpulse.forecast.prequential`, bar
for bar, with the same features (:mod:`marketpulse.forecast.features`) and the
same seeds: the stream's predictions are those ``forecast evaluate`` scores.
The features read the default indicators' columns
(:data:`~marketpulse.forecast.features.INDICATORS`); with other indicators
declared, those missing are left out of the features.

A series' state (its models, its last ``h`` bars' features and closes) is a
plain Python object that pickles: the checkpoint holds it with the symbol's
other state (:mod:`marketpulse.stream.checkpoint`), so a restart predicts what
an uninterrupted run would.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from marketpulse.forecast.base import Model
from marketpulse.forecast.catalog import LEARNED, MODELS
from marketpulse.forecast.exceptions import ForecastError
from marketpulse.forecast.features import feature_columns, feature_rows
from marketpulse.forecast.online import river
from marketpulse.forecast.prequential import series_seed
from marketpulse.forecast.trained import (
    TrainedModel,
    TrainedSpec,
    is_trained,
    predict_inputs,
    trained_spec,
)
from marketpulse.models import PREDICTION_SCHEMA
from marketpulse.sinks.lake_location import LakeLocation

__all__ = ["Book", "ForecastSettings", "ForecastStage", "Series", "predictions_table"]


@dataclass(frozen=True, slots=True)
class ForecastSettings:
    """Which models the stream runs, at which horizons.

    Attributes:
        models: model names (:data:`~marketpulse.forecast.catalog.MODELS`), or trained
            artefacts of the lake (``gbm:<version>``, ``lstm:<version>``:
            :mod:`marketpulse.forecast.trained`); empty: none.
        horizons: bars ahead each model predicts the return to (a trained artefact
            predicts at its own horizon, on its own timeframe's bars only).
        seed: the seed of the models that draw.
        lake: the lake that holds the trained artefacts named.
    """

    models: tuple[str, ...] = ()
    horizons: tuple[int, ...] = (1,)
    seed: int = 0
    lake: LakeLocation | None = field(default=None, compare=False)
    #: the trained artefacts among the models, by name
    trained: Mapping[str, TrainedSpec] = field(default_factory=dict, init=False, compare=False)

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS and not is_trained(m)]
        if unknown:
            raise ForecastError(
                f"forecast models: unknown model {', '.join(unknown)} (known: "
                f"{', '.join(MODELS)}, and trained ones as gbm:<version> or lstm:<version>)"
            )
        if not self.horizons or min(self.horizons) < 1:
            raise ForecastError(
                f"forecast horizons: whole numbers of bars, at least 1, got {list(self.horizons)}"
            )
        if any(m in LEARNED for m in self.models):
            river()  # missing: one line now, not at the first bar
        trained = {m: trained_spec(m, self.lake) for m in self.models if is_trained(m)}
        object.__setattr__(self, "trained", trained)

    def keys(self, timeframe: str) -> list[tuple[str, int]]:
        """The (model, horizon) pairs a series of ``timeframe`` runs, in the settings' order."""
        keys = []
        for name in self.models:
            trained = self.trained.get(name)
            if trained is None:
                keys += [(name, h) for h in self.horizons]
            elif trained.timeframe == timeframe:
                keys.append((name, trained.horizon))
        return keys

    def model(self, name: str, seed: int) -> Model:
        """A new model of one series: ``name``'s, from the series' seed."""
        spec = self.trained.get(name)
        return MODELS[name](seed) if spec is None else TrainedModel(spec)


class Series:
    """One series' models and its last bars' features and closes."""

    __slots__ = ("closes", "features", "models")

    def __init__(self, settings: ForecastSettings, key: str) -> None:
        keys = settings.keys(key.rpartition("|")[2])
        depth = max(h for _, h in keys) if keys else 1
        seed = series_seed(settings.seed, key)
        self.models: dict[tuple[str, int], Model] = {
            (name, h): settings.model(name, seed) for name, h in keys
        }
        self.closes: deque[float] = deque(maxlen=depth)
        self.features: deque[dict[str, float]] = deque(maxlen=depth)


_NONE = (0, math.nan, math.nan)

#: The series of one partition: symbol -> timeframe -> state.
Book = dict[str, dict[str, Series]]


class ForecastStage:
    """Runs the settings' models over closed bars, series by series, in bar order."""

    def __init__(self, settings: ForecastSettings) -> None:
        self.settings = settings
        self._keys: dict[str, set[tuple[str, int]]] = {}  # by timeframe

    def _keys_of(self, timeframe: str) -> set[tuple[str, int]]:
        keys = self._keys.get(timeframe)
        if keys is None:
            keys = self._keys[timeframe] = set(self.settings.keys(timeframe))
        return keys

    def _reconcile(self, state: Series, key: str) -> None:
        """Fit a restored series to the settings: models added start afresh, others go."""
        fresh = Series(self.settings, key)
        state.models = {k: state.models.get(k) or fresh.models[k] for k in fresh.models}
        if state.closes.maxlen != fresh.closes.maxlen:
            state.closes = deque(state.closes, maxlen=fresh.closes.maxlen)
            state.features = deque(state.features, maxlen=fresh.features.maxlen)

    def step(self, book: Book, bars: pa.Table, indicators: pa.Table) -> pa.Table:
        """Learn from and predict on ``bars`` (each with its row of ``indicators``).

        Args:
            book: the state of each series, by symbol and timeframe; new series
                are added.
            bars: the closed bars, in the order they closed.
            indicators: their indicators, row for row.

        Returns:
            the predictions (:data:`~marketpulse.models.PREDICTION_SCHEMA`).
        """
        n = bars.num_rows
        if n == 0:
            return PREDICTION_SCHEMA.empty_table()
        symbols = bars.column("symbol").to_pylist()
        timeframes = bars.column("timeframe").to_pylist()
        close = bars.column("close").cast(pa.float64()).to_numpy()
        previous = np.full(n, np.nan)
        last: dict[tuple[str, str], float] = {}
        for i, key in enumerate(zip(symbols, timeframes, strict=True)):
            known = book.get(key[0], {}).get(key[1])
            before = last.get(key, known.closes[-1] if known and known.closes else np.nan)
            previous[i] = before
            last[key] = close[i]
        rows = feature_rows(feature_columns(_joined(bars, indicators), previous))
        where: list[int] = []  # each prediction's bar
        names: list[str] = []
        horizons: list[int] = []
        made: list[tuple[int, float, float]] = []
        trained: dict[str, list[tuple[int, np.ndarray]]] = {}  # a call per artefact, per step
        for i in range(n):
            mine = book.setdefault(symbols[i], {})
            state = mine.get(timeframes[i])
            if state is None:
                state = mine[timeframes[i]] = Series(self.settings, f"{symbols[i]}|{timeframes[i]}")
            elif state.models.keys() != self._keys_of(timeframes[i]):
                self._reconcile(state, f"{symbols[i]}|{timeframes[i]}")
            c = float(close[i])
            for (name, h), model in state.models.items():
                if len(state.closes) >= h:
                    back = len(state.closes) - h
                    model.learn(state.features[back], c / state.closes[back] - 1.0)
                if isinstance(model, TrainedModel):
                    trained.setdefault(name, []).append((len(made), model.prepare(rows[i])))
                    made.append(_NONE)
                else:
                    made.append(model.predict(rows[i]))
                where.append(i)
                names.append(name)
                horizons.append(h)
            state.closes.append(c)
            state.features.append(rows[i])
        for name, inputs in trained.items():
            for (slot, _), forecast in zip(inputs, predict_inputs(name, [x for _, x in inputs]),
                                           strict=True):  # fmt: skip
                made[slot] = forecast
        direction, probability, value = np.array(made, np.float64).reshape(-1, 3).T
        return predictions_table(bars, np.array(where, np.int64), names, horizons,
                                 direction, probability, value)  # fmt: skip


def predictions_table(
    bars: pa.Table,
    rows: np.ndarray,
    models: Sequence[str],
    horizons: Sequence[int] | np.ndarray,
    direction: np.ndarray,
    probability: np.ndarray,
    value: np.ndarray,
) -> pa.Table:
    """Predictions as rows of :data:`~marketpulse.models.PREDICTION_SCHEMA`.

    Args:
        bars: the bars (key columns and ``dataset``) the predictions are made at.
        rows: each prediction's row in ``bars``.
        models: each prediction's model.
        horizons: each prediction's horizon.
        direction: the calls.
        probability: the probabilities of an up move (``NaN``: none given).
        value: the predicted returns (``NaN``: none given).
    """
    index = pa.array(rows, pa.int64())
    key = {name: bars.column(name).take(index).cast(PREDICTION_SCHEMA.field(name).type)
           for name in ("symbol", "timeframe", "bar_start", "bar_end", "dataset")}  # fmt: skip
    return pa.table({
        "symbol": key["symbol"], "timeframe": key["timeframe"],
        "bar_start": key["bar_start"], "bar_end": key["bar_end"],
        "model": pa.array(models, pa.string()),
        "horizon": pa.array(horizons, pa.int64()),
        "direction": pa.array(np.asarray(direction, np.int64)),
        "probability": pa.array(probability, pa.float64(), mask=np.isnan(probability)),
        "value": pa.array(value, pa.float64(), mask=np.isnan(value)),
        "dataset": key["dataset"],
    }, schema=PREDICTION_SCHEMA)  # fmt: skip


def _joined(bars: pa.Table, indicators: pa.Table) -> pa.Table:
    """The bars' prices and quote columns, and the indicators' (session VWAP as ``vwap``)."""
    columns: Mapping[str, pa.ChunkedArray] = {
        name: bars.column(name)
        for name in ("open", "high", "low", "close", "volume", "order_flow_imbalance", "spread_twa")
        if name in bars.column_names
    }
    merged = dict(columns)
    for name in indicators.column_names:
        if name not in ("symbol", "timeframe", "bar_start", "bar_end", "close", "dataset"):
            merged[name] = indicators.column(name)
    return pa.table(merged)
