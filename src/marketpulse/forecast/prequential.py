"""Prequential evaluation: each bar is first a test example, then a training one.

For a horizon of ``h`` bars, at the close of bar ``t`` of a series the model
first learns the outcome of bar ``t - h`` (the return from its close to bar
``t``'s, known only now), then predicts the outcome of bar ``t``: the return
from its close to the close ``h`` bars later (bars of the series, in order;
a series has a bar where it had trades). Every prediction is made before the
bars it is about are seen, so the record is out of sample as it is made, as
it would be in the stream.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from marketpulse.forecast.base import ModelFactory

__all__ = ["Record", "prequential", "series_seed"]


@dataclass(frozen=True, slots=True)
class Record:
    """One model's predictions at one horizon, a row per bar, and the outcomes.

    Attributes:
        direction: the calls (1, -1, 0 for none).
        probability: the probabilities of an up move (``NaN``: none).
        value: the predicted returns (``NaN``: none).
        outcome: the returns that followed (``NaN``: past the series' end).
    """

    direction: np.ndarray
    probability: np.ndarray
    value: np.ndarray
    outcome: np.ndarray


def series_seed(seed: int, key: str) -> int:
    """The seed of one series' models: the run's seed and the series' name, stably."""
    return (seed * 1_000_003 + zlib.crc32(key.encode())) % 2**32


def outcomes(close: np.ndarray, spans: Sequence[tuple[int, int]], h: int) -> np.ndarray:
    """Each bar's return to the close ``h`` bars later in its series (``NaN`` past its end)."""
    out = np.full(len(close), np.nan)
    for begin, end in spans:
        if end - begin > h:
            out[begin : end - h] = close[begin + h : end] / close[begin : end - h] - 1.0
    return out


def prequential(
    rows: Sequence[Mapping[str, float]],
    close: np.ndarray,
    spans: Sequence[tuple[int, int, str]],
    models: Mapping[str, ModelFactory],
    horizon: int,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Record]:
    """Run every model over every series at one horizon.

    Args:
        rows: each bar's features.
        close: each bar's close.
        spans: each series as (first row, end row, name).
        models: the models by name.
        horizon: bars between a prediction's bar and its outcome's.
        seed: the run's seed (each series' models get their own, from it).
        progress: called with the number of bars done, after each series.
    """
    n = len(close)
    outcome = outcomes(close, [(b, e) for b, e, _ in spans], horizon)
    records: dict[str, Record] = {}
    for name, factory in models.items():
        direction = np.zeros(n, np.int8)
        probability = np.full(n, math.nan)
        value = np.full(n, math.nan)
        for begin, end, key in spans:
            model = factory(series_seed(seed, key))
            for t in range(begin, end):
                if t - horizon >= begin:
                    model.learn(rows[t - horizon], float(outcome[t - horizon]))
                forecast = model.predict(rows[t])
                direction[t], probability[t], value[t] = forecast
            if progress is not None:
                progress(end - begin)
        records[name] = Record(direction, probability, value, outcome)
    return records
