"""Throughput of the indicator kernels: closed bars per second through update_indicators.

The bars are real: the daily OHLCV of the 13 world indices in
``../shared/data/kaggle-stock-exchange``, laid end to end and read by each key
from its own offset (and price scale), interleaved key by key as a live
stream delivers them. Two declared sets: the default (13 columns) and a set
of 40 columns across the catalogue; then each kind alone, to show where the
time of a set goes.

    python bench/bench_kernels.py [--rows 10000000] [--keys 1000] [--batch 10000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from marketpulse.indicators import DEFAULT, KINDS, IndicatorState, parse_set, update_indicators

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

#: Forty declared columns: the default thirteen's kinds and the traders' usual others.
FORTY = (
    "sma_20=sma(20), ema_12=ema(12), ema_26=ema(26), ema(50), ema(200), rsi_14=rsi(14), "
    "macd=macd(12, 26, 9), bb=bbands(20, 2), atr_14=atr(14), vwap, "
    "volume_sma_20=sma(20, source=volume), stoch, willr, cci, adx, plus_di, minus_di, aroon, "
    "mfi, obv, ad, adosc, roc, trix, wma(20), dema(20), tema(20), kama, natr, stddev(20), "
    "linearreg_slope, sar, cmo, mom"
)


def make_stream(rows: int, keys: int) -> tuple[np.ndarray, ...]:
    """Return keys, high, low, close, volume, pv, session, open of ``rows`` interleaved bars."""
    frame = pd.read_csv(DATA / "kaggle-stock-exchange" / "indexProcessed.csv")
    base = frame[["High", "Low", "Close", "Volume", "Open"]].to_numpy(np.float64)
    steps = -(-rows // keys)
    offsets = (np.arange(keys) * 104_729) % len(base)
    index = (offsets[None, :] + np.arange(steps)[:, None]) % len(base)  # (step, key)
    scale = 1.0 + np.arange(keys) / keys
    bars = base[index.ravel()[:rows]]
    key = np.tile(np.arange(keys, dtype=np.int64), steps)[:rows]
    high, low, close = (bars[:, i] * scale[key] for i in range(3))
    opens = bars[:, 4] * scale[key]
    volume = bars[:, 3].copy()
    session = np.repeat(np.arange(steps, dtype=np.int64) // 390, keys)[:rows]
    return key, high, low, close, volume, close * volume, session, opens


def best_of(repeats: int, run) -> float:
    """Return the fastest of ``repeats`` timed calls of ``run``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=10_000, help="rows per call when streaming")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kind-rows", type=int, default=2_000_000, help="rows per kind alone")
    args = parser.parse_args()

    stream = make_stream(args.rows, args.keys)
    forty = parse_set(FORTY)
    assert len(forty.columns) == 40, len(forty.columns)
    label = f"{args.rows:,} rows, {args.keys:,} keys"
    for name, declared in (("default set, 13 columns", DEFAULT), ("40 columns", forty)):
        state = IndicatorState(declared=declared)
        update_indicators(state, *(a[:1000] for a in stream))  # compile or load the cache

        def one_call(declared=declared) -> None:
            update_indicators(IndicatorState(args.keys, declared), *stream)

        def batches(declared=declared) -> None:
            state = IndicatorState(args.keys, declared)
            for start in range(0, args.rows, args.batch):
                update_indicators(state, *(a[start : start + args.batch] for a in stream))

        for how, run in (("one call", one_call), (f"batches of {args.batch:,}", batches)):
            seconds = best_of(args.repeats, run)
            rate = args.rows / seconds / 1e6
            print(f"bench_kernels: {name}, {how}: {label}: {seconds:.3f} s = {rate:.1f} M rows/s")

    part = tuple(a[: args.kind_rows] for a in stream)
    rates = []
    for kind in sorted(KINDS):
        declared = parse_set(f"{kind}()")
        update_indicators(IndicatorState(declared=declared), *(a[:1000] for a in part))
        seconds = best_of(
            args.repeats,
            lambda declared=declared: update_indicators(IndicatorState(args.keys, declared), *part),
        )
        rates.append((kind, len(declared.columns), len(part[0]) / seconds / 1e6))
    print(f"bench_kernels: each kind alone, one call over {len(part[0]):,} rows (M rows/s):")
    for kind, columns, rate in sorted(rates, key=lambda r: r[2]):
        print(f"  {kind:<16} {columns} column{'s' if columns > 1 else ' '}  {rate:7.1f}")


if __name__ == "__main__":
    main()
