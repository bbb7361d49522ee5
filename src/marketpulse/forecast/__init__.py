"""Forecasts of the next bars' direction and return, each model with its measured track record.

- :mod:`~marketpulse.forecast.base`: what a model is (predict, then learn);
- :mod:`~marketpulse.forecast.online`: River's online learners, bar by bar;
- :mod:`~marketpulse.forecast.baselines`: persistence, always-up, drift, random;
- :mod:`~marketpulse.forecast.features`: the scale-free features of a bar;
- :mod:`~marketpulse.forecast.prequential`: predict first, learn after;
- :mod:`~marketpulse.forecast.scores`: accuracy, Brier score, MAE, with intervals;
- :mod:`~marketpulse.forecast.walkforward`: gradient boosting (LightGBM), tested walk-forward;
- :mod:`~marketpulse.forecast.artefacts`: trained models saved in the lake, versioned;
- :mod:`~marketpulse.forecast.frame`: a dataset's bars with their features;
- :mod:`~marketpulse.forecast.evaluation`: all of it over a dataset of the lake.
"""

from typing import TYPE_CHECKING, Any

from marketpulse.forecast.base import Forecast, Model
from marketpulse.forecast.catalog import BASELINES, LEARNED, MODELS
from marketpulse.forecast.exceptions import ForecastError

if TYPE_CHECKING:
    from marketpulse.forecast.evaluation import Evaluation, EvaluationScope, evaluate

__all__ = [
    "BASELINES",
    "LEARNED",
    "MODELS",
    "Evaluation",
    "EvaluationScope",
    "Forecast",
    "ForecastError",
    "Model",
    "evaluate",
]


def __getattr__(name: str) -> Any:
    # the evaluation reads the lake (DuckDB): imported when asked for, so that the
    # stream's stage (marketpulse.forecast.stage) starts without it
    if name in ("Evaluation", "EvaluationScope", "evaluate"):
        from marketpulse.forecast import evaluation

        return getattr(evaluation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
