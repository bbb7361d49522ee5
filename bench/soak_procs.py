"""Commands of the soak bench as subprocesses: their resident memory and progress over time.

Each command runs as users type it (``python -m marketpulse ...``, without the
``MARKETPULSE_*`` environment of the caller); its VmRSS is read from
``/proc/PID/status`` at each sample, and the count it prints in its progress
lines (ticks in, records in, ...) is kept with the time it was printed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MB = 1024 * 1024


def rss_mb(pid: int) -> float | None:
    """The resident set size (VmRSS) of process ``pid`` in MB; ``None`` once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / MB
    except (OSError, ValueError):
        return None
    return None  # a zombie: no memory left to read


def slope_per_min(t: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope of ``y`` over ``t`` (seconds), per minute (``None``: too few points)."""
    if len(t) < 2 or np.ptp(t) == 0:
        return None
    return float(np.polyfit(t, y, 1)[0] * 60.0)


def user_env() -> dict[str, str]:
    """This environment without ``MARKETPULSE_*`` settings: the commands run with their defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}


@dataclass
class Watched:
    """A command running as a subprocess, sampled.

    Attributes:
        name: what the figures call it (``run``, ``process``, ...).
        args: the command's arguments after ``marketpulse``.
        proc: the subprocess.
        rss: (seconds since the case started, VmRSS MB) samples.
        progress: (seconds since the case started, count) of each progress line.
        tail: the last lines it printed (both streams), for a failure's report.
    """

    name: str
    args: list[str]
    proc: subprocess.Popen[str]
    start: float
    pattern: re.Pattern[str]
    rss: list[tuple[float, float]] = field(default_factory=list)
    progress: list[tuple[float, int]] = field(default_factory=list)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    readers: list[threading.Thread] = field(default_factory=list)

    def sample(self) -> None:
        """Take one RSS sample (none once the process has exited)."""
        if self.proc.poll() is None and (mb := rss_mb(self.proc.pid)) is not None:
            self.rss.append((time.monotonic() - self.start, mb))

    def stop(self, grace: float = 60.0) -> int:
        """Interrupt it as Ctrl-C does, wait ``grace`` seconds for it to flush, then kill it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for reader in self.readers:
            reader.join(5.0)
        return self.proc.returncode

    def wait(self, timeout: float) -> int:
        """Wait for it to exit by itself, at most ``timeout`` seconds; then stop it."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.stop()
        for reader in self.readers:
            reader.join(5.0)
        return self.proc.returncode

    def figures(self, warmup: float, until: float) -> dict[str, Any]:
        """RSS and progress figures over the samples taken by ``until`` seconds."""
        kept = [(t, mb) for t, mb in self.rss if t <= until]
        t = np.array([s[0] for s in kept], float)
        mb = np.array([s[1] for s in kept], float)
        after = t >= warmup
        done = [(s, n) for s, n in self.progress if warmup <= s <= until]
        rate = slope_per_min(np.array([s for s, _ in done], float),
                             np.array([n for _, n in done], float))  # fmt: skip
        growth = slope_per_min(t[after], mb[after])
        return {
            "args": self.args,
            "exit": self.proc.returncode,
            "samples": [[round(a, 1), round(b, 1)] for a, b in kept],
            "rss_first_mb": round(float(mb[0]), 1) if len(mb) else None,
            "rss_start_mb": round(float(mb[after][0]), 1) if after.any() else None,
            "rss_end_mb": round(float(mb[-1]), 1) if len(mb) else None,
            "rss_max_mb": round(float(mb.max()), 1) if len(mb) else None,
            "rss_slope_mb_per_min": None if growth is None else round(growth, 3),
            "count": self.progress[-1][1] if self.progress else None,
            "per_s": None if rate is None else round(rate / 60.0, 1),
        }


def start(name: str, args: list[str], pattern: str, cwd: Path, start_at: float) -> Watched:
    """Start ``marketpulse ARGS`` in ``cwd``, its times counted from ``start_at`` (monotonic).

    Its lines matching ``pattern`` (one group: a count, with thousands
    separators or not) are its progress.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "marketpulse", *args], cwd=cwd, env=user_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    watched = Watched(name, args, proc, start_at, re.compile(pattern))
    for stream in (proc.stdout, proc.stderr):
        reader = threading.Thread(target=_read, args=(watched, stream), daemon=True)
        reader.start()
        watched.readers.append(reader)
    return watched


def _read(watched: Watched, stream: Any) -> None:
    for line in stream:
        watched.tail.append(line.rstrip())
        if match := watched.pattern.search(line):
            watched.progress.append(
                (time.monotonic() - watched.start, int(match[1].replace(",", "")))
            )
