"""Trained models saved in the lake: the same models and metadata, the same version."""

import dataclasses

import numpy as np
import pytest

from marketpulse.forecast.artefacts import Artefact, artefacts, load, save
from marketpulse.forecast.exceptions import ForecastError
from marketpulse.forecast.features import FEATURES
from marketpulse.forecast.walkforward import Boosters
from marketpulse.sinks.lake_location import LakeLocation

pytest.importorskip("lightgbm")

META = Artefact(
    name="gbm", version="", features=FEATURES, timeframe="1m", horizon=1, dataset="d",
    symbols=("A", "B"), trained_from="2024-01-02T14:30:00Z", trained_to="2024-01-02T20:59:00Z",
    rows=400, seed=0, lightgbm="4.7.0", marketpulse="0.1.0",
)  # fmt: skip


def _boosters(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, len(FEATURES)))
    outcome = 0.001 * np.sign(x[:, 1]) + 0.0001 * rng.normal(size=400)
    return x, Boosters.fit(x, outcome, seed)


def test_saved_twice_the_same_version_and_loaded_the_same_predictions(tmp_path):
    lake = LakeLocation.of(tmp_path / "lake")
    x, boosters = _boosters()
    first = save(lake, META, boosters)
    again = save(lake, META, _boosters()[1])
    assert first.version == again.version and len(first.version) == 12
    assert first == dataclasses.replace(META, version=first.version)
    folder = tmp_path / "lake" / "_models" / "gbm" / first.version
    assert sorted(p.name for p in folder.iterdir()) == ["direction.txt", "model.json",
                                                        "return.txt"]  # fmt: skip
    meta, loaded = load(lake, "gbm", first.version)
    assert meta == first
    for got, want in zip(loaded.predict(x), boosters.predict(x), strict=True):
        np.testing.assert_array_equal(got, want)
    assert artefacts(lake) == [first]


def test_other_models_or_metadata_are_another_version(tmp_path):
    lake = LakeLocation.of(tmp_path / "lake")
    _, boosters = _boosters()
    base = save(lake, META, boosters).version
    assert save(lake, dataclasses.replace(META, horizon=5), boosters).version != base
    assert save(lake, META, _boosters(seed=1)[1]).version != base
    assert len(artefacts(lake)) == 3


def test_an_unknown_version_is_an_error(tmp_path):
    lake = LakeLocation.of(tmp_path / "lake")
    with pytest.raises(ForecastError, match="no model gbm:0123456789ab in the lake"):
        load(lake, "gbm", "0123456789ab")
    with pytest.raises(ForecastError, match="no model gbm:../x"):
        load(lake, "gbm", "../x")
    assert artefacts(lake) == []


def test_gbm_metadata_has_no_lstm_fields_so_its_versions_stay_as_they_were(tmp_path):
    import json

    lake = LakeLocation.of(tmp_path / "lake")
    saved = save(lake, META, _boosters()[1])
    text = (tmp_path / "lake" / "_models" / "gbm" / saved.version / "model.json").read_text()
    assert set(json.loads(text)) == {
        "name", "version", "features", "timeframe", "horizon", "dataset", "symbols",
        "trained_from", "trained_to", "rows", "seed", "lightgbm", "marketpulse",
    }  # fmt: skip
    assert load(lake, "gbm", saved.version)[0] == saved
