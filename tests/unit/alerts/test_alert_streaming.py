"""Streaming equals batch: any split of the rows gives the alerts of one call."""

from __future__ import annotations

import numpy as np
import pytest

from marketpulse.alerts import AlertEngine, PctChangeRule, PriceCrossRule, default_rules
from marketpulse.models import INDICATOR_COLUMNS

MINUTE = 60_000_000_000


def random_rows(n_bars: int, symbols: int, seed: int) -> dict[str, np.ndarray]:
    """Interleaved bars of many symbols on 1s, 1m, 5m and 1d, noisy enough for any rule to fire."""
    rng = np.random.default_rng(seed)
    keys = [(f"S{i:02d}", iv) for i in range(symbols) for iv in ("1s", "1m", "5m", "1d")]
    n = n_bars * len(keys)
    which = np.tile(np.arange(len(keys)), n_bars)
    rows = {
        "symbol": np.array([keys[k][0] for k in which], dtype=object),
        "timeframe": np.array([keys[k][1] for k in which], dtype=object),
        "bar_start": np.repeat(np.arange(n_bars), len(keys)).astype(np.int64) * MINUTE,
    }
    rows["bar_end"] = rows["bar_start"] + MINUTE
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    rows |= {"open": close, "high": close, "low": close, "close": close}
    rows["volume"] = rng.lognormal(7, 0.7, n)
    for name in INDICATOR_COLUMNS:
        rows[name] = rng.normal(100, 1, n)
    rows["rsi_14"] = rng.uniform(15, 85, n)
    rows["macd"], rows["macd_signal"] = rng.normal(0, 1, n), rng.normal(0, 1, n)
    rows["bb_upper"], rows["bb_lower"] = (
        close * rng.uniform(0.995, 1.03, n),
        close * rng.uniform(0.97, 1.005, n),
    )
    rows["volume_sma_20"] = np.full(n, np.exp(7.0))
    for name in ("close", "rsi_14", "macd", "bb_upper", "volume_sma_20"):
        rows[name][rng.random(n) < 0.02] = np.nan  # holes: indicators warming up, bad bars
    return rows


def rules():
    return [
        *default_rules(),
        PriceCrossRule(name="p100", level=100.0, cooldown=120),
        PctChangeRule(name="pct_7", window=7, threshold=1.5, cooldown=0, intervals=("5m",)),
    ]


def chunked(engine, rows, cuts):
    out, start = [], 0
    for stop in [*cuts, len(rows["bar_end"])]:
        out += engine.evaluate({k: v[start:stop] for k, v in rows.items()})
        start = stop
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streaming_equals_batch(seed):
    rows = random_rows(n_bars=600, symbols=12, seed=seed)
    n = len(rows["bar_end"])
    expected = AlertEngine(rules()).evaluate(rows)
    assert len(expected) > 500
    assert {a.rule for a in expected} == {r.name for r in rules()}
    rng = np.random.default_rng(seed)
    for n_cuts in (1, 10, 300, n // 8):
        cuts = sorted(rng.choice(np.arange(1, n), size=n_cuts, replace=False).tolist())
        assert chunked(AlertEngine(rules()), rows, cuts) == expected, n_cuts


def test_one_row_batches_equal_batch():
    rows = random_rows(n_bars=60, symbols=3, seed=7)
    n = len(rows["bar_end"])
    expected = AlertEngine(rules()).evaluate(rows)
    assert expected
    assert chunked(AlertEngine(rules()), rows, list(range(1, n))) == expected


def test_snapshot_restore_midstream_equals_batch():
    rows = random_rows(n_bars=300, symbols=8, seed=11)
    n = len(rows["bar_end"])
    expected = AlertEngine(rules()).evaluate(rows)
    first = AlertEngine(rules())
    out = chunked(first, {k: v[: n // 2] for k, v in rows.items()}, [n // 5])
    # A new owner of the partition restores every symbol and goes on.
    second = AlertEngine(rules())
    for symbol in set(rows["symbol"].tolist()):
        second.restore(symbol, first.snapshot(symbol))
    out += chunked(second, {k: v[n // 2 :] for k, v in rows.items()}, [n // 3])
    assert out == expected


def test_rows_named_by_codes_give_the_alerts_of_rows_named_by_strings():
    rows = random_rows(n_bars=300, symbols=12, seed=4)
    pairs = list(zip(rows["symbol"].tolist(), rows["timeframe"].tolist(), strict=True))
    numbering = {pair: 3 * n + 7 for n, pair in enumerate(dict.fromkeys(reversed(pairs)))}
    codes = np.array([numbering[pair] for pair in pairs], np.int64)
    expected = chunked(AlertEngine(rules()), rows, [997, 2500, 4001])
    assert len(expected) > 100
    engine, got, start = AlertEngine(rules()), [], 0
    for stop in [997, 2500, 4001, len(codes)]:
        got += engine.evaluate({k: v[start:stop] for k, v in rows.items()}, codes[start:stop])
        start = stop
    assert got == expected
