"""Headline sentiment: the scorer interface, VADER's lexicon behind it, and a user's own.

A scorer is any callable that takes a batch of headlines and returns one score
each, from -1 (negative) to 1 (positive)::

    def score(headlines: list[str]) -> list[float]: ...

The default is :class:`Vader`: the compound score of VADER (Hutto and Gilbert,
2014; MIT licence), a lexicon and rules made for short social-media text that
runs offline in microseconds a headline. It knows no finance: "Apple beats
earnings estimates" scores 0, as does "Tesla recalls 2 million cars". No finance
word list with a licence that allows every use is packaged on PyPI (the
Loughran-McDonald dictionary is free for academic use only), so a finance model
is the user's to plug in: ``marketpulse news --scorer mypkg.finance:score`` loads
one (:func:`load_scorer`), and its scores are checked (one a headline, finite, within
[-1, 1]) before any is stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from marketpulse.exceptions import ConfigError, MarketPulseError

__all__ = [
    "NEGATIVE",
    "POSITIVE",
    "Scorer",
    "ScorerError",
    "Vader",
    "classify",
    "load_scorer",
    "score_headlines",
]

#: A batch of headlines in, one score each out, from -1 to 1.
Scorer = Callable[[list[str]], Sequence[float]]

#: VADER's own cut-offs of its compound score: at or above :data:`POSITIVE` a
#: headline is positive, at or below :data:`NEGATIVE` negative, neutral between.
POSITIVE = 0.05
NEGATIVE = -0.05


class ScorerError(MarketPulseError):
    """A scorer failed or returned scores that cannot be stored."""


class Vader:
    """VADER's compound score of each headline (``vaderSentiment``'s analyser)."""

    name = "vader"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyser = SentimentIntensityAnalyzer()

    def __call__(self, headlines: list[str]) -> list[float]:
        """Score each headline."""
        return [self._analyser.polarity_scores(text)["compound"] for text in headlines]


def load_scorer(spec: str) -> Scorer:
    """The scorer ``spec`` names: ``vader``, or a user's ``module:function``.

    A class is instantiated once (its instances are the scorer).

    Raises:
        ConfigError: one line naming the spec and what is wrong with it.
    """
    if spec.strip().lower() == "vader":
        return Vader()
    from marketpulse.plugins import load_plugin

    target: Any = load_plugin(spec, kind="scorer").function
    if isinstance(target, type):
        try:
            target = target()
        except Exception as exc:  # noqa: BLE001 - the user's class: whatever it raises
            raise ConfigError(
                f"scorer {spec!r}: {target.__name__}() failed: {type(exc).__name__}: {exc}"
            ) from None
        if not callable(target):
            raise ConfigError(f"scorer {spec!r}: its instances are not callable")
    return target


def score_headlines(scorer: Scorer, headlines: list[str]) -> list[float]:
    """Score ``headlines``, checking what the scorer returned.

    Raises:
        ScorerError: the scorer raised, or returned other than one finite score
            within [-1, 1] a headline (the first bad one is named).
    """
    if not headlines:
        return []
    try:
        scores = list(scorer(headlines))
    except Exception as exc:  # noqa: BLE001 - a user's scorer: whatever it raises
        raise ScorerError(f"scorer failed: {type(exc).__name__}: {exc}") from None
    if len(scores) != len(headlines):
        raise ScorerError(f"scorer returned {len(scores)} scores for {len(headlines)} headlines")
    for index, score in enumerate(scores):
        try:
            value = float(score)
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and -1.0 <= value <= 1.0):
            raise ScorerError(
                f"scorer returned {score!r} for headline {headlines[index]!r}: "
                "expected a number from -1 to 1"
            )
        scores[index] = value
    return scores


def classify(score: float) -> str:
    """``positive``, ``negative`` or ``neutral``, by VADER's cut-offs."""
    if score >= POSITIVE:
        return "positive"
    if score <= NEGATIVE:
        return "negative"
    return "neutral"
