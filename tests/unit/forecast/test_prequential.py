"""Prequential evaluation: predict from bar t, learn bar t's outcome only once it is known."""

import math

import numpy as np
import pytest

from marketpulse.forecast import MODELS
from marketpulse.forecast.base import Forecast
from marketpulse.forecast.prequential import outcomes, prequential
from marketpulse.forecast.scores import score


class Spy:
    """Logs every call with the bar it concerns (each bar's features carry its row)."""

    log: list[tuple[str, int, float]] = []

    def __init__(self, seed):
        self.seed = seed

    def predict(self, features):
        Spy.log.append(("predict", features["row"], math.nan))
        return Forecast(1, 0.6, 0.0)

    def learn(self, features, outcome):
        Spy.log.append(("learn", features["row"], outcome))


def _walk(returns, start=100.0):
    return start * np.cumprod(1.0 + np.asarray(returns))


@pytest.mark.parametrize("h", [1, 3])
def test_an_outcome_is_learned_only_after_the_bar_it_ends_on_is_predicted_from(h):
    close = _walk(np.linspace(-0.01, 0.01, 12))
    rows = [{"row": float(i)} for i in range(12)]
    spans = [(0, 7, "A|1m"), (7, 12, "B|1m")]
    Spy.log = []
    prequential(rows, close, spans, {"spy": Spy}, h)
    predicted: set[int] = set()
    learned: list[int] = []
    for kind, row, outcome in Spy.log:
        row = int(row)
        if kind == "predict":
            # every outcome learned so far ended at this bar or before: none is in its future
            assert all(done + h <= row for done in learned if (done < 7) == (row < 7))
            predicted.add(row)
            continue
        series_end = 7 if row < 7 else 12
        assert row + h < series_end, "an outcome past the series' end was learned"
        # learned as soon as it is known: the model has predicted from every bar before
        # the one the outcome ends on
        assert row + h - 1 in predicted
        assert math.isclose(outcome, close[row + h] / close[row] - 1.0)
        learned.append(row)
    assert predicted == set(range(12))
    # no series learns another's bars: B's first learn is of B's own first bar
    assert learned == [*range(0, 7 - h), *range(7, 12 - h)]


def test_outcomes_stop_at_each_series_end():
    close = np.array([1.0, 2.0, 4.0, 10.0, 20.0])
    got = outcomes(close, [(0, 3), (3, 5)], 1)
    assert got[:2].tolist() == [1.0, 1.0]
    assert math.isnan(got[2])  # A's last bar: B's close is not its future
    assert got[3] == 1.0
    assert math.isnan(got[4])


def _ar_series(phi, n, seed):
    """Returns that follow r[t] = phi r[t-1] + noise (phi < 0: bid-ask bounce)."""
    rng = np.random.default_rng(seed)
    r = np.zeros(n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + rng.normal(0, 0.001)
    close = _walk(r)
    rows = [{"ret_1": float(r[t])} for t in range(n)]
    return rows, close


def _accuracy(phi, model, seed=3):
    rows, close = _ar_series(phi, 3_000, seed)
    records = prequential(rows, close, [(0, len(close), "X|1s")], {model: MODELS[model]}, 1)
    return score(model, "1s", 1, records[model])


def test_the_online_model_learns_a_bounce_that_persistence_gets_backwards():
    learned = _accuracy(-0.5, "online-linear")
    assert learned["accuracy_low_pct"] > 60.0
    assert learned["brier"] < 0.24  # better calibrated than a coin's 0.25
    persistence = _accuracy(-0.5, "persistence")
    assert persistence["accuracy_high_pct"] < 40.0


def test_on_a_random_walk_the_online_model_is_no_better_than_a_coin():
    for seed in (1, 2):
        row = _accuracy(0.0, "online-linear", seed)
        assert row["accuracy_low_pct"] < 50.0 < row["accuracy_high_pct"]


def test_the_same_seed_gives_the_same_record_and_another_seed_another_coin():
    rows, close = _ar_series(-0.3, 400, 0)
    spans = [(0, 400, "X|1m")]

    def run(seed):
        records = prequential(rows, close, spans, MODELS, 2, seed)
        return {name: score(name, "1m", 2, rec) for name, rec in records.items()}

    first, again, other = run(0), run(0), run(1)
    assert first == again
    assert first["random"]["accuracy_pct"] != other["random"]["accuracy_pct"]
    assert first["online-linear"] == other["online-linear"]  # nothing drawn


def test_a_feature_constant_for_long_then_moving_does_not_send_the_weights_off():
    """Daily index series open with years of open = high = low = close: a tiny variance."""
    rng = np.random.default_rng(4)
    n = 600
    returns = rng.normal(0, 0.01, n)
    flat = [{"range": 1e-12 * (t % 2), "ret_1": float(returns[t])} for t in range(300)]
    moving = [{"range": 0.02 + 0.01 * rng.random(), "ret_1": float(returns[t])}
              for t in range(300, n)]  # fmt: skip
    records = prequential(flat + moving, _walk(returns), [(0, n, "X|1d")],
                          {"online-linear": MODELS["online-linear"]}, 1)  # fmt: skip
    values = records["online-linear"].value[1:]
    assert np.isfinite(values).all()
    assert np.abs(values).max() < 0.1  # no predicted daily move of 10 % or more
