"""Trained models as versioned artefacts of the lake: ``<lake>/_models/<name>/<version>/``.

``forecast train`` fits the gbm boosters (:mod:`marketpulse.forecast.walkforward`)
on every bar of a scope whose outcome is known and saves, in the artefact's
folder:

- ``direction.txt`` and ``return.txt``: the two LightGBM models, as text;
- ``model.json``: what the models are and were made of (:class:`Artefact`):
  their features in order, timeframe, horizon, dataset, symbols, the span of
  bar starts trained on, rows, seed, and the LightGBM and MarketPulse versions.

The version is the first 12 hex digits of the SHA-256 of the model files and
of the metadata without the version. No time of training enters it: the same
bars, scope and seed give the same version, and a different one is a
different model. ``model.json`` is written last, so an artefact being written
is not listed.
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
from marketpulse.forecast.prequential import outcomes
from marketpulse.forecast.walkforward import Boosters, lightgbm
from marketpulse.sinks.lake_location import LakeLocation

__all__ = ["ARTEFACTS", "Artefact", "artefacts", "load", "save", "train"]

#: The lake's folder of artefacts.
ARTEFACTS = "_models"
_META = "model.json"
_FILES = {"direction": "direction.txt", "value": "return.txt"}
_VERSION = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class Artefact:
    """What a saved model is and was trained on (its ``model.json``).

    Attributes:
        name: the model (``gbm``).
        version: the first 12 hex digits of the SHA-256 of its files and metadata.
        features: the features, in the order the models take them.
        timeframe: the bars' timeframe.
        horizon: bars between a bar and the close whose return is predicted.
        dataset: the lake's dataset trained on.
        symbols: the symbols trained on, sorted.
        trained_from: the first bar start read, ISO 8601 UTC.
        trained_to: the last bar start read (as an outcome), ISO 8601 UTC.
        rows: the bars trained on (those whose outcome is known).
        seed: LightGBM's seed.
        lightgbm: LightGBM's version.
        marketpulse: MarketPulse's version.
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
    lightgbm: str
    marketpulse: str

    @property
    def span(self) -> str:
        """``trained_from to trained_to``."""
        return f"{self.trained_from} to {self.trained_to}"


def train(frame: Frame, timeframe: str, horizon: int, seed: int = 0) -> tuple[Artefact, Boosters]:
    """Fit the gbm boosters on every bar of one timeframe of ``frame`` with a known outcome.

    Returns:
        the artefact's metadata (its version not yet known: empty) and the boosters.

    Raises:
        ForecastError: a horizon at least as long as every series.
    """
    from marketpulse import __version__

    if horizon < 1:
        raise ForecastError(f"--horizon: a whole number of bars, at least 1, got {horizon}")
    spans = frame.series_of(timeframe)
    outcome = outcomes(frame.close, [(b, e) for b, e, _ in spans], horizon)
    rows = np.flatnonzero(np.isfinite(outcome))
    if len(rows) == 0:
        longest = max((e - b for b, e, _ in spans), default=0)
        raise ForecastError(
            f"--horizon: {horizon} bars reach past every series of {timeframe} "
            f"(the longest has {longest} bars)"
        )
    boosters = Boosters.fit(frame.matrix()[rows], outcome[rows], seed)
    mine = np.concatenate([np.arange(b, e) for b, e, _ in spans])
    starts = frame.bar_start[mine]
    symbols = sorted({key.split("|", 1)[0] for _, _, key in spans})
    meta = Artefact(
        name="gbm", version="", features=FEATURES, timeframe=timeframe, horizon=horizon,
        dataset=frame.dataset, symbols=tuple(symbols), trained_from=_iso(int(starts.min())),
        trained_to=_iso(int(starts.max())), rows=len(rows), seed=seed,
        lightgbm=lightgbm().__version__, marketpulse=__version__,
    )  # fmt: skip
    return meta, boosters


def save(lake: LakeLocation, meta: Artefact, boosters: Boosters) -> Artefact:
    """Write the artefact into the lake; return its metadata with its version.

    Saving the same models and metadata again rewrites the same files.

    Raises:
        ForecastError: a booster missing (nothing to learn: every outcome alike).
    """
    texts: dict[str, bytes] = {}
    for part, file in _FILES.items():
        booster = getattr(boosters, part)
        if booster is None:
            raise ForecastError(f"gbm: the {part} model learned nothing: every outcome alike")
        texts[file] = booster.model_to_string().encode()
    unversioned = _dumps(meta)
    digest = hashlib.sha256()
    for file in sorted(texts):
        digest.update(file.encode() + b"\0" + texts[file] + b"\0")
    digest.update(unversioned)
    versioned = replace(meta, version=digest.hexdigest()[:12])
    fs, folder = lake.filesystem, lake.path(ARTEFACTS, versioned.name, versioned.version)
    fs.create_dir(folder, recursive=True)
    for file, text in [*texts.items(), (_META, _dumps(versioned))]:
        with fs.open_output_stream(f"{folder}/{file}") as out:
            out.write(text)
    return versioned


def load(lake: LakeLocation, name: str, version: str) -> tuple[Artefact, Boosters]:
    """Read an artefact's metadata and models.

    Raises:
        ForecastError: no such artefact in the lake.
    """
    folder = lake.path(ARTEFACTS, name, version)
    meta = _read_meta(lake, folder) if _VERSION.fullmatch(version) else None
    if meta is None:
        raise ForecastError(f"no model {name}:{version} in the lake at {lake}")
    lgb = lightgbm()
    boosters = {}
    for part, file in _FILES.items():
        with lake.filesystem.open_input_stream(f"{folder}/{file}") as f:
            boosters[part] = lgb.Booster(model_str=f.read().decode())
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
    """The metadata as JSON, keys sorted; without the version while it is empty."""
    data = {k: v for k, v in asdict(meta).items() if k != "version" or v}
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
