"""Conditions and messages of each alert rule type, on whole columns.

Each rule type says which columns it reads and at which lags (:func:`needs`),
where its condition holds over a batch of rows (:func:`condition`) and how an
alert it raised reads (:func:`message`). Comparisons with NaN are false, so a
NaN input (an indicator not yet warmed up, no earlier bar) never fires.
"""

from __future__ import annotations

import numpy as np

from marketpulse.alerts.rules import (
    BollingerRule,
    MacdCrossRule,
    PctChangeRule,
    PriceCrossRule,
    RsiRule,
    Rule,
    VolumeSpikeRule,
)
from marketpulse.exceptions import RulesError

__all__ = ["Batch", "condition", "message", "needs"]


class Batch:
    """Current and earlier-bar columns of one ``AlertEngine.evaluate()`` call."""

    def __init__(self, columns: dict[str, np.ndarray], lagged: dict[tuple[str, int], np.ndarray]):
        self.cur = columns.__getitem__
        self._lagged = lagged

    def lag(self, name: str, bars: int) -> np.ndarray:
        """Return column ``name`` as it was ``bars`` bars before each row."""
        return self._lagged[name, bars]


def needs(rule: Rule) -> dict[str, set[int]]:
    """Return the columns a rule reads, each with the lags (in bars) it needs."""
    match rule:
        case PriceCrossRule():
            return {"close": {0, 1}}
        case PctChangeRule():
            return {"close": {0, rule.window}}
        case RsiRule():
            return {"rsi_14": {0, 1}}
        case MacdCrossRule():
            return {"macd": {0, 1}, "macd_signal": {0, 1}}
        case BollingerRule():
            return {"close": {0, 1}, "bb_upper": {0, 1}, "bb_lower": {0, 1}}
        case VolumeSpikeRule():
            return {"volume": {0}, "volume_sma_20": {0}}
    raise RulesError(f"rule {rule.name!r}: unsupported rule type {type(rule).__name__}")


def _pick(direction: str, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    return up if direction == "up" else down if direction == "down" else up | down


def condition(rule: Rule, b: Batch) -> tuple[np.ndarray, dict[str, np.ndarray | float]]:
    """Return the rows where the rule's condition holds, and the values it read."""
    match rule:
        case PriceCrossRule(level=level):
            c, p = b.cur("close"), b.lag("close", 1)
            up, down = (p < level) & (c >= level), (p >= level) & (c < level)
            return _pick(rule.direction, up, down), {
                "close": c,
                "prev_close": p,
                "level": float(level),
            }
        case PctChangeRule(window=n, threshold=t):
            c, ref = b.cur("close"), b.lag("close", n)
            ratio = np.divide(c, ref, out=np.full(c.shape, np.nan), where=ref > 0)
            pct = (ratio - 1.0) * 100.0
            return _pick(rule.direction, pct >= t, pct <= -t), {
                "close": c,
                "ref_close": ref,
                "pct_change": pct,
                "threshold": float(t),
            }
        case RsiRule(above=above, below=below):
            c, p = b.cur("rsi_14"), b.lag("rsi_14", 1)
            mask = np.zeros(c.size, dtype=bool)
            values: dict[str, np.ndarray | float] = {"rsi_14": c, "prev_rsi_14": p}
            if above is not None:
                mask |= (p < above) & (c >= above)
                values["above"] = float(above)
            if below is not None:
                mask |= (p > below) & (c <= below)
                values["below"] = float(below)
            return mask, values
        case MacdCrossRule():
            m, s = b.cur("macd"), b.cur("macd_signal")
            pm, ps = b.lag("macd", 1), b.lag("macd_signal", 1)
            d, pd = m - s, pm - ps
            return _pick(rule.direction, (pd < 0) & (d >= 0), (pd >= 0) & (d < 0)), {
                "macd": m,
                "macd_signal": s,
                "prev_macd": pm,
                "prev_macd_signal": ps,
            }
        case BollingerRule():
            c, u, lo = b.cur("close"), b.cur("bb_upper"), b.cur("bb_lower")
            pc, pu, pl = b.lag("close", 1), b.lag("bb_upper", 1), b.lag("bb_lower", 1)
            up, down = (pc <= pu) & (c > u), (pc >= pl) & (c < lo)
            return _pick(rule.direction, up, down), {
                "close": c,
                "bb_upper": u,
                "bb_lower": lo,
                "prev_close": pc,
                "prev_bb_upper": pu,
                "prev_bb_lower": pl,
            }
        case VolumeSpikeRule(k=k):
            v, avg = b.cur("volume"), b.cur("volume_sma_20")
            return v > k * avg, {"volume": v, "volume_sma_20": avg, "k": float(k)}
    raise RulesError(f"rule {rule.name!r}: unsupported rule type {type(rule).__name__}")


def _num(x: float | None) -> str:
    """Format a price or indicator value for a message."""
    if x is None:
        return "nan"
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.4g}"


def message(rule: Rule, symbol: str, timeframe: str, v: dict[str, float | None]) -> str:
    """Return the human-readable text of an alert."""
    head = f"{symbol} {timeframe}"
    match rule:
        case PriceCrossRule(level=level):
            side = "above" if (v["close"] or 0.0) >= level else "below"
            return f"{head} close {_num(v['close'])} crossed {side} {level:g}"
        case PctChangeRule(window=n):
            pct = v["pct_change"] or 0.0
            return (
                f"{head} close {'up' if pct > 0 else 'down'} {abs(pct):.2f}% over {n} bars "
                f"({_num(v['ref_close'])} -> {_num(v['close'])})"
            )
        case RsiRule(above=above, below=below):
            rsi = v["rsi_14"] or 0.0
            side, level = (
                ("above", above) if above is not None and rsi >= above else ("below", below)
            )
            return f"{head} RSI {rsi:.1f} crossed {side} {level:g}"
        case MacdCrossRule():
            bull = (v["macd"] or 0.0) >= (v["macd_signal"] or 0.0)
            return (
                f"{head} MACD {'bullish' if bull else 'bearish'} cross: MACD "
                f"{_num(v['macd'])} crossed {'above' if bull else 'below'} signal "
                f"{_num(v['macd_signal'])}"
            )
        case BollingerRule():
            up = (v["close"] or 0.0) > (v["bb_upper"] or 0.0)
            band = _num(v["bb_upper"] if up else v["bb_lower"])
            side = "above the upper" if up else "below the lower"
            return f"{head} close {_num(v['close'])} broke {side} Bollinger band {band}"
        case VolumeSpikeRule():
            vol, avg = v["volume"] or 0.0, v["volume_sma_20"] or 0.0
            ratio = f"{vol / avg:.1f}x" if avg > 0 else "far above"
            return f"{head} volume {vol:,.0f} is {ratio} its 20-bar average {avg:,.0f}"
    return f"{head} {rule.name}"
