"""Forecasts of the next bars' direction and return, each model with its measured track record.

- :mod:`~marketpulse.forecast.base`: what a model is (predict, then learn);
- :mod:`~marketpulse.forecast.online`: River's online learners, bar by bar;
- :mod:`~marketpulse.forecast.baselines`: persistence, always-up, drift, random;
- :mod:`~marketpulse.forecast.features`: the scale-free features of a bar;
- :mod:`~marketpulse.forecast.prequential`: predict first, learn after;
- :mod:`~marketpulse.forecast.scores`: accuracy, Brier score, MAE, with intervals;
- :mod:`~marketpulse.forecast.evaluate`: all of it over a dataset of the lake.
"""

from marketpulse.forecast.base import Forecast, Model
from marketpulse.forecast.catalog import BASELINES, LEARNED, MODELS
from marketpulse.forecast.evaluate import Evaluation, EvaluationScope, evaluate
from marketpulse.forecast.exceptions import ForecastError

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
