"""The LSTM (Keras on JAX): seeded, trained only on the past, saved and loaded the same."""

import dataclasses
import importlib.util
import sys
from functools import partial

import numpy as np
import pytest

from marketpulse.forecast.artefacts import Artefact, artefacts, load, save
from marketpulse.forecast.exceptions import ForecastError
from marketpulse.forecast.features import FEATURES
from marketpulse.forecast.lstm import LstmSettings, Network, Scaling, holdout, keras, sequences
from marketpulse.forecast.walkforward import Bars, splits, walk_forward
from marketpulse.sinks.lake_location import LakeLocation

if not all(importlib.util.find_spec(name) for name in ("keras", "jax")):
    pytest.skip("the lstm model needs Keras and JAX (the ml extra)", allow_module_level=True)

# Keras 3.15 reads its variables with np.array(variable), which NumPy 2 warns of
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

MINUTE = 60 * 10**9
T0 = 1_700_000_000 * 10**9
#: A tiny network, briefly trained: the tests stay quick (JAX compiles it once per process).
TINY = LstmSettings(sequence=4, units=8, epochs=5, batch=32, learning_rate=0.01)
LSTM = partial(Network.train, settings=TINY)


def _remembered(bars=400, symbols=2, seed=1, lag=2):
    """Each bar's next return has the sign of the ``trend`` feature ``lag`` bars earlier.

    Only a model that reads the earlier bars can tell: bar ``t``'s own features
    say nothing of it.
    """
    rng = np.random.default_rng(seed)
    starts, spans = [], []
    for s in range(symbols):
        begin = len(starts)
        starts += [T0 + i * MINUTE for i in range(bars)]
        spans.append((begin, len(starts), f"S{s}|1m"))
    bar_start = np.array(starts, np.int64)
    x = rng.normal(size=(len(bar_start), len(FEATURES)))
    x[:, FEATURES.index("spread")] = np.nan  # an undefined feature: standardised to 0
    signal = x[:, FEATURES.index("trend")]
    close = np.empty(len(bar_start))
    for begin, end, _ in spans:
        earlier = np.concatenate((np.zeros(lag), signal[begin : end - lag]))
        step = 0.0005 * np.sign(earlier) + 0.0002 * rng.normal(size=end - begin)
        close[begin:end] = 100.0 * np.cumprod(np.concatenate(([1.0], 1.0 + step[:-1])))
    return x, close, bar_start, spans


def _accuracy(run):
    r = run.record
    scored = run.tested & np.isfinite(r.outcome) & (r.outcome != 0)
    return float((np.sign(r.outcome[scored]) == r.direction[scored]).mean()), int(scored.sum())


def test_the_same_seed_gives_the_same_predictions_and_another_seed_others():
    x, close, bar_start, spans = _remembered(200)
    first = walk_forward(x, close, bar_start, spans, 1, seed=3, folds=2, learner=LSTM)
    again = walk_forward(x, close, bar_start, spans, 1, seed=3, folds=2, learner=LSTM)
    for name in ("direction", "probability", "value"):
        np.testing.assert_array_equal(getattr(first.record, name), getattr(again.record, name))
    assert first.tested.sum() == 200 and np.isfinite(first.record.probability[first.tested]).all()
    assert not first.record.direction[~first.tested].any()  # no call outside the test windows
    other = walk_forward(x, close, bar_start, spans, 1, seed=4, folds=2, learner=LSTM)
    assert not np.array_equal(other.record.probability, first.record.probability)


def test_bars_from_a_test_window_on_change_no_prediction_made_before_it():
    x, close, bar_start, spans = _remembered(200)
    first = walk_forward(x, close, bar_start, spans, 2, folds=3, learner=LSTM)
    window = first.splits[-1].first
    later = bar_start >= window
    x2, close2 = x.copy(), close.copy()
    x2[later] = np.random.default_rng(9).normal(size=x2[later].shape)  # another future
    close2[later] *= np.exp(np.cumsum(np.random.default_rng(8).normal(0, 0.01, later.sum())))
    again = walk_forward(x2, close2, bar_start, spans, 2, folds=3, learner=LSTM)
    before = ~later
    assert first.tested[before].sum() > 0
    for name in ("direction", "probability", "value"):
        np.testing.assert_array_equal(
            getattr(first.record, name)[before], getattr(again.record, name)[before]
        )
    # the window's own predictions read its bars: the perturbation is seen there
    assert not np.array_equal(first.record.probability[later], again.record.probability[later])


def test_the_held_out_rows_come_after_every_fitted_row_and_its_outcome():
    x, close, bar_start, spans = _remembered(100)
    bars = Bars.of(x, close, bar_start, spans, 3)
    train = splits(bar_start, bars.outcome_at, bars.rows(), folds=2)[-1].train
    fit, held = holdout(bars, train, 0.2)
    assert len(fit) and len(held) and not np.isin(fit, held).any()
    assert bars.outcome_at[fit].max() < bar_start[held].min()
    times = np.unique(bar_start[train])
    assert bar_start[held].min() == times[int(len(times) * 0.8)]
    # too few bar times to cut: all fitted on
    fit, held = holdout(bars, train[:1], 0.2)
    assert fit.tolist() == train[:1].tolist() and len(held) == 0


def test_a_sequence_is_its_row_and_the_rows_before_it_within_its_series():
    z = np.arange(1.0, 13.0).reshape(6, 2)
    spans = [(0, 3, "A|1m"), (3, 6, "B|1m")]
    got = sequences(z, spans, np.array([0, 2, 4]), 3)
    assert got.shape == (3, 3, 2)
    np.testing.assert_array_equal(got[0], [[0, 0], [0, 0], [1, 2]])  # zeros before the series
    np.testing.assert_array_equal(got[1], [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(got[2], [[0, 0], [7, 8], [9, 10]])  # never A's rows


def test_the_scaling_standardises_with_the_rows_given_undefined_as_zero():
    x = np.array([[1.0, np.nan, 5.0], [3.0, np.nan, 5.0], [2.0, np.nan, 5.0]])
    scaling = Scaling.of(x[:2], np.array([0.01, -0.03]))
    assert scaling.mean == (2.0, 0.0, 5.0) and scaling.std == (1.0, 1.0, 1.0)
    assert scaling.scale == pytest.approx(0.02)
    np.testing.assert_array_equal(scaling.apply(x), [[-1, 0, 0], [1, 0, 0], [0, 0, 0]])
    assert scaling.apply(np.array([[100.0, 1.0, 5.0]]))[0, 0] == 5.0  # clipped
    assert Scaling.from_json(scaling.to_json()) == scaling


def test_a_pattern_in_the_earlier_bars_is_learned_and_a_shuffled_one_is_not():
    x, close, bar_start, spans = _remembered()
    accuracy, n = _accuracy(walk_forward(x, close, bar_start, spans, 1, folds=2, learner=LSTM))
    assert n > 350 and accuracy > 0.6
    shuffled = x[np.random.default_rng(2).permutation(len(x))]
    run = walk_forward(shuffled, close, bar_start, spans, 1, folds=2, learner=LSTM)
    assert 0.4 < _accuracy(run)[0] < 0.6


def test_saved_and_loaded_the_same_predictions_and_version(tmp_path):
    x, close, bar_start, spans = _remembered(120)
    bars = Bars.of(x, close, bar_start, spans, 1)
    rows = bars.rows()
    network = Network.train(bars, rows[np.isfinite(bars.outcome[rows])], 0, TINY)
    versions = Network.versions()
    meta = Artefact(
        name="lstm", version="", features=FEATURES, timeframe="1m", horizon=1, dataset="d",
        symbols=("S0", "S1"), trained_from="2023-11-14T22:13:20Z",
        trained_to="2023-11-15T00:12:20Z", rows=238, seed=0, marketpulse="0.1.0",
        sequence=TINY.sequence, keras=versions["keras"], jax=versions["jax"],
    )  # fmt: skip
    lake = LakeLocation.of(tmp_path / "lake")
    saved = save(lake, meta, network)
    assert save(lake, meta, network).version == saved.version and len(saved.version) == 12
    assert saved == dataclasses.replace(meta, version=saved.version)
    folder = tmp_path / "lake" / "_models" / "lstm" / saved.version
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.keras",
                                                        "scaling.json"]  # fmt: skip
    assert "lightgbm" not in (folder / "model.json").read_text(encoding="utf-8")
    loaded_meta, loaded = load(lake, "lstm", saved.version)
    assert loaded_meta == saved and loaded.sequence == TINY.sequence
    for got, want in zip(loaded.forecast(bars, rows), network.forecast(bars, rows), strict=True):
        np.testing.assert_array_equal(got, want)
    assert artefacts(lake) == [saved]
    retrained = Network.train(bars, rows[np.isfinite(bars.outcome[rows])], 1, TINY)
    assert save(lake, meta, retrained).version != saved.version


def test_without_keras_one_line_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # as if not installed
    with pytest.raises(ForecastError, match=r"^the lstm model needs Keras and JAX: pip install"):
        keras()
