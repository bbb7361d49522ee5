"""Throughput of the indicator kernels: closed bars per second through update_indicators.

The bars are real: the daily OHLCV of the 13 world indices in
``../shared/data/kaggle-stock-exchange``, laid end to end and read by each key
from its own offset (and price scale), interleaved key by key as a live
stream delivers them.

    python bench/bench_kernels.py [--rows 10000000] [--keys 1000] [--batch 10000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from marketpulse.indicators import IndicatorState, update_indicators
from marketpulse.indicators.kernels import COLUMNS, update_rows

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def make_stream(rows: int, keys: int) -> tuple[np.ndarray, ...]:
    """Return keys, high, low, close, volume, pv, session of ``rows`` interleaved bars."""
    frame = pd.read_csv(DATA / "kaggle-stock-exchange" / "indexProcessed.csv")
    base = frame[["High", "Low", "Close", "Volume"]].to_numpy(np.float64)
    steps = -(-rows // keys)
    offsets = (np.arange(keys) * 104_729) % len(base)
    index = (offsets[None, :] + np.arange(steps)[:, None]) % len(base)  # (step, key)
    scale = 1.0 + np.arange(keys) / keys
    bars = base[index.ravel()[:rows]]
    key = np.tile(np.arange(keys, dtype=np.int64), steps)[:rows]
    high, low, close = (bars[:, i] * scale[key] for i in range(3))
    volume = bars[:, 3].copy()
    session = np.repeat(np.arange(steps, dtype=np.int64) // 390, keys)[:rows]
    return key, high, low, close, volume, close * volume, session


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
    args = parser.parse_args()

    stream = make_stream(args.rows, args.keys)
    keys, high, low, close, volume, pv, session = stream
    update_indicators(IndicatorState(), *(a[:1000] for a in stream))  # compile or load the cache

    def one_call() -> None:
        update_indicators(IndicatorState(args.keys), *stream)

    out = np.empty((args.rows, len(COLUMNS)))

    def kernel_only() -> None:
        state = IndicatorState(args.keys)
        update_rows(keys, high, low, close, volume, pv, session,
                    state.floats, state.ints, state.close_ring, state.volume_ring, out)  # fmt: skip

    def batches() -> None:
        state = IndicatorState(args.keys)
        for start in range(0, args.rows, args.batch):
            update_indicators(state, *(a[start : start + args.batch] for a in stream))

    label = f"{args.rows:,} rows, {args.keys:,} keys"
    for name, run in (
        ("update_indicators, one call", one_call),
        ("kernel only (output preallocated)", kernel_only),
        (f"update_indicators, batches of {args.batch:,}", batches),
    ):
        seconds = best_of(args.repeats, run)
        rate = args.rows / seconds / 1e6
        print(f"bench_kernels: {name}: {label}: {seconds:.3f} s = {rate:.1f} M rows/s")


if __name__ == "__main__":
    main()
