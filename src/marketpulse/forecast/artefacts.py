"""Trained models as versioned artefacts of the lake: ``<lake>/_models/<name>/<version>/``.

``forecast train`` fits a walk-forward model (:mod:`marketpulse.forecast.walkforward`)
on every bar of a scope whose outcome is known and saves, in the artefact's
folder:

- gbm: ``direction.txt`` and ``return.txt``, the two LightGBM models, as text;
- lstm: ``model.keras``, the Keras model (:mod:`marketpulse.forecast.lstm`),
  and ``scaling.json``, the training rows' means and standard deviations of
  the features and the return's scale;
- ``model.json``: what the models are and were made of (:class:`Artefact`):
  their features in order, timeframe, horizon, dataset, symbols, the span of
  bar starts trained on, rows, seed, the LSTM's sequence length, and the
  versions of the libraries and of MarketPulse.

The version is the first 12 hex digits of the SHA-256 of the models and of
the metadata without the version: gbm's model files; the LSTM's configuration,
weights and scaling (not the bytes of ``model.keras``, a zip that holds the
time it was written). No time of training enters it: the same bars, scope and
seed give the same version, and a different one is a different model.
``model.json`` is written last, so an artefact being written is not listed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from marketpulse.forecast.exceptions import ForecastError
from marketpulse.forecast.features import FEATURES
from marketpulse.forecast.frame import Frame
from marketpulse.forecast.lstm import Network, Scaling
from marketpulse.forecast.walkforward import LEARNERS, Bars, Boosters, lightgbm, require
from marketpulse.sinks.lake_location import LakeLocation

__all__ = ["ARTEFACTS", "TRAINED", "Artefact", "Trained", "artefacts", "load", "save", "train"]

#: The lake's folder of artefacts.
ARTEFACTS = "_models"
#: The models ``forecast train`` trains.
TRAINED = tuple(LEARNERS)
_META = "model.json"
_FILES = {"direction": "direction.txt", "value": "return.txt"}
_KERAS, _SCALING = "model.keras", "scaling.json"
_VERSION = re.compile(r"[0-9a-f]{12}")

#: A trained model: gbm's boosters or an LSTM.
Trained = Boosters | Network


@dataclass(frozen=True, slots=True)
class Artefact:
    """What a saved model is and was trained on (its ``model.json``).

    Attributes:
        name: the model (``gbm``, ``lstm``).
        version: the first 12 hex digits of the SHA-256 of its models and metadata.
        features: the features, in the order the models take them.
        timeframe: the bars' timeframe.
        horizon: bars between a bar and the close whose return is predicted.
        dataset: the lake's dataset trained on.
        symbols: the symbols trained on, sorted.
        trained_from: the first bar start read, ISO 8601 UTC.
        trained_to: the last bar start read (as an outcome), ISO 8601 UTC.
        rows: the bars trained on (those whose outcome is known).
        seed: the model's seed.
        marketpulse: MarketPulse's version.
        lightgbm: LightGBM's version (gbm; ``None`` otherwise).
        sequence: bars per input sequence (lstm; ``None`` otherwise).
        keras: Keras's version (lstm).
        jax: JAX's version (lstm).
    """

    name: str
    version: str
    features: tuple[str, ...]
    timeframe: str
    horizon: int
    dataset: str
    symbols: tuple[str, ...]
    trained_from: str
    trained_to: str
    rows: int
    seed: int
    marketpulse: str
    lightgbm: str | None = None
    sequence: int | None = None
    keras: str | None = None
    jax: str | None = None

    @property
    def span(self) -> str:
        """``trained_from to trained_to``."""
        return f"{self.trained_from} to {self.trained_to}"


def train(frame: Frame, timeframe: str, horizon: int, seed: int = 0,
          name: str = "gbm") -> tuple[Artefact, Trained]:  # fmt: skip
    """Fit a model on every bar of one timeframe of ``frame`` with a known outcome.

    Args:
        frame: the bars.
        timeframe: the timeframe whose series to train on.
        horizon: bars between a bar and its outcome.
        seed: the model's seed.
        name: the model (:data:`TRAINED`).

    Returns:
        the artefact's metadata (its version not yet known: empty) and the model.

    Raises:
        ForecastError: an unknown model, a horizon at least as long as every series.
    """
    from marketpulse import __version__

    if name not in LEARNERS:
        raise ForecastError(f"--model: unknown model {name} (known: {', '.join(TRAINED)})")
    if horizon < 1:
        raise ForecastError(f"--horizon: a whole number of bars, at least 1, got {horizon}")
    spans = frame.series_of(timeframe)
    bars = Bars.of(frame.matrix(), frame.close, frame.bar_start, spans, horizon)
    rows = np.flatnonzero(np.isfinite(bars.outcome))
    if len(rows) == 0:
        longest = max((e - b for b, e, _ in spans), default=0)
        raise ForecastError(
            f"--horizon: {horizon} bars reach past every series of {timeframe} "
            f"(the longest has {longest} bars)"
        )
    model: Trained
    made: dict[str, Any]
    if name == "lstm":
        model = Network.train(bars, rows, seed)
        made = {"sequence": model.sequence, **Network.versions()}
    else:
        model = Boosters.train(bars, rows, seed)
        made = {"lightgbm": lightgbm().__version__}
    starts = frame.bar_start[bars.rows()]
    symbols = sorted({key.split("|", 1)[0] for _, _, key in spans})
    meta = Artefact(
        name=name, version="", features=FEATURES, timeframe=timeframe, horizon=horizon,
        dataset=frame.dataset, symbols=tuple(symbols), trained_from=_iso(int(starts.min())),
        trained_to=_iso(int(starts.max())), rows=len(rows), seed=seed, marketpulse=__version__,
        **made,
    )  # fmt: skip
    return meta, model


def save(lake: LakeLocation, meta: Artefact, model: Trained) -> Artefact:
    """Write the artefact into the lake; return its metadata with its version.

    Saving the same models and metadata again gives the same version.

    Raises:
        ForecastError: a booster missing (nothing to learn: every outcome alike).
    """
    digest = hashlib.sha256()
    if isinstance(model, Network):
        files = {_KERAS: model.to_bytes(), _SCALING: model.scaling.to_json()}
        digest.update(model.digest() + b"\0")
    else:
        files = {}
        for part, file in _FILES.items():
            booster = getattr(model, part)
            if booster is None:
                raise ForecastError(f"gbm: the {part} model learned nothing: every outcome alike")
            files[file] = booster.model_to_string().encode()
        for file in sorted(files):
            digest.update(file.encode() + b"\0" + files[file] + b"\0")
    digest.update(_dumps(meta))
    versioned = replace(meta, version=digest.hexdigest()[:12])
    fs, folder = lake.filesystem, lake.path(ARTEFACTS, versioned.name, versioned.version)
    fs.create_dir(folder, recursive=True)
    for file, data in [*files.items(), (_META, _dumps(versioned))]:
        with fs.open_output_stream(f"{folder}/{file}") as out:
            out.write(data)
    return versioned


def load(lake: LakeLocation, name: str, version: str) -> tuple[Artefact, Trained]:
    """Read an artefact's metadata and models.

    Raises:
        ForecastError: no such artefact in the lake.
    """
    folder = lake.path(ARTEFACTS, name, version)
    meta = _read_meta(lake, folder) if _VERSION.fullmatch(version) else None
    if meta is None:
        raise ForecastError(f"no model {name}:{version} in the lake at {lake}")
    require(meta.name)

    def read(file: str) -> bytes:
        with lake.filesystem.open_input_stream(f"{folder}/{file}") as f:
            data: bytes = f.read()
        return data

    if meta.name == "lstm":
        return meta, Network.from_bytes(read(_KERAS), Scaling.from_json(read(_SCALING)))
    lgb = lightgbm()
    boosters = {part: lgb.Booster(model_str=read(file).decode()) for part, file in _FILES.items()}
    return meta, Boosters(boosters["direction"], boosters["value"])


def artefacts(lake: LakeLocation) -> list[Artefact]:
    """The lake's artefacts, by name and version."""
    found = []
    for name in lake.directories(ARTEFACTS):
        for version in lake.directories(f"{ARTEFACTS}/{name}"):
            meta = _read_meta(lake, lake.path(ARTEFACTS, name, version))
            if meta is not None:
                found.append(meta)
    return found


def _read_meta(lake: LakeLocation, folder: str) -> Artefact | None:
    try:
        with lake.filesystem.open_input_stream(f"{folder}/{_META}") as f:
            data: dict[str, Any] = json.loads(f.read())
    except FileNotFoundError:
        return None
    data["features"], data["symbols"] = tuple(data["features"]), tuple(data["symbols"])
    return Artefact(**data)


def _dumps(meta: Artefact) -> bytes:
    """The metadata as JSON, keys sorted; without the version while it is empty.

    What a model has not (``None``: gbm's sequence, the LSTM's LightGBM) is left
    out, so gbm's metadata, and so its versions, are as before the LSTM came.
    """
    data = {k: v for k, v in asdict(meta).items() if (k != "version" or v) and v is not None}
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
