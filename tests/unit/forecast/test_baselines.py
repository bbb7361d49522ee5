"""The baselines: what knowing nothing predicts."""

import math

from marketpulse.forecast.baselines import AlwaysUp, Drift, Persistence, RandomWalk


def test_persistence_repeats_the_last_outcome_as_a_sure_call():
    model = Persistence()
    assert model.predict({}).direction == 0  # nothing learned: no call
    model.learn({}, 0.002)
    assert model.predict({}) == (1, 1.0, 0.002)
    model.learn({}, -0.001)
    assert model.predict({}) == (-1, 0.0, -0.001)
    model.learn({}, 0.0)
    assert model.predict({})[:2] == (0, 0.5)


def test_always_up_is_up_for_sure_with_no_size():
    direction, probability, value = AlwaysUp().predict({"ret_1": -0.5})
    assert (direction, probability) == (1, 1.0)
    assert math.isnan(value)


def test_drift_is_the_mean_so_far_and_the_share_of_up_moves_among_moves():
    model = Drift()
    for outcome in (0.003, -0.001, 0.0, 0.002):
        model.learn({}, outcome)
    direction, probability, value = model.predict({})
    assert direction == 1
    assert probability == 2 / 3  # the flat outcome is not a move
    assert math.isclose(value, 0.001)


def test_random_is_a_seeded_fair_coin_expecting_no_change():
    calls = [RandomWalk(seed=5).predict({}) for _ in range(3)]
    assert calls[0] == calls[1] == calls[2]  # the same seed, the same first draw
    model = RandomWalk(seed=1)
    draws = [model.predict({}) for _ in range(4_000)]
    ups = sum(d.direction == 1 for d in draws)
    assert 1_850 < ups < 2_150  # fair: 2,000 +- 3.4 sd
    assert {d.probability for d in draws} == {0.5}
    assert {d.value for d in draws} == {0.0}
