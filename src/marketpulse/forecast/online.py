"""Online models that learn bar by bar, from River (https://riverml.xyz).

River's learners take one example at a time, as a stream gives them, and are
deterministic for a given order of examples: the same bars give the same
predictions. Each series has its own two learners:

- a direction classifier, trained on the bars that moved (an up move is the
  positive class), whose probability of an up move is the forecast's
  probability and whose sign (above or below one half) is its call;
- a return regressor, trained on every outcome in basis points (returns are
  1e-4-sized; scaling the target keeps plain SGD steps sensible), whose
  prediction is the forecast's value.

The features are standardised online (running mean and variance), so no
feature's scale dominates the steps, then clipped to 5 standard deviations: a
feature that was constant for a while (a daily series whose early bars have
open = high = low = close) has a tiny variance, and its first move would
otherwise standardise to thousands and send the weights off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from marketpulse.forecast.base import Forecast
from marketpulse.forecast.exceptions import ForecastError

__all__ = ["OnlineLinear", "OnlineTree", "river"]

_BP = 10_000.0
_CLIP = 5.0


def _clipped(x: dict[str, float]) -> dict[str, float]:
    return {k: min(_CLIP, max(-_CLIP, v)) for k, v in x.items()}


def river() -> Any:
    """River's modules the models use.

    Raises:
        ForecastError: River is not installed (the ``ml`` extra).
    """
    try:
        import river  # noqa: F401
    except ImportError:
        raise ForecastError("the online models need River: pip install 'marketpulse[ml]'") from None
    from river import compose, linear_model, preprocessing, tree

    return compose, linear_model, preprocessing, tree


class _Online:
    """A direction classifier and a return regressor learning the same features."""

    def __init__(self, classifier: Any, regressor: Any) -> None:
        self._classifier = classifier
        self._regressor = regressor
        self._seen = 0

    def predict(self, features: Mapping[str, float]) -> Forecast:
        """The classifier's probability and call, the regressor's return."""
        if self._seen == 0:
            return Forecast(0)
        x = dict(features)
        up = self._classifier.predict_proba_one(x).get(True, 0.5)
        value = self._regressor.predict_one(x) / _BP
        direction = 1 if up > 0.5 else -1 if up < 0.5 else 0
        return Forecast(direction, float(up), float(value) if math.isfinite(value) else math.nan)

    def learn(self, features: Mapping[str, float], outcome: float) -> None:
        """Learn the outcome: its direction when it moved, its size always."""
        x = dict(features)
        if outcome != 0:
            self._classifier.learn_one(x, outcome > 0)
        self._regressor.learn_one(x, outcome * _BP)
        self._seen += 1


class OnlineLinear(_Online):
    """Logistic regression for the direction, linear regression for the return (SGD)."""

    def __init__(self, seed: int = 0) -> None:
        compose, linear_model, preprocessing, _ = river()
        from river import optim

        def scaled() -> Any:
            return preprocessing.StandardScaler() | compose.FuncTransformer(_clipped)

        super().__init__(
            scaled() | linear_model.LogisticRegression(),
            # clipped steps and a little L2 keep the first bars' updates (scaled on few
            # bars) from sending the weights off
            preprocessing.TargetStandardScaler(
                scaled()
                | linear_model.LinearRegression(
                    optimizer=optim.SGD(0.005), l2=0.01, clip_gradient=1.0
                )
            ),
        )


class OnlineTree(_Online):
    """Hoeffding adaptive trees for the direction and the return (they follow drift)."""

    def __init__(self, seed: int = 0) -> None:
        compose, _, preprocessing, tree = river()
        super().__init__(
            tree.HoeffdingAdaptiveTreeClassifier(seed=seed),
            preprocessing.TargetStandardScaler(tree.HoeffdingAdaptiveTreeRegressor(seed=seed)),
        )
