"""Trained artefacts in the stream: the predictions the artefact makes of the same bars,
on its own timeframe and horizon, however the bars batch; a checkpoint holds no model."""

import pickle

import numpy as np
import pyarrow as pa
import pytest

from marketpulse.forecast import ForecastError
from marketpulse.forecast.artefacts import Artefact, save
from marketpulse.forecast.features import FEATURES, feature_columns, previous_closes
from marketpulse.forecast.stage import ForecastSettings, ForecastStage
from marketpulse.forecast.walkforward import Boosters
from marketpulse.sinks.lake_location import LakeLocation

from .test_stage import _bars

pytest.importorskip("lightgbm")


def _artefact(lake, timeframe="1m", horizon=2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, len(FEATURES))) * 0.01
    outcome = 0.001 * np.sign(x[:, 0]) + 0.0001 * rng.normal(size=500)
    meta = Artefact(
        name="gbm", version="", features=FEATURES, timeframe=timeframe, horizon=horizon,
        dataset="d", symbols=("AAA",), trained_from="2013-10-07T13:30:00Z",
        trained_to="2013-10-07T20:00:00Z", rows=500, seed=0, lightgbm="4.7.0",
        marketpulse="0.1.0",
    )  # fmt: skip
    boosters = Boosters.fit(x, outcome, 0)
    return save(lake, meta, boosters), boosters


def _stream(bars, settings, cuts, book=None):
    stage, book, parts = ForecastStage(settings), {} if book is None else book, []
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        piece = bars.slice(lo, hi - lo)
        parts.append(stage.step(book, piece.drop_columns(["vwap"]), piece))
    return pa.concat_tables(parts), book


def _with_timeframe(bars, timeframe):
    column = pa.array([timeframe] * bars.num_rows)
    return bars.set_column(bars.schema.get_field_index("timeframe"), "timeframe", column)


def test_the_stream_scores_each_bar_as_the_artefact_does_on_its_timeframe_only(tmp_path):
    lake = LakeLocation.of(tmp_path / "lake")
    meta, boosters = _artefact(lake)
    name = f"gbm:{meta.version}"
    bars = _bars()
    five = _with_timeframe(_bars(seed=1), "5m")  # another timeframe: not the artefact's
    both = pa.concat_tables([bars, five.cast(bars.schema)])
    settings = ForecastSettings(models=("drift", name), horizons=(1,), lake=lake)
    whole, _ = _stream(both, settings, [0, both.num_rows])
    pieces, _ = _stream(both, settings, [0, 3, 4, 299, 600, 601, both.num_rows])
    assert whole.equals(pieces)
    trained = whole.filter(pa.compute.equal(whole["model"], name))
    assert set(trained["timeframe"].to_pylist()) == {"1m"}
    assert set(trained["horizon"].to_pylist()) == {2}  # the artefact's, not the settings'
    assert trained.num_rows == bars.num_rows
    assert whole.num_rows == both.num_rows + bars.num_rows  # drift on every bar, gbm on 1m

    # the artefact over the same bars' features, series by series, in one batch call
    for symbol in ("AAA", "BBB"):
        mine = bars.filter(pa.compute.equal(bars["symbol"], symbol))
        close = mine.column("close").to_numpy()
        columns = feature_columns(mine, previous_closes(close, np.array([0])))
        x = np.column_stack([columns.get(f, np.full(len(close), np.nan)) for f in FEATURES])
        direction, probability, value = boosters.predict(x)
        got = trained.filter(pa.compute.equal(trained["symbol"], symbol))
        assert got["bar_start"].to_pylist() == mine["bar_start"].to_pylist()
        np.testing.assert_allclose(got["probability"].to_numpy(), probability, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["value"].to_numpy(), value, rtol=0, atol=1e-15)
        assert got["direction"].to_pylist() == direction.tolist()
    assert len(set(trained["probability"].to_pylist())) > 10  # it looks at the features


def test_a_checkpoint_holds_the_artefacts_name_not_its_model(tmp_path):
    lake = LakeLocation.of(tmp_path / "lake")
    meta, _ = _artefact(lake)
    settings = ForecastSettings(models=(f"gbm:{meta.version}",), lake=lake)
    bars = _bars()
    whole, _ = _stream(bars, settings, [0, bars.num_rows])
    first, book = _stream(bars, settings, [0, 200])
    data = pickle.dumps(book)
    assert len(data) < 60_000  # features of the last bars, not two boosters' trees
    assert str(tmp_path).encode() not in data  # nor where the lake is
    rest, _ = _stream(bars.slice(200), settings, [0, bars.num_rows - 200], pickle.loads(data))
    assert pa.concat_tables([first, rest]).equals(whole)


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (("gbm:0123456789ab",), "no model gbm:0123456789ab in the lake at"),
        (("gbm:latest",), "unknown model gbm:latest"),
        (("xgboost:0123456789ab",), "unknown model xgboost:0123456789ab"),
    ],
)
def test_an_artefact_that_is_not_there_is_named(tmp_path, models, message):
    with pytest.raises(ForecastError, match=message):
        ForecastSettings(models=models, lake=LakeLocation.of(tmp_path / "lake"))


def test_without_a_lake_a_trained_model_is_refused():
    with pytest.raises(ForecastError, match="is read from a lake, and none is set"):
        ForecastSettings(models=("gbm:0123456789ab",))
