"""The models ``forecast evaluate`` knows, by name: the learned ones and the baselines.

The online models and the baselines (:data:`MODELS`) run bar by bar, in the
evaluation as in the stream; the walk-forward ones (:data:`WALK_FORWARD`) are
trained on the lake in folds (:mod:`marketpulse.forecast.walkforward`), so only
the evaluation runs them.
"""

from __future__ import annotations

from marketpulse.forecast.base import ModelFactory
from marketpulse.forecast.baselines import AlwaysUp, Drift, Persistence, RandomWalk
from marketpulse.forecast.online import OnlineLinear, OnlineTree

__all__ = ["BASELINES", "EVALUATED", "FOLDS", "LEARNED", "MODELS", "WALK_FORWARD"]

#: The models that learn from the features.
LEARNED: dict[str, ModelFactory] = {
    "online-linear": OnlineLinear,
    "online-tree": OnlineTree,
}

#: The baselines (:mod:`marketpulse.forecast.baselines`).
BASELINES: dict[str, ModelFactory] = {
    "persistence": Persistence,
    "always-up": AlwaysUp,
    "drift": Drift,
    "random": RandomWalk,
}

#: Every model, learned first.
MODELS: dict[str, ModelFactory] = LEARNED | BASELINES

#: The models trained on the lake and tested walk-forward: gradient boosting, an LSTM.
WALK_FORWARD: tuple[str, ...] = ("gbm", "lstm")

#: Every model ``forecast evaluate`` can run.
EVALUATED: tuple[str, ...] = (*MODELS, *WALK_FORWARD)

#: The walk-forward models' test windows, by default.
FOLDS = 5
