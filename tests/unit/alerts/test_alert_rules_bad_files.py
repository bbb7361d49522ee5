"""Bad rules files are refused with the file, the line and the reason."""

from __future__ import annotations

import textwrap

import pytest

from marketpulse.alerts import load_rules
from marketpulse.exceptions import MarketPulseError, RulesError


def y(text: str) -> str:
    return textwrap.dedent(text)


# (file name, text, line of the problem, part of the reason)
BAD = [
    (
        "type.yaml",
        y("""\
        rules:
          - name: a
            type: rsi
            above: 70
          - name: b
            type: pirce_cross
            level: 1
        """),
        6,
        "unknown rule type 'pirce_cross'",
    ),
    (
        "missing_type.yaml",
        y("""\
        rules:
          - name: a
            level: 1
        """),
        2,
        "missing field 'type'",
    ),
    (
        "missing.yaml",
        y("""\
        rules:
          - name: a
            type: rsi
            above: 70

          - name: b
            type: price_cross
            direction: up
        """),
        6,
        "missing required field 'level'",
    ),
    (
        "wrong_type.yaml",
        y("""\
        rules:
          - name: b
            type: price_cross
            direction: up
            level: "100"
        """),
        5,
        "field 'level': expected a number, got str",
    ),
    (
        "bool.yaml",
        y("""\
        rules:
          - name: b
            type: volume_spike
            cooldown: yes
        """),
        4,
        "field 'cooldown': expected a number, got bool",
    ),
    (
        "typo.yaml",
        y("""\
        rules:
          - name: b
            type: price_cross
            levle: 100
        """),
        4,
        "unknown field 'levle' for a price_cross rule (did you mean 'level'?)",
    ),
    (
        "severity.yaml",
        y("""\
        rules:
          - name: b
            type: macd_cross

            severity: urgent
        """),
        5,
        "unknown severity 'urgent'",
    ),
    (
        "interval.yaml",
        y("""\
        rules:
          - name: b
            type: macd_cross
            intervals:
              - 1m
              - 7x
        """),
        6,
        "unknown interval '7x'",
    ),
    (
        "interval_flow.yaml",
        y("""\
        rules:
          - name: b
            type: macd_cross
            intervals: [1m, 3x]
        """),
        4,
        "unknown interval '3x'",
    ),
    (
        "interval_type.yaml",
        y("""\
        rules:
          - name: b
            type: macd_cross
            intervals:
              - 1m
              - 5
        """),
        6,
        "field 'intervals': expected a string, got int",
    ),
    (
        "duplicate.yaml",
        y("""\
        rules:
          - name: a
            type: macd_cross
          - type: rsi
            above: 70
            name: a
        """),
        6,
        "duplicate rule name 'a' (first defined at line 2)",
    ),
    (
        "duplicate_key.yaml",
        y("""\
        rules:
          - name: a
            type: rsi
            above: 70
            above: 80
        """),
        5,
        "duplicate key 'above'",
    ),
    (
        "window_type.yaml",
        y("""\
        rules:
          - name: a
            type: pct_change
            threshold: 2
            window: 2.5
        """),
        5,
        "field 'window': expected an integer, got float",
    ),
    (
        "intervals_scalar.yaml",
        y("""\
        rules:
          - name: a
            type: rsi
            above: 70
            intervals: 1m
        """),
        5,
        "field 'intervals': expected a list or null, got str",
    ),
    (
        "syntax.yaml",
        y("""\
        rules:
          - name: a
            type: rsi
            above: 70: 80
        """),
        4,
        "invalid YAML",
    ),
    (
        "not_a_table.yaml",
        y("""\
        rules:
          - name: a
            type: rsi
            above: 70
          - just a string
        """),
        5,
        "rule #2: must be a table",
    ),
    (
        "rsi_zone.yaml",
        y("""\
        rules:
          - name: a
            type: rsi
        """),
        3,
        "needs 'above' or 'below'",
    ),
    (
        "range.yaml",
        y("""\
        rules:
          - name: a
            type: pct_change
            window: 0
            threshold: 2
        """),
        4,
        "window must be 1..10000",
    ),
    (
        "cooldown.yaml",
        y("""\
        rules:
          - name: a
            type: macd_cross
            cooldown: -5
        """),
        4,
        "cooldown must be >= 0",
    ),
    (
        "top.yaml",
        y("""\
        rules:
          - name: a
            type: macd_cross
        rulez: []
        """),
        4,
        "unknown top-level key 'rulez'",
    ),
    ("empty.yaml", "", 1, "expected a top-level 'rules' list"),
    (
        "toml_type.toml",
        y("""\
        [[rules]]
        name = "a"
        type = "rsi"
        above = 70

        [[rules]]
        name = "b"
        type = "pirce_cross"
        level = 1
        """),
        8,
        "unknown rule type 'pirce_cross'",
    ),
    (
        "toml_missing.toml",
        y("""\
        [[rules]]
        name = "a"
        type = "rsi"
        above = 70

        [[rules]]
        name = "b"
        type = "price_cross"
        """),
        6,
        "missing required field 'level'",
    ),
    (
        "toml_wrong_type.toml",
        y("""\
        [[rules]]
        name = "b"
        type = "price_cross"
        level = "100"
        """),
        4,
        "field 'level': expected a number, got str",
    ),
    (
        "toml_typo.toml",
        y("""\
        [[rules]]
        name = "b"
        type = "price_cross"
        level = 100
        direcshun = "up"
        """),
        5,
        "unknown field 'direcshun'",
    ),
    (
        "toml_severity.toml",
        y("""\
        [[rules]]
        name = "b"
        type = "macd_cross"
        severity = "urgent"
        """),
        4,
        "unknown severity 'urgent'",
    ),
    (
        "toml_interval.toml",
        y("""\
        [[rules]]
        name = "b"
        type = "macd_cross"
        # watch these
        intervals = ["1m", "2x"]
        """),
        5,
        "unknown interval '2x'",
    ),
    (
        "toml_duplicate.toml",
        y("""\
        [[rules]]
        name = "a"
        type = "macd_cross"

        [[rules]]
        type = "rsi"
        above = 70
        name = "a"
        """),
        8,
        "duplicate rule name 'a' (first defined at line 2)",
    ),
    (
        "toml_syntax.toml",
        y("""\
        [[rules]]
        name = "a"
        type = "rsi"
        above =
        """),
        4,
        "invalid TOML",
    ),
    (
        "toml_top.toml",
        y("""\
        version = 2

        [[rules]]
        name = "a"
        type = "rsi"
        above = 70
        """),
        1,
        "unknown top-level key 'version'",
    ),
]


@pytest.mark.parametrize("name, text, line, reason", BAD, ids=[case[0] for case in BAD])
def test_bad_rules_file(write, name, text, line, reason):
    path = write(name, text)
    with pytest.raises(RulesError) as info:
        load_rules(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert reason in message
    assert isinstance(info.value, MarketPulseError)


def test_unreadable_and_unknown_suffix(write, tmp_path):
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")
    with pytest.raises(RulesError, match="unknown rules file type"):
        load_rules(write("rules.json", "{}"))
