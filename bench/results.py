"""Saved benchmark results: one JSON file per run of a section, under bench/results/.

docs/benchmarks.md is generated from these files alone (``run_all.py --render``),
so every figure in it comes from a script run that is kept, with its date, the
commit measured, the machine and the load beside it. Earlier runs stay, and a
section can quote the spread of its own history.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def machine() -> str:
    """CPU model, cores, memory, kernel and Python of this machine, in one line."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def commit() -> str:
    """The commit measured, with ``+dirty`` when the work tree had changes."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    head = git("rev-parse", "--short=10", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "bench")
    return head + ("+dirty" if dirty else "")


def save(section: str, runs: dict[str, Any], load: tuple[float, float]) -> Path:
    """Write one run of ``section`` (each script's command and output) and return its path."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    record = {
        "section": section,
        "measured_at": now.isoformat(),
        "commit": commit(),
        "machine": machine(),
        "load_average": {"start": round(load[0], 2), "end": round(load[1], 2)},
        "runs": runs,
    }
    folder = RESULTS / section
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def history(section: str) -> list[dict[str, Any]]:
    """Every saved run of ``section``, oldest first."""
    folder = RESULTS / section
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
