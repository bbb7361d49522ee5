"""Profiling helpers for the benchmarks: py-spy attached to this process, report printers."""

from __future__ import annotations

import collections
import io
import os
import pstats
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


class PySpy:
    """``py-spy record`` attached to this process until stopped (raw collapsed stacks)."""

    def __init__(self, path: Path, rate: int = 200) -> None:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(exe).exists():
            raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
        self.path = path
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(os.getpid()), "--rate", str(rate), "--format", "raw",
             "--threads", "--nonblocking", "--full-filenames", "--output", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(1.0)  # let it attach

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)


def print_cprofile(path: str, top: int = 30) -> None:
    """Print the hotspots of a cProfile dump (self time, then cumulative) to stderr."""
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(path, stream=out).sort_stats(order).print_stats(top)
        print(out.getvalue(), file=sys.stderr)


def print_py_spy(path: Path, thread: str, top: int = 30) -> None:
    """Summarise py-spy raw stacks of one thread: self and inclusive share per function."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or thread not in frames[0]:
            continue
        n = int(count)
        total += n
        names = [_frame(f) for f in frames[1:]]
        if names:
            own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
    print(f"py-spy: {total} samples of thread {thread}", file=sys.stderr)
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"--- top {top} by {title} time", file=sys.stderr)
        for name, n in counter.most_common(top):
            print(f"{100 * n / max(total, 1):6.1f}%  {name}", file=sys.stderr)


def _frame(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``: group a function's lines."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(where).parts
    short = "/".join(parts[-2:]) if parts else where
    return f"{name} ({short})"
