"""A rules file cannot make the process expand YAML aliases or render Python internals."""

import pytest

from marketpulse.alerts import load_notifications, load_rules
from marketpulse.alerts.messages import render
from marketpulse.alerts.templates import MAX_WIDTH, fill, template_problem
from marketpulse.exceptions import RulesError
from marketpulse.models import Alert

RULE = "rules:\n  - name: news_move\n    type: pct_change\n    window: 10\n    threshold: 0.5\n"


def laughs(levels: int = 9) -> str:
    """Nested aliases in a notifier's settings: 9**levels strings from under 1 KB."""
    lines = ["notifiers:", "  desk:", "    type: webhook", "    url: http://127.0.0.1:9/x",
             '    l0: &l0 ["' + '", "'.join(["lol"] * 9) + '"]']  # fmt: skip
    lines += [f"    l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return RULE + "\n".join(lines) + "\n"


@pytest.mark.parametrize("load", [load_rules, lambda path: load_notifications(path, {})])
def test_yaml_aliases_are_refused_with_file_and_line(tmp_path, load):
    path = tmp_path / "rules.yaml"
    path.write_text(laughs())
    assert path.stat().st_size < 1_000
    with pytest.raises(RulesError, match=r"rules\.yaml:11: YAML alias \*l0 is not accepted"):
        load(path)


def test_an_alias_anywhere_in_the_file_is_refused(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULE + "  - &r {name: a, type: rsi, above: 70}\n  - *r\n")
    with pytest.raises(RulesError, match=r":7: YAML alias \*r"):
        load_rules(path)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{symbol:>1500000000}", f"width 1500000000 is more than {MAX_WIDTH}"),
        ("{message:.999}", f"precision 999 is more than {MAX_WIDTH}"),
        ("{symbol.__class__.__base__.__subclasses__}", "alert fields only, no attribute"),
        ("{details[0]}", "alert fields only, no attribute or index"),
        ("{0}", "name an alert field"),
        ("{}", "name an alert field"),
        ("{price}", "unknown field {price} (fields: id, rule"),
        ("{symbol:>{width}}", "is not text formatting"),
        ("{symbol:,d}", "is not text formatting"),
        ("{symbol!z}", "unknown conversion"),
        ("{symbol", "not a valid template"),
    ],
)
def test_bad_templates_say_what_is_wrong(template, problem):
    assert problem in template_problem(template)


def test_good_templates_render_alert_fields_as_text():
    assert template_problem("[{severity}] {symbol:<6}|{rule!r} {message:.4} {{x}}") == ""
    alert = Alert(id="i", rule="r", symbol="SPY", timeframe="1m", bar_start=0,
                  bar_end=60 * 10**9, severity="info", message="moved a lot")  # fmt: skip
    text = render("[{severity}] {symbol:<6}|{rule!r} {message:.5} {{x}} {dataset}", alert)
    assert text == "[info] SPY   |'r' moved {x} None"
    assert fill("{symbol:*^9}", {"symbol": "SPY"}) == "***SPY***"


@pytest.mark.parametrize("template", ["{symbol:>1500000000}", "{symbol.__class__}"])
def test_a_bad_template_is_refused_when_the_file_loads(tmp_path, template):
    path = tmp_path / "rules.yaml"
    path.write_text(
        RULE + f"notifiers:\n  desk:\n    type: slack\n    url: http://x\n"
        f"    template: '{template}'\n"
    )
    with pytest.raises(RulesError, match=r"rules\.yaml:10: notifier 'desk': template: \{symbol"):
        load_notifications(path, {})
