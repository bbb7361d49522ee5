"""The models ``forecast evaluate`` knows, by name: the learned ones and the baselines."""

from __future__ import annotations

from marketpulse.forecast.base import ModelFactory
from marketpulse.forecast.baselines import AlwaysUp, Drift, Persistence, RandomWalk
from marketpulse.forecast.online import OnlineLinear, OnlineTree

__all__ = ["BASELINES", "LEARNED", "MODELS"]

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
