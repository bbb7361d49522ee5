"""Bar-window kernel throughput: ticks/s into 1s, 1m and 5m event-time windows.

Synthetic ticks over 500 symbols in time order, fed in batches of 65,536 as
the processor does. ``--hours`` sets how much event time they span: 20 million
ticks over 1 hour is a busy market (11 ticks/s per symbol); over 10 hours a
sparse one, where nearly every tick closes a 1s bar.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from marketpulse.stream.windows import WindowState

S = 1_000_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=20_000_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--batch", type=int, default=65_536)
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.ticks
    ts = 1_381_152_600 * S + np.sort(rng.integers(0, int(args.hours * 3600 * S), n))
    sid = rng.integers(0, args.symbols, n)
    price = 100 + rng.normal(0, 1, n)
    size = rng.integers(1, 10, n) * 100.0
    warm = WindowState([S, 60 * S, 300 * S], lateness=S // 2)
    warm.add(sid[:1000], ts[:1000], price[:1000], size[:1000])
    best = float("inf")
    for _ in range(3):
        state = WindowState([S, 60 * S, 300 * S], lateness=S // 2, capacity=args.symbols)
        bars = 0
        start = time.perf_counter()
        for lo in range(0, n, args.batch):
            hi = lo + args.batch
            _, closed = state.add(sid[lo:hi], ts[lo:hi], price[lo:hi], size[lo:hi])
            bars += len(closed)
        best = min(best, time.perf_counter() - start)
    print(
        f"bench_windows: {n:,} ticks over {args.hours:g} h, {args.symbols} symbols, 1s/1m/5m: "
        f"{best:.3f} s = {n / best / 1e6:.1f} M ticks/s ({bars:,} bars closed)"
    )


if __name__ == "__main__":
    main()
