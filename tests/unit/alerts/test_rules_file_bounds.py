"""A rules file cannot make the process expand YAML aliases."""

import pytest

from marketpulse.alerts import load_notifications, load_rules
from marketpulse.exceptions import RulesError

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
