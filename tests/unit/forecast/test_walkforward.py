"""Walk-forward gradient boosting: training windows strictly before their test windows."""

import numpy as np
import pytest

from marketpulse.forecast.exceptions import ForecastError
from marketpulse.forecast.features import FEATURES
from marketpulse.forecast.walkforward import outcome_times, splits, walk_forward

pytest.importorskip("lightgbm")

MINUTE = 60 * 10**9
T0 = 1_700_000_000 * 10**9


def _series(bars, symbols=3, stagger=0):
    """Bar starts of ``symbols`` series a minute apart, each ``stagger`` bars after the last."""
    starts, spans = [], []
    for s in range(symbols):
        begin = len(starts)
        starts += [T0 + (s * stagger + i) * MINUTE for i in range(bars)]
        spans.append((begin, len(starts), f"S{s}|1m"))
    return np.array(starts, np.int64), spans


def _learnable(bars=600, symbols=3, seed=1):
    """Each bar's next return has the sign of its ``trend`` feature."""
    rng = np.random.default_rng(seed)
    bar_start, spans = _series(bars, symbols)
    x = rng.normal(size=(len(bar_start), len(FEATURES)))
    x[:, FEATURES.index("spread")] = np.nan  # an undefined feature: LightGBM takes NaN
    close = np.empty(len(bar_start))
    signal = x[:, FEATURES.index("trend")]
    for begin, end, _ in spans:
        step = 0.0005 * np.sign(signal[begin:end]) + 0.0002 * rng.normal(size=end - begin)
        close[begin:end] = 100.0 * np.cumprod(np.concatenate(([1.0], 1.0 + step[:-1])))
    return x, close, bar_start, spans


def _accuracy(run):
    r = run.record
    scored = run.tested & np.isfinite(r.outcome) & (r.outcome != 0)
    return float((np.sign(r.outcome[scored]) == r.direction[scored]).mean()), int(scored.sum())


@pytest.mark.parametrize(("h", "stagger"), [(1, 0), (3, 0), (5, 7)])
def test_no_training_row_has_its_outcome_in_or_after_its_test_window(h, stagger):
    bar_start, spans = _series(100, stagger=stagger)
    outcome_at = outcome_times(bar_start, spans, h)
    rows = np.arange(len(bar_start))
    found = splits(bar_start, outcome_at, rows, folds=5)
    assert len(found) == 5
    for split in found:
        assert len(split.train) > 0
        assert (outcome_at[split.train] < split.first).all()
        assert (bar_start[split.train] < split.first).all()
        assert bar_start[split.test].min() == split.first
        assert bar_start[split.test].max() == split.last
        # the purge: a bar whose outcome is inside the window is not trained on
        purged = rows[(bar_start < split.first) & (outcome_at >= split.first)]
        assert len(purged) > 0 and not np.isin(purged, split.train).any()
    # the training sets grow: each fold keeps the earlier bars
    for before, after in zip(found, found[1:], strict=False):
        assert set(before.train) < set(after.train)


def test_the_folds_cover_the_test_span_once_and_only_it():
    bar_start, spans = _series(101, symbols=2, stagger=3)
    rows = np.arange(len(bar_start))
    found = splits(bar_start, outcome_times(bar_start, spans, 1), rows, folds=4)
    tested = np.concatenate([s.test for s in found])
    times = np.unique(bar_start)
    span = rows[bar_start >= times[len(times) // 2]]
    assert sorted(tested.tolist()) == span.tolist()  # each row once
    lengths = [len(np.unique(bar_start[s.test])) for s in found]
    assert max(lengths) - min(lengths) <= 1  # windows of equal length
    assert all(a.last < b.first for a, b in zip(found, found[1:], strict=False))


def test_too_few_bars_for_the_folds_is_an_error():
    bar_start, spans = _series(6, symbols=1)
    with pytest.raises(ForecastError, match="too few for 5 walk-forward test windows"):
        splits(bar_start, outcome_times(bar_start, spans, 1), np.arange(6), folds=5)


def test_the_same_seed_gives_the_same_predictions():
    x, close, bar_start, spans = _learnable(300)
    first = walk_forward(x, close, bar_start, spans, 1, seed=3)
    again = walk_forward(x, close, bar_start, spans, 1, seed=3)
    for name in ("direction", "probability", "value"):
        np.testing.assert_array_equal(getattr(first.record, name), getattr(again.record, name))
    assert not first.record.direction[~first.tested].any()  # no call outside the test windows


def test_a_learnable_pattern_is_learned_and_a_shuffled_one_is_not():
    x, close, bar_start, spans = _learnable()
    accuracy, n = _accuracy(walk_forward(x, close, bar_start, spans, 1))
    assert n > 800 and accuracy > 0.8
    shuffled = x[np.random.default_rng(2).permutation(len(x))]
    accuracy, n = _accuracy(walk_forward(shuffled, close, bar_start, spans, 1))
    assert 0.42 < accuracy < 0.58


def test_any_learner_gets_the_folds_training_rows_and_forecasts_its_test_rows():
    from marketpulse.forecast.walkforward import Bars

    x, close, bar_start, spans = _learnable(100, symbols=2)
    seen = []

    class Last:
        """Calls each row up, with the number of rows it trained on as its value."""

        def __init__(self, bars, rows, seed):
            assert isinstance(bars, Bars) and seed == 7
            assert np.isfinite(bars.outcome[rows]).all()  # every training outcome known
            seen.append(rows)
            self.n = len(rows)

        def forecast(self, bars, rows):
            n = len(rows)
            return np.ones(n, np.int8), np.full(n, 0.75), np.full(n, float(self.n))

    run = walk_forward(x, close, bar_start, spans, 2, seed=7, folds=3, learner=Last)
    assert [s.train.tolist() for s in run.splits] == [r.tolist() for r in seen]
    for split in run.splits:
        assert (run.record.value[split.test] == len(split.train)).all()
    assert (run.record.probability[run.tested] == 0.75).all()
    assert np.isnan(run.record.value[~run.tested]).all()
