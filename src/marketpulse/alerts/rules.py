"""Alert rule types: one frozen struct per type, with its checks.

The structs match the rule tables of a rules file (see
:mod:`marketpulse.alerts.loading`): the ``type`` field picks the struct, the
other keys are its fields.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from marketpulse.exceptions import RulesError
from marketpulse.timeframes import is_interval

__all__ = [
    "RULE_TYPES",
    "SEVERITIES",
    "BollingerRule",
    "MacdCrossRule",
    "PctChangeRule",
    "PriceCrossRule",
    "RsiRule",
    "Rule",
    "VolumeSpikeRule",
    "GapRule",
    "RobustZRule",
    "StaleFeedRule",
    "VolRegimeRule",
    "HalfSpaceRule",
    "IsolationForestRule",
]

SEVERITIES = ("info", "warning", "critical")
_DIRECTIONS = ("up", "down", "both")


class Rule(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=True):
    """Fields common to every rule.

    Attributes:
        name: unique name; it is the ``rule`` of the alerts raised.
        severity: ``info``, ``warning`` or ``critical`` (default by type).
        intervals: bar intervals the rule watches (``None``: all).
        symbols: symbols the rule watches (``None``: all).
        cooldown: seconds of event time after a fire during which the rule stays
            quiet for that symbol and interval.
    """

    name: str
    severity: str = "info"
    intervals: tuple[str, ...] | None = None
    symbols: tuple[str, ...] | None = None
    cooldown: float = 300.0

    @property
    def type(self) -> str:
        """Return the rule type, as written in rules files."""
        return self.__struct_config__.tag  # type: ignore[return-value]

    def validate(self) -> None:
        """Check the values beyond their types.

        Raises:
            RulesError: a value is out of range or unknown.
        """
        for _field, reason in self._problems():
            raise RulesError(f"rule {self.name!r}: {reason}")

    def _problems(self) -> Iterator[tuple[str, str]]:
        """Yield ``(field, reason)`` for each invalid value."""
        if not self.name.strip():
            yield "name", "name must not be empty"
        if self.severity not in SEVERITIES:
            yield (
                "severity",
                f"unknown severity {self.severity!r} (one of: {', '.join(SEVERITIES)})",
            )
        for iv in self.intervals or ():
            if not is_interval(iv):
                yield "intervals", f"unknown interval {iv!r} (as 1m, 15m, 4h, 1d, 1w)"
        if self.cooldown < 0:
            yield "cooldown", f"cooldown must be >= 0 seconds, got {self.cooldown}"
        direction = getattr(self, "direction", "both")
        if direction not in _DIRECTIONS:
            yield "direction", f"unknown direction {direction!r} (one of: up, down, both)"


class PriceCrossRule(Rule, tag="price_cross", kw_only=True):
    """Close crosses ``level`` (``up``: from below to at-or-above)."""

    level: float
    direction: str = "both"
    severity: str = "warning"


class PctChangeRule(Rule, tag="pct_change", kw_only=True):
    """``|close / close[window bars ago] - 1| * 100 >= threshold`` (level-triggered)."""

    window: int
    threshold: float
    direction: str = "both"
    severity: str = "warning"

    def _problems(self) -> Iterator[tuple[str, str]]:
        yield from super()._problems()
        if not 1 <= self.window <= 10_000:
            yield "window", f"window must be 1..10000 bars, got {self.window}"
        if self.threshold <= 0:
            yield "threshold", f"threshold must be > 0 percent, got {self.threshold}"


class RsiRule(Rule, tag="rsi", kw_only=True):
    """``column`` (an RSI) crosses into the zone at or above ``above`` / at or below ``below``."""

    above: float | None = None
    below: float | None = None
    column: str = "rsi_14"

    def _problems(self) -> Iterator[tuple[str, str]]:
        yield from super()._problems()
        if self.above is None and self.below is None:
            yield "type", "rsi rule needs 'above' or 'below' (or both)"
        for field, value in (("above", self.above), ("below", self.below)):
            if value is not None and not 0 <= value <= 100:
                yield field, f"{field} must be within 0..100, got {value}"
        if self.above is not None and self.below is not None and self.below >= self.above:
            yield "below", f"below ({self.below}) must be less than above ({self.above})"


class MacdCrossRule(Rule, tag="macd_cross", kw_only=True):
    """``column`` crosses ``column_signal`` (``up``: bullish, ``down``: bearish)."""

    direction: str = "both"
    column: str = "macd"


class BollingerRule(Rule, tag="bollinger", kw_only=True):
    """Close moves outside the bands ``bands`` (up: above its upper, down: below its lower)."""

    direction: str = "both"
    bands: str = "bb"


class CrossRule(Rule, tag="cross", kw_only=True):
    """``column`` crosses another column ``over`` or a ``level`` (up: from below to at-or-above).

    Any declared indicator or bar field: ``column: ema_50, over: ema_200`` is a
    golden (up) or death (down) cross.
    """

    column: str
    over: str | None = None
    level: float | None = None
    direction: str = "both"

    def _problems(self) -> Iterator[tuple[str, str]]:
        yield from super()._problems()
        if (self.over is None) == (self.level is None):
            yield "over", "cross rule needs exactly one of 'over' (a column) or 'level' (a number)"


class VolumeSpikeRule(Rule, tag="volume_spike", kw_only=True):
    """``volume > k * average`` (level-triggered, held back by the cooldown)."""

    k: float = 3.0
    average: str = "volume_sma_20"
    severity: str = "warning"

    def _problems(self) -> Iterator[tuple[str, str]]:
        yield from super()._problems()
        if self.k <= 0:
            yield "k", f"k must be > 0, got {self.k}"


# Anomaly detectors (issue 23): streaming rules like the others, with their own parameters.


class RobustZRule(Rule, tag="robust_z", kw_only=True):
    """Robust z-score of this bar's return or volume against the ``window`` bars before it.

    ``z = (x - median) / (1.4826 * MAD)`` over the previous ``window`` values
    (this bar excluded); fires when ``z >= threshold`` (up) or ``<= -threshold``
    (down). ``of``: ``return`` (close over previous close, minus 1) or ``volume``.
    A MAD of 0 (a flat window) never fires.
    """

    of: str = "return"
    window: int = 50
    threshold: float = 6.0
    direction: str = "both"
    severity: str = "warning"

    def _problems(self) -> Iterator[tuple[str, str]]:
        yield from super()._problems()
        if self.of not in ("return", "volume"):
            yield "of", f"unknown series {self.of!r} (one of: return, volume)"
        if not 5 <= self.window <= 1_000:
            yield "window", f"window must be 5..1000 bars, got {self.window}"
        if self.threshold <= 0:
            yield "threshold", f"threshold must be > 0, got {self.threshold}"


class GapRule(Rule, tag="gap", kw_only=True):
    """This bar's open against the previous close: ``|open / prev_close - 1| * 100 >= threshold``.

    Up: a gap up (``open / prev_close - 1 >= threshold / 100``); down: a gap down.
    """

    threshold: float
    direction: str = "both"
    severity: str = "warning"

    def _problems(self) -> Iterator[tuple[str, str]]:
        yield from super()._problems()
        if self.threshold <= 0:
            yield "threshold", f"threshold must be > 0 percent, got {self.threshold}"


class VolRegimeRule(Rule, tag="vol_regime", kw_only=True):
    """Realised volatility over ``short`` bars against ``long`` bars crosses ``ratio``.

    Realised volatility is the root mean square of the log returns of the last
    bars (this one included). Up: the ratio crosses to at or above ``ratio``
    (volatility expands); down: to at or below ``1 / ratio`` (it contracts).
    """

    short: int = 10
    long: int = 100
    ratio: float = 2.0
    direction: str = "up"

    def _problems(self) -> Iterator[tuple[str, str]]:
        yield from super()._problems()
        if not 2 <= self.short < self.long <= 1_000:
            yield "short", f"need 2 <= short < long <= 1000 bars, got {self.short} and {self.long}"
        if self.ratio <= 1:
            yield "ratio", f"ratio must be > 1, got {self.ratio}"


class StaleFeedRule(Rule, tag="stale_feed", kw_only=True):
    """No bar for a symbol during ``gap`` seconds of open market (``calendar``).

    Fires once per silence, stamped at the moment the silence reached ``gap``:
    when the symbol's next bar comes, or as soon as bars of other symbols of the
    same interval end at least one interval after that moment.
    """

    gap: float = 300.0
    calendar: str = "XNYS"
    severity: str = "critical"

    def _problems(self) -> Iterator[tuple[str, str]]:
        yield from super()._problems()
        if self.gap <= 0:
            yield "gap", f"gap must be > 0 seconds, got {self.gap}"
        if self.calendar != "24/7":
            import exchange_calendars as xcals

            if self.calendar not in xcals.get_calendar_names():
                yield (
                    "calendar",
                    f"unknown exchange calendar {self.calendar!r} (e.g. XNYS, or 24/7)",
                )


# Learned detectors (issue 39): a model fitted on the key's last bars, scoring this bar.


class _LearnedRule(Rule, kw_only=True):
    """Fields common to the learned detectors (:mod:`marketpulse.alerts.learned`).

    A model of the features (log return, log of high over low, ``log1p`` of
    volume) of the ``window`` bars before this one scores this bar; ``seed``
    fixes its random draws, the same for every row. A bar with a missing
    feature, or with one in its window, is not scored.
    """

    window: int = 100
    trees: int
    threshold: float
    seed: int = 0
    severity: str = "warning"

    def _problems(self) -> Iterator[tuple[str, str]]:
        yield from super()._problems()
        if not 20 <= self.window <= 1_000:
            yield "window", f"window must be 20..1000 bars, got {self.window}"
        if not 1 <= self.trees <= 1_000:
            yield "trees", f"trees must be 1..1000, got {self.trees}"
        if not 0 < self.threshold < 1:
            yield "threshold", f"threshold must be a score between 0 and 1, got {self.threshold}"
        if self.seed < 0:
            yield "seed", f"seed must be >= 0, got {self.seed}"


class HalfSpaceRule(_LearnedRule, tag="half_space", kw_only=True):
    """Half-space trees (Tan, Ting and Liu 2011) over the ``window`` bars before this one.

    Each feature's range over the window is scaled to the middle half of
    [0, 1]; each of ``trees`` random trees of ``height`` levels counts the
    window's bars in the nodes this bar passes, and the score (River's
    ``HalfSpaceTrees``: ``1 - mass-weighted depth / its maximum``, in [0, 1])
    is high for a bar in nodes few window bars share. Fires when ``score >=
    threshold``.
    """

    trees: int = 25
    height: int = 8
    threshold: float = 0.9

    def _problems(self) -> Iterator[tuple[str, str]]:
        yield from super()._problems()
        if not 1 <= self.height <= 12:
            yield "height", f"height must be 1..12 levels, got {self.height}"


class IsolationForestRule(_LearnedRule, tag="isolation_forest", kw_only=True):
    """Isolation forest (Liu, Ting and Zhou 2008) over the ``window`` bars before this one.

    Each of ``trees`` random trees splits the window's bars and this one until
    this bar stands alone; ``score = 2 ** (-E[h] / c(window + 1))``, ``h`` the
    depth at which it does: about 0.5 for a bar like the others, towards 1 for
    one isolated at once. Fires when ``score >= threshold``.
    """

    trees: int = 100
    threshold: float = 0.7


#: Rule classes by the ``type`` written in rules files.
RULE_TYPES: dict[str, type[Rule]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        PriceCrossRule,
        PctChangeRule,
        RsiRule,
        MacdCrossRule,
        BollingerRule,
        VolumeSpikeRule,
        CrossRule,
        RobustZRule,
        GapRule,
        VolRegimeRule,
        StaleFeedRule,
        HalfSpaceRule,
        IsolationForestRule,
    )
}
