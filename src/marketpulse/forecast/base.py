"""What a forecasting model is: it predicts from a bar's features, then learns its outcome.

Every model, learned or baseline, is one object per series (symbol and
timeframe) with two calls. The prequential loop
(:mod:`marketpulse.forecast.prequential`) calls :meth:`Model.predict` on the
features of bar ``t`` before the bar ``t + h`` it is about is seen, and
:meth:`Model.learn` with those features and the outcome only once bar
``t + h`` has closed: no model ever sees its own target.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol

__all__ = ["Forecast", "Model", "ModelFactory"]


class Forecast(NamedTuple):
    """One prediction of the return from bar ``t``'s close to bar ``t + h``'s.

    Attributes:
        direction: 1 up, -1 down, 0 no call.
        probability: the probability of an up move (``NaN``: none given).
        value: the predicted return, a fraction (``NaN``: none given).
    """

    direction: int
    probability: float = math.nan
    value: float = math.nan


class Model(Protocol):
    """A forecasting model of one series."""

    def predict(self, features: Mapping[str, float]) -> Forecast:
        """Predict the coming return from one bar's features."""
        ...

    def learn(self, features: Mapping[str, float], outcome: float) -> None:
        """Learn the return that followed the bar whose features these were."""
        ...


#: Makes the model of one series from the series' seed.
ModelFactory = Callable[[int], Model]
