"""Conditions and messages of each alert rule type, on whole columns.

Each rule type says which columns it reads and at which lags (:func:`needs`),
where its condition holds over a batch of rows (:func:`condition`) and how an
alert it raised reads (:func:`message`). Stale feeds (``stale_feed``) have no
condition on a bar's columns: the engine follows each key's bar times.
Comparisons with NaN are false, so a NaN input (an indicator not yet warmed
up, no earlier bar) never fires. The learned detectors' numerics are in
:mod:`marketpulse.alerts.learned`.
"""

from __future__ import annotations

import numpy as np

from marketpulse.alerts import learned
from marketpulse.alerts.rules import (
    BollingerRule,
    CrossRule,
    GapRule,
    HalfSpaceRule,
    IsolationForestRule,
    MacdCrossRule,
    PctChangeRule,
    PriceCrossRule,
    RobustZRule,
    RsiRule,
    Rule,
    StaleFeedRule,
    VolRegimeRule,
    VolumeSpikeRule,
)
from marketpulse.exceptions import RulesError

__all__ = ["MAD_SCALE", "Batch", "condition", "direction", "message", "needs"]

#: MAD to standard deviation of a normal distribution.
MAD_SCALE = 1.4826


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
        case RsiRule(column=column):
            return {column: {0, 1}}
        case MacdCrossRule(column=column):
            return {column: {0, 1}, f"{column}_signal": {0, 1}}
        case BollingerRule(bands=bands):
            return {"close": {0, 1}, f"{bands}_upper": {0, 1}, f"{bands}_lower": {0, 1}}
        case VolumeSpikeRule(average=average):
            return {"volume": {0}, average: {0}}
        case CrossRule(column=column, over=over):
            return {column: {0, 1}} | ({over: {0, 1}} if over else {})
        case RobustZRule(of="return", window=n):
            return {"close": set(range(n + 2))}
        case RobustZRule(window=n):
            return {"volume": set(range(n + 1))}
        case GapRule():
            return {"open": {0}, "close": {1}}
        case VolRegimeRule(long=n):
            return {"close": set(range(n + 2))}
        case StaleFeedRule():
            return {}  # bar times only: the engine follows them (AlertEngine._stale)
        case HalfSpaceRule(window=n) | IsolationForestRule(window=n):
            bars = set(range(n + 1))
            return {"close": set(range(n + 2)), "high": bars, "low": bars, "volume": bars}
    raise RulesError(f"rule {rule.name!r}: unsupported rule type {type(rule).__name__}")


def _pick(direction: str, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    return up if direction == "up" else down if direction == "down" else up | down


def condition(
    rule: Rule, b: Batch, watched: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray | float]]:
    """Return the rows where the rule's condition holds, and the values it read.

    ``watched``: the rows the rule watches (``None``: all); the costly learned
    detectors leave the others unscored (NaN), the other rules ignore it.
    """
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
        case RsiRule(above=above, below=below, column=column):
            c, p = b.cur(column), b.lag(column, 1)
            mask = np.zeros(c.size, dtype=bool)
            values: dict[str, np.ndarray | float] = {column: c, f"prev_{column}": p}
            if above is not None:
                mask |= (p < above) & (c >= above)
                values["above"] = float(above)
            if below is not None:
                mask |= (p > below) & (c <= below)
                values["below"] = float(below)
            return mask, values
        case MacdCrossRule(column=line):
            signal = f"{line}_signal"
            m, s = b.cur(line), b.cur(signal)
            pm, ps = b.lag(line, 1), b.lag(signal, 1)
            d, pd = m - s, pm - ps
            return _pick(rule.direction, (pd < 0) & (d >= 0), (pd >= 0) & (d < 0)), {
                line: m,
                signal: s,
                f"prev_{line}": pm,
                f"prev_{signal}": ps,
            }
        case BollingerRule(bands=bands):
            upper, lower = f"{bands}_upper", f"{bands}_lower"
            c, u, lo = b.cur("close"), b.cur(upper), b.cur(lower)
            pc, pu, pl = b.lag("close", 1), b.lag(upper, 1), b.lag(lower, 1)
            up, down = (pc <= pu) & (c > u), (pc >= pl) & (c < lo)
            return _pick(rule.direction, up, down), {
                "close": c,
                upper: u,
                lower: lo,
                "prev_close": pc,
                f"prev_{upper}": pu,
                f"prev_{lower}": pl,
            }
        case VolumeSpikeRule(k=k, average=average):
            v, avg = b.cur("volume"), b.cur(average)
            return v > k * avg, {"volume": v, average: avg, "k": float(k)}
        case CrossRule(column=column, over=over, level=level):
            c, p = b.cur(column), b.lag(column, 1)
            if over is not None:
                o, po = b.cur(over), b.lag(over, 1)
                values = {column: c, over: o, f"prev_{column}": p, f"prev_{over}": po}
            else:
                o = po = float(level)
                values = {column: c, f"prev_{column}": p, "level": o}
            up, down = (p < po) & (c >= o), (p >= po) & (c < o)
            return _pick(rule.direction, up, down), values
        case RobustZRule():
            return _robust_z(rule, b)
        case GapRule(threshold=t):
            o, pc = b.cur("open"), b.lag("close", 1)
            ratio = np.divide(o, pc, out=np.full(o.shape, np.nan), where=pc > 0)
            pct = (ratio - 1.0) * 100.0
            return _pick(rule.direction, pct >= t, pct <= -t), {
                "open": o,
                "prev_close": pc,
                "gap_pct": pct,
                "threshold": float(t),
            }
        case VolRegimeRule():
            return _vol_regime(rule, b)
        case HalfSpaceRule() | IsolationForestRule():
            return _learned(rule, b, watched)
    raise RulesError(f"rule {rule.name!r}: unsupported rule type {type(rule).__name__}")


def _lags(b: Batch, column: str, deepest: int) -> np.ndarray:
    """Rows ``lag 0 .. deepest`` of a column, shape ``(deepest + 1, n)``."""
    return np.stack([b.cur(column), *(b.lag(column, k) for k in range(1, deepest + 1))])


def _robust_z(rule: RobustZRule, b: Batch) -> tuple[np.ndarray, dict[str, np.ndarray | float]]:
    n = rule.window
    if rule.of == "return":
        c = _lags(b, "close", n + 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            series = np.where(c[1:] > 0, c[:-1] / c[1:] - 1.0, np.nan)  # lag 0 .. n
    else:
        series = _lags(b, "volume", n)
    x, window = series[0], series[1:]
    median = np.median(window, axis=0)
    mad = np.median(np.abs(window - median), axis=0)
    scale = MAD_SCALE * mad
    z = np.divide(x - median, scale, out=np.full(x.shape, np.nan), where=scale > 0)
    t = rule.threshold
    return _pick(rule.direction, z >= t, z <= -t), {
        rule.of: x,
        "median": median,
        "mad": mad,
        "z": z,
        "threshold": float(t),
    }


def _realised(log_returns: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(log_returns * log_returns, axis=0))


def _vol_regime(rule: VolRegimeRule, b: Batch) -> tuple[np.ndarray, dict[str, np.ndarray | float]]:
    c = _lags(b, "close", rule.long + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where((c[1:] > 0) & (c[:-1] > 0), np.log(c[:-1] / c[1:]), np.nan)  # lag 0 .. long
        short, long = _realised(r[: rule.short]), _realised(r[: rule.long])
        prev = _realised(r[1 : rule.short + 1]) / _realised(r[1 : rule.long + 1])
        now = short / long
    up = (prev < rule.ratio) & (now >= rule.ratio)
    down = (prev > 1.0 / rule.ratio) & (now <= 1.0 / rule.ratio)
    return _pick(rule.direction, up, down), {
        "vol_short": short,
        "vol_long": long,
        "vol_ratio": now,
        "prev_vol_ratio": prev,
        "ratio": float(rule.ratio),
    }


def _learned(
    rule: HalfSpaceRule | IsolationForestRule, b: Batch, watched: np.ndarray | None
) -> tuple[np.ndarray, dict[str, np.ndarray | float]]:
    """Score each row's bar against the model of the ``window`` bars before it.

    Rows with a feature that is not finite, in this bar or the window, are not
    scored (NaN), nor are the rows the rule does not watch.
    """
    n = rule.window
    volume = _lags(b, "volume", n)
    f = learned.features(_lags(b, "close", n + 1), _lags(b, "high", n), _lags(b, "low", n), volume)
    scored = np.isfinite(f).all(axis=(0, 2))
    if watched is not None:
        scored &= watched
    rows = np.flatnonzero(scored)
    score = np.full(scored.shape, np.nan)
    if rows.size:
        x, window = f[0, rows], f[1:, rows].transpose(1, 0, 2)
        if isinstance(rule, HalfSpaceRule):
            score[rows] = learned.half_space_scores(x, window, rule.trees, rule.height, rule.seed)
        else:
            score[rows] = learned.isolation_scores(x, window, rule.trees, rule.seed)
    t = rule.threshold
    return score >= t, {
        "score": score,
        "threshold": float(t),
        "return": np.expm1(f[0, :, learned.RETURN]),
        "range": np.expm1(f[0, :, learned.RANGE]),
        "volume": volume[0],
    }


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
        case RsiRule(above=above, below=below, column=column):
            rsi = v[column] or 0.0
            side, level = (
                ("above", above) if above is not None and rsi >= above else ("below", below)
            )
            return f"{head} RSI {rsi:.1f} crossed {side} {level:g}"
        case MacdCrossRule(column=line):
            signal = f"{line}_signal"
            bull = (v[line] or 0.0) >= (v[signal] or 0.0)
            return (
                f"{head} MACD {'bullish' if bull else 'bearish'} cross: MACD "
                f"{_num(v[line])} crossed {'above' if bull else 'below'} signal "
                f"{_num(v[signal])}"
            )
        case BollingerRule(bands=bands):
            up = (v["close"] or 0.0) > (v[f"{bands}_upper"] or 0.0)
            band = _num(v[f"{bands}_upper"] if up else v[f"{bands}_lower"])
            side = "above the upper" if up else "below the lower"
            return f"{head} close {_num(v['close'])} broke {side} Bollinger band {band}"
        case VolumeSpikeRule(average=average):
            vol, avg = v["volume"] or 0.0, v[average] or 0.0
            ratio = f"{vol / avg:.1f}x" if avg > 0 else "far above"
            label = "20-bar average" if average == "volume_sma_20" else f"average ({average})"
            return f"{head} volume {vol:,.0f} is {ratio} its {label} {avg:,.0f}"
        case CrossRule(column=column, over=over, level=level):
            target = over if over is not None else f"{level:g}"
            value = v[over] if over is not None else level
            side = "above" if (v[column] or 0.0) >= (value or 0.0) else "below"
            return f"{head} {column} {_num(v[column])} crossed {side} {target} {_num(value)}"
        case RobustZRule(of=of, window=n):
            what = "return" if of == "return" else "volume"
            x = v[of] or 0.0
            shown = f"{x * 100:+.3f}%" if of == "return" else f"{x:,.0f}"
            return (
                f"{head} {what} {shown} is {v['z'] or 0.0:+.1f} robust sigmas from the "
                f"median of {n} bars"
            )
        case GapRule():
            pct = v["gap_pct"] or 0.0
            return (
                f"{head} opened {'up' if pct > 0 else 'down'} {abs(pct):.2f}% "
                f"({_num(v['prev_close'])} -> {_num(v['open'])})"
            )
        case VolRegimeRule(short=s, long=n):
            return (
                f"{head} volatility over {s} bars is {v['vol_ratio'] or 0.0:.2f}x that over "
                f"{n} bars (was {v['prev_vol_ratio'] or 0.0:.2f}x)"
            )
        case StaleFeedRule(gap=gap, calendar=calendar):
            return (
                f"{head} no trades for {gap:g} s of open market ({calendar}) since "
                f"{_utc(v['last_bar_end'])}"
            )
        case HalfSpaceRule(window=n) | IsolationForestRule(window=n):
            model = "half-space trees" if isinstance(rule, HalfSpaceRule) else "an isolation forest"
            return (
                f"{head} bar is anomalous to {model}: score {v['score'] or 0.0:.3f} over the "
                f"{n} bars before it (return {(v['return'] or 0.0) * 100:+.2f}%, range "
                f"{(v['range'] or 0.0) * 100:.2f}%, volume {v['volume'] or 0.0:,.0f})"
            )
    return f"{head} {rule.name}"


def _utc(seconds: float | None) -> str:
    """Format epoch seconds as an ISO-8601 UTC time."""
    if seconds is None:
        return "?"
    return np.datetime_as_string(np.datetime64(round(seconds * 1e9), "ns"), unit="s") + "Z"


def direction(rule: Rule, v: dict[str, float | None]) -> int:
    """The move that raised an alert: +1 up, -1 down, 0 none (a volume spike).

    Up is a close or column crossing upwards, a rise over the window, an RSI
    entering its upper zone, a bullish MACD cross, a close above the upper
    band, a gap up, a return's robust z-score above the median. A backtest's
    hit rate counts the forward returns in this direction (continuation); a
    rule read the other way (RSI overbought: sell) shows a hit rate below
    chance. Volume z-scores, volatility regimes, stale feeds and the learned
    detectors (half-space trees, isolation forests) have no direction (0).
    """
    match rule:
        case PriceCrossRule(level=level):
            return 1 if (v["close"] or 0.0) >= level else -1
        case PctChangeRule():
            return 1 if (v["pct_change"] or 0.0) > 0 else -1
        case RsiRule(above=above, column=column):
            return 1 if above is not None and (v[column] or 0.0) >= above else -1
        case MacdCrossRule(column=line):
            return 1 if (v[line] or 0.0) >= (v[f"{line}_signal"] or 0.0) else -1
        case BollingerRule(bands=bands):
            return 1 if (v["close"] or 0.0) > (v[f"{bands}_upper"] or 0.0) else -1
        case CrossRule(column=column, over=over, level=level):
            value = v[over] if over is not None else level
            return 1 if (v[column] or 0.0) >= (value or 0.0) else -1
        case RobustZRule(of="return"):
            return 1 if (v["z"] or 0.0) > 0 else -1
        case GapRule():
            return 1 if (v["gap_pct"] or 0.0) > 0 else -1
    return 0
