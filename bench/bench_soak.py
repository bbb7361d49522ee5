"""Memory of a long run: the embedded pipeline's RSS over time, and its growth rate.

Runs what ``marketpulse run --symbols 500 --rate 20000 --no-dashboard`` runs (the
simulator paced on the wall clock, the embedded bus, the processor with the default
alert rules, the live view and the Parquet lake, here in a temporary directory) in
this process for ``--minutes``, and samples the process's resident memory (VmRSS)
and the bytes Arrow's memory pool holds every ``--every`` seconds. After a warm-up
the growth rate is the least-squares slope of those samples, in MB per minute; the
target is under 1 MB/min at 20,000 ticks/s. Arrow's bytes tell a leak of columns
apart from allocator arenas that keep pages (RSS rising while Arrow's bytes stay flat).

    python bench/bench_soak.py [--minutes 30] [--symbols 500] [--rate 20000] [--every 5]
    python bench/bench_soak.py --minutes 0.3 --every 1      # a quick smoke run

One line per sample as it goes, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

MB = 1024 * 1024
#: The growth the target allows after warm-up, in MB per minute.
TARGET_MB_PER_MIN = 1.0
#: Share of the requested tick rate a run must reach for its figure to count.
RATE_SHARE = 0.9


def rss_bytes() -> int:
    """This process's resident set size (VmRSS), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def slope_per_min(t: np.ndarray, mb: np.ndarray) -> float | None:
    """Least-squares slope of ``mb`` over ``t`` (seconds), in MB per minute."""
    if len(t) < 2 or np.ptp(t) == 0:
        return None
    return float(np.polyfit(t, mb, 1)[0] * 60.0)


def make_pipeline(lake: Path, symbols: int, rate: float, duration: float):  # noqa: ANN201
    """The pipeline ``marketpulse run`` builds for the simulator and the lake sink."""
    from marketpulse.cli.common import processor_settings, rules_from, settings_from
    from marketpulse.feeds import Simulator
    from marketpulse.runtime import Metrics
    from marketpulse.runtime.embedded import LAKE_FILE_ROWS, EmbeddedPipeline, PipelineOptions
    from marketpulse.serve import LiveMarket
    from marketpulse.sinks import LakeSink

    settings = settings_from(
        None, lake=str(lake), alerts_file=str(lake / "alerts.jsonl"),
        **{"simulator.symbols": symbols, "simulator.rate": rate},
    )  # fmt: skip
    sim = settings.simulator
    feed = Simulator(symbols=sim.symbols, rate=sim.rate, seed=sim.seed, realtime=True)
    metrics = Metrics()
    view = LiveMarket(processor_settings(settings, wall_clock=True).intervals[0], metrics)
    options = PipelineOptions(
        lake=settings.lake, rules=rules_from(settings), processor=processor_settings(settings),
        alerts_file=settings.alerts_file, partitions=settings.partitions, duration=duration,
        sinks=(LakeSink(settings.lake, max_rows=LAKE_FILE_ROWS),),
    )  # fmt: skip
    return EmbeddedPipeline(feed, options, metrics, view), metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="run length (default 30)")
    parser.add_argument("--symbols", type=int, default=500, help="simulated symbols (500)")
    parser.add_argument("--rate", type=float, default=20000.0, help="trades per second (20000)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples (5)")
    parser.add_argument(
        "--warmup", type=float, default=None,
        help="seconds left out of the slope (default: a third of the run, at most 180)",
    )  # fmt: skip
    args = parser.parse_args()
    if not args.minutes > 0 or not args.every > 0 or args.symbols < 1 or not args.rate > 0:
        parser.error("--minutes, --every, --symbols and --rate must be positive")
    duration = args.minutes * 60.0
    # warm-up: kernels, allocator arenas, and the live view's recent tables (it keeps
    # 256, about two seconds' worth each: full after some 130 s at this rate)
    warmup = min(180.0, duration / 3) if args.warmup is None else args.warmup
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from marketpulse.runtime.heap import settle_heap

    with tempfile.TemporaryDirectory(prefix="soak-lake-") as lake:
        pipeline, metrics = make_pipeline(Path(lake), args.symbols, args.rate, duration)
        settle_heap()  # as the run command does before its pipeline starts
        failure: list[BaseException] = []

        def work() -> None:
            try:
                pipeline.run()
            except BaseException as exc:  # reported below
                failure.append(exc)

        worker = threading.Thread(target=work, name="pipeline", daemon=True)
        start = time.monotonic()
        worker.start()
        samples: list[tuple[float, float, float, int]] = []
        print(f"{'s':>7} {'RSS MB':>8} {'Arrow MB':>9} {'ticks':>11} {'ticks/s':>8}", flush=True)
        while True:
            worker.join(
                timeout=max(0.0, start + args.every * (len(samples) + 1) - time.monotonic())
            )
            if not worker.is_alive():
                break
            t = time.monotonic() - start
            snap = metrics.snapshot()
            samples.append((t, rss_bytes() / MB, pa.total_allocated_bytes() / MB, snap.ticks_in))
            print(f"{t:7.1f} {samples[-1][1]:8.1f} {samples[-1][2]:9.1f} "
                  f"{snap.ticks_in:11,} {snap.ticks_per_s:8,.0f}", flush=True)  # fmt: skip
        if failure:
            print(f"bench_soak: the pipeline failed: {failure[0]}", file=sys.stderr)
            sys.exit(1)
        elapsed = time.monotonic() - start
        ticks = metrics.snapshot().ticks_in

    if not samples:
        print("bench_soak: the run ended before its first sample", file=sys.stderr)
        sys.exit(1)
    t, rss, arrow = (np.array([s[i] for s in samples], float) for i in range(3))
    after = t >= warmup
    rss_slope = slope_per_min(t[after], rss[after])
    arrow_slope = slope_per_min(t[after], arrow[after])
    ticks_per_s = ticks / elapsed if elapsed > 0 else 0.0
    growth_ok = rss_slope is not None and rss_slope < TARGET_MB_PER_MIN
    rate_ok = ticks_per_s >= RATE_SHARE * args.rate
    result = {
        "symbols": args.symbols,
        "rate": args.rate,
        "minutes": args.minutes,
        "warmup_s": warmup,
        "every_s": args.every,
        "allocator": pa.default_memory_pool().backend_name,
        "elapsed_s": round(elapsed, 1),
        "ticks": ticks,
        "ticks_per_s": round(ticks_per_s, 1),
        "samples": [[round(a, 1), round(b, 1), round(c, 1), d] for a, b, c, d in samples],
        "rss_first_mb": round(float(rss[0]), 1),
        "rss_start_mb": round(float(rss[after][0]), 1) if after.any() else None,
        "rss_end_mb": round(float(rss[-1]), 1),
        "rss_max_mb": round(float(rss.max()), 1),
        "arrow_start_mb": round(float(arrow[after][0]), 1) if after.any() else None,
        "arrow_end_mb": round(float(arrow[-1]), 1),
        "rss_slope_mb_per_min": None if rss_slope is None else round(rss_slope, 3),
        "arrow_slope_mb_per_min": None if arrow_slope is None else round(arrow_slope, 3),
        "target_mb_per_min": TARGET_MB_PER_MIN,
        "growth_ok": growth_ok,
        "rate_ok": rate_ok,
        "target_met": growth_ok and rate_ok,
    }
    print(
        f"after {warmup:.0f} s of warm-up: RSS {result['rss_start_mb']} -> "
        f"{result['rss_end_mb']} MB, {rss_slope if rss_slope is not None else float('nan'):+.3f} "
        f"MB/min (Arrow {arrow_slope if arrow_slope is not None else float('nan'):+.3f} MB/min) "
        f"at {ticks_per_s:,.0f} ticks/s; target < {TARGET_MB_PER_MIN} MB/min at "
        f"{RATE_SHARE:.0%} of {args.rate:,.0f} ticks/s: {'met' if result['target_met'] else 'NOT met'}",
        flush=True,
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
