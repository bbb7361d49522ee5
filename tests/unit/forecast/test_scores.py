"""A track record's figures, against values worked out by hand."""

import math

import numpy as np

from marketpulse.forecast.prequential import Record
from marketpulse.forecast.scores import SCORES, score

NAN = math.nan


def _record(direction, probability, value, outcome):
    return Record(np.array(direction, np.int8), np.array(probability, float),
                  np.array(value, float), np.array(outcome, float))  # fmt: skip


def test_accuracy_brier_and_error_over_the_bars_they_apply_to():
    record = _record(
        direction=[1, -1, 1, 0, 1, 1],
        probability=[0.8, 0.3, 0.6, 0.5, NAN, 0.9],
        value=[0.001, -0.002, NAN, 0.0, 0.001, 0.0],
        outcome=[0.002, 0.001, -0.001, 0.003, 0.0, NAN],
    )
    row = score("m", "1m", 1, record)
    assert set(row) == set(SCORES.names)
    assert row["predictions"] == 5  # the last bar's outcome is unknown
    assert row["moved"] == 4  # bar 4 did not move
    assert row["calls"] == 3  # bar 3 had no call
    assert math.isclose(row["accuracy_pct"], 100 / 3)  # only bar 0 went the called way
    # moved bars with a probability: 0, 1, 2, 3 -> (0.8-1)^2, (0.3-1)^2, (0.6-0)^2, (0.5-1)^2
    assert math.isclose(row["brier"], (0.04 + 0.49 + 0.36 + 0.25) / 4)
    # known bars with a value: 0, 1, 3, 4 -> 10, 30, 30, 10 bp
    assert math.isclose(row["mae_bp"], 20.0)
    assert row["mae_bp_low"] < 20.0 < row["mae_bp_high"]


def test_overlapping_outcomes_widen_the_intervals_not_the_figures():
    rng = np.random.default_rng(0)
    outcome = rng.normal(0, 0.001, 2_000)
    record = _record(np.sign(rng.normal(size=2_000)), np.full(2_000, 0.5),
                     np.zeros(2_000), outcome)  # fmt: skip
    one, five = score("m", "1m", 1, record), score("m", "1m", 5, record)
    assert math.isclose(one["accuracy_pct"], five["accuracy_pct"])
    assert math.isclose(one["mae_bp"], five["mae_bp"])
    width = one["mae_bp_high"] - one["mae_bp_low"]
    assert math.isclose(five["mae_bp_high"] - five["mae_bp_low"], width * math.sqrt(5))
    assert five["accuracy_high_pct"] - five["accuracy_low_pct"] > 2 * (
        one["accuracy_high_pct"] - one["accuracy_low_pct"]
    )


def test_a_model_without_calls_or_values_has_empty_figures():
    record = _record([0, 0], [NAN, NAN], [NAN, NAN], [0.001, -0.001])
    row = score("m", "1d", 1, record)
    assert row["accuracy_pct"] is None and row["brier"] is None and row["mae_bp"] is None
    assert row["predictions"] == 2
