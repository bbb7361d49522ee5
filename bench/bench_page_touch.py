"""First touches of a new sparse memory-mapped file: what a Kafka index costs at first.

A Kafka broker preallocates each new log segment's offset and time index as a sparse
file (10 MiB) and memory-maps it; the first write into each 4 KiB page of it faults a
page in from the file system. This script does the same (a sparse file, mapped, one
write per page, each timed) in a directory on this machine's disk, where the benchmark
brokers keep their data (``tempfile``'s directory), and in ``/dev/shm`` (tmpfs), and
prints the milliseconds per first touch: median, p99 and max.

    python bench/bench_page_touch.py [--mib 10] [--files 5]
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PAGE = mmap.PAGESIZE


def first_touches(directory: Path, mib: int) -> np.ndarray:
    """Milliseconds of each page's first write into a new sparse mapped file in ``directory``."""
    size = mib * 1024 * 1024
    fd, name = tempfile.mkstemp(prefix="page-touch-", dir=directory)
    try:
        os.ftruncate(fd, size)  # sparse: no block is allocated yet, as Kafka's index files
        with mmap.mmap(fd, size) as mapped:
            times = np.empty(size // PAGE)
            for page in range(len(times)):
                start = time.perf_counter()
                mapped[page * PAGE] = 1
                times[page] = time.perf_counter() - start
        return times * 1000
    finally:
        os.close(fd)
        os.unlink(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=10, help="size of each file (default 10)")
    parser.add_argument("--files", type=int, default=5, help="files per directory (default 5)")
    args = parser.parse_args()
    result = {}
    for label, directory in (("disk", Path(tempfile.gettempdir())), ("tmpfs", Path("/dev/shm"))):
        ms = np.concatenate([first_touches(directory, args.mib) for _ in range(args.files)])
        result[label] = {
            "directory": str(directory),
            "pages": len(ms),
            "median_ms": float(np.median(ms)),
            "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()),
        }
        print(
            f"{label} ({directory}): {len(ms):,} first touches: median "
            f"{result[label]['median_ms']:.3f} ms, p99 {result[label]['p99_ms']:.3f} ms, "
            f"max {result[label]['max_ms']:.3f} ms",
            file=sys.stderr,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
