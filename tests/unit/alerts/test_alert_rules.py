"""Rules files: loading, validation errors naming file and line, the default set."""

from __future__ import annotations

import pytest

import marketpulse.alerts
from marketpulse.alerts import (
    RULE_TYPES,
    AlertEngine,
    BollingerRule,
    MacdCrossRule,
    PctChangeRule,
    PriceCrossRule,
    RsiRule,
    VolumeSpikeRule,
    default_rules,
    load_rules,
)
from marketpulse.exceptions import RulesError

GOOD_YAML = """\
rules:
  - name: aapl_200
    type: price_cross
    level: 200
    direction: up
    symbols: [AAPL]
    severity: critical
  - name: move
    type: pct_change
    window: 5
    threshold: 2.5
    intervals: [1m, 5m]
    cooldown: 60
  - name: rsi
    type: rsi
    above: 70
    below: 30
  - name: macd
    type: macd_cross
  - name: bb
    type: bollinger
    direction: down
  - name: vol
    type: volume_spike
    k: 4
"""

GOOD_TOML = """\
# the same rules as GOOD_YAML
[[rules]]
name = "aapl_200"
type = "price_cross"
level = 200
direction = "up"
symbols = ["AAPL"]
severity = "critical"

[[rules]]
name = "move"
type = "pct_change"
window = 5
threshold = 2.5
intervals = ["1m", "5m"]
cooldown = 60

[[rules]]
name = "rsi"
type = "rsi"
above = 70
below = 30

[[rules]]
name = "macd"
type = "macd_cross"

[[rules]]
name = "bb"
type = "bollinger"
direction = "down"

[[rules]]
name = "vol"
type = "volume_spike"
k = 4
"""

EXPECTED = [
    PriceCrossRule(
        name="aapl_200", level=200.0, direction="up", symbols=("AAPL",), severity="critical"
    ),
    PctChangeRule(name="move", window=5, threshold=2.5, intervals=("1m", "5m"), cooldown=60.0),
    RsiRule(name="rsi", above=70.0, below=30.0),
    MacdCrossRule(name="macd"),
    BollingerRule(name="bb", direction="down"),
    VolumeSpikeRule(name="vol", k=4.0),
]


@pytest.mark.parametrize(
    "name, text", [("r.yaml", GOOD_YAML), ("r.yml", GOOD_YAML), ("r.toml", GOOD_TOML)]
)
def test_load_good_file(write, name, text):
    rules = load_rules(write(name, text))
    assert rules == EXPECTED
    detectors = ("robust_z", "gap", "vol_regime", "stale_feed")  # test_anomaly_rules.py
    detectors += ("half_space", "isolation_forest")  # test_learned_detectors.py
    assert [r.type for r in rules] == [t for t in RULE_TYPES if t not in ("cross", *detectors)]
    assert [r.severity for r in rules] == ["critical", "warning", "info", "info", "info", "warning"]
    assert rules[0].cooldown == 300.0


def test_yaml_and_toml_load_to_the_same_rules(write):
    assert load_rules(write("a.yaml", GOOD_YAML)) == load_rules(write("a.toml", GOOD_TOML))


def test_default_rules():
    rules = default_rules()
    names = [r.name for r in rules]
    assert len(set(names)) == len(names)
    by_name = {r.name: r for r in rules}
    assert by_name["rsi_overbought"] == RsiRule(
        name="rsi_overbought", above=70, intervals=("1m", "5m", "1d")
    )
    assert by_name["rsi_oversold"] == RsiRule(
        name="rsi_oversold", below=30, intervals=("1m", "5m", "1d")
    )
    assert by_name["news_move"] == PctChangeRule(
        name="news_move", window=10, threshold=0.5, intervals=("1s",)
    )
    assert by_name["daily_move"] == PctChangeRule(
        name="daily_move", window=1, threshold=3, intervals=("1d",)
    )
    assert by_name["volume_spike"] == VolumeSpikeRule(name="volume_spike", k=3, intervals=("1m",))
    assert by_name["pct_move_5_bars"] == PctChangeRule(
        name="pct_move_5_bars", window=5, threshold=2, intervals=("1m",)
    )
    # price levels and crosses of declared columns are the user's to choose
    # and the anomaly detectors are opt-in (examples in default_rules.yaml's comments)
    detectors = {"robust_z", "gap", "vol_regime", "stale_feed", "half_space", "isolation_forest"}
    assert {r.type for r in rules} == set(RULE_TYPES) - {"price_cross", "cross", *detectors}
    AlertEngine(rules)  # valid as a set


def test_rule_validate_on_direct_construction():
    with pytest.raises(RulesError, match="direction"):
        PriceCrossRule(name="p", level=1, direction="sideways").validate()
    with pytest.raises(RulesError, match="k must be > 0"):
        VolumeSpikeRule(name="v", k=0).validate()


def test_exported_names():
    assert sorted(marketpulse.alerts.__all__) == sorted(
        [
            "RULE_TYPES",
            "AlertEngine",
            "BollingerRule",
            "Channel",
            "CrossRule",
            "GapRule",
            "HalfSpaceRule",
            "IsolationForestRule",
            "JsonLinesNotifier",
            "MacdCrossRule",
            "Notifications",
            "Notifier",
            "Notifiers",
            "PctChangeRule",
            "PriceCrossRule",
            "RobustZRule",
            "RsiRule",
            "StaleFeedRule",
            "VolRegimeRule",
            "Rule",
            "VolumeSpikeRule",
            "default_rules",
            "load_notifications",
            "load_rules",
        ]
    )
    for name in marketpulse.alerts.__all__:
        assert hasattr(marketpulse.alerts, name)
