"""The stream's stage: bar by bar, the predictions of the prequential run, however bars batch."""

import math
import pickle

import numpy as np
import pyarrow as pa
import pytest

from marketpulse.forecast import ForecastError
from marketpulse.forecast.catalog import MODELS
from marketpulse.forecast.features import INDICATORS, feature_columns, feature_rows, previous_closes
from marketpulse.forecast.prequential import prequential
from marketpulse.forecast.stage import ForecastSettings, ForecastStage
from marketpulse.indicators import compute

MINUTE = 60 * 10**9
T0 = 1_381_152_600 * 10**9  # 2013-10-07 13:30 UTC


def _bars(n=300, seed=0):
    """Two symbols' 1-minute bars, interleaved in closing order, with their indicators."""
    rng = np.random.default_rng(seed)
    rows = []
    for symbol, start in (("AAA", 50.0), ("BBB", 120.0)):
        close = start * np.cumprod(1 + rng.normal(0, 0.002, n))
        for i in range(n):
            high, low = close[i] * 1.001, close[i] * 0.999
            rows.append({"symbol": symbol, "timeframe": "1m", "bar_start": T0 + i * MINUTE,
                         "bar_end": T0 + (i + 1) * MINUTE, "open": close[i - 1] if i else start,
                         "high": high, "low": low, "close": close[i],
                         "volume": float(rng.integers(100, 1000)), "dataset": "test"})  # fmt: skip
    rows.sort(key=lambda r: (r["bar_start"], r["symbol"]))
    bars = pa.Table.from_pylist(rows)
    return compute(bars, INDICATORS)


def _stream(bars, settings, cuts):
    stage, book, parts = ForecastStage(settings), {}, []
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        piece = bars.slice(lo, hi - lo)
        parts.append(stage.step(book, piece.drop_columns(["vwap"]), piece))
    return pa.concat_tables(parts), book


def test_the_stream_predicts_what_the_prequential_run_does_however_the_bars_batch():
    bars = _bars()
    settings = ForecastSettings(models=("online-linear", "drift", "random"), horizons=(1, 3))
    whole, _ = _stream(bars, settings, [0, bars.num_rows])
    pieces, _ = _stream(bars, settings, [0, 1, 7, 8, 250, 400, bars.num_rows])
    assert whole.equals(pieces)
    assert whole.num_rows == bars.num_rows * 3 * 2

    # the batch run over the same bars, series by series
    order = sorted(range(bars.num_rows), key=lambda i: (bars["symbol"][i].as_py(), i))
    ordered = bars.take(order)
    starts = np.array([0, 300])
    close = ordered.column("close").to_numpy()
    rows = feature_rows(feature_columns(ordered, previous_closes(close, starts)))
    spans = [(0, 300, "AAA|1m"), (300, 600, "BBB|1m")]
    for h in (1, 3):
        records = prequential(rows, close, spans, {m: MODELS[m] for m in settings.models}, h)
        for model, record in records.items():
            mine = whole.filter(
                pa.compute.and_(pa.compute.equal(whole["model"], model),
                                pa.compute.equal(whole["horizon"], h))
            ).take(order)  # fmt: skip
            assert mine["direction"].to_pylist() == record.direction.tolist(), (model, h)
            got = np.array(mine["probability"].to_pylist(), float)
            assert np.allclose(got, record.probability, equal_nan=True, rtol=0, atol=1e-15)


def test_a_pickled_book_goes_on_as_if_never_stopped():
    """What the checkpoint keeps: the series' models and last bars, pickled."""
    bars = _bars(seed=1)
    settings = ForecastSettings(models=("online-linear", "persistence"), horizons=(2,))
    whole, _ = _stream(bars, settings, [0, bars.num_rows])
    stage, book = ForecastStage(settings), {}
    first = stage.step(book, bars.slice(0, 333), bars.slice(0, 333))
    restored = pickle.loads(pickle.dumps(book, protocol=5))
    rest = ForecastStage(settings).step(restored, bars.slice(333), bars.slice(333))
    assert pa.concat_tables([first, rest]).equals(whole)


def test_models_added_later_start_afresh_and_removed_ones_go():
    bars = _bars(n=50)
    before = ForecastSettings(models=("drift",), horizons=(1,))
    _, book = _stream(bars, before, [0, bars.num_rows])
    after = ForecastSettings(models=("drift", "random"), horizons=(1, 4))
    out = ForecastStage(after).step(book, bars.slice(0, 2), bars.slice(0, 2))
    assert set(zip(out["model"].to_pylist(), out["horizon"].to_pylist(), strict=True)) == {
        ("drift", 1),
        ("random", 1),
        ("drift", 4),
        ("random", 4),
    }
    drift = [r for r in out.to_pylist() if (r["model"], r["horizon"]) == ("drift", 1)]
    assert all(not math.isnan(r["value"]) for r in drift)  # drift kept what it learned


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"models": ("lstm",)}, "forecast models: unknown model lstm"),
        ({"models": ("drift",), "horizons": (0,)}, "forecast horizons: whole numbers"),
    ],
)
def test_bad_settings_are_named(settings, named):
    with pytest.raises(ForecastError, match=named):
        ForecastSettings(**settings)
