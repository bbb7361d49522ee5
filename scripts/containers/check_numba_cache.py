"""Check that the image's numba kernels load from its cache instead of compiling.

Run inside the marketpulse image as its own user by ``stack_smoke.sh``:

1. warms up a processor (the same call every command makes before its first
   batch) and the PostgreSQL sink's COPY encoder, then counts, over every numba
   function of the package, the signatures loaded from ``NUMBA_CACHE_DIR``
   (hits) and those compiled (misses);
2. replays a small trades file and a small daily-bars file with
   ``marketpulse replay``, as a user would, with ``NUMBA_DEBUG_CACHE=1``, and
   counts the cache entries each saved (a save is a compile).

Exit status 0 when there were hits, no misses and no saves, 1 otherwise (a
cache the runtime user cannot use, or one the build did not fill for some
input), with one line of counts either way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from numba.core.registry import CPUDispatcher

from marketpulse.cli.common import processor_settings, rules_from
from marketpulse.config import load_settings
from marketpulse.sinks import pgcopy
from marketpulse.stream import Processor

TRADES = "timestamp,symbol,price,size\n" + "".join(
    f"2024-01-02T15:{m:02d}:{s:02d}Z,AAA,{100 + (m + s) % 7},100\n"
    for m in range(10)
    for s in range(0, 60, 10)
)
BARS = "Index,Date,Open,High,Low,Close,Adj Close,Volume\n" + "".join(
    f"IDX,2020-01-{d:02d},{100 + d},{101 + d},{99 + d},{100.5 + d},{100.5 + d},1000\n"
    for d in range(1, 29)
)


def warm_up_counts() -> tuple[int, int, list[str]]:
    """Warm a processor and the COPY encoder up; cache hits, misses and the kernels missed."""
    settings = load_settings()
    Processor(processor_settings(settings), rules_from(settings)).warm_up()
    pgcopy.warm_up()
    hits = misses = 0
    missed = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("marketpulse"):
            continue
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and value.__module__ == name:
                stats = value.stats
                hits += sum(stats.cache_hits.values())
                misses += sum(stats.cache_misses.values())
                if stats.cache_misses:
                    missed.append(f"{name}.{value.__name__}")
    return hits, misses, missed


def replay_saves(name: str, text: str, work: Path) -> tuple[int, float]:
    """Replay ``text`` as a file with the command; cache entries it saved, and its seconds."""
    path = work / name
    path.write_text(text)
    env = {**os.environ, "NUMBA_DEBUG_CACHE": "1"}
    command = ["marketpulse", "replay", str(path), "--lake", str(work / "lake"),
               "--alerts-file", ""]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {result.returncode}: {result.stderr[-2000:]}")
    output = result.stdout + result.stderr
    return sum(line.startswith("[cache] data saved") for line in output.splitlines()), seconds


def main() -> int:
    """Run both checks; print one line of counts."""
    hits, misses, missed = warm_up_counts()
    with tempfile.TemporaryDirectory() as folder:
        saves = {name: replay_saves(name, text, Path(folder))
                 for name, text in (("trades.csv", TRADES), ("bars.csv", BARS))}  # fmt: skip
    cache = os.environ.get("NUMBA_CACHE_DIR", "(unset)")
    replays = ", ".join(f"replay {n}: {s} compiled in {t:.1f} s" for n, (s, t) in saves.items())
    print(f"numba cache {cache}: {hits} loaded, {misses} compiled {' '.join(missed)}; {replays}")
    return 0 if hits and not misses and not any(s for s, _ in saves.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
