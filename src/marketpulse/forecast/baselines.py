"""The baselines every model is measured against: what knowing nothing would score.

- ``persistence``: the last ``h`` bars' move goes on: its direction, a
  probability of 1 or 0, and its size;
- ``always-up``: up, with probability 1, no size;
- ``drift``: the mean of the outcomes learned so far (the training set's drift):
  its sign, the share of up moves as the probability, and the mean as the size;
- ``random``: a seeded coin for the direction, probability 0.5, and a return of
  0 (a random walk's expectation).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from marketpulse.forecast.base import Forecast

__all__ = ["AlwaysUp", "Drift", "Persistence", "RandomWalk"]


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


class Persistence:
    """The last outcome learned (the move of the ``h`` bars up to now) goes on."""

    def __init__(self, seed: int = 0) -> None:
        self._last = math.nan

    def predict(self, features: Mapping[str, float]) -> Forecast:
        """The last outcome, as a sure call."""
        if math.isnan(self._last):
            return Forecast(0)
        sign = _sign(self._last)
        return Forecast(sign, 0.5 + 0.5 * sign, self._last)

    def learn(self, features: Mapping[str, float], outcome: float) -> None:
        """Keep the outcome."""
        self._last = outcome


class AlwaysUp:
    """Up, for sure; no size."""

    def __init__(self, seed: int = 0) -> None:
        pass

    def predict(self, features: Mapping[str, float]) -> Forecast:
        """Up, with probability 1."""
        return Forecast(1, 1.0)

    def learn(self, features: Mapping[str, float], outcome: float) -> None:
        """Nothing to learn."""


class Drift:
    """The mean outcome so far, and the share of up moves among the moves so far."""

    def __init__(self, seed: int = 0) -> None:
        self._n = 0
        self._sum = 0.0
        self._ups = 0
        self._moves = 0

    def predict(self, features: Mapping[str, float]) -> Forecast:
        """The drift's sign and size, the share of ups as the probability."""
        if self._n == 0:
            return Forecast(0)
        mean = self._sum / self._n
        share = self._ups / self._moves if self._moves else 0.5
        return Forecast(_sign(mean), share, mean)

    def learn(self, features: Mapping[str, float], outcome: float) -> None:
        """Count the outcome."""
        self._n += 1
        self._sum += outcome
        if outcome != 0:
            self._moves += 1
            self._ups += outcome > 0


class RandomWalk:
    """A coin for the direction; no change expected."""

    def __init__(self, seed: int = 0) -> None:
        self._coin = random.Random(seed)

    def predict(self, features: Mapping[str, float]) -> Forecast:
        """Heads up, tails down, probability one half, return 0."""
        return Forecast(1 if self._coin.random() < 0.5 else -1, 0.5, 0.0)

    def learn(self, features: Mapping[str, float], outcome: float) -> None:
        """Nothing to learn."""
