"""Headline sentiment: VADER behind the scorer interface, a user's scorer, and their checks."""

import sys
import textwrap

import pytest

from marketpulse.exceptions import ConfigError
from marketpulse.news.sentiment import (
    ScorerError,
    Vader,
    classify,
    load_scorer,
    score_headlines,
)


def test_vader_scores_the_sign_of_plain_headlines():
    scores = Vader()(["Microsoft announces record profit, shares surge",
                      "Google faces lawsuit over privacy failures",
                      "Apple to hold annual meeting on Tuesday"])  # fmt: skip
    assert [classify(s) for s in scores] == ["positive", "negative", "neutral"]
    assert all(-1 <= s <= 1 for s in scores)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_scorers.py").write_text(
        textwrap.dedent("""
        def length(headlines):
            return [min(1.0, len(h) / 100) for h in headlines]

        class Bullish:
            def __call__(self, headlines):
                return [1.0] * len(headlines)

        def too_few(headlines):
            return [0.0]

        def out_of_range(headlines):
            return [2.0] * len(headlines)

        def not_a_number(headlines):
            return ["up"] * len(headlines)

        def broken(headlines):
            raise RuntimeError("model file missing")
    """)
    )
    monkeypatch.chdir(tmp_path)
    yield
    sys.modules.pop("my_scorers", None)


def test_a_users_function_or_class_is_the_scorer(user_module):
    assert load_scorer("vader").name == "vader"
    assert score_headlines(load_scorer("my_scorers:length"), ["x" * 50]) == [0.5]
    assert score_headlines(load_scorer("my_scorers:Bullish"), ["a", "b"]) == [1.0, 1.0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("my_scorers:too_few", "returned 1 scores for 2 headlines"),
        (
            "my_scorers:out_of_range",
            "returned 2.0 for headline 'a': expected a number from -1 to 1",
        ),
        ("my_scorers:not_a_number", "returned 'up' for headline 'a'"),
        ("my_scorers:broken", "scorer failed: RuntimeError: model file missing"),
    ],
)
def test_a_scorers_bad_answer_is_refused_in_one_line(user_module, spec, message):
    with pytest.raises(ScorerError, match=message.replace("(", r"\(")):
        score_headlines(load_scorer(spec), ["a", "b"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [("nowhere:score", "scorer 'nowhere:score': no module named 'nowhere'"),
     ("my_scorers:missing", "scorer 'my_scorers:missing': my_scorers has no attribute"),
     ("my_scorers", "scorer 'my_scorers': expected module:function")],
)  # fmt: skip
def test_a_scorer_that_cannot_be_loaded_is_named(user_module, spec, message):
    with pytest.raises(ConfigError, match=message):
        load_scorer(spec)


def test_nothing_to_score_calls_no_scorer():
    def fail(headlines):
        raise AssertionError("called")

    assert score_headlines(fail, []) == []
