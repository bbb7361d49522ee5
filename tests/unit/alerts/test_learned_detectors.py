"""Learned anomaly detectors (half_space, isolation_forest): what fires, and that it is stable.

The scores depend only on the rings (the bars before each row) and a fixed
seed, so batch cuts and restarts cannot change them; a bar with a missing
feature, in itself or in its window, is never scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from marketpulse.alerts import AlertEngine, HalfSpaceRule, IsolationForestRule, load_rules
from marketpulse.alerts.conditions import direction
from marketpulse.alerts.learned import average_path, half_space_scores, isolation_scores
from marketpulse.exceptions import RulesError

MINUTE = 60 * 10**9
JUMP = 150  # the jump bar of _calm()
EVERY = 1e-9  # a threshold every scored bar reaches


def _calm(bars, n: int = 200, seed: int = 0, symbol: str = "AAPL", jump: int | None = JUMP):
    """Calm bars (small returns, ranges and volumes) with, at ``jump``, a 5 % jump on 20x volume."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.uniform(-1e-3, 1e-3, n)))
    volume = rng.uniform(900, 1_100, n)
    if jump is not None:
        close[jump:] *= 1.05
        volume[jump] = 20_000
    high = close * (1 + rng.uniform(0.5e-3, 1.5e-3, n))
    low = close * (1 - rng.uniform(0.0, 0.5e-3, n))
    return bars(symbol, n=n, open=close.copy(), high=high, low=low, close=close, volume=volume)


def _rules(threshold: float | None = None, **fields):
    kept = {} if threshold is None else {"threshold": threshold}
    return [
        HalfSpaceRule(name="hs", cooldown=0, **kept, **fields),
        IsolationForestRule(name="iforest", cooldown=0, **kept, **fields),
    ]


def _scores(alerts) -> dict[tuple[str, str, int], float]:
    return {(a.rule, a.symbol, a.bar_start): a.details["score"] for a in alerts}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.type)
def test_a_jump_after_calm_bars_fires_on_the_jump_bar_only(bars, fired_at, seed, rule):
    rows = _calm(bars, seed=seed)
    assert fired_at(AlertEngine([rule]).evaluate(rows), rows) == [JUMP]


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.type)
def test_no_bar_is_scored_before_a_full_window(bars, fired_at, rule):
    rows = _calm(bars)
    every = type(rule)(name="every", threshold=EVERY, cooldown=0)
    # closes at lags 0 .. window + 1: the first bar scored is the 102nd
    assert fired_at(AlertEngine([every]).evaluate(rows), rows) == list(range(101, 200))


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.type)
@pytest.mark.parametrize("column", ["close", "high", "low", "volume"])
def test_a_missing_value_silences_the_bars_whose_window_holds_it(bars, fired_at, rule, column):
    rows = _calm(bars, n=260)
    rows[column][120] = np.nan  # in the jump's window (bars 50 .. 149)
    assert fired_at(AlertEngine([rule]).evaluate(rows), rows) == []
    every = type(rule)(name="every", threshold=EVERY, cooldown=0)
    fired = fired_at(AlertEngine([every]).evaluate(rows), rows)
    last = 121 if column == "close" else 120  # a close is read in the next bar's return too
    assert fired == [*range(101, 120), *range(last + 101, 260)]


def test_scores_are_the_same_for_any_batching_and_engine(bars, merge, take):
    rows = merge(*(_calm(bars, seed=s, symbol=f"S{s}", jump=60 + 20 * s) for s in range(4)))
    whole = _scores(AlertEngine(_rules(EVERY)).evaluate(rows))
    assert len(whole) == 2 * 4 * 99
    again = _scores(AlertEngine(_rules(EVERY)).evaluate(rows))
    assert again == whole  # same seed, same draws: identical, not close
    engine, cut = AlertEngine(_rules(EVERY)), []
    for i in range(len(rows["bar_end"])):  # row by row
        cut += engine.evaluate(take(rows, slice(i, i + 1)))
    assert _scores(cut) == whole
    other = _scores(AlertEngine(_rules(EVERY, seed=7)).evaluate(rows))
    assert other.keys() == whole.keys()
    assert other != whole


def test_a_restart_from_snapshots_scores_as_one_call(bars, merge, take):
    symbols = [f"S{s}" for s in range(3)]
    rows = merge(*(_calm(bars, seed=s, symbol=symbol) for s, symbol in enumerate(symbols)))
    whole = _scores(AlertEngine(_rules(EVERY)).evaluate(rows))
    engine, half = AlertEngine(_rules(EVERY)), len(rows["bar_end"]) // 2
    got = engine.evaluate(take(rows, slice(0, half)))
    saved = engine.snapshots(symbols)
    engine = AlertEngine(_rules(EVERY))
    engine.restore_all([engine.load(s, data) for s, data in zip(symbols, saved, strict=True)])
    got += engine.evaluate(take(rows, slice(half, None)))
    assert _scores(got) == whole


def test_scores_do_not_depend_on_the_other_rows_of_a_call():
    rng = np.random.default_rng(3)
    window, x = rng.normal(size=(300, 100, 3)), rng.normal(size=(300, 3))
    for score in (
        lambda x, w: half_space_scores(x, w, trees=25, height=8, seed=0),
        lambda x, w: isolation_scores(x, w, trees=100, seed=0),
    ):
        together = score(x, window)
        alone = np.concatenate([score(x[i : i + 1], window[i : i + 1]) for i in range(30)])
        np.testing.assert_array_equal(alone, together[:30])


def test_isolation_forest_scores_an_outlier_high_and_a_typical_bar_near_half():
    rng = np.random.default_rng(0)
    window = rng.normal(size=(200, 100, 3))
    typical = np.median(window, axis=1)  # the middle of each row's window
    outlier = np.full((200, 3), 8.0)
    assert isolation_scores(outlier, window, trees=100, seed=0).min() > 0.7
    middle = isolation_scores(typical, window, trees=100, seed=0)
    assert 0.35 < middle.mean() < 0.55
    drawn = isolation_scores(rng.normal(size=(200, 3)), window, trees=100, seed=0)
    assert 0.4 < np.median(drawn) < 0.55  # a bar drawn like the window's
    assert np.quantile(drawn, 0.9) < 0.7


def test_average_path_is_that_of_the_paper():
    c = average_path(256)
    assert c[:3].tolist() == [0.0, 0.0, 1.0]
    harmonic = np.sum(1.0 / np.arange(1, 255))
    assert c[255] == pytest.approx(2 * harmonic - 2 * 254 / 255, rel=1e-12)
    assert c[256] == pytest.approx(2 * (np.log(255) + np.euler_gamma) - 2 * 255 / 256, rel=1e-3)


def test_half_space_scores_lie_in_zero_one_and_rank_outliers_first():
    rng = np.random.default_rng(1)
    window = rng.normal(size=(400, 100, 3))
    window[:50, :, 1] = 2.0  # a flat feature
    x = rng.normal(size=(400, 3))
    x[::40] = 6.0
    score = half_space_scores(x, window, trees=25, height=8, seed=0)
    assert ((score >= 0) & (score <= 1)).all()
    assert set(np.argsort(-score)[:10].tolist()) == set(range(0, 400, 40))
    flat = np.full((2, 100, 3), 1.0)
    still, moved = half_space_scores(np.array([[1.0] * 3, [1.0, 1.0, 2.0]]), flat, 25, 8, 0)
    assert still == 0.0  # every window bar in every node of its path
    assert moved > 0.8


def test_half_space_ranks_the_outliers_of_a_stream_as_rivers_does():
    anomaly = pytest.importorskip("river.anomaly")
    rng = np.random.default_rng(0)
    stream = rng.normal(size=(600, 3))
    planted = {250, 330, 410, 520}
    stream[sorted(planted)] += [6.0, -6.0, 6.0]
    window = np.lib.stride_tricks.sliding_window_view(stream, 100, axis=0)[:-1]  # before each
    ours = half_space_scores(stream[100:], window.transpose(0, 2, 1), 25, 8, 0)
    # River's trees span [0, 1]: the first window's range scaled to its middle half, as ours
    lo, hi = stream[:100].min(axis=0), stream[:100].max(axis=0)
    model = anomaly.HalfSpaceTrees(n_trees=25, height=8, window_size=100, seed=0)
    theirs = []
    for i, row in enumerate(0.25 + 0.5 * (stream - lo) / (hi - lo)):
        features = dict(enumerate(np.clip(row, 0.0, 1.0).tolist()))
        if i >= 100:
            theirs.append(model.score_one(features))
        model.learn_one(features)
    for scores in (ours, np.array(theirs)):
        assert planted <= {int(i) + 100 for i in np.argsort(-scores)[:6]}


def test_message_details_and_direction(bars):
    rows = _calm(bars)
    alerts = AlertEngine(_rules()).evaluate(rows)
    assert [a.rule for a in alerts] == ["hs", "iforest"]
    jump = (rows["close"][JUMP] / rows["close"][JUMP - 1] - 1) * 100
    for a, model in zip(alerts, ("half-space trees", "an isolation forest"), strict=True):
        assert a.severity == "warning"
        assert a.message.startswith(f"AAPL 1m bar is anomalous to {model}: score 0.")
        assert f"over the 100 bars before it (return +{jump:.2f}%, range 0." in a.message
        assert a.message.endswith("%, volume 20,000)")
        assert set(a.details) == {"score", "threshold", "return", "range", "volume"}
        assert a.details["volume"] == 20_000
        assert direction(next(r for r in _rules() if r.name == a.rule), a.details) == 0


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("type: half_space\n    window: 5", 4, "window must be 20..1000 bars, got 5"),
        ("type: isolation_forest\n    window: 5", 4, "window must be 20..1000 bars, got 5"),
        ("type: half_space\n    trees: 0", 4, "trees must be 1..1000, got 0"),
        ("type: isolation_forest\n    trees: 0", 4, "trees must be 1..1000, got 0"),
        ("type: half_space\n    threshold: 1.5", 4, "threshold must be a score between 0 and 1"),
        ("type: isolation_forest\n    threshold: 0", 4, "threshold must be a score between 0 and"),
        ("type: half_space\n    height: 0", 4, "height must be 1..12 levels, got 0"),
        ("type: isolation_forest\n    seed: -1", 4, "seed must be >= 0, got -1"),
        ("type: isolation_forest\n    height: 4", 4, "unknown field 'height'"),
        ("type: half_space\n    trees: many", 4, "field 'trees': expected an integer"),
    ],
)
def test_bad_learned_fields_name_their_file_and_line(tmp_path, body, line, reason):
    path = tmp_path / "rules.yaml"
    path.write_text(f"rules:\n  - name: r\n    {body}\n", encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    text = str(info.value)
    assert text.startswith(f"{path}:{line}: rule 'r': ")
    assert reason in text
    assert "\n" not in text


def test_a_rules_file_of_learned_detectors_loads_with_defaults_and_values(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[rules]]\nname = "hst"\ntype = "half_space"\n'
        '[[rules]]\nname = "iforest"\ntype = "isolation_forest"\nwindow = 60\ntrees = 50\n'
        'threshold = 0.8\nseed = 3\nintervals = ["1m"]\n',
        encoding="utf-8",
    )
    hst, iforest = load_rules(path)
    assert hst == HalfSpaceRule(name="hst")
    assert (hst.window, hst.seed, hst.severity) == (100, 0, "warning")
    assert iforest == IsolationForestRule(
        name="iforest", window=60, trees=50, threshold=0.8, seed=3, intervals=("1m",)
    )


def test_a_rule_on_one_interval_leaves_the_others_unscored(bars, merge, fired_at):
    one = _calm(bars, symbol="A")
    five = {**_calm(bars, symbol="A"), "timeframe": np.full(200, "5m", object)}
    rows = merge(one, five)
    rule = IsolationForestRule(name="i", intervals=("5m",), cooldown=0)
    fired = AlertEngine([rule]).evaluate(rows)
    assert [(a.timeframe, a.bar_start) for a in fired] == [("5m", int(one["bar_start"][JUMP]))]


def test_the_guides_learned_example_loads_and_fires_on_the_jump(tmp_path, bars, fired_at):
    guide = Path(__file__).resolve().parents[3] / "docs" / "guides" / "alerts.md"
    section = guide.read_text(encoding="utf-8").split("**Learned detectors.**", 1)[1]
    path = tmp_path / "rules.yaml"
    path.write_text(section.split("```yaml\n", 1)[1].split("```", 1)[0], encoding="utf-8")
    rules = load_rules(path)
    assert [r.type for r in rules] == ["half_space", "isolation_forest"]
    rows = _calm(bars)
    assert fired_at(AlertEngine(rules).evaluate(rows), rows) == [JUMP, JUMP]
