#!/usr/bin/env python3
"""Where a machine's CPU went while a command ran: CPU seconds by kind of process.

``.ci/run`` runs the integration tests under it, so the CI's log says what the tests
cost beyond what pytest can count: pytest adds up each test's own CPU and that of the
children it waited for, which leaves out the JVMs of the Kafka brokers and of Spark
(children of children, or never waited for) and Chromium's processes. Every process
on the machine is sampled from ``/proc`` every half second; a process is counted from
its first sample (its CPU before that, for one already running, is left out), so one
shorter than half a second is missed.

    python3 scripts/cpu_by_command.py -- make test ARGS=...

prints, after the command ends, the machine's busy CPU seconds and a table of the
kinds (``marketpulse replay``, ``java: Kafka broker``, ``java: Spark``, ``chromium``,
...), and exits with the command's status. Standard library only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

INTERVAL_S = 0.5
TICKS = os.sysconf("SC_CLK_TCK")
_COMMAND = re.compile(r"(?:-m marketpulse|bin/marketpulse) (\S+)(?: (\S+))?")
_GROUPS = ("lake", "report", "topics", "config", "db")


def kind(cmdline: str, parent: str = "") -> str:
    """The kind a process is counted under, from its command line (NUL-separated).

    A process no rule names (``python -c ...``, ``grep``, ``bash``) is counted under its
    program and the kind of its ``parent`` (its parent's command line), when given:
    ``grep (under marketpulse process)``.
    """
    named = _kind(cmdline)
    words = cmdline.split("\0")
    program = Path(words[0]).name if words and words[0] else ""
    if named != (program or "?"):
        return named
    if program.startswith("python") and len(words) > 1:  # what it runs
        if words[1] in ("-m", "-c") and len(words) > 2:
            named += f" {words[1]} {words[2] if words[1] == '-m' else '...'}"
        elif words[1].endswith(".py"):
            named += f" {Path(words[1]).name}"
    return f"{named} (under {_kind(parent)})" if parent else named


def _kind(cmdline: str) -> str:
    words = cmdline.split("\0")
    text = " ".join(words)
    program = Path(words[0]).name if words and words[0] else ""
    if program == "java" or "/bin/java" in words[0] or "spark-class" in text:
        if "kafka.Kafka" in text:
            # .ci/run's broker serves the whole run: its home is named kafka-ci
            return "java: Kafka broker (the CI's)" if "kafka-ci" in text else "java: Kafka broker"
        if "spark" in text.lower():
            return "java: Spark"
        return "java: other"
    if "pyspark.daemon" in text or "pyspark.worker" in text or "pyspark.sql" in text:
        return "python: Spark workers"
    if "chrom" in program or "headless_shell" in program:
        return "chromium"
    if program in ("postgres", "influxd", "podman", "buildah", "conmon", "runc"):
        return program
    command = _COMMAND.search(text)
    if command:
        name, sub = command.groups()
        return f"marketpulse {name}" + (f" {sub}" if name in _GROUPS and sub else "")
    if "xdist" in text or "execnet" in text or "exec(eval(" in text:
        return "pytest workers (the tests' own code)"
    if "pytest" in text:
        return "pytest"
    script = re.search(r"((?:bench|scripts)/\S+\.py)", text)
    if script:
        return script.group(1)
    return program or "?"


def _cmdline(pid: str) -> str:
    """A process's command line (NUL-separated); empty when it is gone or a kernel thread."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").rstrip("\0")
    except OSError:
        return ""


def _busy() -> float:
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICKS  # less idle and iowait


class Sampler(threading.Thread):
    """Samples every process's CPU from ``/proc`` until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.first: dict[tuple[str, str], float] = {}
        self.last: dict[tuple[str, str], float] = {}
        self.kinds: dict[tuple[str, str], str] = {}
        self.stopped = threading.Event()
        self._initial = True

    def sample(self) -> None:
        """Read each process's CPU seconds once."""
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                fields = stat[stat.rfind(")") + 2 :].split()
                cpu = (int(fields[11]) + int(fields[12])) / TICKS
                key = (pid, fields[19])  # pid and start time: one process
                if key not in self.kinds:
                    cmdline = _cmdline(pid)
                    if not cmdline:
                        continue  # a kernel thread, or gone meanwhile
                    self.kinds[key] = kind(cmdline, _cmdline(fields[1]))
                    self.first[key] = cpu if self._initial else 0.0
                self.last[key] = cpu
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
        self._initial = False

    def run(self) -> None:
        """Sample every :data:`INTERVAL_S` until :attr:`stopped` is set."""
        while not self.stopped.is_set():
            self.sample()
            self.stopped.wait(INTERVAL_S)

    def table(self) -> list[tuple[str, float, int]]:
        """(kind, CPU seconds since each process's first sample, processes), costliest first."""
        cpu: dict[str, float] = defaultdict(float)
        count: dict[str, int] = defaultdict(int)
        for key, name in self.kinds.items():
            cpu[name] += self.last[key] - self.first[key]
            count[name] += 1
        return sorted(((n, cpu[n], count[n]) for n in cpu), key=lambda row: -row[1])


def main(argv: list[str]) -> int:
    """Run ``argv[1:]`` (after ``--``) while sampling; print the table; return its status."""
    if not argv or argv[0] != "--" or len(argv) < 2:
        print("usage: cpu_by_command.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    sampler = Sampler()
    sampler.sample()  # what runs already is counted from here
    busy, start = _busy(), time.monotonic()
    sampler.start()
    try:
        status = subprocess.call(argv[1:])
    except KeyboardInterrupt:
        status = 130
    except OSError as exc:  # not found, not executable: as a shell says it
        print(f"cpu_by_command.py: {argv[1]}: {exc.strerror}", file=sys.stderr)
        status = 127
    sampler.stopped.set()
    sampler.join()
    sampler.sample()
    wall, used = time.monotonic() - start, _busy() - busy
    rows = [row for row in sampler.table() if row[1] >= 1.0]
    cores = used / wall if wall else 0.0
    print(f"== CPU by kind of process: {used:,.0f} CPU-s busy over {wall:,.0f} s "
          f"({cores:.2f} cores of {os.cpu_count()}); sampled every {INTERVAL_S} s")  # fmt: skip
    print(f"{'CPU s':>9} {'processes':>9}  kind")
    for name, cpu, count in rows:
        print(f"{cpu:9,.1f} {count:9,d}  {name}")
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
