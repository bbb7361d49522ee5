"""Trained models in the stream: a lake's gbm or lstm artefact scoring each closed bar.

``--forecast gbm:1a2b3c4d5e6f`` (or ``lstm:...``; ``forecast models`` lists the
versions) runs an artefact that ``forecast train`` saved in the lake beside the
online models, through the same stage (:mod:`marketpulse.forecast.stage`): each
closed bar of the artefact's timeframe gets its prediction at the artefact's
horizon, from the same features the artefact was trained on, computed by the
stream's own kernels. A trained model does not learn in the stream: it is the
artefact, as versioned; train a new one to follow the market.

The model object of a series (:class:`TrainedModel`) pickles as the artefact's
name and version, and for an LSTM its last bars' features: a checkpoint holds a
few hundred bytes per series, never the model nor where the lake is (an S3
lake's settings hold keys). Each process loads the model once, from the lake of
its own settings (:func:`trained_spec` registers it, :func:`loaded` reads it);
the version is a digest of the model, so any copy of it is the same model.
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from marketpulse.forecast.base import Forecast
from marketpulse.forecast.exceptions import ForecastError
from marketpulse.forecast.features import FEATURES
from marketpulse.sinks.lake_location import LakeLocation

__all__ = [
    "TrainedModel",
    "TrainedSpec",
    "is_trained",
    "loaded",
    "predict_inputs",
    "trained_spec",
]

_SPEC = re.compile(r"(gbm|lstm):([0-9a-f]{12})")
_LOCK = threading.Lock()
_SPECS: dict[str, TrainedSpec] = {}
_LOADED: dict[str, Any] = {}


def is_trained(name: str) -> bool:
    """Whether a model name names a trained artefact (``gbm:<version>``, ``lstm:<version>``)."""
    return _SPEC.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class TrainedSpec:
    """A trained artefact the stream runs: what ``model.json`` says of it.

    Attributes:
        name: ``gbm`` or ``lstm``, with the version (``gbm:1a2b3c4d5e6f``).
        lake: the lake that holds it.
        timeframe: the bars it was trained on, and the only ones it scores.
        horizon: the bars ahead it predicts.
        sequence: an LSTM's bars per input (``None``: gbm).
    """

    name: str
    lake: LakeLocation
    timeframe: str
    horizon: int
    sequence: int | None


def trained_spec(name: str, lake: LakeLocation | None) -> TrainedSpec:
    """Read the artefact ``name`` names from ``lake``'s ``_models``.

    Raises:
        ForecastError: no lake, no such artefact, its packages missing, or features
            other than MarketPulse's (one line, naming how to list the artefacts).
    """
    from marketpulse.forecast.artefacts import ARTEFACTS, _read_meta
    from marketpulse.forecast.walkforward import require

    match = _SPEC.fullmatch(name)
    if match is None:
        raise ForecastError(f"forecast models: {name!r} is not gbm:<version> or lstm:<version>")
    if lake is None:
        raise ForecastError(f"forecast models: {name} is read from a lake, and none is set")
    kind, version = match[1], match[2]
    meta = _read_meta(lake, lake.path(ARTEFACTS, kind, version))
    if meta is None:
        raise ForecastError(
            f"forecast models: no model {name} in the lake at {lake} (marketpulse forecast "
            "models lists them; marketpulse forecast train makes one)"
        )
    if tuple(meta.features) != FEATURES:
        raise ForecastError(
            f"forecast models: {name} was trained on the features {', '.join(meta.features)}, "
            f"not this MarketPulse's ({', '.join(FEATURES)}): train it again"
        )
    require(kind)  # its packages missing: one line now, not at the first bar
    spec = TrainedSpec(name, lake, meta.timeframe, meta.horizon, meta.sequence)
    with _LOCK:
        _SPECS.setdefault(name, spec)
    return spec


def loaded(name: str) -> Any:
    """The model of artefact ``name`` (gbm's boosters, an LSTM), loaded once per process.

    Raises:
        ForecastError: the artefact was not named by this process's settings.
    """
    with _LOCK:
        model = _LOADED.get(name)
        if model is None:
            spec = _SPECS.get(name)
            if spec is None:
                raise ForecastError(f"forecast models: {name} is not among the settings' models")
            from marketpulse.forecast.artefacts import load

            kind, version = name.split(":")
            _, model = load(spec.lake, kind, version)
            _LOADED[name] = model
    return model


class TrainedModel:
    """A trained artefact as the model of one series: it predicts, and learns nothing.

    Args:
        spec: the artefact.
    """

    __slots__ = ("name", "window")

    def __init__(self, spec: TrainedSpec) -> None:
        self.name = spec.name
        #: an LSTM's last bars' features, oldest first
        self.window: deque[list[float]] | None = (
            deque(maxlen=spec.sequence) if spec.sequence else None
        )

    def predict(self, features: Mapping[str, float]) -> Forecast:
        """The artefact's prediction from this bar's features (and an LSTM's last bars')."""
        return predict_inputs(self.name, [self.prepare(features)])[0]

    def prepare(self, features: Mapping[str, float]) -> np.ndarray:
        """This bar's input to the model.

        gbm's: the bar's features in order; an LSTM's: the standardised features of the
        series' last bars, this one last (the series' window moves on by this bar).
        """
        row = [features.get(name, math.nan) for name in FEATURES]
        if self.window is None:
            return np.array(row, np.float64)
        from marketpulse.forecast.lstm import sequences

        self.window.append(row)
        model = loaded(self.name)
        z = model.scaling.apply(np.array(self.window, np.float64))
        n = len(z)
        return sequences(z, [(0, n, "")], np.array([n - 1]), model.sequence)[0]

    def learn(self, features: Mapping[str, float], outcome: float) -> None:
        """Nothing: the artefact is as it was trained."""

    def __getstate__(self) -> tuple[str, int | None, list[list[float]] | None]:
        window = self.window
        return self.name, None if window is None else window.maxlen, \
            None if window is None else list(window)  # fmt: skip

    def __setstate__(self, state: tuple[str, int | None, list[list[float]] | None]) -> None:
        self.name, length, window = state
        self.window = None if window is None else deque(window, maxlen=length)


def predict_inputs(name: str, inputs: list[np.ndarray]) -> list[Forecast]:
    """The predictions of artefact ``name`` for some bars' inputs, in one call of the model.

    The inputs are :meth:`TrainedModel.prepare`'s; the stage gathers a step's bars.
    """
    direction, probability, value = loaded(name).predict(np.stack(inputs))
    return [Forecast(int(d), float(p), float(v))
            for d, p, v in zip(direction, probability, value, strict=True)]  # fmt: skip
